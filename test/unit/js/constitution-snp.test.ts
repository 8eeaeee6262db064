// The SEV-SNP join policy actions of the default constitution (constitution/actions-snp.js),
// applied by the QuickJS runner to a real Store: CCF 6's argument shapes, the rows each action
// writes in CCF's key and value encodings, and validation that names the bad argument.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Store } from "../../../src/kv/store.js";
import { QuickJsConstitution } from "../../../src/js/constitution.js";
import { joinPolicyView } from "../../../src/gov/join-policy.js";
import {
  defaultConstitutionSource,
  expectError,
  expectOk,
  inTx,
  proposal,
  readJson,
  readRaw,
  RecordingHost,
  seed,
  SINGLETON,
  T,
} from "../../fixtures/constitution/harness.js";

const SOURCE = defaultConstitutionSource();
const MEASUREMENT = "5f".repeat(48);
const MILAN = "00a00f11";
const GENOA = "00a10f11";
const TURIN = "00b00f11";
const DID =
  "did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.3.6.1.4.1.311.76.59.1.2";

interface World {
  readonly store: Store;
  readonly gov: QuickJsConstitution;
}

async function world(): Promise<World> {
  const store = new Store();
  seed(store, [
    [T.serviceInfo, SINGLETON, { status: "Open" }],
    [T.proposalsInfo, "p1", { proposer_id: "m", state: "Open" }],
    [T.proposalsInfo, "p2", { proposer_id: "m", state: "Open" }],
  ]);
  const host = new RecordingHost();
  return { store, gov: await QuickJsConstitution.create(SOURCE, { host }) };
}

/** Validates, then applies and commits `actions` as proposal "p1"; returns apply's outcome. */
function run(w: World, ...actions: [name: string, args?: unknown][]) {
  const p = proposal(...actions);
  const verdict = expectOk(w.gov.validate(w.store.begin(), p));
  assert.deepEqual(verdict, { valid: true, description: "" }, "validate");
  return inTx(w.store, (tx) => w.gov.apply(tx, p, "p1"));
}

function invalid(w: World, name: string, args: unknown, pattern: RegExp): void {
  const verdict = expectOk(w.gov.validate(w.store.begin(), proposal([name, args])));
  assert.equal(verdict.valid, false, JSON.stringify(args));
  assert.match(verdict.description, pattern);
}

function stateOf(w: World, id: string): string {
  return (readJson(w.store, T.proposalsInfo, id) as { state: string }).state;
}

test("add_snp_measurement stores AllowedToJoin and drops other open proposals; remove deletes", async () => {
  const w = await world();
  expectOk(run(w, ["add_snp_measurement", { measurement: MEASUREMENT }]));
  assert.equal(readJson(w.store, T.snpMeasurements, MEASUREMENT), "AllowedToJoin");
  assert.equal(stateOf(w, "p1"), "Open");
  assert.equal(stateOf(w, "p2"), "Dropped");
  expectOk(run(w, ["remove_snp_measurement", { measurement: MEASUREMENT }]));
  assert.equal(readRaw(w.store, T.snpMeasurements, MEASUREMENT), undefined);
  invalid(w, "add_snp_measurement", {}, /measurement must be of type string/);
  invalid(w, "add_snp_measurement", { measurement: "ab" }, /measurement must be 96 lowercase hex/);
  const upper = MEASUREMENT.toUpperCase();
  invalid(w, "add_snp_measurement", { measurement: upper }, /measurement must be 96 lowercase/);
  invalid(w, "remove_snp_measurement", { measurement: 1 }, /measurement must be of type string/);
});

test("add_snp_host_data stores the security policy, checked against its digest", async () => {
  const w = await world();
  const policy = 'package policy\napi_svn := "0.10.0"\n';
  const digest = createHash("sha256").update(policy).digest("hex");
  const bare = "a1".repeat(32);
  expectOk(
    run(
      w,
      ["add_snp_host_data", { host_data: digest, security_policy: policy }],
      ["add_snp_host_data", { host_data: bare }],
      ["add_snp_host_data", { host_data: "b2".repeat(32), security_policy: "" }],
    ),
  );
  assert.equal(readJson(w.store, T.snpHostData, digest), policy);
  assert.equal(readJson(w.store, T.snpHostData, bare), "");
  assert.equal(readJson(w.store, T.snpHostData, "b2".repeat(32)), "");
  invalid(
    w,
    "add_snp_host_data",
    { host_data: bare, security_policy: policy },
    new RegExp(`security_policy's SHA-256 ${digest} is not host_data ${bare}`),
  );
  invalid(w, "add_snp_host_data", { host_data: "xyz" }, /host_data must be 64 lowercase hex/);
  invalid(w, "add_snp_host_data", { host_data: bare, security_policy: 3 }, /security_policy must/);
  expectOk(run(w, ["remove_snp_host_data", { host_data: digest }]));
  assert.equal(readRaw(w.store, T.snpHostData, digest), undefined);
  assert.equal(readJson(w.store, T.snpHostData, bare), "");
});

test("UVM endorsements are kept per DID as {feed: {svn}}; removing the last feed removes the DID", async () => {
  const w = await world();
  expectOk(
    run(
      w,
      ["add_snp_uvm_endorsement", { did: DID, feed: "ContainerPlat-AMD-UVM", svn: "101" }],
      ["add_snp_uvm_endorsement", { did: DID, feed: "other-feed", svn: "2" }],
    ),
  );
  assert.deepEqual(readJson(w.store, T.snpUvmEndorsements, DID), {
    "ContainerPlat-AMD-UVM": { svn: "101" },
    "other-feed": { svn: "2" },
  });
  expectOk(run(w, ["remove_snp_uvm_endorsement", { did: DID, feed: "other-feed" }]));
  assert.deepEqual(readJson(w.store, T.snpUvmEndorsements, DID), {
    "ContainerPlat-AMD-UVM": { svn: "101" },
  });
  expectOk(run(w, ["remove_snp_uvm_endorsement", { did: DID, feed: "ContainerPlat-AMD-UVM" }]));
  assert.equal(readRaw(w.store, T.snpUvmEndorsements, DID), undefined);
  invalid(w, "add_snp_uvm_endorsement", { did: DID, feed: "f", svn: 101 }, /svn must be of type/);
  invalid(
    w,
    "add_snp_uvm_endorsement",
    { did: DID, feed: "f", svn: "x" },
    /svn must be a string of/,
  );
  invalid(w, "add_snp_uvm_endorsement", { did: "", feed: "f", svn: "1" }, /did must not be empty/);
  invalid(w, "add_snp_uvm_endorsement", { did: DID, svn: "1" }, /feed must be of type string/);
});

test("set_snp_minimum_tcb_version stores the policy under the CPUID; fmc only for Turin", async () => {
  const w = await world();
  const milan = { boot_loader: 4, tee: 0, snp: 22, microcode: 213 };
  const turin = { boot_loader: 1, tee: 1, snp: 1, microcode: 9, fmc: 2 };
  expectOk(
    run(
      w,
      ["set_snp_minimum_tcb_version", { cpuid: MILAN, tcb_version: milan }],
      ["set_snp_minimum_tcb_version", { cpuid: TURIN, tcb_version: turin }],
    ),
  );
  assert.deepEqual(readJson(w.store, T.snpTcbVersions, MILAN), milan);
  assert.deepEqual(readJson(w.store, T.snpTcbVersions, TURIN), turin);
  assert.equal(stateOf(w, "p2"), "Dropped");
  const bad: [unknown, RegExp][] = [
    [{ cpuid: "00A00F11", tcb_version: milan }, /cpuid must be 8 lowercase hex/],
    [{ cpuid: "00a00f1", tcb_version: milan }, /cpuid must be 8 lowercase hex/],
    [{ cpuid: "00800f12", tcb_version: milan }, /cpuid 00800f12 is not the CPUID of a known/],
    [{ cpuid: MILAN }, /tcb_version must be of type object/],
    [{ cpuid: MILAN, tcb_version: { ...milan, tee: "0" } }, /tcb_version.tee must be an integer/],
    [{ cpuid: MILAN, tcb_version: { ...milan, snp: 256 } }, /tcb_version.snp must be an integer/],
    [{ cpuid: MILAN, tcb_version: { tee: 0, snp: 1, microcode: 1 } }, /tcb_version.boot_loader/],
    [{ cpuid: MILAN, tcb_version: { ...milan, bootloader: 1 } }, /tcb_version.bootloader is not/],
    [{ cpuid: GENOA, tcb_version: { ...milan, fmc: 1 } }, /tcb_version.fmc is only for Turin/],
    [{ cpuid: TURIN, tcb_version: milan }, /tcb_version.fmc must be an integer/],
  ];
  for (const [args, pattern] of bad) invalid(w, "set_snp_minimum_tcb_version", args, pattern);
});

test("set_snp_minimum_tcb_version_hex decodes CCF's hex by product; remove needs the CPUID", async () => {
  const w = await world();
  // Milan/Genoa bytes (reversed in the hex): boot_loader, tee, 4 reserved, snp, microcode.
  // Turin: fmc, boot_loader, tee, snp, 3 reserved, microcode.
  expectOk(
    run(
      w,
      ["set_snp_minimum_tcb_version_hex", { cpuid: MILAN, tcb_version: "d315000000000204" }],
      ["set_snp_minimum_tcb_version_hex", { cpuid: TURIN, tcb_version: "0900000004030201" }],
    ),
  );
  assert.deepEqual(readJson(w.store, T.snpTcbVersions, MILAN), {
    boot_loader: 4,
    tee: 2,
    snp: 0x15,
    microcode: 0xd3,
    hexstring: "d315000000000204",
  });
  assert.deepEqual(readJson(w.store, T.snpTcbVersions, TURIN), {
    fmc: 1,
    boot_loader: 2,
    tee: 3,
    snp: 4,
    microcode: 9,
    hexstring: "0900000004030201",
  });
  invalid(
    w,
    "set_snp_minimum_tcb_version_hex",
    { cpuid: MILAN, tcb_version: "d3150000" },
    /tcb_version must be 16 lowercase hex/,
  );
  expectOk(run(w, ["remove_snp_minimum_tcb_version", { cpuid: MILAN }]));
  assert.equal(readRaw(w.store, T.snpTcbVersions, MILAN), undefined);
  const p = proposal(["remove_snp_minimum_tcb_version", { cpuid: GENOA }]);
  expectError(
    inTx(w.store, (tx) => w.gov.apply(tx, p, "p1")),
    /CPUID 00a10f11 not found/,
  );
  invalid(w, "remove_snp_minimum_tcb_version", { cpuid: "zz" }, /cpuid must be 8 lowercase hex/);
});

test("the rows the actions write read back through the typed join policy view", async () => {
  const w = await world();
  const hostData = "c4".repeat(32);
  const tcb = { boot_loader: 3, tee: 0, snp: 8, microcode: 115 };
  expectOk(
    run(
      w,
      ["add_snp_measurement", { measurement: MEASUREMENT }],
      ["add_snp_host_data", { host_data: hostData }],
      ["add_snp_uvm_endorsement", { did: DID, feed: "feed", svn: "7" }],
      ["set_snp_minimum_tcb_version", { cpuid: GENOA, tcb_version: tcb }],
    ),
  );
  assert.deepEqual(joinPolicyView(w.store.begin()).snp, {
    measurements: [MEASUREMENT],
    hostData: { [hostData]: "" },
    uvmEndorsements: { [DID]: { feed: { svn: "7" } } },
    tcbVersions: { [GENOA]: tcb },
  });
});
