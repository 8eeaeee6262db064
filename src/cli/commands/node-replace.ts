/**
 * `consortia node replace --old ID --new ID`: the operator path for a node that crashed for good
 * (issue #5 item 3). A node's identity is never reused: the replacement is a new node that has
 * joined the open service and waits Pending. One command then does what CCF needs several for:
 *   1. check: --old is in the nodes table and not Retired, --new is Pending;
 *   2. one proposal [transition_node_to_trusted(new), remove_node(old)], proposed by the first
 *      member; members vote accept in turn (the proposer first) until it is Accepted;
 *   3. wait until the new node reports itself PartOfNetwork and the old one is removable (the
 *      configuration without it committed, so the primary marked it retired_committed);
 *   4. DELETE /node/network/nodes/{old} and wait for that deletion to commit.
 * Doing both actions in one proposal keeps the service at its size: the configuration never
 * holds fewer nodes than before, and there is one vote instead of two.
 *
 * Each step prints one line on stdout with its transaction ids; waits print progress on stderr.
 * Invariant: every failure is one CliError line (no stack trace) naming the node, proposal and
 * state involved.
 */
import { createPrivateKey } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { isForeignError, isNodeError } from "../../base/errors.js";
import { CertError } from "../../crypto/certs.js";
import { memberIdFromCert } from "../../crypto/identity.js";
import type { NetInterfaceInfo, NodeStatus } from "../../gov/tables.js";
import { CliError, isReportable } from "../cli-error.js";
import { ClientError } from "@consortia/client";
import { type Action, type MemberSigner, type Proposal, type TxResult } from "../gov-client.js";
import { addConnectionOptions, openClient, readText, type ConnectionOptions } from "./gov.js";

const DEFAULT_TIMEOUT_S = 60;
const TIMEOUT_MAX_S = 3600;
const POLL_INTERVAL_MS = 200;
const PROGRESS_INTERVAL_MS = 2000;

interface ReplaceCliOptions extends ConnectionOptions {
  old: string;
  new: string;
  memberCert?: string[];
  memberKey?: string[];
  timeout: string;
}

/** A member that signs the proposal or a ballot, with its id for messages. */
export interface Member {
  readonly memberId: string;
  readonly signer: MemberSigner;
}

/** What a replacement needs from a node connection; GovClient provides it. */
export interface ReplaceConnection {
  requestJsonWithTxId<T>(method: string, path: string): Promise<TxResult<T | undefined>>;
  proposeWithTxId(actions: readonly Action[], signer: MemberSigner): Promise<TxResult<Proposal>>;
  voteWithTxId(id: string, ballot: boolean, signer: MemberSigner): Promise<TxResult<Proposal>>;
  /** A connection to another node of the service (the new node's own rpc address). */
  forNode(url: string): ReplaceConnection & { close(): void };
}

export interface ReplacePlan {
  readonly oldId: string;
  readonly newId: string;
  readonly members: readonly Member[];
  readonly timeoutMs: number;
}

/** Where the steps report: `step` lines are the result, `progress` lines show a wait. */
export interface ReplaceOutput {
  step(line: string): void;
  progress(line: string): void;
}

/** The slice of GET /node/network/nodes/{id} this command reads. */
interface NodeView {
  readonly node_id: string;
  readonly status: NodeStatus;
  readonly rpc_interfaces?: Record<string, NetInterfaceInfo>;
}

const HELP_AFTER = `
Start the replacement first (a node whose config has command.type "Join"): it joins the open
service and waits Pending. Members default to every memberN_cert.pem / memberN_privk.pem in
<workspace>/sandbox_common; give --member-cert/--member-key once per member otherwise.

Example:
  consortia node replace --old <dead node id> --new <pending node id> --workspace ./workspace
`;

/** Registers `replace` under the `node` command. */
export function registerNodeReplace(node: Command): void {
  addConnectionOptions(
    node
      .command("replace")
      .description(
        "Replace a dead node by a new Pending one through governance: trust the new node, " +
          "retire the old one, then delete it once its retirement committed.",
      ),
  )
    .requiredOption("--old <nodeId>", "the node to retire and delete")
    .requiredOption("--new <nodeId>", "the Pending node that takes its place")
    .option("--member-cert <file>", "a member certificate (repeat per member)", collect)
    .option("--member-key <file>", "that member's private key (same order)", collect)
    .option(
      "--timeout <s>",
      "how long to wait in all for the new node and the retirement",
      String(DEFAULT_TIMEOUT_S),
    )
    .addHelpText("after", HELP_AFTER)
    .action((o: ReplaceCliOptions) => runReplace(o));
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

async function runReplace(o: ReplaceCliOptions): Promise<void> {
  assertDistinct(o.old, o.new);
  const timeoutMs = parseTimeout(o.timeout) * 1000;
  const memberCert = o.memberCert ?? [];
  const memberKey = o.memberKey ?? [];
  const plan = {
    oldId: o.old,
    newId: o.new,
    members: loadMembers({ workspace: o.workspace, memberCert, memberKey }),
    timeoutMs,
  };
  // The TLS client identity defaults to the first member given rather than the workspace's.
  const client = openClient({
    ...o,
    ...(o.cert === undefined && memberCert[0] !== undefined && { cert: memberCert[0] }),
    ...(o.key === undefined && memberKey[0] !== undefined && { key: memberKey[0] }),
  });
  try {
    await replaceNode(client, plan, {
      step: (line) => process.stdout.write(`${line}\n`),
      progress: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (err: unknown) {
    if (err instanceof CliError) throw err;
    if (!isReportable(err)) throw err;
    throw new CliError(err.message);
  } finally {
    client.close();
  }
}

function assertDistinct(oldId: string, newId: string): void {
  if (oldId !== newId) return;
  throw new CliError(`--old and --new are the same node ${oldId}: a node replaces another`);
}

function parseTimeout(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > TIMEOUT_MAX_S) {
    throw new CliError(
      `--timeout must be a number of seconds in (0, ${TIMEOUT_MAX_S}], got ${text}`,
    );
  }
  return seconds;
}

/** The members from --member-cert/--member-key, else every memberN pair of the workspace. */
export function loadMembers(o: {
  workspace: string;
  memberCert: readonly string[];
  memberKey: readonly string[];
}): Member[] {
  let pairs: { cert: string; key: string }[];
  if (o.memberCert.length > 0 || o.memberKey.length > 0) {
    if (o.memberCert.length !== o.memberKey.length) {
      throw new CliError(
        `--member-cert given ${o.memberCert.length} times but --member-key ` +
          `${o.memberKey.length} times: give one key per certificate`,
      );
    }
    pairs = o.memberCert.map((cert, i) => ({ cert, key: o.memberKey[i]! }));
  } else {
    pairs = workspaceMembers(join(o.workspace, "sandbox_common"));
  }
  return pairs.map(({ cert, key }) => {
    const certPem = readText(cert, "--member-cert");
    const keyPem = readText(key, "--member-key");
    let memberId;
    try {
      memberId = memberIdFromCert(certPem);
    } catch (err: unknown) {
      if (!(err instanceof CertError)) throw err;
      throw new CliError(`--member-cert ${cert} is not a PEM certificate`);
    }
    try {
      createPrivateKey(keyPem);
    } catch (err: unknown) {
      if (!isForeignError(err)) throw err;
      throw new CliError(`--member-key ${key} is not a PEM private key`);
    }
    return { memberId, signer: { certPem, keyPem } };
  });
}

function workspaceMembers(common: string): { cert: string; key: string }[] {
  let names: string[];
  try {
    names = readdirSync(common);
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(
      `cannot list members in ${common} (${err.code}): give --member-cert/--member-key`,
    );
  }
  const numbers = names
    .map((name) => /^member(\d+)_cert\.pem$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  if (numbers.length === 0) {
    throw new CliError(`no memberN_cert.pem in ${common}: give --member-cert/--member-key`);
  }
  return numbers.map((n) => ({
    cert: join(common, `member${n}_cert.pem`),
    key: join(common, `member${n}_privk.pem`),
  }));
}

/** Steps 1 to 4 of the file comment, through `connection`. */
export async function replaceNode(
  connection: ReplaceConnection,
  plan: ReplacePlan,
  out: ReplaceOutput,
): Promise<void> {
  assertDistinct(plan.oldId, plan.newId);
  const old = await nodeView(connection, plan.oldId, "--old");
  if (old.value.status === "Retired") {
    throw new CliError(`node ${plan.oldId} (--old) is already Retired: nothing to replace`);
  }
  const fresh = await nodeView(connection, plan.newId, "--new");
  if (fresh.value.status !== "Pending") {
    throw new CliError(
      `node ${plan.newId} (--new) is ${fresh.value.status}, not Pending: ` +
        "give a node that has just joined the service",
    );
  }
  out.step(
    `checked: node ${plan.oldId} is ${old.value.status}, node ${plan.newId} is Pending ` +
      `(as of tx ${fresh.txId ?? "?"})`,
  );
  await passReplacement(connection, plan, out);
  const deadline = Date.now() + plan.timeoutMs;
  const address = await waitUntilPartOfNetwork(connection, plan, deadline, out);
  out.step(`trusted: node ${plan.newId} is Trusted and PartOfNetwork at ${address}`);
  const listedAt = await poll(`node ${plan.oldId} to be removable`, deadline, out, async () => {
    const list = await connection.requestJsonWithTxId<{ nodes?: NodeView[] }>(
      "GET",
      "/node/network/removable_nodes",
    );
    const found = list.value?.nodes?.some((n) => n.node_id === plan.oldId) === true;
    return found ? { done: list.txId } : { last: "its retirement has not committed yet" };
  });
  out.step(
    `retired: node ${plan.oldId} is Retired and its retirement committed ` +
      `(as of tx ${listedAt ?? "?"})`,
  );
  const path = `/node/network/nodes/${encodeURIComponent(plan.oldId)}`;
  const deleted = await connection.requestJsonWithTxId<unknown>("DELETE", path);
  if (deleted.txId === undefined) {
    out.step(`deleted: node ${plan.oldId}`);
    return;
  }
  await waitCommitted(connection, deleted.txId, deadline, out);
  out.step(`deleted: node ${plan.oldId} (tx ${deleted.txId}, committed)`);
}

async function nodeView(
  connection: ReplaceConnection,
  id: string,
  option: string,
): Promise<TxResult<NodeView>> {
  let result;
  try {
    const path = `/node/network/nodes/${encodeURIComponent(id)}`;
    result = await connection.requestJsonWithTxId<NodeView>("GET", path);
  } catch (err: unknown) {
    if (err instanceof ClientError && err.type.status === 404) {
      throw new CliError(`unknown node id ${id} (${option}): the service has no such node`);
    }
    throw err;
  }
  if (result.value === undefined) {
    throw new CliError(`GET /node/network/nodes/${id} answered no node (${option})`);
  }
  return { value: result.value, txId: result.txId };
}

/** Step 2: one proposal with both actions, then accept ballots until it is Accepted. */
async function passReplacement(
  connection: ReplaceConnection,
  plan: ReplacePlan,
  out: ReplaceOutput,
): Promise<void> {
  const [proposer] = plan.members;
  if (proposer === undefined) throw new CliError("no member to propose the replacement");
  const actions: Action[] = [
    { name: "transition_node_to_trusted", args: { node_id: plan.newId, valid_from: asn1Now() } },
    { name: "remove_node", args: { node_id: plan.oldId } },
  ];
  const created = await connection.proposeWithTxId(actions, proposer.signer);
  let proposal = created.value;
  out.step(
    `proposed: ${proposal.proposalId} by member ${proposer.memberId} (tx ${created.txId ?? "?"}):` +
      ` trust ${plan.newId}, remove ${plan.oldId}`,
  );
  for (const member of plan.members) {
    if (proposal.proposalState !== "Open") break;
    let ballot;
    try {
      ballot = await connection.voteWithTxId(proposal.proposalId, true, member.signer);
    } catch (err: unknown) {
      if (!isReportable(err)) throw err;
      throw new CliError(
        `member ${member.memberId} could not vote on ${proposal.proposalId}: ${err.message}`,
      );
    }
    proposal = ballot.value;
    out.step(
      `voted: member ${member.memberId} accepts ${proposal.proposalId}, now ` +
        `${proposal.proposalState} (tx ${ballot.txId ?? "?"})`,
    );
  }
  if (proposal.proposalState === "Accepted") return;
  const reason = proposal.failure?.reason;
  const detail =
    proposal.proposalState === "Open"
      ? ` after ballots from all ${plan.members.length} members given: not enough members`
      : reason !== undefined
        ? `: ${reason}`
        : "";
  throw new CliError(`proposal ${proposal.proposalId} is ${proposal.proposalState}${detail}`);
}

/** Step 3a: the new node is Trusted in the nodes table, then PartOfNetwork on its own port. */
async function waitUntilPartOfNetwork(
  connection: ReplaceConnection,
  plan: ReplacePlan,
  deadline: number,
  out: ReplaceOutput,
): Promise<string> {
  const path = `/node/network/nodes/${encodeURIComponent(plan.newId)}`;
  const trusted = await poll(`node ${plan.newId} to be Trusted`, deadline, out, async () => {
    const view = (await connection.requestJsonWithTxId<NodeView>("GET", path)).value;
    return view?.status === "Trusted" ? { done: view } : { last: `status ${view?.status}` };
  });
  const url = rpcUrl(trusted);
  if (url === undefined) return "(no rpc interface published)";
  const own = connection.forNode(url);
  try {
    await poll(`node ${plan.newId} to be PartOfNetwork`, deadline, out, async () => {
      // Until the node has its service-endorsed certificate, TLS fails: that is "not yet".
      const state = await own.requestJsonWithTxId<{ state?: string }>("GET", "/node/state");
      const now = state.value?.state;
      return now === "PartOfNetwork" ? { done: true } : { last: `state ${now}` };
    });
  } finally {
    own.close();
  }
  return url;
}

/** The node's first rpc interface, as clients reach it. */
function rpcUrl(view: NodeView): string | undefined {
  const first = Object.values(view.rpc_interfaces ?? {})[0];
  const address = first?.published_address ?? first?.bind_address;
  return address === undefined ? undefined : `https://${address}`;
}

async function waitCommitted(
  connection: ReplaceConnection,
  txId: string,
  deadline: number,
  out: ReplaceOutput,
): Promise<void> {
  const path = `/node/tx?transaction_id=${encodeURIComponent(txId)}`;
  await poll(`tx ${txId} to commit`, deadline, out, async () => {
    const status = (await connection.requestJsonWithTxId<{ status?: string }>("GET", path)).value
      ?.status;
    if (status === "Invalid") throw new CliError(`tx ${txId} became Invalid: retry the command`);
    return status === "Committed" ? { done: true } : { last: `status ${status}` };
  });
}

/**
 * Calls `probe` every POLL_INTERVAL_MS until it is done or `deadline` passes, printing where it
 * stands every PROGRESS_INTERVAL_MS. A ClientError (node busy, TLS not ready) is "not yet";
 * a CliError ends the wait.
 */
async function poll<T>(
  what: string,
  deadline: number,
  out: ReplaceOutput,
  probe: () => Promise<{ done: T } | { last: string }>,
): Promise<T> {
  const started = Date.now();
  let nextProgress = started + PROGRESS_INTERVAL_MS;
  let last = "no answer yet";
  for (;;) {
    try {
      const result = await probe();
      if ("done" in result) return result.done;
      last = result.last;
    } catch (err: unknown) {
      if (!(err instanceof ClientError)) throw err;
      last = err.message;
    }
    const now = Date.now();
    if (now >= deadline) {
      const waited = Math.round((now - started) / 1000);
      throw new CliError(`timed out after ${waited} s waiting for ${what} (last: ${last})`);
    }
    if (now >= nextProgress) {
      out.progress(`waiting for ${what}: ${last} (${Math.round((now - started) / 1000)} s)`);
      nextProgress = now + PROGRESS_INTERVAL_MS;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** Now as an ASN.1 UTCTime (YYMMDDhhmmssZ), the form valid_from takes. */
export function asn1Now(): string {
  const iso = new Date().toISOString(); // 2026-11-22T03:04:05.678Z
  const digits = iso.slice(2, 19).replace(/[-T:]/g, "");
  return `${digits}Z`;
}
