// LedgerSecrets' disaster-recovery side (src/ledger/ledger-secrets.ts): restoreHistorical puts
// the previous service's secrets in force before the recovery point and this node's from it on;
// encodeLedgerSecretList / decodeLedgerSecretList carry the list wrapped under the recovery key
// (u64 LE fromSeqno then the 32-byte key per item) and refuse bytes that are not such a list.
import { createHash } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../../src/base/assert.js";
import { toHex } from "../../../src/base/bytes.js";
import type { Seqno, View } from "../../../src/base/ids.js";
import {
  decodeLedgerSecretList,
  encodeLedgerSecretList,
  LedgerSecrets,
} from "../../../src/ledger/ledger-secrets.js";

const s = (n: number): Seqno => n as Seqno;
const key = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
const hexOf = (secrets: LedgerSecrets, seqno: number): string =>
  toHex(secrets.secretFor(s(seqno)).key);

/** The previous service's secrets: from 1, 10 and 20 (two rekeys). */
const HISTORICAL = [
  { fromSeqno: 1, key: key(1) },
  { fromSeqno: 10, key: key(2) },
  { fromSeqno: 20, key: key(3) },
];

test("restoreHistorical: old secrets before the recovery point, this node's from it on", () => {
  const mine = new LedgerSecrets(key(0xa0));
  mine.add(s(40), key(0xa1)); // a rekey of the new service, after the recovery point
  mine.restoreHistorical(HISTORICAL, s(31));
  const expected = [
    { fromSeqno: 1, key: key(1) },
    { fromSeqno: 10, key: key(2) },
    { fromSeqno: 20, key: key(3) },
    { fromSeqno: 31, key: key(0xa0) },
    { fromSeqno: 40, key: key(0xa1) },
  ];
  assert.deepEqual(mine.list(), expected);
  assert.equal(hexOf(mine, 1), toHex(key(1)));
  assert.equal(hexOf(mine, 9), toHex(key(1)));
  assert.equal(hexOf(mine, 10), toHex(key(2)));
  assert.equal(hexOf(mine, 30), toHex(key(3)));
  assert.equal(hexOf(mine, 31), toHex(key(0xa0)));
  assert.equal(hexOf(mine, 39), toHex(key(0xa0)));
  assert.equal(hexOf(mine, 40), toHex(key(0xa1)));
  assert.equal(toHex(mine.latest.key), toHex(key(0xa1)));
});

test("restoreHistorical: commit evidence of old seqnos is the previous service's", () => {
  const previous = LedgerSecrets.fromList(HISTORICAL);
  const mine = new LedgerSecrets(key(0xa0));
  const beforeRestore = mine.commitEvidence({ view: 2 as View, seqno: s(12) });
  mine.restoreHistorical(HISTORICAL, s(31));
  for (const seqno of [1, 12, 25, 30]) {
    const id = { view: 2 as View, seqno: s(seqno) };
    assert.equal(mine.commitEvidence(id), previous.commitEvidence(id), `seqno ${seqno}`);
  }
  assert.notEqual(mine.commitEvidence({ view: 2 as View, seqno: s(12) }), beforeRestore);
  // From the recovery point on, the evidence is still this node's own.
  const own = new LedgerSecrets(key(0xa0));
  const id = { view: 3 as View, seqno: s(35) };
  assert.equal(mine.commitEvidence(id), own.commitEvidence(id));
});

test("restoreHistorical drops historical secrets in force only from the recovery point on", () => {
  const mine = new LedgerSecrets(key(0xa0));
  // The previous service rekeyed at 20, but the recovery keeps only 1..19: its secret from 20
  // never covered a kept entry, and this node's secret takes over at 20.
  mine.restoreHistorical(HISTORICAL, s(20));
  assert.deepEqual(
    mine.list().map((x) => x.fromSeqno),
    [1, 10, 20],
  );
  assert.equal(hexOf(mine, 20), toHex(key(0xa0)));
  assert.equal(hexOf(mine, 19), toHex(key(2)));
});

test("restoreHistorical refuses secrets not starting at 1, or own secrets before the point", () => {
  const mine = new LedgerSecrets(key(0xa0));
  assert.throws(
    () => mine.restoreHistorical([{ fromSeqno: 5, key: key(1) }], s(31)),
    AssertionError,
  );
  assert.throws(() => mine.restoreHistorical([], s(31)), AssertionError);
  assert.deepEqual(mine.list(), [{ fromSeqno: 1, key: key(0xa0) }], "unchanged after a refusal");
  const rekeyed = new LedgerSecrets(key(0xa0));
  rekeyed.add(s(31), key(0xa1));
  assert.throws(() => rekeyed.restoreHistorical(HISTORICAL, s(31)), AssertionError);
  assert.equal(rekeyed.list().length, 2, "unchanged after a refusal");
});

test("encodeLedgerSecretList / decodeLedgerSecretList round trip", () => {
  const bytes = encodeLedgerSecretList(HISTORICAL);
  assert.equal(bytes.byteLength, 3 * 40);
  // u64 little-endian fromSeqno, then the key.
  assert.deepEqual([...bytes.subarray(40, 48)], [10, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(bytes.subarray(48, 80), key(2));
  assert.deepEqual(decodeLedgerSecretList(bytes), HISTORICAL);
  const one = [{ fromSeqno: 1, key: key(9) }];
  assert.deepEqual(decodeLedgerSecretList(encodeLedgerSecretList(one)), one);
  // Large seqnos survive (beyond 32 bits).
  const big = [
    { fromSeqno: 1, key: key(1) },
    { fromSeqno: 2 ** 40 + 3, key: key(2) },
  ];
  assert.deepEqual(decodeLedgerSecretList(encodeLedgerSecretList(big)), big);
  // The round trip goes through LedgerSecrets too.
  const secrets = LedgerSecrets.fromList(decodeLedgerSecretList(bytes));
  assert.deepEqual(secrets.list(), HISTORICAL);
});

test("decodeLedgerSecretList reads a view into a larger buffer and copies the keys", () => {
  const bytes = encodeLedgerSecretList(HISTORICAL);
  const framed = new Uint8Array(bytes.byteLength + 7);
  framed.set(bytes, 3);
  const view = framed.subarray(3, 3 + bytes.byteLength);
  const list = decodeLedgerSecretList(view);
  assert.deepEqual(list, HISTORICAL);
  framed.fill(0xff);
  assert.deepEqual(list[0]!.key, key(1), "keys do not alias the input");
});

test("decodeLedgerSecretList: empty or wrong-length bytes throw RangeError", () => {
  assert.throws(() => decodeLedgerSecretList(new Uint8Array(0)), RangeError);
  const bytes = encodeLedgerSecretList(HISTORICAL);
  for (const length of [1, 39, 41, 79, 119]) {
    assert.throws(() => decodeLedgerSecretList(bytes.subarray(0, length)), RangeError, `${length}`);
  }
  const longer = new Uint8Array(bytes.byteLength + 1);
  longer.set(bytes);
  assert.throws(() => decodeLedgerSecretList(longer), RangeError);
});

test("decodeLedgerSecretList: out-of-order lists throw RangeError", () => {
  const cases: { name: string; list: { fromSeqno: number; key: Uint8Array }[] }[] = [
    { name: "first not from 1", list: [{ fromSeqno: 2, key: key(1) }] },
    { name: "first from 0", list: [{ fromSeqno: 0, key: key(1) }] },
    {
      name: "decreasing",
      list: [
        { fromSeqno: 1, key: key(1) },
        { fromSeqno: 10, key: key(2) },
        { fromSeqno: 5, key: key(3) },
      ],
    },
    {
      name: "repeated seqno",
      list: [
        { fromSeqno: 1, key: key(1) },
        { fromSeqno: 1, key: key(2) },
      ],
    },
  ];
  for (const { name, list } of cases) {
    assert.throws(() => decodeLedgerSecretList(encodeLedgerSecretList(list)), RangeError, name);
  }
});

test("commitEvidenceDigest is SHA-256 of the commit evidence string, across secrets and sizes", () => {
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(3));
  secrets.add(1000 as Seqno, new Uint8Array(32).fill(4));
  const views = [0, 1, 9, 10, 2 ** 32 - 1];
  const seqnos = [1, 9, 10, 99, 100, 999, 1000, 123_456_789, Number.MAX_SAFE_INTEGER];
  for (const view of views) {
    for (const seqno of seqnos) {
      const id = { view: view as View, seqno: seqno as Seqno };
      const want = createHash("sha256").update(secrets.commitEvidence(id)).digest("hex");
      assert.equal(toHex(secrets.commitEvidenceDigest(id)), want, `${view}.${seqno}`);
    }
  }
});
