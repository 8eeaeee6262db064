/**
 * End-to-end disaster recovery with real node processes (reliability-checklist.md G1, G4, G6;
 * ccf-compatibility.md §8.3). One 3-node service (recovery threshold raised to 2) takes private and
 * public records, a receipt, a snapshot and more records, then every node is stopped. From copies
 * of its ledger:
 *   1. a Recover node naming another service's certificate as the previous identity refuses to
 *      start (WrongPreviousIdentity);
 *   2. from the ledger only: the node is PartOfPublicNetwork, the service Recovering with
 *      recoveryCount 1; opening it with a wrong previous identity fails, with the right one it
 *      waits for shares; shares are refused before and after that; two shares reopen it; every
 *      record is back, private ones included, and new writes commit. A node that tried to join
 *      during the recovery was told to retry, joins the open service as Pending, is trusted by
 *      proposal and serves the old private records;                                  (G1)
 *   3. the receipt taken before the disaster verifies against the old service certificate; the
 *      recovered service's receipt of the same transaction verifies against the new one
 *      (service_endorsements);                                                        (G6)
 *   4. from the snapshot plus the ledger: records from before and after the snapshot are back;
 *                                                                                     (G1)
 *   5. from a ledger torn in the middle of its last signature, and from one cut right after an
 *      earlier signature: the service holds exactly the transactions up to the last whole
 *      signature.                                                                    (G4)
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ClientError } from "@consortia/client";
import { type GovClient } from "../../src/cli/gov-client.js";
import { submitMemberShare } from "../../src/cli/commands/recovery.js";
import { parseTxId } from "../../src/base/ids.js";
import { decodeEntry } from "../../src/ledger/entry-format.js";
import { listLedgerFiles, readLedger } from "../../src/ledger/io/ledger-reader.js";
import { findSignature } from "../../src/ledger/signature.js";
import { runCli } from "../helpers/cli.js";
import { asn1Now } from "../../src/cli/commands/node-replace.js";
import { makePki } from "../helpers/pki.js";
import { Network, waitFor, type NetNode } from "../helpers/network.js";

/** The recovery threshold the service is given before the disaster (the sandbox sets 1). */
const THRESHOLD = 2;

interface LogRecord {
  readonly id: number;
  readonly msg: string;
  readonly kind: "private" | "public";
  readonly seqno: number;
}

interface LedgerItem {
  readonly seqno: number;
  readonly file: string;
  readonly offset: number;
  readonly length: number;
  readonly isSignature: boolean;
}

/** Member `i` fetches, decrypts and submits its share (what `consortia recovery share` does). */
function submitShare(net: Network, gov: GovClient, i: number): Promise<string> {
  const common = join(net.workspace, "sandbox_common");
  const encryptionKey = readFileSync(join(common, `member${i}_enc_privk.pem`), "utf8");
  return submitMemberShare(gov, net.members[i]!, encryptionKey);
}

function isNotWaitingForShares(e: unknown): boolean {
  return (
    e instanceof ClientError &&
    e.type.status === 403 &&
    e.type.ccfCode === "ServiceNotWaitingForRecoveryShares"
  );
}

function ledgerItems(dir: string): LedgerItem[] {
  const items: LedgerItem[] = [];
  for (const item of readLedger(dir)) {
    assert.equal(item.kind, "entry", `${dir} ends cleanly`);
    if (item.kind !== "entry") break;
    const entry = decodeEntry(item.entry);
    items.push({
      seqno: item.seqno,
      file: item.file,
      offset: item.offset,
      length: item.entry.byteLength,
      isSignature: findSignature(entry.publicMaps) !== null,
    });
  }
  return items;
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function readRecord(net: Network, node: NetNode, record: LogRecord) {
  return net.get(node, `/app/log/${record.kind}?id=${record.id}`);
}

async function expectRecords(net: Network, node: NetNode, records: readonly LogRecord[]) {
  for (const record of records) {
    const reply = await readRecord(net, node, record);
    assert.equal(reply.status, 200, `${record.kind} record ${record.id} on node ${node.index}`);
    assert.deepEqual(JSON.parse(reply.body), { msg: record.msg });
  }
}

/** The members open a recovered service and submit THRESHOLD shares; waits until it is Open. */
async function openRecovered(net: Network, node: NetNode, previousPem: string): Promise<string[]> {
  const gov = net.gov(node);
  try {
    const proposal = await net.decide(gov, [
      {
        name: "transition_service_to_open",
        args: { previous_service_identity: previousPem, next_service_identity: node.ca },
      },
    ]);
    assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
    const messages: string[] = [];
    for (let i = 0; i < THRESHOLD; i++) messages.push(await submitShare(net, gov, i));
    await waitFor("the recovered service Open", 20_000, async () =>
      (await net.serviceInfo(node)).status === "Open" ? true : undefined,
    );
    return messages;
  } finally {
    gov.close();
  }
}

test("a stopped service is recovered from its ledger, with or without a snapshot", async (t) => {
  const net = await Network.start(3, { spareNodes: 8 });
  t.after(() => net.stop());
  const oldCertFile = join(net.workspace, "sandbox_common", "service_cert.pem");
  const oldCertPem = readFileSync(oldCertFile, "utf8");
  const records: LogRecord[] = [];
  const primary = await net.primary();
  const write = async (id: number, kind: "private" | "public" = "private") => {
    const msg = `${kind} record ${id}`;
    const reply = await net.call(primary, "POST", `/app/log/${kind}`, { id, msg });
    assert.equal(reply.status, 200, reply.body);
    const txId = String(reply.headers["x-ms-ccf-transaction-id"]);
    await net.waitCommitted(primary, txId);
    const record = { id, msg, kind, seqno: parseTxId(txId)!.seqno };
    records.push(record);
    return { record, txId };
  };
  const oldReceiptFile = join(net.workspace, "old_receipt.json");
  let receiptTxId = "";
  let snapshotName = "";
  const snapshotsOf = (node: NetNode) => join(net.dirOf(node.index), `${node.index}.snapshots`);
  const ledgerOf = (node: NetNode) => join(net.dirOf(node.index), `${node.index}.ledger`);
  /** Records written after the snapshot, the last ones before the disaster. */
  const late: LogRecord[] = [];

  await t.test("before the disaster: records, a receipt, a snapshot, then all stop", async () => {
    await net.pass(primary, [
      { name: "set_recovery_threshold", args: { recovery_threshold: THRESHOLD } },
    ]);
    await waitFor("shares reissued with the new threshold", 20_000, async () =>
      net.logOf(primary).includes(`(threshold ${THRESHOLD})`) ? true : undefined,
    );
    for (let id = 1; id <= 5; id++) await write(id);
    for (let id = 11; id <= 13; id++) await write(id, "public");
    receiptTxId = (await write(6)).txId;
    const receipt = await waitFor("a receipt", 20_000, async () => {
      const reply = await net.get(primary, `/app/receipt?transaction_id=${receiptTxId}`);
      return reply.status === 200 ? reply.body : undefined;
    });
    writeFileSync(oldReceiptFile, receipt);
    const verify = runCli([
      "receipt",
      "verify",
      "--receipt",
      oldReceiptFile,
      "--service-cert",
      oldCertFile,
    ]);
    assert.equal(verify.status, 0, `${verify.stdout}\n${verify.stderr}`);

    await net.pass(primary, [{ name: "trigger_snapshot", args: {} }]);
    let filler = 100;
    snapshotName = await waitFor("a committed snapshot", 20_000, async () => {
      await write(filler++);
      return readdirSync(snapshotsOf(primary)).find((f) => f.endsWith(".committed"));
    });
    let lastTxId = "";
    for (let id = 21; id <= 23; id++) {
      const written = await write(id);
      late.push(written.record);
      lastTxId = written.txId;
    }
    // Node 0's ledger is the one recovered: it must hold the signature over the last record.
    await net.waitCommitted(net.nodes[0]!, lastTxId);
    await net.terminateAll();
  });

  await t.test(
    "a Recover node naming another service as previous identity refuses to start",
    async () => {
      const other = await makePki();
      const otherCertFile = join(net.workspace, "other_service_cert.pem");
      writeFileSync(otherCertFile, other.serviceCertPem);
      const ledgerDir = join(net.workspace, "wrong.ledger");
      cpSync(ledgerOf(net.nodes[0]!), ledgerDir, { recursive: true });
      const recovering = net.spawnRecover({ ledgerDir, previousServiceCertFile: otherCertFile });
      const code = await exitOf(recovering.child);
      recovering.node.killed = true;
      const log = net.logOf(recovering.node);
      assert.equal(code, 1, log);
      assert.match(log, /node failed to start: .*not the previous service identity given/);
      t.diagnostic(log.trim().split("\n").at(-1)!);
    },
  );

  await t.test("from the ledger only: G1, a joiner waiting for the recovery, G6", async () => {
    const ledgerDir = join(net.workspace, "recover.ledger");
    cpSync(ledgerOf(net.nodes[0]!), ledgerDir, { recursive: true });
    // The operator's way (docs/operating.md): the config comes from `config init --recover`.
    const recovering = net.spawnRecover({
      ledgerDir,
      previousServiceCertFile: oldCertFile,
      viaConfigInit: true,
    });
    const node = await recovering.ready();
    // A joiner during the recovery is told to retry; it joins once the service is Open.
    const joiner = net.spawnJoiner(node, { serviceCertFile: recovering.serviceCertFile });
    joiner.ca = node.ca!;
    const state = JSON.parse((await net.get(node, "/node/state")).body) as { state: string };
    assert.equal(state.state, "PartOfPublicNetwork");
    const info = await net.serviceInfo(node);
    assert.equal(info.status, "Recovering");
    assert.equal(info.recoveryCount, 1);
    assert.notEqual(node.ca, oldCertPem, "a new service identity");

    const gov = net.gov(node);
    try {
      await assert.rejects(submitShare(net, gov, 0), isNotWaitingForShares);
      // The previous identity is checked the other way too: another service's is refused.
      const other = await makePki();
      const wrong = await net
        .decide(gov, [
          {
            name: "transition_service_to_open",
            args: {
              previous_service_identity: other.serviceCertPem,
              next_service_identity: node.ca,
            },
          },
        ])
        .catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      if (wrong instanceof Error) {
        t.diagnostic(`wrong previous identity: ${wrong.message}`);
        assert.match(wrong.message, /previous_service_identity/);
      } else {
        t.diagnostic(`wrong previous identity: ${wrong.proposalState}, ${wrong.failure?.reason}`);
        assert.equal(wrong.proposalState, "Failed", JSON.stringify(wrong));
        assert.match(wrong.failure?.reason ?? "", /previous_service_identity/);
      }
      assert.equal((await net.serviceInfo(node)).status, "Recovering");
      await waitFor("the joiner told to retry", 20_000, async () =>
        /answered 503 NodeCannotHandleRequest: The service is Recovering/.test(net.logOf(joiner))
          ? true
          : undefined,
      );

      const open = await net.decide(gov, [
        {
          name: "transition_service_to_open",
          args: { previous_service_identity: oldCertPem, next_service_identity: node.ca },
        },
      ]);
      assert.equal(open.proposalState, "Accepted", JSON.stringify(open));
      assert.equal((await net.serviceInfo(node)).status, "WaitingForRecoveryShares");
      const first = await submitShare(net, gov, 0);
      assert.equal(first, `1/${THRESHOLD} recovery shares successfully submitted.`);
      // Still waiting: no joiner admitted, private records not back yet.
      assert.equal((await net.serviceInfo(node)).status, "WaitingForRecoveryShares");
      const pending = await net.get(node, "/node/network/nodes?status=Pending");
      assert.deepEqual((JSON.parse(pending.body) as { nodes: unknown[] }).nodes, []);
      // The second member through the CLI a member would run.
      const cli = runCli([
        "recovery",
        "share",
        "--workspace",
        net.workspace,
        "--member",
        "member1",
        "--node",
        `https://127.0.0.1:${node.port}`,
        "--cacert",
        recovering.serviceCertFile,
      ]);
      assert.equal(cli.status, 0, cli.stderr);
      // It follows the private replay until the service is Open.
      const lines = cli.stdout.trim().split("\n");
      assert.equal(lines.at(-1), "service is Open: recovery complete", cli.stdout);
      const last = lines[0];
      assert.equal(
        last,
        `${THRESHOLD}/${THRESHOLD} recovery shares successfully submitted. ` +
          "End of recovery procedure initiated.",
      );
      await waitFor("the recovered service Open", 20_000, async () =>
        (await net.serviceInfo(node)).status === "Open" ? true : undefined,
      );
      await assert.rejects(submitShare(net, gov, 2), isNotWaitingForShares);
    } finally {
      gov.close();
    }
    assert.equal(
      (JSON.parse((await net.get(node, "/node/state")).body) as { state: string }).state,
      "PartOfNetwork",
    );
    await expectRecords(net, node, records);
    const reply = await net.call(node, "POST", "/app/log/private", { id: 31, msg: "after" });
    assert.equal(reply.status, 200, reply.body);
    await net.waitCommitted(node, String(reply.headers["x-ms-ccf-transaction-id"]));

    // G6: the old receipt against the old identity; the new one through the endorsements.
    const old = runCli([
      "receipt",
      "verify",
      "--receipt",
      oldReceiptFile,
      "--service-cert",
      oldCertFile,
    ]);
    assert.equal(old.status, 0, `old receipt, old certificate:\n${old.stdout}\n${old.stderr}`);
    const fresh = await waitFor("the old transaction's receipt", 20_000, async () => {
      const r = await net.get(node, `/app/receipt?transaction_id=${receiptTxId}`);
      return r.status === 200 ? r.body : undefined;
    });
    const freshFile = join(net.workspace, "recovered_receipt.json");
    writeFileSync(freshFile, fresh);
    const endorsements = (JSON.parse(fresh) as { service_endorsements?: unknown[] })
      .service_endorsements;
    t.diagnostic(`recovered receipt has ${endorsements?.length ?? 0} service_endorsements`);
    const verify = runCli([
      "receipt",
      "verify",
      "--receipt",
      freshFile,
      "--service-cert",
      recovering.serviceCertFile,
    ]);
    assert.equal(
      verify.status,
      0,
      `recovered receipt, new certificate:\n${verify.stdout}\n${verify.stderr}`,
    );

    // The joiner was refused while the service recovered, and joins it now.
    const pendingId = await waitFor("the joiner Pending", 30_000, async () => {
      const r = await net.get(node, "/node/network/nodes?status=Pending");
      return (JSON.parse(r.body) as { nodes: { node_id: string }[] }).nodes[0]?.node_id;
    });
    joiner.id = pendingId;
    await net.pass(node, [
      { name: "transition_node_to_trusted", args: { node_id: pendingId, valid_from: asn1Now() } },
    ]);
    await waitFor("the joiner serving old private records", 30_000, async () =>
      (await net.read(joiner, 31).catch(() => null))?.status === 200 ? true : undefined,
    );
    await expectRecords(net, joiner, records);
    net.kill(joiner);
    net.kill(node);
  });

  await t.test("from a snapshot plus the ledger (G1)", async () => {
    const dir = join(net.workspace, "from-snapshot");
    const snapshotsDir = join(dir, "snapshots");
    mkdirSync(snapshotsDir, { recursive: true });
    cpSync(join(snapshotsOf(primary), snapshotName), join(snapshotsDir, snapshotName));
    const ledgerDir = join(dir, "ledger");
    cpSync(ledgerOf(primary), ledgerDir, { recursive: true });
    const recovering = net.spawnRecover({
      ledgerDir,
      snapshotsDir,
      previousServiceCertFile: oldCertFile,
    });
    const node = await recovering.ready();
    assert.match(net.logOf(node), /recovering from snapshot .*snapshot_\d+_\d+\.committed/);
    const messages = await openRecovered(net, node, oldCertPem);
    assert.match(messages.at(-1)!, /End of recovery procedure initiated/);
    await expectRecords(net, node, records);
    net.kill(node);
  });

  await t.test("from chunks in read-only directories, damaged copies ignored (F4)", async () => {
    // ledger.read_only_directories: the committed chunks live in ro2; ro1, searched first,
    // holds a zero-filled copy of each and a half-copied one of the first.
    const dir = join(net.workspace, "read-only");
    const [ledgerDir, ro1, ro2] = ["ledger", "ro1", "ro2"].map((d) => join(dir, d));
    cpSync(ledgerOf(net.nodes[0]!), ledgerDir!, { recursive: true });
    mkdirSync(ro1!, { recursive: true });
    mkdirSync(ro2!, { recursive: true });
    const committed = listLedgerFiles(ledgerDir!).filter((f) => f.committed);
    assert.ok(committed.length > 0, "node 0 has committed chunks");
    for (const [i, file] of committed.entries()) {
      const bytes = readFileSync(file.path);
      renameSync(file.path, join(ro2!, file.name));
      const damaged = i === 0 ? bytes.subarray(0, bytes.length >> 1) : Buffer.alloc(bytes.length);
      writeFileSync(join(ro1!, file.name), damaged);
    }
    const recovering = net.spawnRecover({
      ledgerDir: ledgerDir!,
      previousServiceCertFile: oldCertFile,
      readOnlyLedgerDirs: [ro1!, ro2!],
    });
    const node = await recovering.ready();
    const log = net.logOf(node);
    for (const file of committed) {
      assert.ok(log.includes(`ignoring ${join(ro1!, file.name)}`), `${file.name} in ro1:\n${log}`);
    }
    await openRecovered(net, node, oldCertPem);
    await expectRecords(net, node, records);
    net.kill(node);
  });

  // G4: node 0's ledger, cut (a) in the middle of the signature after the last record and (b)
  // right after the signature after the first late record. Both cuts are in its last file.
  const items = ledgerItems(ledgerOf(net.nodes[0]!));
  const lastFile = listLedgerFiles(ledgerOf(net.nodes[0]!)).at(-1)!;
  const signatureAfter = (seqno: number) => items.find((i) => i.isSignature && i.seqno > seqno)!;
  const signedBefore = (seqno: number) =>
    items.filter((i) => i.isSignature && i.seqno < seqno).at(-1)!;
  const cases = [
    {
      name: "torn in the middle of the last record's signature",
      cut: (() => {
        const sig = signatureAfter(late.at(-1)!.seqno);
        return { item: sig, at: sig.offset + Math.floor(sig.length / 2) };
      })(),
      // Without its signature the last record is dropped; the one before it is signed.
      lastSigned: signedBefore(late.at(-1)!.seqno).seqno,
      torn: true,
      kept: late.slice(0, -1),
      lost: late.slice(-1),
    },
    {
      name: "cut right after a signature",
      cut: (() => {
        const sig = signatureAfter(late[0]!.seqno);
        return { item: sig, at: sig.offset + sig.length };
      })(),
      lastSigned: signatureAfter(late[0]!.seqno).seqno,
      torn: false,
      kept: late.slice(0, 1),
      lost: late.slice(1),
    },
  ];
  for (const c of cases) {
    await t.test(`from a ledger ${c.name} (G4)`, async () => {
      assert.equal(c.cut.item.file, lastFile.name, "the cut is in the last, unfinished file");
      assert.equal(lastFile.lastSeqno, null);
      const ledgerDir = join(net.workspace, `cut-${c.cut.at}.ledger`);
      cpSync(ledgerOf(net.nodes[0]!), ledgerDir, { recursive: true });
      truncateSync(join(ledgerDir, lastFile.name), c.cut.at);
      const recovering = net.spawnRecover({ ledgerDir, previousServiceCertFile: oldCertFile });
      const node = await recovering.ready();
      // The recovered service's first transaction follows the last signature kept.
      const info = await net.serviceInfo(node);
      assert.equal(
        parseTxId(info.creationTransactionId)?.seqno,
        c.lastSigned + 1,
        info.creationTransactionId,
      );
      const log = net.logOf(node);
      assert.match(log, new RegExp(`public replay: \\d+ transactions to seqno ${c.lastSigned} `));
      if (c.torn) assert.match(log, /ignoring a torn last entry/);
      else assert.doesNotMatch(log, /torn last entry|dropping \d+ entries/);
      await openRecovered(net, node, oldCertPem);
      await expectRecords(net, node, [...records.filter((r) => !late.includes(r)), ...c.kept]);
      for (const record of c.lost) {
        const reply = await readRecord(net, node, record);
        assert.equal(reply.status, 404, `record ${record.id} (seqno ${record.seqno}) is gone`);
      }
      net.kill(node);
    });
  }
});
