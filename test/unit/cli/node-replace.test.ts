/**
 * `consortia node replace`: what the operator sees when something is wrong, and the order of
 * governance calls when nothing is. The argument checks run the real CLI; the service-side
 * checks run replaceNode against FakeService, an in-memory node that answers the same endpoints
 * (404 for an unknown node, Pending/Trusted/Retired rows, proposals that resolve after N ballots)
 * with GovClient's own error type. Each failure must be one line naming the node or proposal.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { buildProgram } from "../../../src/cli/main.js";
import { CliError } from "../../../src/cli/cli-error.js";
import { errorFromAnswer, ClientError, ClientErrorCode } from "@consortia/client";
import type { Action, MemberSigner, Proposal, TxResult } from "../../../src/cli/gov-client.js";
import { utf8 } from "../../../src/base/bytes.js";
import {
  loadMembers,
  replaceNode,
  type Member,
  type ReplaceConnection,
} from "../../../src/cli/commands/node-replace.js";
import { generateIdentity } from "../../../src/crypto/identity.js";
import { runCli } from "../../helpers/cli.js";
import { tempDir } from "../../helpers/pki.js";

const OLD = "a".repeat(64);
const NEW = "b".repeat(64);

type State = Proposal["proposalState"];

/** An in-memory service: a nodes table, one proposal, and the txIds it hands out. */
class FakeService implements ReplaceConnection {
  readonly nodes = new Map<string, { status: string; retiredCommitted?: boolean }>();
  readonly calls: string[] = [];
  /** The state after each ballot, in order; "Open" when the list runs out. */
  ballotOutcomes: State[] = ["Open", "Accepted"];
  failure: string | undefined;
  voteError: Error | undefined;
  /** Whether the proposal's effects show (false: the new node stays Pending forever). */
  applies = true;
  private seqno = 10;

  async requestJsonWithTxId<T>(method: string, path: string): Promise<TxResult<T | undefined>> {
    this.calls.push(`${method} ${path}`);
    const txId = `2.${this.seqno}`;
    const byId = /^\/node\/network\/nodes\/(\w+)$/.exec(path);
    if (byId !== null) {
      const id = byId[1]!;
      const row = this.nodes.get(id);
      if (row === undefined) {
        const body = JSON.stringify({ error: { code: "ResourceNotFound", message: "no node" } });
        throw errorFromAnswer(method, path, { status: 404, headers: {}, body: utf8(body) });
      }
      if (method === "DELETE") {
        this.nodes.delete(id);
        return { value: true as T, txId: `2.${++this.seqno}` };
      }
      const value = { node_id: id, status: row.status, rpc_interfaces: {} };
      return { value: value as T, txId };
    }
    if (path === "/node/network/removable_nodes") {
      const nodes = [...this.nodes]
        .filter(([, row]) => row.retiredCommitted === true)
        .map(([node_id]) => ({ node_id, status: "Retired" }));
      return { value: { nodes } as T, txId };
    }
    if (path.startsWith("/node/tx?")) return { value: { status: "Committed" } as T, txId };
    throw new Error(`FakeService: unexpected ${method} ${path}`);
  }

  async proposeWithTxId(actions: readonly Action[], _signer: MemberSigner) {
    this.calls.push(`propose ${actions.map((a) => a.name).join(",")}`);
    return { value: this.proposal("Open"), txId: `2.${++this.seqno}` };
  }

  async voteWithTxId(id: string, ballot: boolean, signer: MemberSigner) {
    this.calls.push(`vote ${id} ${ballot} ${signer.certPem}`);
    if (this.voteError !== undefined) throw this.voteError;
    const state = this.ballotOutcomes.shift() ?? "Open";
    if (state === "Accepted" && this.applies) {
      this.nodes.get(NEW)!.status = "Trusted";
      this.nodes.set(OLD, { status: "Retired", retiredCommitted: true });
    }
    return { value: this.proposal(state), txId: `2.${++this.seqno}` };
  }

  forNode(url: string): ReplaceConnection & { close(): void } {
    throw new Error(`FakeService: no rpc interface is published, yet asked for ${url}`);
  }

  private proposal(state: State): Proposal {
    return {
      proposalId: "p1",
      proposerId: "m0",
      proposalState: state,
      ballotCount: 0,
      ...(this.failure !== undefined && { failure: { reason: this.failure } }),
    };
  }
}

function members(count: number): Member[] {
  return Array.from({ length: count }, (_, i) => ({
    memberId: `m${i}`,
    signer: { certPem: `cert${i}`, keyPem: `key${i}` },
  }));
}

function service(): FakeService {
  const fake = new FakeService();
  fake.nodes.set(OLD, { status: "Trusted" });
  fake.nodes.set(NEW, { status: "Pending" });
  return fake;
}

async function replace(fake: FakeService, count = 3, timeoutMs = 2000) {
  const steps: string[] = [];
  const plan = { oldId: OLD, newId: NEW, members: members(count), timeoutMs };
  await replaceNode(fake, plan, { step: (l) => steps.push(l), progress: () => {} });
  return steps;
}

async function rejectsWith(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CliError, `not a CliError: ${String(err)}`);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

test("one proposal trusts the new node and removes the old; voting stops once Accepted", async () => {
  const fake = service();
  const steps = await replace(fake, 3);
  assert.deepEqual(
    fake.calls.filter((c) => !c.startsWith("GET")),
    [
      "propose transition_node_to_trusted,remove_node",
      "vote p1 true cert0",
      "vote p1 true cert1",
      `DELETE /node/network/nodes/${OLD}`,
    ],
  );
  assert.equal(fake.nodes.has(OLD), false);
  assert.deepEqual(
    steps.map((s) => s.split(":")[0]),
    ["checked", "proposed", "voted", "voted", "trusted", "retired", "deleted"],
  );
  assert.match(steps[1]!, /^proposed: p1 by member m0 \(tx 2\.11\)/);
  assert.match(steps[3]!, /now Accepted \(tx 2\.13\)$/);
  assert.equal(steps.at(-1), `deleted: node ${OLD} (tx 2.14, committed)`);
});

test("an unknown, retired or non-Pending node is refused before any proposal", async () => {
  const unknownOld = service();
  unknownOld.nodes.delete(OLD);
  await rejectsWith(
    replace(unknownOld),
    `unknown node id ${OLD} (--old): the service has no such node`,
  );
  const retired = service();
  retired.nodes.set(OLD, { status: "Retired" });
  await rejectsWith(replace(retired), `node ${OLD} (--old) is already Retired: nothing to replace`);
  const unknownNew = service();
  unknownNew.nodes.delete(NEW);
  await rejectsWith(
    replace(unknownNew),
    `unknown node id ${NEW} (--new): the service has no such node`,
  );
  const trusted = service();
  trusted.nodes.set(NEW, { status: "Trusted" });
  await rejectsWith(
    replace(trusted),
    new RegExp(`^node ${NEW} \\(--new\\) is Trusted, not Pending`),
  );
  for (const fake of [unknownOld, retired, unknownNew, trusted]) {
    assert.ok(!fake.calls.some((c) => c.startsWith("propose")), fake.calls.join("; "));
  }
});

test("a proposal that stays Open, fails, or cannot be voted on names the proposal", async () => {
  const tooFew = service();
  tooFew.ballotOutcomes = ["Open", "Open"];
  await rejectsWith(
    replace(tooFew, 2),
    "proposal p1 is Open after ballots from all 2 members given: not enough members",
  );
  const failed = service();
  failed.ballotOutcomes = ["Failed"];
  failed.failure = "node bbbb is retired";
  await rejectsWith(replace(failed), "proposal p1 is Failed: node bbbb is retired");
  const refused = service();
  // What the real client throws for a refused ballot (a bug's error would not be reworded).
  refused.voteError = new ClientError(
    { code: ClientErrorCode.Http, status: 403, ccfCode: "Forbidden" },
    "POST /gov/... failed: 403 Forbidden: member is not active",
  );
  await rejectsWith(replace(refused), /^member m0 could not vote on p1: .*403 Forbidden/);
});

test("a new node that never becomes Trusted times out with its last state", async () => {
  const fake = service();
  fake.applies = false;
  fake.ballotOutcomes = ["Accepted"];
  await rejectsWith(
    replace(fake, 3, 300),
    new RegExp(
      `^timed out after \\d+ s waiting for node ${NEW} to be Trusted ` +
        `\\(last: status Pending\\)$`,
    ),
  );
  assert.ok(!fake.calls.some((c) => c.startsWith("DELETE")), "nothing deleted");
});

/** Runs the CLI in this process; resolves to the CliError message it failed with. */
async function cliError(args: readonly string[]): Promise<string> {
  try {
    await (await buildProgram(args)).parseAsync(args as string[], { from: "user" });
  } catch (err: unknown) {
    if (err instanceof CliError) return err.message;
    throw err;
  }
  assert.fail("the command succeeded");
}

test("argument errors are one line each, before any connection", async () => {
  const { dir, cleanup } = tempDir("node-replace-");
  try {
    const base = ["node", "replace", "--workspace", dir, "--node", "https://127.0.0.1:1"];
    assert.equal(
      await cliError([...base, "--old", OLD, "--new", OLD]),
      `--old and --new are the same node ${OLD}: a node replaces another`,
    );
    assert.match(
      await cliError([...base, "--old", OLD, "--new", NEW, "--timeout", "soon"]),
      /^--timeout must be a number of seconds in \(0, 3600\], got soon$/,
    );
    assert.equal(
      await cliError([...base, "--old", OLD, "--new", NEW, "--member-cert", "c.pem"]),
      "--member-cert given 1 times but --member-key 0 times: give one key per certificate",
    );
    assert.match(
      await cliError([...base, "--old", OLD, "--new", NEW]),
      /^cannot list members in .*sandbox_common \(ENOENT\): give --member-cert\/--member-key$/,
    );
    const common = join(dir, "sandbox_common");
    mkdirSync(common);
    assert.match(
      await cliError([...base, "--old", OLD, "--new", NEW]),
      /^no memberN_cert\.pem in .*: give --member-cert\/--member-key$/,
    );
    writeFileSync(join(common, "member0_cert.pem"), "not a certificate");
    writeFileSync(join(common, "member0_privk.pem"), "not a key");
    assert.match(
      await cliError([...base, "--old", OLD, "--new", NEW]),
      /^--member-cert .*member0_cert\.pem is not a PEM certificate$/,
    );
  } finally {
    cleanup();
  }
});

test("workspace members are found in number order (member10 after member2)", async () => {
  const { dir, cleanup } = tempDir("node-replace-");
  try {
    const common = join(dir, "sandbox_common");
    mkdirSync(common);
    const certs: string[] = [];
    for (const n of [10, 2, 0]) {
      const { certPem, privateKeyPem } = await generateIdentity({ name: `m${n}`, now: new Date() });
      writeFileSync(join(common, `member${n}_cert.pem`), certPem);
      writeFileSync(join(common, `member${n}_privk.pem`), privateKeyPem);
      certs[n] = certPem;
    }
    writeFileSync(join(common, "user0_cert.pem"), certs[0]!);
    const loaded = loadMembers({ workspace: dir, memberCert: [], memberKey: [] });
    assert.deepEqual(
      loaded.map((m) => m.signer.certPem),
      [certs[0], certs[2], certs[10]],
    );
  } finally {
    cleanup();
  }
});

/** A port nobody listens on: bind, read the port, close. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

test("a node that does not answer is one line with the socket error", async () => {
  const { dir, cleanup } = tempDir("node-replace-");
  try {
    const common = join(dir, "sandbox_common");
    mkdirSync(common);
    const member = await generateIdentity({ name: "member0", now: new Date() });
    writeFileSync(join(common, "member0_cert.pem"), member.certPem);
    writeFileSync(join(common, "member0_privk.pem"), member.privateKeyPem);
    writeFileSync(join(common, "service_cert.pem"), member.certPem);
    const url = `https://127.0.0.1:${await closedPort()}`;
    const args = ["node", "replace", "--workspace", dir, "--node", url, "--old", OLD];
    assert.match(
      await cliError([...args, "--new", NEW]),
      new RegExp(`^GET /node/network/nodes/${OLD} failed: connect ECONNREFUSED`),
    );
  } finally {
    cleanup();
  }
});

test("`node replace` does not need the --config that `node` itself requires", () => {
  const run = runCli(["node", "replace", "--new", NEW]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /required option '--old <nodeId>' not specified/);
  assert.doesNotMatch(run.stderr, /--config/);
});
