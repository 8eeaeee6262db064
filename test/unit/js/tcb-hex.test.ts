// ccf.tcbHexToPolicy (src/js/tcb-hex.ts, installed by ccf-globals.ts) run in the real sandbox:
// CCF's hex form decoded by the CPUID's product (Milan/Genoa: boot_loader, tee, 4 reserved,
// snp, microcode; Turin: fmc, boot_loader, tee, snp, 3 reserved, microcode; the hex is the bytes
// reversed), in CCF's key order, and bad arguments as TypeErrors. The Milan vector's reported
// TCB db18000000000004 is bootloader 4, tee 0, snp 24, microcode 219 (test/fixtures/snp).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../../../src/kv/store.js";
import { ccfGlobalsSetup } from "../../../src/js/ccf-globals.js";
import { JsSandbox, type JsonValue, type JsOutcome } from "../../../src/js/sandbox.js";

const SCRIPT = `
export function policy(...args) {
  const p = ccf.tcbHexToPolicy(...args);
  return { keys: Object.keys(p), policy: p };
}
export function error(...args) {
  try { ccf.tcbHexToPolicy(...args); return null; } catch (e) { return [e.name, e.message]; }
}`;

const box = await JsSandbox.create({ "t.js": SCRIPT }, { limits: { deadlineMs: 1000 } });

function call(exportName: string, args: JsonValue[]): JsonValue | undefined {
  const outcome: JsOutcome = box.call({
    module: "t.js",
    exportName,
    args,
    setup: ccfGlobalsSetup({ tx: new Store().begin(), access: { mode: "read-only" } }),
  });
  assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
  return (outcome as { value: JsonValue | undefined }).value;
}

test("Milan and Genoa hex decodes to CCF's policy, keys in CCF's order", () => {
  assert.deepEqual(call("policy", ["00a00f11", "db18000000000004"]), {
    keys: ["hexstring", "microcode", "snp", "tee", "boot_loader"],
    policy: { hexstring: "db18000000000004", microcode: 219, snp: 24, tee: 0, boot_loader: 4 },
  });
  const genoa = call("policy", ["00a10f11", "5400000000000003"]) as { policy: unknown };
  assert.deepEqual(genoa.policy, {
    hexstring: "5400000000000003",
    microcode: 0x54,
    snp: 0,
    tee: 0,
    boot_loader: 3,
  });
});

test("Turin hex has an fmc, last", () => {
  assert.deepEqual(call("policy", ["00b00f11", "0900000004030201"]), {
    keys: ["hexstring", "microcode", "snp", "tee", "boot_loader", "fmc"],
    policy: { hexstring: "0900000004030201", microcode: 9, snp: 4, tee: 3, boot_loader: 2, fmc: 1 },
  });
});

test("bad arguments are TypeErrors naming what is wrong", () => {
  const cases: [JsonValue[], RegExp][] = [
    [["00a00f11"], /^Passed 1 arguments, but expected 2$/],
    [[1, "db18000000000004"], /^CPUID could not be parsed$/],
    [["00a00f11", 5], /^TCB could not be parsed/],
    [["00a00f1", "db18000000000004"], /CPUID "00a00f1" is not 8 hex digits/],
    [["00800f11", "db18000000000004"], /CPUID 00800f11 is not an SEV-SNP product/],
    [["00a00f11", "db180000"], /TCB version "db180000" is not 16 hex digits/],
  ];
  for (const [args, pattern] of cases) {
    const [name, message] = call("error", args) as [string, string];
    assert.equal(name, "TypeError", message);
    assert.match(message, pattern);
  }
});
