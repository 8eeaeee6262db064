// The public replay of a disaster recovery (src/node/recovery/recovery-replay.ts) on what issue
// #11 changed, over a real ledger written by TxPipeline (test/helpers/ledger-fixture.ts, whose
// first transaction records service.info): the replay checks every COSE signature against the
// service in force (a tampered one is InvalidLedger at its signature), refuses a signature
// transaction that writes another map (the last one's bytes are covered by no root, so a forged
// write there would be recovered), a recovered service keeps the issuer and subject of the last
// COSE signature (as CCF's recovery reads them back), and a ledger of Consortia 0.1 (leaves numbered from seqno 1, test/helpers/reseal.ts) is refused at
// its first signature with a LegacyFormatError naming the format, never replayed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { utf8 } from "../../../../src/base/bytes.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";
import {
  decodeCoseSignatureValue,
  encodeCoseSignatureValue,
} from "../../../../src/ledger/cose-signature.js";
import { decodeEntry } from "../../../../src/ledger/entry-format.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { LegacyFormatError, LegacyFormatErrorCode } from "../../../../src/ledger/legacy-format.js";
import {
  RecoveryReplayError,
  RecoveryReplayErrorCode,
  replayPublic,
} from "../../../../src/node/recovery/recovery-replay.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { buildLedgerFixture, readEntries } from "../../../helpers/ledger-fixture.js";
import { tempDir } from "../../../helpers/pki.js";
import { resealEntries, writeLedgerDir } from "../../../helpers/reseal.js";
import { resignEntry, withExtraWrites } from "../../../helpers/resign.js";

const work = tempDir("consortia-replay-ccf-");
const COSE = { issuer: "service.example.com", subject: "ledger.signature" };
const fixturePromise = createStartIdentities({ now: new Date(), coseSignatures: COSE }).then(
  (identities) => buildLedgerFixture({ txCount: 20, sigTxInterval: 6, identities }),
);

test.after(async () => {
  (await fixturePromise).cleanup();
  work.cleanup();
});

function replay(dir: string, serviceCertPem: string) {
  return replayPublic({
    ledgerDir: dir,
    previousServiceCertPem: serviceCertPem,
    secrets: new LedgerSecrets(new Uint8Array(randomBytes(32))),
    log: () => {},
  });
}

function ledgerDir(name: string, entries: readonly Uint8Array[]): string {
  const dir = join(work.dir, name);
  mkdirSync(dir);
  writeLedgerDir(dir, entries);
  return dir;
}

test("a replay checks COSE signatures and keeps the last one's issuer and subject", async () => {
  const f = await fixturePromise;
  const result = await replay(f.dir, f.identities.serviceCertPem);
  assert.equal(result.lastSignedSeqno, f.lastSignedSeqno);
  assert.deepEqual(result.coseSignatures, COSE);

  const entries = readEntries(f.dir);
  const last = entries.length;
  const map = decodeEntry(entries[last - 1]!).publicMaps.find(
    (m) => m.name === SERVICE_TABLES.coseSignatures,
  );
  const sign1 = decodeCoseSignatureValue(map!.writes[0]!.value!).slice();
  sign1[sign1.byteLength - 1]! ^= 1;
  const tampered = entries.slice();
  tampered[last - 1] = resignEntry(f.secrets, entries[last - 1]!, {
    coseSignature: encodeCoseSignatureValue(sign1),
  });
  await assert.rejects(
    replay(ledgerDir("tampered-cose", tampered), f.identities.serviceCertPem),
    (e: unknown) =>
      e instanceof RecoveryReplayError &&
      e.code === RecoveryReplayErrorCode.InvalidLedger &&
      e.type.seqno === last &&
      /COSE signature by the service does not verify/.test(e.message),
  );
});

test("a last signature transaction that also writes another map is InvalidLedger, not replayed", async () => {
  const f = await fixturePromise;
  const entries = readEntries(f.dir);
  const last = entries.length;
  const tampered = entries.slice();
  // Nothing after it covers its bytes: without the check, the forged user would be recovered.
  tampered[last - 1] = withExtraWrites(f.secrets, entries[last - 1]!, [
    { name: SERVICE_TABLES.userCerts, writes: [{ key: utf8("evil"), value: utf8("cert") }] },
  ]);
  await assert.rejects(
    replay(ledgerDir("extra-write", tampered), f.identities.serviceCertPem),
    (e: unknown) =>
      e instanceof RecoveryReplayError &&
      e.code === RecoveryReplayErrorCode.InvalidLedger &&
      e.type.seqno === last &&
      new RegExp(`signature transaction ${last} writes map public:ccf\\.gov\\.users\\.certs`).test(
        e.message,
      ),
  );
});

test("a ledger of Consortia 0.1 is refused at its first signature, naming the format", async () => {
  const f = await fixturePromise;
  const legacy = resealEntries(readEntries(f.dir), f, { legacyNumbering: true });
  await assert.rejects(
    replay(ledgerDir("legacy", legacy), f.identities.serviceCertPem),
    (e: unknown) =>
      e instanceof LegacyFormatError &&
      e.code === LegacyFormatErrorCode.LegacyLeafNumbering &&
      e.type.seqno === 7 &&
      /at offset \d+ \(seqno 7\): this ledger numbers Merkle leaves from seqno 1 \(Consortia 0\.1 format\)/.test(
        e.message,
      ),
  );
  // The same ledger rewritten in CCF's numbering replays (the rewriting is not what fails).
  const ccf = resealEntries(readEntries(f.dir), f);
  const result = await replay(ledgerDir("resealed", ccf), f.identities.serviceCertPem);
  assert.equal(result.lastSignedSeqno, f.lastSignedSeqno);
});
