/**
 * `consortia gov propose|vote|withdraw|ack|list|show`: one command per governance step, for people
 * who prefer it to `cose-sign` + curl (ccf-compatibility.md §3.4, §4.1, §4.4). Each command signs
 * with a member's key and certificate through GovClient and prints the node's JSON answer.
 *
 * Connection options default to a sandbox workspace (`--workspace`, default ./workspace):
 *   --node    https://127.0.0.1:8000
 *   --cacert  <workspace>/sandbox_common/service_cert.pem
 *   --cert    <workspace>/sandbox_common/member0_cert.pem
 *   --key     <workspace>/sandbox_common/member0_privk.pem
 *
 * Invariant: every failure is one CliError line naming the HTTP status and CCF error code (or
 * the file that could not be read), never a stack trace.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import { isNodeError } from "../../base/errors.js";
import { CliError, isReportable } from "../cli-error.js";
import { GovClient, type Action } from "../gov-client.js";

/** The connection options every gov command (and `node replace`) takes. */
export interface ConnectionOptions {
  workspace: string;
  node: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

const DEFAULT_NODE = "https://127.0.0.1:8000";

const HELP_AFTER = `
Defaults come from a sandbox workspace (consortia sandbox): --cacert
<workspace>/sandbox_common/service_cert.pem, --cert/--key member0's, --node ${DEFAULT_NODE}.

Examples:
  consortia gov propose --action set_user --args '{"cert": "-----BEGIN CERTIFICATE-----..."}'
  consortia gov vote --proposal-id <id> --accept
  consortia gov list
`;

/** Adds --workspace, --node, --cacert, --cert and --key with their sandbox defaults. */
export function addConnectionOptions(command: Command): Command {
  return command
    .option("--workspace <dir>", "sandbox workspace supplying the defaults", "./workspace")
    .option("--node <url>", "node URL", DEFAULT_NODE)
    .option("--cacert <file>", "service certificate (default: from the workspace)")
    .option("--cert <file>", "member certificate (default: workspace member0)")
    .option("--key <file>", "member private key (default: workspace member0)");
}

/** A text file, or a CliError naming the option (`what`) and the OS error code. */
export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read ${what} ${path}: ${err.code}`);
  }
}

/** A GovClient from connection options (files read now: a missing one is a CliError). */
export function openClient(options: ConnectionOptions): GovClient {
  const common = join(options.workspace, "sandbox_common");
  const caPem = readText(options.cacert ?? join(common, "service_cert.pem"), "--cacert");
  const certPem = readText(options.cert ?? join(common, "member0_cert.pem"), "--cert");
  const keyPem = readText(options.key ?? join(common, "member0_privk.pem"), "--key");
  try {
    return new GovClient({ url: options.node, caPem, certPem, keyPem });
  } catch (err: unknown) {
    // A bad URL (ERR_INVALID_URL) or key material node:tls refuses (ERR_OSSL_...).
    if (!isReportable(err)) throw err;
    throw new CliError(`cannot connect to ${options.node}: ${err.message}`);
  }
}

/** Runs one client call, prints its JSON result, and turns client errors into CliErrors. */
export async function runClientCall(
  options: ConnectionOptions,
  call: (c: GovClient) => Promise<unknown>,
) {
  const client = openClient(options);
  try {
    const result = await call(client);
    process.stdout.write(`${JSON.stringify(result ?? null, null, 2)}\n`);
  } catch (err: unknown) {
    if (err instanceof CliError) throw err;
    if (!isReportable(err)) throw err;
    throw new CliError(err.message);
  } finally {
    client.close();
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`${what} is not valid JSON: ${err.message}`);
  }
}

export function registerGov(program: Command): void {
  const gov = program
    .command("gov")
    .description("Governance: propose, vote, withdraw, ack, list and show proposals.")
    .addHelpText("after", HELP_AFTER);
  registerPropose(gov);
  registerVote(gov);

  addConnectionOptions(gov.command("withdraw").description("Withdraw one of your open proposals."))
    .requiredOption("--proposal-id <id>", "the proposal to withdraw")
    .action((o: ConnectionOptions & { proposalId: string }) =>
      runClientCall(o, async (c) => (await c.withdraw(o.proposalId)) ?? { withdrawn: false }),
    );

  addConnectionOptions(
    gov.command("ack").description("Update and acknowledge the state digest (member -> Active)."),
  ).action((o: ConnectionOptions) => runClientCall(o, (c) => c.ackStateDigest()));

  addConnectionOptions(
    gov.command("list").description("List the proposals the node keeps."),
  ).action((o: ConnectionOptions) => runClientCall(o, (c) => c.listProposals()));

  addConnectionOptions(gov.command("show").description("Show one proposal."))
    .requiredOption("--proposal-id <id>", "the proposal to show")
    .action((o: ConnectionOptions & { proposalId: string }) =>
      runClientCall(o, (c) => c.getProposal(o.proposalId)),
    );
}

function registerPropose(gov: Command): void {
  addConnectionOptions(
    gov
      .command("propose")
      .description("Submit a proposal from a file, or a single action with --action/--args."),
  )
    .option("--proposal <file>", 'proposal JSON: {"actions":[{"name","args"}]}')
    .option("--action <name>", "a single action's name")
    .option("--args <json>", "that action's args (JSON object)", "{}")
    .action((o: ConnectionOptions & { proposal?: string; action?: string; args: string }) => {
      if ((o.proposal === undefined) === (o.action === undefined)) {
        throw new CliError("give exactly one of --proposal FILE or --action NAME");
      }
      if (o.proposal !== undefined) {
        const text = readText(o.proposal, "--proposal");
        parseJson(text, `--proposal ${o.proposal}`);
        return runClientCall(o, (c) => c.proposeRaw(new TextEncoder().encode(text)));
      }
      const action: Action = { name: o.action ?? "", args: parseJson(o.args, "--args") };
      return runClientCall(o, (c) => c.propose([action]));
    });
}

function registerVote(gov: Command): void {
  addConnectionOptions(gov.command("vote").description("Vote on an open proposal."))
    .requiredOption("--proposal-id <id>", "the proposal to vote on")
    .addOption(new Option("--accept", "vote for (a constant true ballot)").conflicts(["reject"]))
    .addOption(new Option("--reject", "vote against (a constant false ballot)"))
    .option("--ballot <file>", "a ballot: JS `export function vote (proposal, proposerId)` source")
    .action(
      (
        o: ConnectionOptions & {
          proposalId: string;
          accept?: boolean;
          reject?: boolean;
          ballot?: string;
        },
      ) => {
        const chosen = [o.accept, o.reject, o.ballot].filter((x) => x !== undefined).length;
        if (chosen !== 1)
          throw new CliError("give exactly one of --accept, --reject, --ballot FILE");
        const ballot =
          o.ballot !== undefined ? ballotSource(readText(o.ballot, "--ballot")) : o.accept === true;
        return runClientCall(o, (c) => c.vote(o.proposalId, ballot));
      },
    );
}

/** A ballot file holds the JS source, or CCF's `{"ballot": "<source>"}` JSON wrapper. */
function ballotSource(text: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const parsed = parseJson(trimmed, "--ballot") as { ballot?: unknown };
    if (typeof parsed.ballot === "string") return parsed.ballot;
    throw new CliError('--ballot JSON must be {"ballot": "<JS source>"}');
  }
  return text;
}
