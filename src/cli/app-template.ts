/**
 * The files `consortia app new NAME` writes: a TypeScript app against `@microsoft/ccf-app` 6.x
 * from npm, laid out as CCF's samples are (app.json + src/). `npm run build` bundles each
 * src/*.ts (with @microsoft/ccf-app inside) into an ES module under dist/src/ with esbuild,
 * copies app.json to dist/ and writes dist/bundle.json with ccf-build-bundle (the package's own
 * tool), the file `consortia app deploy --bundle` proposes.
 *
 * The app: a typedKv map "items" (string id -> {text, author}), `PUT /items/{id}` that records
 * an item as written by the calling user, and `GET /items/{id}` that reads it back or answers
 * 404 ResourceNotFound; both authenticate with user_cert. Kept as strings so the bundled CLI
 * needs no template files on disk.
 */

/** Versions the scaffold pins (the ones this repository is tested with). */
export const CCF_APP_VERSION = "6.0.1";
export const ESBUILD_VERSION = "0.28.2";
export const TYPESCRIPT_VERSION = "7.0.2";

function packageJson(name: string): string {
  const pkg = {
    name,
    version: "0.1.0",
    private: true,
    type: "module",
    scripts: {
      build: "node build.mjs",
      typecheck: "tsc --noEmit -p .",
    },
    devDependencies: {
      "@microsoft/ccf-app": CCF_APP_VERSION,
      esbuild: ESBUILD_VERSION,
      typescript: TYPESCRIPT_VERSION,
    },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

const TSCONFIG = `{
  "compilerOptions": {
    "lib": ["ES2020"],
    "target": "ES2020",
    "module": "ES2020",
    "moduleResolution": "bundler",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": true
  },
  "include": ["src/**/*"]
}
`;

function endpoint(fn: string, mode: string, summary: string): Record<string, unknown> {
  return {
    js_module: "endpoints.js",
    js_function: fn,
    forwarding_required: "sometimes",
    authn_policies: ["user_cert"],
    mode,
    openapi: { summary },
  };
}

const APP_JSON = `${JSON.stringify(
  {
    endpoints: {
      "/items/{id}": {
        put: endpoint("putItem", "readwrite", "Record an item"),
        get: endpoint("getItem", "readonly", "Read an item"),
      },
    },
  },
  null,
  2,
)}\n`;

const ENDPOINTS_TS = `import * as ccfapp from "@microsoft/ccf-app";

interface Item {
  text: string;
  author: string;
}

// A typed view of the KV map "items" (private, as its name has no "public:" prefix).
const items = ccfapp.typedKv("items", ccfapp.string, ccfapp.json<Item>());

function notFound(id: string): ccfapp.Response {
  return {
    statusCode: 404,
    body: { error: { code: "ResourceNotFound", message: \`No item \${id}\` } },
  };
}

/** PUT /app/items/{id} with {"text": "..."}: records the item as written by the caller. */
export function putItem(request: ccfapp.Request<{ text: string }>): ccfapp.Response {
  const id = request.params["id"];
  const body = request.body.json();
  if (typeof body?.text !== "string") {
    return { statusCode: 400, body: { error: { code: "InvalidInput", message: "text needed" } } };
  }
  const caller = request.caller as ccfapp.UserCertAuthnIdentity;
  items.set(id, { text: body.text, author: caller.id });
  return { statusCode: 204 };
}

/** GET /app/items/{id}: the item, or 404. */
export function getItem(request: ccfapp.Request): ccfapp.Response<Item> {
  const id = request.params["id"];
  const item = items.get(id);
  if (item === undefined) return notFound(id);
  return { body: item };
}
`;

const BUILD_MJS = `// Bundles each src/*.ts into an ES module under dist/src/ (with
// @microsoft/ccf-app inside), copies app.json to dist/ and writes dist/bundle.json with
// ccf-build-bundle.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const entryPoints = readdirSync("src")
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
  .map((f) => join("src", f));
rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints,
  outdir: "dist/src",
  bundle: true,
  splitting: true,
  format: "esm",
  target: "es2020",
  chunkNames: "chunks/[name]-[hash]",
  logLevel: "warning",
});
copyFileSync("app.json", "dist/app.json");
const pkg = createRequire(import.meta.url).resolve("@microsoft/ccf-app/package.json");
execFileSync(process.execPath, [join(dirname(pkg), "scripts", "build_bundle.js"), "dist"], {
  stdio: "inherit",
});
`;

const GITIGNORE = "node_modules/\ndist/\n";

function readme(name: string): string {
  return `# ${name}

A CCF application in TypeScript, using \`@microsoft/ccf-app\` ${CCF_APP_VERSION}.

    npm install
    npm run build                # dist/bundle.json
    consortia sandbox --js-app-bundle dist
    cd workspace/sandbox_common
    curl https://127.0.0.1:8000/app/items/1 -X PUT --cacert service_cert.pem \\
      --cert user0_cert.pem --key user0_privk.pem \\
      -H "content-type: application/json" --data '{"text": "hello"}'

On a running service, \`consortia app deploy --bundle dist/bundle.json\` proposes the app.
`;
}

/** The scaffold for an app named `name`: relative path -> content. */
export function appTemplate(name: string): ReadonlyMap<string, string> {
  return new Map([
    ["package.json", packageJson(name)],
    ["tsconfig.json", TSCONFIG],
    ["app.json", APP_JSON],
    ["build.mjs", BUILD_MJS],
    [".gitignore", GITIGNORE],
    ["README.md", readme(name)],
    ["src/endpoints.ts", ENDPOINTS_TS],
  ]);
}
