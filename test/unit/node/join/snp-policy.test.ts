// The SEV-SNP join policy (src/node/join/snp-policy.ts) as pure functions over evidence built
// here (real reports cannot bind a test key: their report_data is fixed), and readSnpJoinPolicy
// over a real Store: each table's refusal names what failed, in CCF's order (host data,
// measurement or UVM endorsements, then TCB), and the TCB comparison is CCF's is_valid. CCF's
// Milan vector, verified, is checked against tables written by the constitution's actions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Store } from "../../../../src/kv/store.js";
import { verifySnpReport } from "../../../../src/attestation/snp.js";
import { QuickJsConstitution } from "../../../../src/js/constitution.js";
import {
  defaultConstitutionSource,
  expectOk,
  inTx,
  proposal,
  RecordingHost,
  seed,
  SINGLETON,
  T,
} from "../../../fixtures/constitution/harness.js";
import { GOV_MAPS, setById, type SnpTcbVersionPolicy } from "../../../../src/gov/tables.js";
import {
  parseCpuid,
  readSnpJoinPolicy,
  snpJoinRefusal,
  tcbShortfall,
  type SnpJoinEvidence,
  type SnpJoinPolicy,
} from "../../../../src/node/join/snp-policy.js";

const MEASUREMENT = "a7".repeat(48);
const HOST_DATA = "73".repeat(32);
const MILAN = "00a00f11";
const GENOA = "00a10f11";
const MIN: SnpTcbVersionPolicy = { boot_loader: 3, tee: 0, snp: 8, microcode: 115 };

function evidence(overrides: Partial<SnpJoinEvidence["report"]> = {}): SnpJoinEvidence {
  return {
    measurement: MEASUREMENT,
    hostData: HOST_DATA,
    report: {
      version: 3,
      product: "Milan",
      cpuid: MILAN,
      reportedTcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115, hex: "7308000000000003" },
      ...overrides,
    },
  };
}

function policy(overrides: Partial<SnpJoinPolicy> = {}): SnpJoinPolicy {
  return {
    measurements: new Set([MEASUREMENT]),
    hostData: new Set([HOST_DATA]),
    uvmEndorsements: new Map(),
    tcbVersions: [[MILAN, MIN]],
    ...overrides,
  };
}

test("a node that matches every table may join", () => {
  assert.equal(snpJoinRefusal(policy(), evidence(), undefined), null);
  const above = { bootloader: 4, tee: 1, snp: 9, microcode: 200, hex: "c809000000000104" };
  assert.equal(snpJoinRefusal(policy(), evidence({ reportedTcb: above }), undefined), null);
});

test("host data not in nodes.snp.host_data is refused first, naming the host data", () => {
  const refusal = snpJoinRefusal(
    policy({ hostData: new Set(), measurements: new Set() }),
    evidence(),
    undefined,
  );
  assert.match(
    refusal ?? "",
    /^Quote host data is not authorised: host data 7373.* nodes\.snp\.host_data$/,
  );
});

test("a measurement not in nodes.snp.measurements is refused, naming it", () => {
  const refusal = snpJoinRefusal(
    policy({ measurements: new Set(["00".repeat(48)]) }),
    evidence(),
    undefined,
  );
  assert.match(
    refusal ?? "",
    new RegExp(
      `known enclave measurement: measurement ${MEASUREMENT} is not in nodes\\.snp\\.measurements`,
    ),
  );
});

test("UVM endorsements in the join request are refused as not supported", () => {
  const refusal = snpJoinRefusal(policy(), evidence(), "ZW5kb3JzZW1lbnRz");
  assert.match(refusal ?? "", /^UVM endorsements are not supported/);
});

test("the CPUID must have a minimum TCB entry, matched by family, model and stepping", () => {
  const none = snpJoinRefusal(policy({ tcbVersions: [[GENOA, MIN]] }), evidence(), undefined);
  assert.match(none ?? "", /No minimum TCB version is set for CPUID 00a00f11 \(Milan\)/);
  // Another spelling of the same CPU (family 19h as base 0xF + extended 0x0A) still matches;
  // a different stepping does not.
  assert.equal(
    snpJoinRefusal(policy({ tcbVersions: [["f0a00f11", MIN]] }), evidence(), undefined),
    null,
  );
  const stepping = snpJoinRefusal(
    policy({ tcbVersions: [["00a00f10", MIN]] }),
    evidence(),
    undefined,
  );
  assert.match(stepping ?? "", /No minimum TCB version/);
  const { cpuid: _, ...v2Report } = evidence({ version: 2 }).report;
  const v2 = snpJoinRefusal(policy(), { ...evidence(), report: v2Report }, undefined);
  assert.match(v2 ?? "", /report version 2 carries no CPUID/);
});

test("a reported TCB below the minimum in any field is refused, naming the field", () => {
  for (const [field, tcb] of [
    ["boot_loader", { bootloader: 2 }],
    ["tee", { tee: 0 }],
    ["snp", { snp: 7 }],
    ["microcode", { microcode: 114 }],
  ] as const) {
    const reportedTcb = { ...evidence().report.reportedTcb, tee: 1, ...tcb };
    const min = { ...MIN, tee: 1 };
    const refusal = snpJoinRefusal(
      policy({ tcbVersions: [[MILAN, min]] }),
      evidence({ reportedTcb }),
      undefined,
    );
    assert.match(
      refusal ?? "",
      new RegExp(
        `Reported TCB .* does not meet the minimum TCB version for CPUID 00a00f11 .*: ${field} is \\d+, below the minimum \\d+$`,
      ),
      field,
    );
  }
});

test("tcbShortfall is CCF's is_valid: fields present in both or neither, then >=", () => {
  const turinMin = { ...MIN, fmc: 2 };
  assert.equal(tcbShortfall(MIN, MIN), null);
  assert.equal(tcbShortfall(turinMin, { ...MIN, fmc: 3 }), null);
  assert.match(tcbShortfall(turinMin, MIN) ?? "", /minimum has a fmc but the report has none/);
  assert.match(
    tcbShortfall(MIN, { ...MIN, fmc: 0 }) ?? "",
    /minimum has no fmc but the report has one/,
  );
  assert.match(tcbShortfall(turinMin, { ...MIN, fmc: 1 }) ?? "", /fmc is 1, below the minimum 2/);
  const { microcode: _, ...noMicrocode } = MIN;
  assert.match(tcbShortfall(noMicrocode, MIN) ?? "", /minimum has no microcode/);
});

test("parseCpuid decodes CCF's keys of Milan, Genoa and Turin", () => {
  assert.deepEqual(parseCpuid(MILAN), { family: 0x19, model: 0x01, stepping: 1 });
  assert.deepEqual(parseCpuid(GENOA), { family: 0x19, model: 0x11, stepping: 1 });
  assert.deepEqual(parseCpuid("00b00f11"), { family: 0x1a, model: 0x01, stepping: 1 });
  assert.equal(parseCpuid("00a00f1"), null);
  assert.equal(parseCpuid("zza00f11"), null);
});

test("readSnpJoinPolicy reads the four nodes.snp tables of a transaction", () => {
  const tx = new Store().begin();
  setById(tx, GOV_MAPS.snpMeasurements, MEASUREMENT, "AllowedToJoin");
  setById(tx, GOV_MAPS.snpHostData, HOST_DATA, "");
  setById(tx, GOV_MAPS.snpUvmEndorsements, "did:x509:abc", { feed: { svn: "1" } });
  setById(tx, GOV_MAPS.snpTcbVersions, MILAN, MIN);
  const read = readSnpJoinPolicy(tx);
  assert.deepEqual(read, {
    measurements: new Set([MEASUREMENT]),
    hostData: new Set([HOST_DATA]),
    uvmEndorsements: new Map([["did:x509:abc", { feed: { svn: "1" } }]]),
    tcbVersions: [[MILAN, MIN]],
  });
  assert.equal(snpJoinRefusal(read, evidence(), undefined), null);
});

test("CCF's Milan vector, verified, joins under a policy the constitution's actions set", async () => {
  const report = verifySnpReport(
    new Uint8Array(readFileSync("test/fixtures/snp/milan-report.bin")),
    readFileSync("test/fixtures/snp/milan-endorsements.pem", "utf8"),
    { now: new Date("2026-01-01T00:00:00Z") },
  );
  const verified = { measurement: report.measurement, hostData: report.hostData, report };
  const store = new Store();
  seed(store, [[T.serviceInfo, SINGLETON, { status: "Open" }]]);
  const gov = await QuickJsConstitution.create(defaultConstitutionSource(), {
    host: new RecordingHost(),
  });
  const apply = (...actions: [string, unknown][]) => {
    const p = proposal(...actions);
    assert.equal(expectOk(gov.validate(store.begin(), p)).valid, true);
    expectOk(inTx(store, (tx) => gov.apply(tx, p, "p")));
  };
  apply(
    ["add_snp_measurement", { measurement: report.measurement }],
    ["add_snp_host_data", { host_data: report.hostData }],
    ["set_snp_minimum_tcb_version_hex", { cpuid: MILAN, tcb_version: report.reportedTcb.hex }],
  );
  const refusal = () => snpJoinRefusal(readSnpJoinPolicy(store.begin()), verified, undefined);
  assert.equal(refusal(), null);
  // The vector's TCB is bootloader 4, tee 0, snp 24, microcode 219: one more snp is too much.
  const higher = { boot_loader: 4, tee: 0, snp: 25, microcode: 219 };
  apply(["set_snp_minimum_tcb_version", { cpuid: MILAN, tcb_version: higher }]);
  assert.match(refusal() ?? "", /snp is 24, below the minimum 25$/);
  apply(["remove_snp_minimum_tcb_version", { cpuid: MILAN }]);
  assert.match(refusal() ?? "", /No minimum TCB version is set for CPUID 00a00f11 \(Milan\)/);
  apply(["remove_snp_measurement", { measurement: report.measurement }]);
  assert.match(refusal() ?? "", /known enclave measurement: measurement 5feee30d/);
});
