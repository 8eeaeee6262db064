/**
 * Disaster recovery under faults, with real node processes (reliability-checklist.md G5, G3, G2).
 * One 3-node service gets recovery threshold 2, private records, a ledger rekey, more records, a
 * fourth member with an encryption key (who acks, so the shares are reissued to four members) and a
 * last record; then every node is stopped. Its ledger (node 0's) is the ORIGINAL one every scenario
 * copies:
 *   G5: recover it (shares of the new member and member 0); every record from before and after
 *       the rekey is back. Then rekey the recovered service, write, stop it and recover it again
 *       (recoveryCount 2): everything is back, and a receipt of a first-service transaction
 *       fetched from the twice-recovered service verifies against its certificate through its
 *       service_endorsements (and not without them).
 *   G3: recover, open, submit one of two shares, SIGKILL the recovering node; recover again from
 *       a fresh copy of the original ledger and complete: everything is back.
 *   G2: a Recover node gets to WaitingForRecoveryShares (having forced a ledger chunk, so its
 *       later entries are in files of their own) and is killed; another Recover node on that
 *       same ledger directory, naming the original service, sets the aborted attempt's entries
 *       aside (its files after the recovery point become `.ignored`) and completes the recovery
 *       with recoveryCount 1 and every original record.
 */
import assert from "node:assert/strict";
import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Action, GovClient, MemberSigner, Proposal } from "../../src/cli/gov-client.js";
import { submitMemberShare } from "../../src/cli/commands/recovery.js";
import { parseTxId } from "../../src/base/ids.js";
import { decodeEntry } from "../../src/ledger/entry-format.js";
import { listLedgerFiles, readLedger } from "../../src/ledger/io/ledger-reader.js";
import { findSignature } from "../../src/ledger/signature.js";
import { runCli } from "../helpers/cli.js";
import { Network, sleep, waitFor, type NetNode } from "../helpers/network.js";

const THRESHOLD = 2;

interface Member {
  readonly signer: MemberSigner;
  readonly encryptionKeyPem: string;
}

interface LogRecord {
  readonly id: number;
  readonly msg: string;
  readonly txId: string;
}

/** The seqnos of the signatures in `dir` (stops at a torn tail: a live node may be writing). */
function signatureSeqnos(dir: string): number[] {
  const seqnos: number[] = [];
  for (const item of readLedger(dir)) {
    if (item.kind !== "entry") break;
    if (findSignature(decodeEntry(item.entry).publicMaps) !== null) seqnos.push(item.seqno);
  }
  return seqnos;
}

test("recoveries interleaved with rekeys and membership changes, and interrupted", async (t) => {
  const net = await Network.start(3, { spareNodes: 8 });
  t.after(() => net.stop());
  const common = join(net.workspace, "sandbox_common");
  const originalCertFile = join(common, "service_cert.pem");
  const originalCertPem = readFileSync(originalCertFile, "utf8");
  const members: Member[] = net.members.map((signer, i) => ({
    signer,
    encryptionKeyPem: readFileSync(join(common, `member${i}_enc_privk.pem`), "utf8"),
  }));
  const ledgerOf = (node: NetNode) => join(net.dirOf(node.index), `${node.index}.ledger`);
  /** A copy of node 0's ledger once the service has stopped. */
  const original = join(net.workspace, "original.ledger");
  const copyOriginal = (name: string) => {
    const dir = join(net.workspace, name);
    cpSync(original, dir, { recursive: true });
    return dir;
  };

  /** member0 proposes; active members vote in turn until the proposal is decided. */
  const decide = async (gov: GovClient, actions: Action[]): Promise<Proposal> => {
    let proposal = await gov.propose(actions, members[0]!.signer);
    for (const member of members) {
      if (proposal.proposalState !== "Open") break;
      proposal = await gov.vote(proposal.proposalId, true, member.signer);
    }
    return proposal;
  };
  const pass = async (node: NetNode, actions: Action[]) => {
    const gov = net.gov(node);
    try {
      const proposal = await decide(gov, actions);
      assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
    } finally {
      gov.close();
    }
  };
  /**
   * trigger_ledger_rekey until it is Accepted: right after an election or a recovery the primary
   * may not hold the current recovery key yet, refuses the rekey and reshares (by design).
   */
  const rekey = async (node: NetNode) => {
    const gov = net.gov(node);
    try {
      await waitFor("an accepted trigger_ledger_rekey", 30_000, async () => {
        const proposal = await decide(gov, [{ name: "trigger_ledger_rekey", args: {} }]);
        if (proposal.proposalState === "Accepted") return true;
        assert.match(
          proposal.failure?.reason ?? "",
          /does not hold the current recovery key yet/,
          JSON.stringify(proposal),
        );
        t.diagnostic(`rekey refused, retrying: ${proposal.failure?.reason}`);
        await sleep(300);
        return undefined;
      });
    } finally {
      gov.close();
    }
  };

  const records: LogRecord[] = [];
  const write = async (node: NetNode, id: number): Promise<LogRecord> => {
    const msg = `private record ${id}`;
    const txId = await net.write(node, id, msg);
    await net.waitCommitted(node, txId);
    const record = { id, msg, txId };
    records.push(record);
    return record;
  };
  const expectRecords = async (node: NetNode, expected: readonly LogRecord[]) => {
    for (const record of expected) {
      const reply = await net.read(node, record.id);
      assert.equal(reply.status, 200, `record ${record.id} (${record.txId}) on node ${node.index}`);
      assert.deepEqual(JSON.parse(reply.body), { msg: record.msg });
    }
  };

  /** A Recover node on `ledgerDir`, answering, in state Recovering with `recoveryCount`. */
  const startRecovery = async (
    ledgerDir: string,
    previousCertFile: string,
    recoveryCount: number,
  ) => {
    const recovering = net.spawnRecover({ ledgerDir, previousServiceCertFile: previousCertFile });
    const node = await recovering.ready();
    const info = await net.serviceInfo(node);
    assert.equal(info.status, "Recovering");
    assert.equal(info.recoveryCount, recoveryCount);
    return { node, serviceCertFile: recovering.serviceCertFile };
  };
  const openForShares = async (node: NetNode, previousCertPem: string) => {
    await pass(node, [
      {
        name: "transition_service_to_open",
        args: { previous_service_identity: previousCertPem, next_service_identity: node.ca },
      },
    ]);
    assert.equal((await net.serviceInfo(node)).status, "WaitingForRecoveryShares");
  };
  const submitShares = async (node: NetNode, who: readonly Member[]): Promise<string[]> => {
    const gov = net.gov(node);
    try {
      const messages: string[] = [];
      for (const m of who) {
        messages.push(await submitMemberShare(gov, m.signer, m.encryptionKeyPem));
      }
      return messages;
    } finally {
      gov.close();
    }
  };
  /** Opens `node`'s service with the shares of `who` (THRESHOLD of them); waits until Open. */
  const completeRecovery = async (node: NetNode, previousCertPem: string, who: Member[]) => {
    await openForShares(node, previousCertPem);
    const messages = await submitShares(node, who);
    assert.equal(messages[0], `1/${THRESHOLD} recovery shares successfully submitted.`);
    assert.match(messages.at(-1)!, /End of recovery procedure initiated/);
    await waitFor(`node ${node.index}'s recovered service Open`, 20_000, async () =>
      (await net.serviceInfo(node)).status === "Open" ? true : undefined,
    );
  };

  const beforeRekey: LogRecord[] = [];
  const afterRekey: LogRecord[] = [];
  let member3: Member | undefined;

  await t.test("before the disaster: rekey, records, a new member, then all stop", async () => {
    const primary = await net.primary();
    await pass(primary, [
      { name: "set_recovery_threshold", args: { recovery_threshold: THRESHOLD } },
    ]);
    await waitFor("shares reissued with the new threshold", 20_000, async () =>
      net.logOf(primary).includes(`(threshold ${THRESHOLD})`) ? true : undefined,
    );
    for (let id = 1; id <= 3; id++) beforeRekey.push(await write(primary, id));
    await rekey(primary);
    for (let id = 4; id <= 6; id++) afterRekey.push(await write(primary, id));

    // A fourth member with an encryption key; once it acks, the shares go to four members.
    const keys = join(net.workspace, "member3");
    const gen = runCli(["keygen", "--name", "member3", "--gen-enc-key", "--out", keys]);
    assert.equal(gen.status, 0, gen.stderr);
    const newMember: Member = {
      signer: {
        certPem: readFileSync(join(keys, "member3_cert.pem"), "utf8"),
        keyPem: readFileSync(join(keys, "member3_privk.pem"), "utf8"),
      },
      encryptionKeyPem: readFileSync(join(keys, "member3_enc_privk.pem"), "utf8"),
    };
    await pass(primary, [
      {
        name: "set_member",
        args: {
          cert: newMember.signer.certPem,
          encryption_pub_key: readFileSync(join(keys, "member3_enc_pubk.pem"), "utf8"),
        },
      },
    ]);
    const gov = net.gov(primary);
    try {
      await gov.ackStateDigest(newMember.signer);
    } finally {
      gov.close();
    }
    await waitFor("shares reissued to four members", 20_000, async () =>
      /recovery shares issued to 4 members \(threshold 2\)/.test(net.logOf(primary))
        ? true
        : undefined,
    );
    members.push(newMember);
    member3 = newMember;
    const last = await write(primary, 7);
    afterRekey.push(last);
    await net.waitCommitted(net.nodes[0]!, last.txId);
    await net.terminateAll();
    cpSync(ledgerOf(net.nodes[0]!), original, { recursive: true });
  });

  await t.test("G5: recovered twice across rekeys; an old receipt verifies", async () => {
    assert.ok(member3 !== undefined);
    // First recovery, with the new member's share: records sealed before and after the rekey.
    const firstLedger = copyOriginal("g5-first.ledger");
    const first = await startRecovery(firstLedger, originalCertFile, 1);
    await completeRecovery(first.node, originalCertPem, [member3, members[0]!]);
    await expectRecords(first.node, [...beforeRekey, ...afterRekey]);

    // The recovered service rekeys again, takes a record, and is stopped in turn.
    await rekey(first.node);
    await write(first.node, 8);
    await net.terminateAll();

    const firstCertPem = readFileSync(first.serviceCertFile, "utf8");
    const secondLedger = join(net.workspace, "g5-second.ledger");
    cpSync(firstLedger, secondLedger, { recursive: true });
    const second = await startRecovery(secondLedger, first.serviceCertFile, 2);
    await completeRecovery(second.node, firstCertPem, [members[1]!, member3]);
    await expectRecords(second.node, records);

    // A first-service transaction's receipt, from the twice-recovered service.
    const txId = beforeRekey[0]!.txId;
    const body = await waitFor("a receipt of a first-service transaction", 20_000, async () => {
      const reply = await net.get(second.node, `/app/receipt?transaction_id=${txId}`);
      return reply.status === 200 ? reply.body : undefined;
    });
    const receipt = JSON.parse(body) as { service_endorsements?: string[] };
    t.diagnostic(`receipt has ${receipt.service_endorsements?.length ?? 0} service_endorsements`);
    const receiptFile = join(net.workspace, "twice-recovered-receipt.json");
    writeFileSync(receiptFile, body);
    const verify = (file: string) =>
      runCli(["receipt", "verify", "--receipt", file, "--service-cert", second.serviceCertFile]);
    const good = verify(receiptFile);
    assert.equal(good.status, 0, `receipt against the newest cert:\n${good.stdout}${good.stderr}`);
    // The endorsements are what make it verify: without them the node cert does not chain.
    const bareFile = join(net.workspace, "bare-receipt.json");
    writeFileSync(bareFile, JSON.stringify({ ...receipt, service_endorsements: undefined }));
    const bare = verify(bareFile);
    assert.equal(bare.status, 1, `without endorsements:\n${bare.stdout}${bare.stderr}`);
    assert.match(bare.stderr, /not issued by the service certificate/);
    net.kill(second.node);
  });

  await t.test("G3: the recovering node is killed between two shares", async () => {
    const killed = await startRecovery(copyOriginal("g3-killed.ledger"), originalCertFile, 1);
    await openForShares(killed.node, originalCertPem);
    const [message] = await submitShares(killed.node, [members[0]!]);
    assert.equal(message, `1/${THRESHOLD} recovery shares successfully submitted.`);
    net.kill(killed.node);
    await waitFor("the killed node gone", 10_000, async () =>
      (await net.get(killed.node, "/node/state").catch(() => null)) === null ? true : undefined,
    );

    const again = await startRecovery(copyOriginal("g3-again.ledger"), originalCertFile, 1);
    await completeRecovery(again.node, originalCertPem, [members[2]!, members[0]!]);
    await expectRecords(again.node, [...beforeRekey, ...afterRekey]);
    const after = await net.write(again.node, 31, "after G3");
    await net.waitCommitted(again.node, after);
    net.kill(again.node);
  });

  await t.test("G2: an aborted recovery's entries are set aside by the next one", async () => {
    const ledgerDir = copyOriginal("g2.ledger");
    const recoveryPoint = Math.max(...signatureSeqnos(original));
    const originalFiles = listLedgerFiles(original).map((f) => f.name);

    const aborted = await startRecovery(ledgerDir, originalCertFile, 1);
    // A chunk boundary, so the aborted attempt's later entries are in files of their own.
    await pass(aborted.node, [{ name: "trigger_ledger_chunk", args: {} }]);
    await openForShares(aborted.node, originalCertPem);
    const orphanFiles = await waitFor(
      "a signed file wholly after the recovery point",
      20_000,
      () => {
        const after = listLedgerFiles(ledgerDir).filter((f) => f.firstSeqno > recoveryPoint);
        const signed = signatureSeqnos(ledgerDir).some(
          (s) => s >= (after[0]?.firstSeqno ?? Infinity),
        );
        return Promise.resolve(signed ? after.map((f) => f.name) : undefined);
      },
    );
    net.kill(aborted.node);
    t.diagnostic(`aborted attempt's files: ${orphanFiles.join(", ")}`);

    const next = await startRecovery(ledgerDir, originalCertFile, 1);
    const log = net.logOf(next.node);
    assert.match(
      log,
      new RegExp(`setting aside entries ${recoveryPoint + 1}\\.\\.\\d+: .*an aborted recovery`),
    );
    assert.match(log, new RegExp(`public replay: \\d+ transactions to seqno ${recoveryPoint} `));
    // The new service starts right after the recovery point, not after the orphaned entries.
    const created = (await net.serviceInfo(next.node)).creationTransactionId;
    assert.equal(parseTxId(created)?.seqno, recoveryPoint + 1, created);
    const files = readdirSync(ledgerDir);
    for (const name of orphanFiles) {
      assert.ok(files.includes(`${name}.ignored`), `${name} set aside: ${files.join(", ")}`);
      assert.match(log, new RegExp(`${name}: set aside as ${name}\\.ignored`));
    }
    // The original files are kept (the last one truncated at the recovery point, extended).
    for (const name of originalFiles) {
      const base = name.replace(/\.committed$/, "");
      const kept = new RegExp(`^${base}(-\\d+)?(\\.committed)?$`);
      assert.ok(
        files.some((f) => kept.test(f)),
        `${name} kept: ${files.join(", ")}`,
      );
    }
    await completeRecovery(next.node, originalCertPem, [members[1]!, members[2]!]);
    await expectRecords(next.node, [...beforeRekey, ...afterRekey]);
    const after = await net.write(next.node, 41, "after G2");
    await net.waitCommitted(next.node, after);
    net.kill(next.node);
  });
});
