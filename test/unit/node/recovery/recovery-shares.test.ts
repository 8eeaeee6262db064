// Recovery shares (src/node/recovery-shares.ts) with real RSA member keys: any threshold-sized
// set of participants' shares recovers the ledger secret and smaller sets do not; an Owner's
// share recovers alone; shares are encrypted to each member; every share issue is fresh; bad
// policies and foreign or altered shares are refused with typed errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { generateEncryptionKey } from "../../../../src/crypto/identity.js";
import {
  decryptShare,
  issueRecoveryShares,
  recoverLedgerSecret,
  RecoveryError,
  RecoveryErrorCode,
  type RecoveryMember,
} from "../../../../src/node/recovery/recovery-shares.js";

const keys = Array.from({ length: 5 }, () => generateEncryptionKey());
const members: RecoveryMember[] = keys.map((k, i) => ({
  id: `m${i}`,
  encryptionPublicKeyPem: k.publicKeyPem,
  role: "Participant",
}));
const secret = new Uint8Array(randomBytes(32));

function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [first, ...rest] = items;
  return [...subsets(rest, size - 1).map((s) => [first!, ...s]), ...subsets(rest, size)];
}

async function rejects(p: Promise<unknown>, code: RecoveryErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof RecoveryError && e.type.code === code);
}

test("any 3 of 5 participants recover the ledger secret; 2 do not", async () => {
  const issued = await issueRecoveryShares(secret, members, 3);
  assert.equal(issued.encryptedShares.size, 5);
  const plain = members.map((m, i) =>
    decryptShare(issued.encryptedShares.get(m.id)!, keys[i]!.privateKeyPem),
  );
  for (const three of subsets(plain, 3)) {
    assert.deepEqual(await recoverLedgerSecret(three, issued.wrappedLedgerSecret), secret);
  }
  for (const two of subsets(plain, 2)) {
    await rejects(
      recoverLedgerSecret(two, issued.wrappedLedgerSecret),
      RecoveryErrorCode.WrongShares,
    );
  }
});

test("a share decrypts only with its member's key, and every issue is fresh", async () => {
  const a = await issueRecoveryShares(secret, members, 2);
  const b = await issueRecoveryShares(secret, members, 2);
  assert.notDeepEqual(a.wrappedLedgerSecret, b.wrappedLedgerSecret);
  assert.throws(
    () => decryptShare(a.encryptedShares.get("m0")!, keys[1]!.privateKeyPem),
    (e: unknown) => e instanceof RecoveryError && e.type.code === RecoveryErrorCode.CannotDecrypt,
  );
  // Shares of one issue do not open another issue's wrapped secret.
  const fromA = ["m0", "m1"].map((id, i) =>
    decryptShare(a.encryptedShares.get(id)!, keys[i]!.privateKeyPem),
  );
  await rejects(recoverLedgerSecret(fromA, b.wrappedLedgerSecret), RecoveryErrorCode.WrongShares);
});

test("an Owner recovers alone; threshold 1 gives each participant the whole key", async () => {
  const owner = generateEncryptionKey();
  const withOwner: RecoveryMember[] = [
    ...members,
    { id: "owner", encryptionPublicKeyPem: owner.publicKeyPem, role: "Owner" },
  ];
  const issued = await issueRecoveryShares(secret, withOwner, 3);
  const ownerShare = decryptShare(issued.encryptedShares.get("owner")!, owner.privateKeyPem);
  assert.deepEqual(await recoverLedgerSecret([ownerShare], issued.wrappedLedgerSecret), secret);
  const one = await issueRecoveryShares(secret, members, 1);
  const share = decryptShare(one.encryptedShares.get("m4")!, keys[4]!.privateKeyPem);
  assert.deepEqual(await recoverLedgerSecret([share], one.wrappedLedgerSecret), secret);
});

test("bad policies and foreign or altered shares are refused", async () => {
  await rejects(issueRecoveryShares(secret, members, 6), RecoveryErrorCode.BadPolicy);
  await rejects(issueRecoveryShares(secret, members, 0), RecoveryErrorCode.BadPolicy);
  const issued = await issueRecoveryShares(secret, members, 2);
  const plain = members
    .slice(0, 2)
    .map((m, i) => decryptShare(issued.encryptedShares.get(m.id)!, keys[i]!.privateKeyPem));
  await rejects(
    recoverLedgerSecret([new Uint8Array(10), plain[0]!], issued.wrappedLedgerSecret),
    RecoveryErrorCode.MalformedShare,
  );
  const altered = plain.map((s) => s.slice());
  altered[1]![5]! ^= 1;
  await rejects(
    recoverLedgerSecret(altered, issued.wrappedLedgerSecret),
    RecoveryErrorCode.WrongShares,
  );
  const tampered = issued.wrappedLedgerSecret.slice();
  tampered[0]! ^= 1;
  await rejects(recoverLedgerSecret(plain, tampered), RecoveryErrorCode.WrongShares);
});
