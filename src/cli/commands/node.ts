/**
 * `consortia node --config FILE`: runs one node from a CCF 6.x style JSON config
 * (ccf-compatibility.md §1).
 * A config error names the key and exits 1 before anything starts. The node runs until SIGINT
 * or SIGTERM, then closes its servers and ledger.
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { CliError, isReportable } from "../cli-error.js";
import { describeConfigError, loadNodeConfig } from "../../node/config/config.js";
import { startNode } from "../../node/start-node.js";
import { registerNodeReplace } from "./node-replace.js";

const STOP_TIMEOUT_MS = 4000;

export function registerNode(program: Command): void {
  const node = program
    .command("node")
    .description(
      "Run a node from a CCF-style JSON config: command.type Start creates a service (and " +
        "writes its certificate to command.service_certificate_file), Join joins the service " +
        "at command.join.target_rpc_address, Recover recovers a service from its previous " +
        "ledger (command.recover.previous_service_identity_file). Serves every " +
        "network.rpc_interfaces entry over HTTPS and talks to its peers on " +
        "network.node_to_node_interface until SIGINT or SIGTERM.",
    )
    // Checked in the action rather than by commander, which would also demand it of `node
    // replace` (a subcommand that runs no node).
    .option("--config <file>", "node configuration (JSON); required to run a node")
    .option("--check", "only validate the configuration, then exit")
    .action(async (options: { config?: string; check?: boolean }) => {
      if (options.config === undefined) {
        throw new CliError("required option '--config <file>' not specified");
      }
      let config;
      try {
        config = loadNodeConfig(options.config);
      } catch (err: unknown) {
        if (!isReportable(err)) throw err;
        throw new CliError(describeConfigError(err));
      }
      for (const key of config.ignoredKeys) console.error(`warning: ignoring config key ${key}`);
      if (options.check === true) {
        console.log(`configuration ${options.config} is valid`);
        return;
      }
      const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
      let node;
      try {
        node = await startNode(config, { log });
      } catch (err: unknown) {
        // A bug during start-up (an assertion) keeps its stack; the rest is the operator's.
        if (!isReportable(err)) throw err;
        throw new CliError(`node failed to start: ${startupProblem(err)}`);
      }
      writeFileSync(config.outputFiles.pidFile, `${process.pid}\n`);
      for (const i of node.boundInterfaces) log(`${i.name}: https://${i.host}:${i.port}`);
      log(`node ${node.nodeId} is part of the network`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      log("stopping");
      // A peer or client connection must not keep a stopping node alive: the ledger is closed
      // (synced) by stop(), then the process exits, within STOP_TIMEOUT_MS at worst.
      const timeout = setTimeout(() => {
        log(`did not stop within ${STOP_TIMEOUT_MS} ms: exiting`);
        process.exit(1);
      }, STOP_TIMEOUT_MS);
      await node.stop();
      clearTimeout(timeout);
      log("stopped");
      process.exit(0);
    });
  registerNodeReplace(node);
}

/** One line for the operator: the OS error of a failed listen, or the error's message. */
function startupProblem(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code === "EADDRINUSE" || e.code === "EADDRNOTAVAIL" || e.code === "EACCES") {
    return `cannot listen on ${e.address ?? "?"}:${e.port ?? "?"} (${e.code})`;
  }
  return e instanceof Error ? e.message : String(err);
}
