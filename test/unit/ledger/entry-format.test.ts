// Ledger entries: the CCF layout round-trips, the same write set always gives the same bytes,
// the private domain is encrypted (and authenticated together with the public domain), the IV
// never repeats across seqnos and views, and malformed entries are rejected with typed errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { utf8, toHex } from "../../../src/base/bytes.js";
import { txId } from "../../../src/base/ids.js";
import { sha256 } from "../../../src/crypto/hash.js";
import type { WriteSet } from "../../../src/kv/write-set.js";
import {
  decodeEntry,
  decodeWriteSet,
  encodeEntry,
  entryIv,
  EntryError,
  EntryErrorCode,
} from "../../../src/ledger/entry-format.js";
import { LedgerSecrets } from "../../../src/ledger/ledger-secrets.js";

const secrets = new LedgerSecrets(new Uint8Array(32).fill(7));
const writeSet: WriteSet = {
  maps: [
    { name: "public:records", writes: [{ key: utf8("a"), value: utf8("clear text") }] },
    {
      name: "records",
      writes: [
        { key: utf8("k1"), value: utf8("secret value") },
        { key: utf8("k2"), value: null },
      ],
    },
  ],
};
const ceDigest = sha256("ce:2.5:00");

test("an entry round-trips: header, seqno, view, digests, public and private maps", () => {
  const bytes = encodeEntry(
    { txId: txId(2, 5), writeSet, commitEvidenceDigest: ceDigest },
    secrets,
  );
  assert.equal(bytes[0], 1, "format version 1");
  const size = new DataView(bytes.buffer).getUint32(2, true);
  assert.equal(size, bytes.byteLength - 8, "u48 size counts the bytes after the header");
  const entry = decodeEntry(bytes);
  assert.equal(entry.seqno, 5);
  assert.equal(entry.view, 2);
  assert.equal(toHex(entry.commitEvidenceDigest), toHex(ceDigest));
  assert.equal(toHex(entry.claimsDigest), "00".repeat(32));
  assert.deepEqual(
    entry.publicMaps.map((m) => m.name),
    ["public:records"],
  );
  const decoded = decodeWriteSet(entry, secrets);
  assert.ok(decoded !== null);
  assert.deepEqual(
    decoded.maps.map((m) => [
      m.name,
      m.writes.map((w) => [toHex(w.key), w.value && toHex(w.value)]),
    ]),
    writeSet.maps.map((m) => [
      m.name,
      m.writes.map((w) => [toHex(w.key), w.value && toHex(w.value)]),
    ]),
  );
});

test("the private domain is not in clear, and the public domain is", () => {
  const bytes = encodeEntry(
    { txId: txId(2, 6), writeSet, commitEvidenceDigest: ceDigest },
    secrets,
  );
  const text = Buffer.from(bytes).toString("latin1");
  assert.ok(text.includes("clear text"));
  assert.ok(!text.includes("secret value"));
  assert.ok(!text.includes("k1"));
});

test("the same write set at the same txId always encodes to the same bytes", () => {
  const a = encodeEntry({ txId: txId(3, 9), writeSet, commitEvidenceDigest: ceDigest }, secrets);
  const b = encodeEntry({ txId: txId(3, 9), writeSet, commitEvidenceDigest: ceDigest }, secrets);
  assert.equal(toHex(a), toHex(b));
});

test("the IV is seqno LE then view LE (low 31 bits), unique per txId", () => {
  assert.equal(toHex(entryIv(txId(2, 1))), "0100000000000000" + "02000000");
  const ivs = new Set<string>();
  for (let v = 2; v < 6; v++) for (let s = 1; s < 50; s++) ivs.add(toHex(entryIv(txId(v, s))));
  assert.equal(ivs.size, 4 * 49);
});

test("any flipped bit in the public or private domain fails GCM authentication", () => {
  const bytes = encodeEntry(
    { txId: txId(2, 7), writeSet, commitEvidenceDigest: ceDigest },
    secrets,
  );
  const publicStart = 8 + 28 + 8;
  for (const offset of [publicStart + 100, bytes.byteLength - 3]) {
    const copy = bytes.slice();
    copy[offset]! ^= 0x10;
    let outcome: unknown;
    try {
      outcome = decodeWriteSet(decodeEntry(copy), secrets);
    } catch (err) {
      outcome = err; // a flip inside the public maps may break their framing instead
    }
    assert.ok(outcome === null || outcome instanceof Error, `flip at ${offset} was not detected`);
  }
  const wrongKey = new LedgerSecrets(new Uint8Array(32).fill(8));
  assert.equal(decodeWriteSet(decodeEntry(bytes), wrongKey), null);
});

test("malformed entries are rejected with typed errors", () => {
  const bytes = encodeEntry(
    { txId: txId(2, 8), writeSet, commitEvidenceDigest: ceDigest },
    secrets,
  );
  const expectCode = (b: Uint8Array, code: EntryErrorCode) =>
    assert.throws(
      () => decodeEntry(b),
      (e: unknown) => e instanceof EntryError && e.code === code,
    );
  expectCode(bytes.subarray(0, 20), EntryErrorCode.Truncated);
  expectCode(bytes.subarray(0, bytes.byteLength - 1), EntryErrorCode.SizeMismatch);
  const badVersion = bytes.slice();
  badVersion[0] = 9;
  expectCode(badVersion, EntryErrorCode.UnsupportedVersion);
  const badType = bytes.slice();
  badType[44] = 1;
  expectCode(badType, EntryErrorCode.UnsupportedEntryType);
  const badPublicSize = bytes.slice();
  new DataView(badPublicSize.buffer).setUint32(36, 1 << 30, true);
  expectCode(badPublicSize, EntryErrorCode.MalformedPublicDomain);
});

test("commit evidence has CCF's shape and differs per txId and per secret", () => {
  const ce = secrets.commitEvidence(txId(2, 10));
  assert.match(ce, /^ce:2\.10:[0-9a-f]{64}$/);
  assert.notEqual(ce, secrets.commitEvidence(txId(2, 11)));
  assert.notEqual(ce, new LedgerSecrets(new Uint8Array(32).fill(1)).commitEvidence(txId(2, 10)));
});

test("commit nonces are exactly HMAC-SHA256(HMAC-SHA256(secret, 'Commit S'), 'view.seqno')", async () => {
  const { createHmac } = await import("node:crypto");
  const key = new Uint8Array(32).fill(7);
  const commitSecret = createHmac("sha256", key).update("Commit S").digest();
  for (const [v, s] of [
    [2, 1],
    [2, 123456789],
    [17, 42],
  ] as const) {
    const nonce = createHmac("sha256", commitSecret).update(`${v}.${s}`).digest("hex");
    assert.equal(secrets.commitEvidence(txId(v, s)), `ce:${v}.${s}:${nonce}`);
  }
});
