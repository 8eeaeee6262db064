// CCF's own snapshot reader (ccf.ledger.Snapshot from CCF 6.0.17's Python package, the oracle of
// ccf-compatibility.md §12) reads snapshots written by our encoders (ccf-compatibility.md §6.6):
// the seqno, the hash at snapshot, the view history and every public map with every key and
// value, exactly as written, and the size of the encrypted private domain. Snapshots come from
// the node thread's encoder and from the worker's packed path, with empty maps, keys and values
// of every length up to past the 8-byte padding, and binary keys. Skipped, saying why, when
// python3, the oracle or its `cryptography` dependency is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { toHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno } from "../../../src/base/ids.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { Store } from "../../../src/kv/store.js";
import { isPublicMap } from "../../../src/kv/write-set.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../../src/kv/service-tables.js";
import { LedgerSecrets } from "../../../src/ledger/ledger-secrets.js";
import {
  encodePackedSnapshot,
  encodeSnapshot,
  packSnapshotState,
  snapshotFileName,
} from "../../../src/ledger/snapshot.js";
import { decodeSnapshotEntry, type SnapshotHeader } from "../../../src/ledger/snapshot-format.js";
import { ccfOracleProblem, readSnapshotsWithCcf } from "../../helpers/ccf-snapshot-oracle.js";
import { tempDir } from "../../helpers/pki.js";

const secrets = new LedgerSecrets(new Uint8Array(32).fill(5));

/** A store with public and private maps, an emptied map, and keys and values of many sizes. */
function variedStore(): Store {
  const store = new Store();
  const write = (f: (tx: ReturnType<Store["begin"]>) => void) => {
    const tx = store.begin();
    f(tx);
    assert.equal(store.commit(tx).kind, "committed");
  };
  write((tx) => {
    for (let n = 0; n <= 17; n++) {
      const key = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
      tx.rw("public:sizes").set(key, new Uint8Array(17 - n).fill(n));
      tx.rw("sizes").set(key, new Uint8Array(n).fill(0xaa));
    }
    tx.rw("public:emptied").set(utf8("gone"), utf8("soon"));
    tx.rw(SERVICE_TABLES.tree).set(SINGLETON_KEY_BYTES, new Uint8Array(40).fill(9));
  });
  for (let i = 0; i < 30; i++) {
    write((tx) => {
      tx.rw("public:records").set(utf8(`record ${i % 7}`), utf8(`value ${i}`));
      tx.rw("records").set(utf8(`secret ${i}`), utf8(`hidden ${i}`));
    });
  }
  write((tx) => tx.rw("public:emptied").delete(utf8("gone")));
  return store;
}

test("CCF's snapshot reader reads every public map of our snapshots, as written", (t) => {
  const problem = ccfOracleProblem();
  if (problem !== null) {
    t.skip(`CCF's Python oracle is not available: ${problem}`);
    return;
  }
  const dir = tempDir("consortia-snapshot-oracle-");
  t.after(() => dir.cleanup());
  const store = variedStore();
  const maps = store.snapshotMaps();
  const header: SnapshotHeader = {
    seqno: store.seqno,
    hashAtSnapshot: sha256("the leaf at the snapshot"),
    viewHistory: [1, 1, 4, 4, 20].map((n) => n as Seqno),
  };
  const onThread = encodeSnapshot({ ...header, maps }, secrets);
  const packed = packSnapshotState(
    store.mapNames().map((name) => ({
      name,
      seqno: store.lastWriteSeqno(name),
      keys: store.liveUnsorted(name),
    })),
  );
  const offThread = encodePackedSnapshot(packed, header, secrets);
  assert.deepEqual(offThread, onThread, "both encoders give the same bytes");
  // A name without `.committed`: CCF's reader checks an appended receipt only on committed files.
  const paths = [onThread, offThread].map((bytes, i) => {
    const name = snapshotFileName({
      seqno: header.seqno,
      evidenceSeqno: (header.seqno + 1 + i) as Seqno,
      committed: false,
    });
    writeFileSync(join(dir.dir, name), bytes);
    return join(dir.dir, name);
  });
  const outcome = readSnapshotsWithCcf(paths);
  assert.equal(outcome.kind, "read");
  const expectedTables = Object.fromEntries(
    maps
      .filter((m) => isPublicMap(m.name))
      .map((m) => [m.name, Object.fromEntries(m.keys.map((k) => [toHex(k.key), toHex(k.value)]))]),
  );
  assert.ok("public:emptied" in expectedTables, "the emptied map is in the snapshot");
  const privateBytes = decodeSnapshotEntry(onThread).frame.privateCiphertext.byteLength;
  for (const reading of outcome.kind === "read" ? outcome.readings : []) {
    assert.equal(reading.seqno, header.seqno);
    assert.equal(reading.txid, `0.${header.seqno}`, "CCF's snapshots carry view 0 in the IV");
    assert.equal(reading.hashAtSnapshot, toHex(header.hashAtSnapshot));
    assert.deepEqual(reading.viewHistory, header.viewHistory);
    assert.deepEqual(reading.tables, expectedTables);
    assert.equal(reading.privateDomainBytes, privateBytes);
    assert.ok(privateBytes > 0, "the private maps are in the private domain");
  }
});
