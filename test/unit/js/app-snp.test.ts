// snp_attestation.verifySnpAttestation in JS apps (src/js/app-snp.ts, app-globals.ts), run by the
// real app runtime on CCF's Milan and Genoa vectors (test/fixtures/snp): the result has
// ccf-app's SnpAttestationResult shape with every field read from the report bytes (the oracle
// here slices the bytes at AMD's offsets itself), and every failure is a RangeError with the
// reason: a changed byte, endorsements of another chip, an endorsed TCB that is not the
// reported one, UVM endorsements. Bad argument types and counts are TypeErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { utf8 } from "../../../src/base/bytes.js";
import { Store } from "../../../src/kv/store.js";
import { getQuickJS } from "../../../src/js/quickjs.js";
import {
  DEFAULT_JS_RUNTIME_OPTIONS,
  JsAppRuntime,
  type JsAppRequest,
} from "../../../src/js/app-runtime.js";
import type { JsAppServices } from "../../../src/js/app-globals.js";

const FIXTURES = "test/fixtures/snp";
const milan = readFileSync(`${FIXTURES}/milan-report.bin`);
const milanPem = readFileSync(`${FIXTURES}/milan-endorsements.pem`, "utf8");
const genoa = readFileSync(`${FIXTURES}/genoa-report.bin`);
const genoaPem = readFileSync(`${FIXTURES}/genoa-endorsements.pem`, "utf8");

const APP = `
function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}
function describe(value) {
  if (value instanceof ArrayBuffer) return { hex: hex(value) };
  if (typeof value !== "object" || value === null) return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = describe(v);
  return out;
}
export function verify(request) {
  const { evidence, endorsements, uvm, tcb, argc } = request.body.json();
  const args = [new Uint8Array(evidence).buffer, ccf.strToBuf(endorsements)];
  if (uvm !== undefined) args.push(ccf.strToBuf(uvm));
  if (tcb !== undefined) { if (args.length === 2) args.push(undefined); args.push(tcb); }
  try {
    const result = snp_attestation.verifySnpAttestation(...args.slice(0, argc ?? args.length));
    return { body: { ok: describe(result) } };
  } catch (e) {
    return { body: { error: { name: e.name, message: e.message } } };
  }
}`;

const SERVICES: JsAppServices = {
  lastCommittedTxId: () => ({ view: 2, seqno: 1 }),
  statusForTxId: () => "Committed",
  viewForSeqno: () => 2,
};

const rt = new JsAppRuntime(await getQuickJS(), new Map([["/app.js", APP]]), {
  runtimeOptions: DEFAULT_JS_RUNTIME_OPTIONS,
});

interface Call {
  evidence: Uint8Array;
  endorsements: string;
  uvm?: string;
  tcb?: string;
  argc?: number;
}

function verify(c: Call): { ok?: Record<string, any>; error?: { name: string; message: string } } {
  const body = { ...c, evidence: Array.from(c.evidence) };
  const req: JsAppRequest = {
    method: "POST",
    url: "/app/verify",
    path: "/app/verify",
    route: "/app/verify",
    query: "",
    hostname: "node",
    headers: {},
    params: {},
    body: utf8(JSON.stringify(body)),
    caller: null,
  };
  const tx = new Store().begin();
  const outcome = rt.call(
    { module: "/app.js", handler: "verify" },
    req,
    { tx, access: { mode: "read-only" } },
    SERVICES,
  );
  assert.equal(outcome.kind, "response", JSON.stringify(outcome));
  if (outcome.kind !== "response" || outcome.body.kind !== "json") throw new Error("not json");
  return JSON.parse(outcome.body.text);
}

const hexOf = (b: Buffer, offset: number, length: number) => ({
  hex: b.subarray(offset, offset + length).toString("hex"),
});

test("the Milan vector verifies and every field is read from the report", () => {
  const { ok, error } = verify({ evidence: milan, endorsements: milanPem });
  assert.equal(error, undefined, JSON.stringify(error));
  const a = ok!.attestation;
  assert.equal(a.version, 3);
  assert.equal(a.guest_svn, 2);
  // Guest policy 0x3001f: ABI 0.31, SMT allowed, bit 17 reserved-one, no debug or migration.
  assert.deepEqual(a.policy, {
    abi_minor: 31,
    abi_major: 0,
    smt: 1,
    migrate_ma: 0,
    debug: 0,
    single_socket: 0,
  });
  assert.deepEqual(a.family_id, hexOf(milan, 0x10, 16));
  assert.deepEqual(a.image_id, hexOf(milan, 0x20, 16));
  assert.equal(a.vmpl, milan.readUInt32LE(0x30));
  assert.equal(a.signature_algo, 1);
  assert.deepEqual(a.report_data, { hex: "00".repeat(64) });
  assert.deepEqual(a.measurement, hexOf(milan, 0x90, 48));
  assert.match(a.measurement.hex, /^5feee30d/);
  assert.deepEqual(a.host_data, hexOf(milan, 0xc0, 32));
  assert.match(a.host_data.hex, /^4f4448c6/);
  assert.deepEqual(a.id_key_digest, hexOf(milan, 0xe0, 48));
  assert.deepEqual(a.author_key_digest, hexOf(milan, 0x110, 48));
  assert.deepEqual(a.report_id, hexOf(milan, 0x140, 32));
  assert.deepEqual(a.report_id_ma, hexOf(milan, 0x160, 32));
  assert.deepEqual(a.reported_tcb, {
    boot_loader: 4,
    tee: 0,
    snp: 24,
    microcode: 219,
    hexstring: "db18000000000004",
  });
  for (const [name, offset] of [
    ["platform_version", 0x38],
    ["committed_tcb", 0x1e0],
    ["launch_tcb", 0x1f0],
  ] as const) {
    const raw = milan.subarray(offset, offset + 8);
    assert.deepEqual(
      a[name],
      {
        boot_loader: raw[0],
        tee: raw[1],
        snp: raw[6],
        microcode: raw[7],
        hexstring: Buffer.from(raw).reverse().toString("hex"),
      },
      name,
    );
  }
  assert.deepEqual([a.cpuid_fam_id, a.cpuid_mod_id, a.cpuid_step], [0x19, 0x01, 0x01]);
  assert.deepEqual(a.chip_id, hexOf(milan, 0x1a0, 64));
  const info = milan.readUInt32LE(0x40);
  assert.deepEqual(a.platform_info, { smt_en: info & 1, tsme_en: (info >> 1) & 1 });
  assert.deepEqual(a.plaform_info, a.platform_info);
  const flags = milan.readUInt32LE(0x48);
  assert.deepEqual(a.flags, {
    author_key_en: flags & 1,
    mask_chip_key: (flags >> 1) & 1,
    signing_key: (flags >> 2) & 7,
  });
  assert.deepEqual(
    [a.current_build, a.current_minor, a.current_major],
    [milan[0x1e8], milan[0x1e9], milan[0x1ea]],
  );
  assert.deepEqual(
    [a.committed_build, a.committed_minor, a.committed_major],
    [milan[0x1ec], milan[0x1ed], milan[0x1ee]],
  );
  assert.deepEqual(a.signature, { r: hexOf(milan, 0x2a0, 72), s: hexOf(milan, 0x2e8, 72) });
  assert.equal(ok!.uvm_endorsements, undefined);
});

test("the Genoa vector verifies; an endorsed TCB equal to the reported one is accepted", () => {
  const { ok, error } = verify({ evidence: genoa, endorsements: genoaPem });
  assert.equal(error, undefined, JSON.stringify(error));
  assert.deepEqual([ok!.attestation.cpuid_fam_id, ok!.attestation.cpuid_mod_id], [0x19, 0x11]);
  assert.deepEqual(ok!.attestation.measurement, hexOf(genoa, 0x90, 48));
  const tcb = ok!.attestation.reported_tcb.hexstring as string;
  assert.equal(verify({ evidence: genoa, endorsements: genoaPem, tcb }).error, undefined);
  assert.equal(
    verify({ evidence: milan, endorsements: milanPem, tcb: "DB18000000000004" }).error,
    undefined,
  );
});

test("evidence that does not verify is a RangeError with the verifier's reason", () => {
  const changed = Buffer.from(milan);
  changed.writeUInt8(changed.readUInt8(0x90) ^ 1, 0x90);
  const cases: [Call, RegExp][] = [
    [{ evidence: changed, endorsements: milanPem }, /^SEV-SNP: .*signature/],
    [{ evidence: milan, endorsements: genoaPem }, /^SEV-SNP: /],
    [{ evidence: milan.subarray(0, 100), endorsements: milanPem }, /^SEV-SNP: .*1184/],
    [{ evidence: milan, endorsements: "not a pem" }, /^SEV-SNP: /],
    [
      { evidence: milan, endorsements: milanPem, tcb: "db18000000000005" },
      /endorsed TCB db18000000000005 does not match reported TCB db18000000000004/,
    ],
    [
      { evidence: milan, endorsements: milanPem, tcb: "xyz" },
      /endorsed TCB "xyz" is not 16 hex digits/,
    ],
    [
      { evidence: milan, endorsements: milanPem, uvm: "cose" },
      /UVM endorsements are not supported/,
    ],
  ];
  for (const [c, pattern] of cases) {
    const { ok, error } = verify(c);
    assert.equal(ok, undefined);
    assert.equal(error?.name, "RangeError", JSON.stringify(error));
    assert.match(error?.message ?? "", pattern);
  }
});

test("argument count and types are checked as CCF does", () => {
  assert.deepEqual(verify({ evidence: milan, endorsements: milanPem, argc: 1 }).error, {
    name: "TypeError",
    message: "Passed 1 arguments, but expected between 2 and 4",
  });
  const { error } = verify({
    evidence: milan,
    endorsements: milanPem,
    tcb: 5 as unknown as string,
  });
  assert.deepEqual(error, { name: "TypeError", message: "endorsed_tcb must be a string" });
});
