// F6 for snapshots (reliability-checklist.md): single bit flips in a
// committed snapshot file built by a real Snapshotter on a standalone pipeline, sampled over
// every region (entry header, GCM tag and IV, public domain and snapshot header, the Merkle tree
// map, private ciphertext, the appended receipt). A node choosing a snapshot to start from runs two checks
// before it trusts one (usable-snapshots.ts usableCommittedSnapshots: framing, seqno and receipt;
// then node-host.ts: the first candidate that decrypts with the ledger secrets). Each flipped
// file must be refused by one of them with a logged reason, and the older good snapshot beside
// it must still be chosen. The digest check against the evidence transaction comes only later,
// during replay, so a flip both checks miss would be used to start the node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { utf8 } from "../../../../src/base/bytes.js";
import { txId } from "../../../../src/base/ids.js";
import { ENTRY_HEADER_SIZE_BYTES } from "../../../../src/ledger/entry-header.js";
import { encodeEntry } from "../../../../src/ledger/entry-format.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import {
  decodeSnapshot,
  parseSnapshotFileName,
  splitSnapshotFile,
} from "../../../../src/ledger/snapshot.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { usableCommittedSnapshots } from "../../../../src/node/snapshots/usable-snapshots.js";
import { tempDir } from "../../../helpers/pki.js";
import { buildSnapshots } from "../../../helpers/snapshot-fixture.js";

const identities = await createStartIdentities({ now: new Date() });
const secrets = new LedgerSecrets(new Uint8Array(32).fill(7));

const snapshots = tempDir("consortia-snapfault-");
await buildSnapshots(snapshots.dir, identities, secrets);
test.after(() => snapshots.cleanup());

const names = readdirSync(snapshots.dir)
  .filter((name) => parseSnapshotFileName(name)?.committed === true)
  .sort((a, b) => parseSnapshotFileName(a)!.seqno - parseSnapshotFileName(b)!.seqno);
const [older, newest] = names.slice(-2).map((name) => join(snapshots.dir, name));

/** The choice a joining node makes: its startup checks, then the first that decrypts. */
function choose(): { used: string | null; log: string[] } {
  const log: string[] = [];
  const candidates = usableCommittedSnapshots([snapshots.dir], identities.serviceCertPem, (l) =>
    log.push(l),
  );
  for (const candidate of candidates) {
    try {
      decodeSnapshot(candidate.bytes, secrets);
      return { used: candidate.path, log };
    } catch (e) {
      log.push(`snapshots: ignoring ${candidate.path}: ${String(e)}`);
    }
  }
  return { used: null, log };
}

interface Flip {
  readonly at: number;
  readonly bit: number;
  readonly region: string;
}

const GCM_HEADER_END = ENTRY_HEADER_SIZE_BYTES + 16 + 12;
const PUBLIC_DOMAIN_OFFSET = GCM_HEADER_END + 8;

/** Offset of `marker` (ASCII) in `bytes` from `from`; the marker must be there. */
function find(bytes: Uint8Array, marker: string, from = 0): number {
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(marker, from);
  assert.ok(at >= 0, `${marker} not found`);
  return at;
}

/** Every bit of the entry header, then a spread of bits over each region of the file. */
function sampleFlips(bytes: Uint8Array): Flip[] {
  const split = splitSnapshotFile(bytes)!;
  const entryEnd = split.entry.byteLength;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const publicEnd = PUBLIC_DOMAIN_OFFSET + Number(view.getBigUint64(GCM_HEADER_END, true));
  const flips: Flip[] = [];
  for (let at = 0; at < ENTRY_HEADER_SIZE_BYTES; at++) {
    for (let bit = 0; bit < 8; bit++) flips.push({ at, bit, region: `entry header byte ${at}` });
  }
  const spread = (region: string, from: number, to: number, count: number) => {
    assert.ok(from < to, region);
    for (let k = 0; k < count; k++) {
      const at = from + Math.floor(((to - from) * k) / count);
      flips.push({ at, bit: (at * 5 + k) % 8, region });
    }
  };
  spread("GCM tag", ENTRY_HEADER_SIZE_BYTES, ENTRY_HEADER_SIZE_BYTES + 16, 16);
  spread("GCM IV", ENTRY_HEADER_SIZE_BYTES + 16, GCM_HEADER_END, 12);
  spread("public domain size", GCM_HEADER_END, PUBLIC_DOMAIN_OFFSET, 8);
  spread("public domain header", PUBLIC_DOMAIN_OFFSET, PUBLIC_DOMAIN_OFFSET + 17, 17);
  // The hash at snapshot and a view history of two views: u64 32, 32 bytes, u64 16, 2 x u64.
  spread("snapshot header", PUBLIC_DOMAIN_OFFSET + 17, PUBLIC_DOMAIN_OFFSET + 81, 32);
  const value = find(bytes, "public value 7");
  spread("a public value", value, value + 14, 14);
  const tree = find(bytes, "public:ccf.internal.tree");
  spread("the Merkle tree map", tree, tree + 200, 20);
  spread("public domain", PUBLIC_DOMAIN_OFFSET + 81, publicEnd, 40);
  spread("private ciphertext", publicEnd, entryEnd, 24);
  spread("receipt", entryEnd, bytes.byteLength, 120);
  return flips;
}

test("the fixture holds committed snapshots at 10 and 20; the newest is chosen", () => {
  assert.deepEqual(
    names.map((n) => parseSnapshotFileName(n)?.seqno),
    [10, 20],
  );
  assert.equal(choose().used, newest);
});

/**
 * Whether a flip inside a receipt's JSON string leaves its decoded bytes unchanged: a hex
 * digit's case, or the unused low bits of a base64 string's last character. Such a receipt
 * means exactly the same, so accepting it is provably harmless.
 */
function sameDecodedString(original: Buffer, flipped: Buffer, at: number): boolean {
  const start = original.lastIndexOf(0x22, at) + 1;
  const end = original.indexOf(0x22, at);
  if (start <= 0 || end < 0) return false;
  const [a, b] = [original, flipped].map((x) => x.subarray(start, end).toString("latin1"));
  const hex = /^[0-9a-f]+$/i;
  const base64 = /^[A-Za-z0-9+/]+=*$/;
  if (hex.test(a!) && hex.test(b!)) return a!.toLowerCase() === b!.toLowerCase();
  if (!base64.test(a!) || !base64.test(b!)) return false;
  return Buffer.from(a!, "base64").equals(Buffer.from(b!, "base64"));
}

/**
 * Flips every sampled bit of the newest snapshot in turn; returns those after which the node
 * would still start from it. Each other flip must be refused with a logged reason, the older
 * snapshot being used instead.
 */
function flipsNotRefused(select: (flip: Flip) => boolean): string[] {
  const original = readFileSync(newest!);
  const accepted: string[] = [];
  try {
    for (const flip of sampleFlips(original).filter(select)) {
      const bytes = Buffer.from(original);
      bytes[flip.at]! ^= 1 << flip.bit;
      writeFileSync(newest!, bytes);
      const { used, log } = choose();
      const what = `byte ${flip.at} bit ${flip.bit} (${flip.region})`;
      if (used === newest) {
        const harmless = flip.region === "receipt" && sameDecodedString(original, bytes, flip.at);
        if (!harmless) accepted.push(what);
        continue;
      }
      assert.equal(used, older, `${what}: the older snapshot is still used`);
      const reason = log.find((line) => line.startsWith(`snapshots: ignoring ${newest}: `));
      assert.ok(reason !== undefined, `${what}: refused with a reason (${log.join(" | ")})`);
    }
  } finally {
    writeFileSync(newest!, original);
  }
  return accepted;
}

const FLAGS_BYTE = 1;

test("a bit flip in a committed snapshot is refused with a reason; the older one is used", () => {
  assert.deepEqual(
    flipsNotRefused((flip) => flip.at !== FLAGS_BYTE),
    [],
  );
  assert.equal(choose().used, newest, "the restored file is chosen again");
});

// The entry header is outside the GCM tag: what refuses a flipped flag bit is the evidence
// receipt, whose claims digest is the snapshot's digest.
test("a flipped flag bit in a snapshot's entry header is refused at startup", () => {
  assert.deepEqual(
    flipsNotRefused((flip) => flip.at === FLAGS_BYTE),
    [],
  );
});

test("a snapshot file of Consortia's earlier layout is skipped with a reason naming it", () => {
  // The earlier layout: a write-set entry's public header (zero claims and commit evidence
  // digests) with type 1 and the snapshot bit; its receipt is never reached.
  const earlier = encodeEntry(
    {
      txId: txId(2, 12),
      writeSet: { maps: [{ name: "public:a", writes: [{ key: utf8("k"), value: utf8("v") }] }] },
      commitEvidenceDigest: new Uint8Array(32),
    },
    secrets,
  );
  earlier[44] = 1; // entry type Snapshot
  earlier[ENTRY_HEADER_SIZE_BYTES + 16 + 11]! |= 0x80; // the snapshot bit of the IV
  const dir = tempDir("consortia-snapfault-earlier-");
  try {
    const path = join(dir.dir, "snapshot_12_13.committed");
    writeFileSync(path, earlier);
    const log: string[] = [];
    assert.deepEqual(
      usableCommittedSnapshots([dir.dir], identities.serviceCertPem, (l) => log.push(l)),
      [],
    );
    assert.ok(
      log.some(
        (l) => l.startsWith(`snapshots: ignoring ${path}: `) && /earlier snapshot format/.test(l),
      ),
      log.join(" | "),
    );
  } finally {
    dir.cleanup();
  }
});
