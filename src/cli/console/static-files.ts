/**
 * The console's built single-page app (dist/console/, written by scripts/build.mjs): every file
 * of that folder is read once at start-up and served from memory, so no request path ever
 * reaches the file system (no traversal). `/` is index.html. Every answer carries a content
 * security policy that allows only this origin's own scripts, styles and calls.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { CliError } from "../cli-error.js";
import { ConsoleError, ConsoleErrorCode } from "./console-error.js";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
};

export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'none'";

export interface StaticFile {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

export class StaticFiles {
  private readonly files = new Map<string, StaticFile>();

  /** Reads `dir`; CliError when the app is not built there. */
  constructor(dir: string) {
    if (!existsSync(join(dir, "index.html"))) {
      throw new CliError(`the console is not built (no ${dir}/index.html): run npm run build`);
    }
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const type = CONTENT_TYPES[extname(name)];
      if (type === undefined || !statSync(path).isFile()) continue;
      const body = readFileSync(path);
      this.files.set(`/${name}`, {
        body,
        headers: {
          "content-type": type,
          "content-length": String(body.byteLength),
          "content-security-policy": CONTENT_SECURITY_POLICY,
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer",
          "cache-control": "no-cache",
        },
      });
    }
  }

  get(method: string, path: string): StaticFile {
    const file = this.files.get(path === "/" ? "/index.html" : path);
    if (file === undefined) {
      throw new ConsoleError(ConsoleErrorCode.ResourceNotFound, `no such page: ${path}`);
    }
    if (method !== "GET" && method !== "HEAD") {
      throw new ConsoleError(ConsoleErrorCode.UnsupportedHttpVerb, `${method} ${path}`);
    }
    return file;
  }
}
