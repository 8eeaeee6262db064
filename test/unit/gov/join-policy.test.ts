// The join policy view of GET /gov/service/join-policy (src/gov/join-policy.ts) over a real
// Store: CCF 6's shape, only "AllowedToJoin" measurements, SNP host data as a map to the
// security policy, UVM endorsements per DID and TCB versions per CPUID.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../../../src/kv/store.js";
import { joinPolicyView } from "../../../src/gov/join-policy.js";
import { GOV_MAPS, setById } from "../../../src/gov/tables.js";

test("an empty service has empty policies for every platform", () => {
  assert.deepEqual(joinPolicyView(new Store().begin()), {
    sgx: { measurements: [] },
    snp: { measurements: [], hostData: {}, uvmEndorsements: {}, tcbVersions: {} },
    virtual: { measurements: [], hostData: [] },
  });
});

test("the view lists what governance allowed, per platform", () => {
  const tx = new Store().begin();
  setById(tx, GOV_MAPS.virtualMeasurements, "virtual-m", "AllowedToJoin");
  setById(tx, GOV_MAPS.virtualMeasurements, "virtual-old", "NotAllowed");
  setById(tx, GOV_MAPS.virtualHostData, "cd".repeat(32), "");
  setById(tx, GOV_MAPS.snpMeasurements, "ab".repeat(48), "AllowedToJoin");
  setById(tx, GOV_MAPS.snpMeasurements, "ef".repeat(48), "NotAllowed");
  setById(tx, GOV_MAPS.snpHostData, "01".repeat(32), "package policy");
  setById(tx, GOV_MAPS.snpHostData, "02".repeat(32), "");
  setById(tx, GOV_MAPS.snpUvmEndorsements, "did:x509:0:sha256:abc", { feed: { svn: "101" } });
  const milan = { boot_loader: 4, tee: 0, snp: 22, microcode: 213 };
  setById(tx, GOV_MAPS.snpTcbVersions, "00a00f11", milan);
  assert.deepEqual(joinPolicyView(tx), {
    sgx: { measurements: [] },
    snp: {
      measurements: ["ab".repeat(48)],
      hostData: { ["01".repeat(32)]: "package policy", ["02".repeat(32)]: "" },
      uvmEndorsements: { "did:x509:0:sha256:abc": { feed: { svn: "101" } } },
      tcbVersions: { "00a00f11": milan },
    },
    virtual: { measurements: ["virtual-m"], hostData: ["cd".repeat(32)] },
  });
});
