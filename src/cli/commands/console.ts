/**
 * `consortia console [--workspace W | --node URL --cacert FILE] [--port 7000]`: the web console
 * for members and auditors (README "Web console"). Serves the single-page app built into
 * dist/console/ on 127.0.0.1 and carries its calls to the network through a proxy that pins the
 * service certificate (src/cli/console/). Runs until SIGINT or SIGTERM.
 */
import type { Command } from "commander";
import { join } from "node:path";
import { findPackageRoot } from "../package-root.js";
import { ConsoleServer } from "../console/console-server.js";
import { consoleSettings, type ConsoleFlags } from "../console/console-settings.js";
import { LedgerApi } from "../console/ledger-api.js";
import { NetworkClient } from "../console/network-client.js";
import { StaticFiles } from "../console/static-files.js";
import { CliError } from "../cli-error.js";
import { isNodeError } from "../../base/errors.js";
import { stopSignal } from "./sandbox-nodes.js";

/** Time limit of one call to the network (a governance write runs the constitution). */
const NETWORK_TIMEOUT_MS = 15_000;
/** Largest answer passed back to a page (a constitution, a JS app, a page of proposals). */
const RESPONSE_BYTES_MAX = 16 * 1024 * 1024;

const HELP_AFTER = `
Open the printed address in a browser. Pages: network (nodes, roles, view, commit, health),
service (status, members, users, constitution, JS app), proposals (create from templates of
the constitution's actions, vote: the member's key is opened in the page and signs there),
ledger (entries by seqno, read from the ledger files: node 0's in a workspace, or --ledger-dir),
transaction (status, receipt verified in the browser) and registry (when deployed).

Examples:
  consortia console --workspace ./workspace
  consortia console --node https://127.0.0.1:8000 --cacert service_cert.pem --port 7001
`;

export function registerConsole(program: Command): void {
  program
    .command("console")
    .description("Serve the web console on 127.0.0.1 (network, governance, ledger, receipts).")
    .option("--workspace <dir>", "a sandbox workspace (service certificate, nodes, ledger)")
    .option("--node <url>", "a node's RPC address, e.g. https://127.0.0.1:8000")
    .option("--cacert <file>", "the service certificate (with --node)")
    .option("--ledger-dir <dir>", "ledger files for the ledger page (default: node 0's in W)")
    .option("--user-cert <file>", "user certificate for app endpoints (default: W's user0)")
    .option("--user-key <file>", "its private key")
    .option("--port <port>", "port on 127.0.0.1 (0: any free port)", "7000")
    .option("--app-dir <dir>", "the built console app to serve (default: dist/console)")
    .addHelpText("after", HELP_AFTER)
    .action((flags: ConsoleFlags & { appDir?: string }) => runConsole(flags));
}

async function runConsole(flags: ConsoleFlags & { appDir?: string }): Promise<void> {
  const settings = consoleSettings(flags);
  const staticFiles = new StaticFiles(flags.appDir ?? join(findPackageRoot(), "dist", "console"));
  const network = new NetworkClient({
    urls: settings.nodeUrls,
    serviceCertPem: settings.serviceCertPem,
    ...(settings.client === null ? {} : { client: settings.client }),
    timeoutMs: NETWORK_TIMEOUT_MS,
    responseBytesMax: RESPONSE_BYTES_MAX,
  });
  const server = new ConsoleServer({
    port: settings.port,
    network,
    ledger: new LedgerApi(settings.ledgerDir),
    staticFiles,
    description: {
      nodes: settings.nodeUrls,
      ledgerDir: settings.ledgerDir,
      userCertificate: settings.client !== null,
    },
  });
  const stop = stopSignal();
  try {
    const port = await server.listen().catch((err: unknown) => {
      if (isNodeError(err))
        throw new CliError(`cannot listen on 127.0.0.1:${settings.port}: ${err.code}`);
      throw err;
    });
    process.stdout.write(
      `Console: http://127.0.0.1:${port}/ (network: ${settings.nodeUrls.join(", ")}; ` +
        `ledger: ${settings.ledgerDir ?? "none"})\n`,
    );
    await stop.promise;
  } finally {
    stop.dispose();
    await server.close();
  }
}
