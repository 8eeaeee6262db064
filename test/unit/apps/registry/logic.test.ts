// The registry's logic as plain functions (apps/registry/src/lib), outside any JS runtime, as an
// app service would run it (issue #14): the byte codecs against Node's Buffer, CPUID and product
// of SNP reports (CCF's Milan / Genoa / Turin values), and the AMD_SEV_SNP_v1 path of
// registerEnclave with a fake SNP verifier (a real RegistryHost over an in-memory KV): binding
// of the verified report_data, hex measurement, host_data, TCB minimums by CPUID or product.
// Oracles: Buffer, node:crypto, the CPUID values CCF documents, the contract in docs/registry.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey } from "node:crypto";
import fc from "fast-check";
import { fromBase64, fromUtf8, toBase64, utf8 } from "../../../../apps/registry/src/lib/codec.js";
import {
  cpuidHex,
  productOf,
  type SnpOutcome,
} from "../../../../apps/registry/src/lib/evidence.js";
import { RegistryError } from "../../../../apps/registry/src/lib/model.js";
import { registerEnclave, type RegistryHost } from "../../../../apps/registry/src/lib/register.js";
import type { RegistryKv } from "../../../../apps/registry/src/lib/store.js";
import { sha256, simulateEnclave } from "../../../helpers/registry-enclave.js";
import { MAPS, USER, policy } from "./harness.js";

test("base64 and UTF-8 codecs agree with Buffer and refuse what is not canonical", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const b64 = Buffer.from(bytes).toString("base64");
      assert.equal(toBase64(bytes), b64);
      assert.deepEqual(fromBase64(b64), bytes);
    }),
  );
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      assert.deepEqual(Buffer.from(utf8(text)), Buffer.from(text, "utf8"));
      assert.equal(fromUtf8(utf8(text)), Buffer.from(text, "utf8").toString("utf8"));
    }),
  );
  for (const bad of ["QQ", "QR==", "Q===", "QQ=A", "Q Q=", "*AAA"])
    assert.equal(fromBase64(bad), null, bad);
  for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
    assert.equal(fromUtf8(new Uint8Array(bad)), null, JSON.stringify(bad));
  }
});

test("CPUID and product of Milan, Genoa and Turin reports", () => {
  assert.equal(cpuidHex(0x19, 0x01, 1), "00a00f11");
  assert.equal(cpuidHex(0x19, 0x11, 1), "00a10f11");
  assert.equal(cpuidHex(0x1a, 0x02, 0), "00b00f20");
  assert.equal(productOf(0x19, 0x01), "Milan");
  assert.equal(productOf(0x19, 0x11), "Genoa");
  assert.equal(productOf(0x1a, 0x02), "Turin");
});

class MemoryKv implements RegistryKv {
  readonly maps = new Map<string, Map<string, { value: string; seqno: number }>>();
  seqno = 1;
  map(name: string) {
    let m = this.maps.get(name);
    if (m === undefined) this.maps.set(name, (m = new Map()));
    return m;
  }
  get(map: string, key: string) {
    return this.map(map).get(key)?.value;
  }
  set(map: string, key: string, value: string) {
    this.map(map).set(key, { value, seqno: this.seqno++ });
  }
  keysWithPrefix(map: string, prefix: string) {
    return [...this.map(map).keys()].filter((k) => k.startsWith(prefix));
  }
  versionOf(map: string, key: string) {
    return this.map(map).get(key)?.seqno;
  }
}

const MEASUREMENT = Buffer.alloc(48, 0x5a);
const TCB = { boot_loader: 4, tee: 0, snp: 24, microcode: 219 };

/** A host whose SNP verifier accepts every quote as a Milan report binding the quote's bytes. */
function snpHost(kv: MemoryKv, hostData = Buffer.alloc(32, 0xcd)): RegistryHost {
  const verifySnp = (quote: Uint8Array): SnpOutcome =>
    quote.length === 0
      ? { kind: "refused", reason: "empty" }
      : {
          kind: "verified",
          report: {
            measurement: MEASUREMENT,
            report_data: Buffer.concat([Buffer.from(quote), Buffer.alloc(32)]),
            host_data: hostData,
            reported_tcb: TCB,
            ...{ cpuid_fam_id: 0x19, cpuid_mod_id: 0x01, cpuid_step: 1 },
          },
        };
  return {
    kv,
    sha256: (d) => createHash("sha256").update(d).digest(),
    verifySnp,
    isPublicKey: (pem) => pem.includes("PUBLIC KEY"),
    publicKeyDer: (pem) => createPublicKey(pem).export({ type: "spki", format: "der" }),
    viewForSeqno: () => 2,
  };
}

/** An SNP registration whose "quote" is the bound hash itself (see snpHost). */
function snpBody(): { body: Uint8Array; enclaveId: string } {
  const e = simulateEnclave({ version: MEASUREMENT.toString("hex").toUpperCase() });
  const body = JSON.parse(e.body) as { evidence: Record<string, string> };
  body.evidence = {
    format: "AMD_SEV_SNP_v1",
    quote: sha256(e.attestedText).toString("base64"),
    endorsements: Buffer.from("-----BEGIN CERTIFICATE-----").toString("base64"),
  };
  return { body: Buffer.from(JSON.stringify(body)), enclaveId: e.enclaveId };
}

function snpPolicy(kv: MemoryKv, extra: Record<string, unknown>): void {
  const p = policy("cc1", {
    version: MEASUREMENT.toString("hex"),
    platforms: ["AMD_SEV_SNP_v1"],
    ...extra,
  });
  kv.set(MAPS.chaincodes, "cc1", JSON.stringify(p));
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err: unknown) {
    if (err instanceof RegistryError) return `${err.status} ${err.code}: ${err.message}`;
    throw err;
  }
  return "accepted";
}

test("SNP: a verified, bound report registers with its hex measurement, TCB, CPUID and product", () => {
  const kv = new MemoryKv();
  snpPolicy(kv, { host_data: ["CD".repeat(32)], min_tcb: { "00a00f11": TCB } });
  const { body, enclaveId } = snpBody();
  const outcome = registerEnclave(snpHost(kv), USER, body);
  assert.equal(outcome.enclaveId, enclaveId);
  const r = JSON.parse(kv.get(MAPS.enclaves, `cc1/${enclaveId}`)!) as { verified: unknown };
  assert.deepEqual(r.verified, {
    format: "AMD_SEV_SNP_v1",
    measurement: MEASUREMENT.toString("hex"),
    host_data: "cd".repeat(32),
    report_data: Buffer.concat([sha256(attestedTextOf(body)), Buffer.alloc(32)]).toString("hex"),
    reported_tcb: TCB,
    product: "Milan",
    cpuid: "00a00f11",
  });
});

function attestedTextOf(body: Uint8Array): string {
  const b = JSON.parse(Buffer.from(body).toString()) as { attested_data: string };
  return Buffer.from(b.attested_data, "base64").toString();
}

test("SNP: refusals of the verifier, the binding, host_data and the TCB minimum", () => {
  const kv = new MemoryKv();
  snpPolicy(kv, { host_data: ["cd".repeat(32)], min_tcb: { milan: { ...TCB, snp: 25 } } });
  const host = snpHost(kv);
  const { body } = snpBody();
  assert.match(
    refusal(() => registerEnclave(host, USER, body)),
    /^403 TcbTooLow: reported TCB snp 24 is below 25/,
  );
  snpPolicy(kv, { min_tcb: { "00a10f11": TCB } });
  assert.match(
    refusal(() => registerEnclave(host, USER, body)),
    /^403 TcbTooLow: no minimum TCB for cpuid 00a00f11/,
  );
  snpPolicy(kv, { host_data: ["ef".repeat(32)] });
  assert.match(
    refusal(() => registerEnclave(host, USER, body)),
    /^403 HostDataNotAllowed/,
  );
  const unbound = JSON.parse(Buffer.from(body).toString()) as { evidence: { quote: string } };
  unbound.evidence.quote = Buffer.alloc(32, 1).toString("base64");
  const other = Buffer.from(JSON.stringify(unbound));
  assert.match(
    refusal(() => registerEnclave(host, USER, other)),
    /^401 ReportDataMismatch/,
  );
  snpPolicy(kv, {});
  assert.equal(
    refusal(() => registerEnclave(host, USER, body)),
    "accepted",
  );
});
