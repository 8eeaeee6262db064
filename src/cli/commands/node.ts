/**
 * `consortia node --config FILE`: runs one node from a CCF 6.x style JSON config
 * (ccf-compatibility.md §1).
 * A config error names the key and exits 1 before anything starts (two interfaces on one port
 * too); so does a port the node cannot listen on, or a ledger or snapshot directory it cannot
 * write (one line, no stack). Any other failed start exits 1 as promptly, having undone what it
 * began (start-node.ts), so the operator can fix the cause and start the same config again.
 * The node runs until SIGINT or SIGTERM, then closes its servers and ledger, and exits 0. A
 * storage fault while running (ENOSPC, EIO writing the ledger or the hard state) logs one line
 * saying what failed and what to do, closes the listeners and exits with
 * STORAGE_FAULT_EXIT_CODE (SECURITY.md, "Disk faults").
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { StorageError } from "../../base/storage-error.js";
import { CliError, isReportable } from "../cli-error.js";
import { describeConfigError, loadNodeConfig, type NodeConfig } from "../../node/config/config.js";
import { formatAddress } from "../../node/config/config-values.js";
import { startNode } from "../../node/start-node.js";
import { registerNodeReplace } from "./node-replace.js";

/**
 * A node exits within 2 s of SIGTERM whatever its load (test/e2e/stop-under-load.test.ts): an
 * orderly stop() takes well under 1 s (its RPC servers' grace is 500 ms), and past this the
 * process exits 1 without the final sync.
 */
const STOP_TIMEOUT_MS = 1500;

/**
 * A node whose start failed exits this long after its error at the latest: startNode undoes
 * what it began, and this bounds a process that something left (a bug) would keep alive.
 */
const FAILED_START_EXIT_MS = 1000;

/** The exit code of a node stopped by a storage fault (sysexits.h EX_IOERR). */
export const STORAGE_FAULT_EXIT_CODE = 74;

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
      await runNode(config);
    });
  registerNodeReplace(node);
}

/**
 * Starts the node and runs it until SIGINT or SIGTERM (exit 0) or its first storage fault
 * (exit STORAGE_FAULT_EXIT_CODE); a start that fails is a CliError, and the process then exits
 * within FAILED_START_EXIT_MS whatever is left running.
 */
async function runNode(config: NodeConfig): Promise<void> {
  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  // Resolved by SIGINT or SIGTERM (null) or by the running node's first storage fault.
  let stop: (fault: StorageError | null) => void = () => undefined;
  const stopped = new Promise<StorageError | null>((resolve) => (stop = resolve));
  let node;
  try {
    node = await startNode(config, { log, onStorageFault: (fault) => stop(fault) });
  } catch (err: unknown) {
    exitSoonAfterReport();
    // A bug during start-up (an assertion) keeps its stack; the rest is the operator's.
    if (!isReportable(err)) throw err;
    throw new CliError(`node failed to start: ${startupProblem(err)}`);
  }
  try {
    writeFileSync(config.outputFiles.pidFile, `${process.pid}\n`);
  } catch (err: unknown) {
    exitSoonAfterReport();
    if (!isReportable(err)) throw err;
    await node.stop();
    throw new CliError(`node stopped: cannot write its pid file: ${err.message}`);
  }
  for (const i of node.boundInterfaces) log(`${i.name}: https://${formatAddress(i)}`);
  if (node.storageFault === null) log(`node ${node.nodeId} is part of the network`);
  process.once("SIGINT", () => stop(null));
  process.once("SIGTERM", () => stop(null));
  const fault = await stopped;
  if (fault !== null) log(storageFaultLine(fault));
  let exitCode = fault === null ? 0 : STORAGE_FAULT_EXIT_CODE;
  log("stopping");
  // A peer or client connection must not keep a stopping node alive: the ledger is closed
  // (synced, unless it failed) by stop(), then the process exits, within STOP_TIMEOUT_MS.
  const timeout = setTimeout(() => {
    log(`did not stop within ${STOP_TIMEOUT_MS} ms: exiting`);
    process.exit(fault === null ? 1 : exitCode);
  }, STOP_TIMEOUT_MS);
  try {
    await node.stop();
  } catch (err: unknown) {
    // The final sync of an orderly stop may meet the fault itself.
    if (!(err instanceof StorageError)) throw err;
    log(storageFaultLine(err));
    exitCode = STORAGE_FAULT_EXIT_CODE;
  }
  clearTimeout(timeout);
  log(`stopped (exit code ${exitCode})`);
  process.exit(exitCode);
}

/**
 * Exits with the code main() reported (1 if none) once FAILED_START_EXIT_MS have passed, unless
 * the process ended before: the timer does not keep it alive, so a process with nothing left
 * running exits as soon as its error is printed.
 */
function exitSoonAfterReport(): void {
  setTimeout(() => process.exit(Number(process.exitCode ?? 1) || 1), FAILED_START_EXIT_MS).unref();
}

/**
 * The one line a storage fault logs: what failed, that the node stopped, and what to do.
 * Committed transactions are on a majority's disks (or, alone, on this one up to its last
 * successful sync); the node restarts from its files once the device is repaired.
 */
export function storageFaultLine(fault: StorageError): string {
  return (
    `FATAL storage fault: ${fault.message}. The node stopped taking writes and is ` +
    `shutting down (exit code ${STORAGE_FAULT_EXIT_CODE}); it reported nothing committed ` +
    "that it had not made durable. Free space on (or repair) the device holding that " +
    "file, then: in a service that still has a majority, replace this node (`consortia " +
    "node replace`, then start the new node with command Join); if the service stopped, " +
    "start a node with command Recover on this ledger directory (`consortia sandbox " +
    "--recover` for a sandbox), which cuts any torn tail."
  );
}

/** One line for the operator: the OS error of a failed listen, or the error's message. */
function startupProblem(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const listening = e.syscall === "listen" || e.syscall === "bind";
  const code = e.code ?? "";
  if (listening && ["EADDRINUSE", "EADDRNOTAVAIL", "EACCES"].includes(code)) {
    return `cannot listen on ${e.address ?? "?"}:${e.port ?? "?"} (${e.code})`;
  }
  return e instanceof Error ? e.message : String(err);
}
