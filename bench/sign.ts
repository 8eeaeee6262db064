/**
 * `node --import tsx bench/sign.ts [--runs 3] [--iterations 2000]`
 *
 * Microbenchmark of the two signatures a signature transaction makes (tx-pipeline.ts
 * writeSignatureMaps): signDigest over a 32-byte root with the node key, and signSign1Detached
 * (CCF's COSE root signature) with the service key, on P-256 and P-384. Reports per-call CPU
 * microseconds (process.cpuUsage, user + system, so other engineers' load on the shared machine
 * does not count) per run, and for "both" the cost of one signature transaction's signing.
 * Digests vary per iteration so no result is reused; 200 warm-up signatures per key come first.
 * For comparison, "noble" is the pure-JS @noble/curves signing signDigest used before (same
 * bytes out), on the same digests.
 */
import { createHash, type KeyObject } from "node:crypto";
import { p256, p384 } from "@noble/curves/nist.js";
import { parseArgs } from "node:util";
import { signSign1Detached } from "../src/crypto/cose.js";
import { signDigest } from "../src/crypto/ecdsa.js";
import { generateEcKeyPair, type EcCurveName } from "../src/crypto/identity.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    iterations: { type: "string", default: "2000" },
  },
});
const runs = Number(values.runs);
const iterations = Number(values.iterations);

function roots(count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    out.push(new Uint8Array(createHash("sha256").update(`root ${i} ${Math.random()}`).digest()));
  }
  return out;
}

function cpuMicros(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function scalarOf(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: "jwk" }).d!, "base64url"));
}

const HEADER = [
  [15, new Map([[1, "service"]])],
  ["ccf.v1", new Map([["txid", "2.42"]])],
] as const;

for (const curve of ["secp256r1", "secp384r1"] as EcCurveName[]) {
  const node = generateEcKeyPair(curve).privateKey;
  const service = generateEcKeyPair(curve).privateKey;
  const n = curve === "secp384r1" ? Math.max(200, Math.floor(iterations / 4)) : iterations;
  // Warm-up (JIT, per-key caches), not measured.
  for (const root of roots(200)) {
    signDigest(node, root);
    signSign1Detached(service, HEADER, root);
  }
  const noble = curve === "secp384r1" ? p384 : p256;
  const scalar = scalarOf(node);
  for (let run = 1; run <= runs; run++) {
    const input = roots(n);
    const before = cpuMicros(() =>
      input.forEach((root) => noble.sign(root, scalar, { prehash: false, lowS: true })),
    );
    const der = cpuMicros(() => input.forEach((root) => signDigest(node, root))) / n;
    const cose =
      cpuMicros(() => input.forEach((root) => signSign1Detached(service, HEADER, root))) / n;
    console.log(
      `${curve} run ${run}: signDigest ${der.toFixed(1)} us, ` +
        `signSign1Detached ${cose.toFixed(1)} us, ` +
        `both ${(der + cose).toFixed(1)} us; noble ${(before / n).toFixed(1)} us (${n} iterations)`,
    );
  }
}
