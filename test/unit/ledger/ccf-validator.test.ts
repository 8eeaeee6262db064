// CCF's own code as the oracle (ccf-compatibility.md §12): a ledger that TxPipeline writes after
// a real genesis (members, the node Trusted with its endorsed certificate, service.info), with
// several chunks, is read by CCF 6.0.17's Python package (../shared/oracles/ccf-python):
// `LedgerValidator` checks every signature's root over CCF's tree (leaf 0 is 32 zero bytes),
// its node signature and its COSE signature against service.info's certificate, and every public
// table decodes; CCF's `verify_receipt` accepts our JSON receipts. The test can fail: the same
// ledger with Consortia 0.1's leaf numbering (test/helpers/reseal.ts) is rejected by CCF with
// InvalidRootException, and a tampered COSE signature with InvalidRootCoseSignatureException.
// Skipped, saying why, when python3, the oracle or `cryptography` is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Seqno, View } from "../../../src/base/ids.js";
import { SERVICE_TABLES } from "../../../src/kv/service-tables.js";
import {
  decodeCoseSignatureValue,
  encodeCoseSignatureValue,
} from "../../../src/ledger/cose-signature.js";
import { decodeEntry } from "../../../src/ledger/entry-format.js";
import { writeGenesis } from "../../../src/gov/genesis.js";
import { generateEncryptionKey, generateIdentity } from "../../../src/crypto/identity.js";
import { Store } from "../../../src/kv/store.js";
import { TxHistory } from "../../../src/ledger/history.js";
import { LedgerWriter } from "../../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../../src/ledger/ledger-secrets.js";
import type { Receipt } from "../../../src/ledger/receipt.js";
import { TxPipeline } from "../../../src/node/pipeline/tx-pipeline.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";
import { readEntries } from "../../helpers/ledger-fixture.js";
import { tempDir } from "../../helpers/pki.js";
import { resealEntries, writeLedgerDir } from "../../helpers/reseal.js";
import { resignEntry } from "../../helpers/resign.js";
import { CCF_ORACLE_DIR } from "../../helpers/ccf-oracle-dir.js";

const ORACLE = CCF_ORACLE_DIR;
const work = tempDir("consortia-ccf-validator-");
test.after(async () => {
  await builtPromise;
  work.cleanup();
});

/** Why the oracle cannot run here, or null. */
function oracleMissing(): string | null {
  if (!existsSync(join(ORACLE, "ccf", "ledger.py"))) return `no CCF oracle at ${ORACLE}`;
  const probe = python("import cryptography, ccf.ledger");
  return probe.status === 0 ? null : `python3 cannot import the oracle: ${probe.stderr.trim()}`;
}

function python(code: string, ...args: string[]) {
  const env = { ...process.env, PYTHONPATH: `${ORACLE}:${join(ORACLE, "vendor")}` };
  const run = spawnSync("python3", ["-c", code, ...args], { env, encoding: "utf8" });
  return {
    status: run.status ?? -1,
    stdout: run.stdout ?? "",
    stderr: run.stderr ?? String(run.error),
  };
}

/** Validates every committed chunk of `dir` with CCF's LedgerValidator; prints one JSON line. */
const VALIDATE = `
import json, sys, ccf.ledger
validator = ccf.ledger.LedgerValidator()
count = 0
try:
    for chunk in ccf.ledger.Ledger([sys.argv[1]]):
        for tx in chunk:
            tx.get_public_domain().get_tables()
            validator.add_transaction(tx)
            count += 1
    print(json.dumps({"ok": True, "transactions": count, "signatures": validator.signature_count,
                      "last": validator.last_verified_seqno}))
except Exception as e:
    print(json.dumps({"ok": False, "error": type(e).__name__, "at": count + 1}))
`;

/** Checks each receipt of a JSON list with CCF's end-to-end verify_receipt. */
const VERIFY_RECEIPTS = `
import json, sys
from cryptography.x509 import load_pem_x509_certificate
from ccf_tests.e2e_logging_verify_receipt import verify_receipt
service = load_pem_x509_certificate(open(sys.argv[2], "rb").read())
for receipt in json.load(open(sys.argv[1])):
    verify_receipt(receipt, service, is_signature_tx="leaf" in receipt)
print("ok")
`;

function validate(dir: string): {
  ok: boolean;
  error?: string;
  at?: number;
  signatures?: number;
  last?: number;
} {
  const run = python(VALIDATE, dir);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as never;
}

interface Built {
  readonly dir: string;
  readonly serviceCertPem: string;
  readonly secrets: LedgerSecrets;
  readonly ids: Awaited<ReturnType<typeof createStartIdentities>>;
  readonly receipts: Receipt[];
  readonly lastSignature: number;
}

/** Genesis, then 40 transactions signed every 6, in 2 KiB chunks, and a final signature. */
async function buildServiceLedger(): Promise<Built> {
  const ids = await createStartIdentities({
    now: new Date(),
    coseSignatures: { issuer: "service.example.com", subject: "ledger.signature" },
  });
  const member = await generateIdentity({ name: "member0", now: new Date() });
  const dir = join(work.dir, "service");
  mkdirSync(dir);
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(3));
  const pipeline = new TxPipeline({
    store: new Store(),
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 2048 }),
    identity: ids.node,
    options: { view: 2 as View, sigTxInterval: 6, sigMsInterval: 1e12, conflictRetriesMax: 1 },
    nowMs: 0,
  });
  pipeline.execute((tx) => {
    writeGenesis(tx, {
      members: [{ certPem: member.certPem }],
      constitution: "export function resolve() { return 'Open'; }",
      serviceCertPem: ids.serviceCertPem,
      serviceData: null,
      configuration: {
        recovery_threshold: 0,
        maximum_node_certificate_validity_days: 30,
        maximum_service_certificate_validity_days: 365,
        reconfiguration_type: "OneTransaction",
        recent_cose_proposals_window_size: 100,
      },
      node: {
        nodeId: ids.node.nodeId,
        info: {
          node_to_node_interface: { bind_address: "127.0.0.1:0", published_address: "n:1" },
          rpc_interfaces: { primary: { bind_address: "127.0.0.1:0" } },
          quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
          encryption_pub_key: generateEncryptionKey().publicKeyPem,
          status: "Trusted",
          node_data: null,
        },
        endorsedCertificatePem: ids.node.certPem,
      },
      virtualMeasurement: "ab".repeat(32),
      virtualHostData: "cd".repeat(32),
    });
  });
  for (let i = 0; i < 40; i++) {
    pipeline.execute((tx) => tx.rw("public:records").set(new Uint8Array([i]), new Uint8Array(64)));
  }
  const last = pipeline.emitSignature();
  const receipts: Receipt[] = [];
  for (const seqno of [1, 2, 5, 9, 20, last.seqno]) {
    const outcome = pipeline.receipt(seqno as Seqno);
    assert.equal(outcome.kind, "receipt", `receipt ${seqno}`);
    if (outcome.kind === "receipt") receipts.push(outcome.receipt);
  }
  await pipeline.close();
  return {
    dir,
    serviceCertPem: ids.serviceCertPem,
    secrets,
    ids,
    receipts,
    lastSignature: last.seqno,
  };
}

// Built only when the oracle can run: a skipped file must not leave a build running after its
// temporary directory is removed.
const builtPromise: Promise<Built> | null = oracleMissing() === null ? buildServiceLedger() : null;

test("CCF's LedgerValidator accepts our ledger: roots over leaf 0, node and COSE signatures", async (t) => {
  const missing = oracleMissing();
  if (missing !== null) return t.skip(missing);
  const built = (await builtPromise)!;
  const result = validate(built.dir);
  assert.deepEqual(result.ok, true, JSON.stringify(result));
  assert.equal(result.last, built.lastSignature);
  assert.ok((result.signatures ?? 0) >= 7, `signatures: ${result.signatures}`);
});

test("CCF's verify_receipt accepts our JSON receipts against the service certificate", async (t) => {
  const missing = oracleMissing();
  if (missing !== null) return t.skip(missing);
  const built = (await builtPromise)!;
  const receiptsFile = join(work.dir, "receipts.json");
  const certFile = join(work.dir, "service_cert.pem");
  writeFileSync(receiptsFile, JSON.stringify(built.receipts));
  writeFileSync(certFile, built.serviceCertPem);
  const run = python(VERIFY_RECEIPTS, receiptsFile, certFile);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), "ok");
});

test("CCF rejects the same ledger with Consortia 0.1's numbering, or a tampered COSE signature", async (t) => {
  const missing = oracleMissing();
  if (missing !== null) return t.skip(missing);
  const built = (await builtPromise)!;
  const entries = readEntries(built.dir);
  const legacyDir = join(work.dir, "legacy");
  mkdirSync(legacyDir);
  writeLedgerDir(
    legacyDir,
    resealEntries(
      entries,
      { secrets: built.secrets, identities: built.ids },
      { legacyNumbering: true },
    ),
  );
  const legacy = validate(legacyDir);
  assert.deepEqual([legacy.ok, legacy.error], [false, "InvalidRootException"]);

  // The last signature's COSE signature, flipped: nothing later covers its bytes.
  const last = entries.length;
  const tampered = entries.slice();
  tampered[last - 1] = resignEntry(built.secrets, entries[last - 1]!, {
    coseSignature: flippedCose(entries[last - 1]!),
  });
  const coseDir = join(work.dir, "cose");
  mkdirSync(coseDir);
  writeLedgerDir(coseDir, tampered);
  const bad = validate(coseDir);
  assert.deepEqual([bad.ok, bad.error, bad.at], [false, "InvalidRootCoseSignatureException", last]);
});

/** The cose_signatures value of a signature entry with one bit of its signature flipped. */
function flippedCose(entry: Uint8Array): Uint8Array {
  const map = decodeEntry(entry).publicMaps.find((m) => m.name === SERVICE_TABLES.coseSignatures);
  const sign1 = decodeCoseSignatureValue(map!.writes[0]!.value!).slice();
  sign1[sign1.byteLength - 1]! ^= 1;
  return encodeCoseSignatureValue(sign1);
}
