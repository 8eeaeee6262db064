// A snapshot that does not fit its disk (SECURITY.md, "Disk faults"): the Snapshotter on a real
// standalone pipeline writes into a 16 KiB tmpfs the test mounts (root; skipped with a message
// where mounting is impossible). Oracles: the snapshot directory's files (no partial file is
// left, nothing is `.committed`), the log, the pipeline still committing, and a snapshot that
// is written and committed once the tmpfs has room.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { utf8 } from "../../../../src/base/bytes.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { parseSnapshotFileName } from "../../../../src/ledger/snapshot.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { standaloneSnapshotter } from "../../../helpers/snapshot-fixture.js";

const VALUE_BYTES = 8 * 1024;

test("a snapshot that fills its disk is abandoned, leaves no file, and the node goes on", async (t: TestContext) => {
  const snapDir = mkdtempSync(join(tmpdir(), "consortia-snap-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", snapDir], { stdio: "pipe" });
  } catch (e) {
    rmSync(snapDir, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here (${String(e)}): this test needs root`);
    return;
  }
  const identities = await createStartIdentities({ now: new Date() });
  const logs: string[] = [];
  const { pipeline, snapshotter, ledgerDir } = standaloneSnapshotter({
    snapshotDir: snapDir,
    identities,
    secrets: new LedgerSecrets(new Uint8Array(32).fill(5)),
    txInterval: 4,
    log: (line) => logs.push(line),
  });
  const write = (i: number) => {
    const value = utf8(`${i}`.padEnd(VALUE_BYTES, "x"));
    const outcome = pipeline.execute((tx) => tx.rw("public:records").set(utf8(`k${i}`), value));
    assert.equal(outcome.kind, "committed", `write ${i}`);
  };
  const turn = () => new Promise((r) => setImmediate(r));
  try {
    // Four 8 KiB values, then the signature at 5: a snapshot of 32 KiB and more is due.
    for (let i = 0; i < 4; i++) write(i);
    await turn(); // the evidence transaction, then the file
    const abandoned = logs.filter((line) => line.startsWith("snapshot abandoned"));
    assert.equal(abandoned.length, 1, logs.join("\n"));
    assert.match(abandoned[0]!, /failed: ENOSPC \(no space left on device\)/);
    assert.match(abandoned[0]!, /was deleted/);
    assert.deepEqual(readdirSync(snapDir), [], "no partial snapshot file is left");
    // The node goes on: writes commit.
    const before = pipeline.commitTxId.seqno;
    for (let i = 4; i < 8; i++) write(i);
    assert.ok(pipeline.commitTxId.seqno > before);
    // With room, the next snapshot is written and, once its evidence is signed, committed.
    execFileSync("mount", ["-o", "remount,size=4m", snapDir], { stdio: "pipe" });
    for (let i = 8; i < 12; i++) write(i);
    await turn();
    for (let i = 12; i < 16; i++) write(i);
    snapshotter.onCommit(pipeline.commitTxId.seqno);
    const names = readdirSync(snapDir).map((f) => parseSnapshotFileName(f));
    assert.ok(
      names.some((name) => name?.committed === true),
      `a committed snapshot once there is room: ${readdirSync(snapDir).join()}`,
    );
  } finally {
    await snapshotter.close();
    await pipeline.close();
    ledgerDir.cleanup();
    execFileSync("umount", ["-l", snapDir], { stdio: "pipe" });
    rmSync(snapDir, { recursive: true, force: true });
  }
});
