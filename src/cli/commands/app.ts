/**
 * `consortia app deploy --bundle FILE|DIR`: proposes `set_js_app` with the bundle
 * (app-bundle-files.ts reads it) as the member given by the connection options (gov.ts), and
 * prints the node's answer; members then vote on it as on any proposal (`consortia gov vote`).
 * `--remove` proposes `remove_js_app` instead.
 */
import type { Command } from "commander";
import { isReportable, CliError } from "../cli-error.js";
import { loadBundle } from "../app-bundle-files.js";
import type { Action } from "../gov-client.js";
import { addConnectionOptions, openClient, type ConnectionOptions } from "./gov.js";

interface DeployOptions extends ConnectionOptions {
  bundle?: string;
  remove?: boolean;
  disableBytecodeCache?: boolean;
}

/** The set_js_app action for the bundle at `path`. */
export function setJsAppAction(path: string, disableBytecodeCache = false): Action {
  const args: Record<string, unknown> = { bundle: loadBundle(path) };
  if (disableBytecodeCache) args.disable_bytecode_cache = true;
  return { name: "set_js_app", args };
}

export function registerApp(program: Command): void {
  const app = program.command("app").description("JavaScript applications deployed by governance.");
  addConnectionOptions(
    app
      .command("deploy")
      .description("Propose set_js_app with a bundle (bundle.json, or a dir with app.json)."),
  )
    .option("--bundle <path>", "bundle.json, or a directory holding app.json and src/")
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
