/**
 * `consortia app new NAME [--dir D]` writes a TypeScript app against @microsoft/ccf-app
 * (app-template.ts) into D (default ./NAME), refusing a directory that is not empty.
 * `consortia app bundle DIR [--out FILE]` writes CCF's bundle JSON for DIR (app.json + src/, as
 * ccf-build-bundle names the modules) to FILE (default DIR/bundle.json), after checking that
 * every endpoint names a module of the bundle.
 * `consortia app deploy --bundle FILE|DIR|NAME`: proposes `set_js_app` with the bundle
 * (app-bundle-files.ts reads it; NAME is an app that ships with the project, builtin-apps.ts)
 * as the member given by the connection options (gov.ts), and prints the node's answer;
 * members then vote on it as on any proposal (`consortia gov vote`).
 * `--remove` proposes `remove_js_app` instead.
 * `consortia app serve` and `consortia app package-id`: the app service mode (app-serve.ts);
 * `consortia app set-service` and `remove-service` propose its governance (app-service-gov.ts).
 */
import type { Command } from "commander";
import { isReportable, CliError } from "../cli-error.js";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { isNodeError } from "../../base/errors.js";
import { checkBundleModules, loadBundle } from "../app-bundle-files.js";
import { appTemplate } from "../app-template.js";
import { resolveBundlePath } from "../builtin-apps.js";
import type { Action } from "../gov-client.js";
import { addConnectionOptions, openClient, type ConnectionOptions } from "./gov.js";
import { registerAppServe } from "./app-serve.js";
import { registerAppServiceGov } from "./app-service-gov.js";

interface DeployOptions extends ConnectionOptions {
  bundle?: string;
  remove?: boolean;
  disableBytecodeCache?: boolean;
}

/** The set_js_app action for the bundle at `path`. */
export function setJsAppAction(path: string, disableBytecodeCache = false): Action {
  const args: Record<string, unknown> = { bundle: loadBundle(resolveBundlePath(path)) };
  if (disableBytecodeCache) args.disable_bytecode_cache = true;
  return { name: "set_js_app", args };
}

/** npm's rule for a package name, lowercase only: the scaffold's package.json carries it. */
const APP_NAME = /^[a-z0-9][a-z0-9._-]{0,213}$/;

function isEmptyOrAbsent(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch (err: unknown) {
    if (isNodeError(err) && err.code === "ENOENT") return true;
    if (isNodeError(err)) throw new CliError(`cannot use ${dir}: ${err.code}`);
    throw err;
  }
}

/** Writes the scaffold of app `name` into `dir`; returns the files written. */
export function scaffoldApp(name: string, dir: string): string[] {
  if (!APP_NAME.test(name)) {
    throw new CliError(`invalid app name ${JSON.stringify(name)}: use lowercase a-z, 0-9, . _ -`);
  }
  if (!isEmptyOrAbsent(dir)) throw new CliError(`${dir} exists and is not empty`);
  const written: string[] = [];
  for (const [path, content] of appTemplate(name)) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content, { flag: "wx" });
    written.push(file);
  }
  return written;
}

/** Builds the bundle of `dir` and writes it to `out`; returns the number of modules. */
export function writeBundle(dir: string, out: string): number {
  const bundle = loadBundle(dir);
  checkBundleModules(bundle);
  try {
    writeFileSync(out, JSON.stringify(bundle));
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot write ${out}: ${err.code}`);
  }
  return bundle.modules.length;
}

function registerNewAndBundle(app: Command): void {
  app
    .command("new <name>")
    .description("Scaffold a TypeScript app using @microsoft/ccf-app (app.json, src/, build).")
    .option("--dir <dir>", "where to create it (default: ./NAME)")
    .action((name: string, o: { dir?: string }) => {
      const dir = resolve(o.dir ?? name);
      scaffoldApp(name, dir);
      process.stdout.write(
        `Created ${name} in ${dir}\nNext: cd ${dir} && npm install && npm run build,\n` +
          `then deploy dist/bundle.json (consortia app deploy --bundle dist/bundle.json)\n`,
      );
    });
  app
    .command("bundle <dir>")
    .description("Write CCF's bundle JSON {metadata, modules} for DIR (app.json + src/).")
    .option("--out <file>", "where to write it (default: DIR/bundle.json)")
    .action((dir: string, o: { out?: string }) => {
      const out = o.out ?? join(dir, "bundle.json");
      const count = writeBundle(dir, out);
      process.stdout.write(`Wrote a bundle of ${count} modules to ${out}\n`);
    });
}

export function registerApp(program: Command): void {
  const app = program
    .command("app")
    .description("JavaScript applications: deployed by governance, or served by an app server.");
  registerNewAndBundle(app);
  registerAppServe(app);
  registerAppServiceGov(app);
  addConnectionOptions(
    app
      .command("deploy")
      .description("Propose set_js_app with a bundle (bundle.json, or a dir with app.json)."),
  )
    .option("--bundle <path>", "bundle.json, a directory holding app.json and src/, or registry")
    .option("--remove", "propose remove_js_app instead")
    .option("--disable-bytecode-cache", "set_js_app's disable_bytecode_cache")
    .action(async (o: DeployOptions) => {
      if ((o.bundle === undefined) === (o.remove !== true)) {
        throw new CliError("give exactly one of --bundle PATH or --remove");
      }
      const action: Action =
        o.bundle !== undefined
          ? setJsAppAction(o.bundle, o.disableBytecodeCache === true)
          : { name: "remove_js_app", args: {} };
      const client = openClient(o);
      try {
        const answer = await client.propose([action]);
        process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      } catch (err: unknown) {
        if (!isReportable(err)) throw err;
        throw new CliError(err.message);
      } finally {
        client.close();
      }
    });
}
