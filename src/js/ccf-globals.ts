/**
 * The `ccf` global of governance scripts and JS apps (ccf-compatibility.md §4.2 and §9, CCF's
 * js/ccf-app/src/global.ts), over a KvTx (kv-tx.ts: our KV transaction, or an app server's
 * RemoteTx):
 * - `ccf.kv[name]` is a map with get/has/set/delete/clear/forEach/size/getVersionOfPreviousWrite;
 *   keys and values are ArrayBuffers (anything else is a TypeError) and are copied across the
 *   WASM boundary both ways, so the guest never aliases bytes the kv owns;
 * - `ccf.strToBuf/bufToStr/jsonCompatibleToBuf/bufToJsonCompatible` (UTF-8, JSON);
 * - `ccf.crypto.digest("SHA-256", buf)` and `ccf.pemToId(pem)` (hex SHA-256 of the cert DER);
 * - `ccf.tcbHexToPolicy(cpuid, tcbHex)`: an SEV-SNP TCB version's policy (tcb-hex.ts).
 *
 * Write access is a policy, read at every write so a binding can be re-pointed at the next tx:
 * read-only (validate, resolve, ballots) or read-write, optionally limited to map-name prefixes
 * (apply may write gov tables and public app tables only). A refused write throws a JS Error
 * whose message says the map "is read-only" (a JsHostError on the host side).
 *
 * The guest-facing objects are built by a small guest script over host primitives that never
 * become globals; the primitives check policy and types again, so the script is not trusted.
 */
import type { QuickJSContext, QuickJSHandle, VmCallResult } from "quickjs-emscripten-core";
import { fromUtf8, utf8 } from "../base/bytes.js";
import { sha256 } from "../crypto/hash.js";
import { memberIdFromCert } from "../crypto/identity.js";
import { tcbHexToPolicy } from "./tcb-hex.js";
import type { MapHandle } from "../kv/tx.js";
import type { KvTx } from "./kv-tx.js";
import {
  JsHostError,
  JsHostErrorCode,
  newHostFunction,
  type HostFunctionResult,
  newGuestArrayBuffer,
} from "./host-function.js";
import { JsSandboxError, JsSandboxErrorCode, type ContextSetup } from "./sandbox.js";

export type KvAccess =
  | { readonly mode: "read-only" }
  | {
      readonly mode: "read-write";
      /** When present, only maps whose name starts with one of these may be written. */
      readonly writablePrefixes?: readonly string[];
      /** Maps starting with one of these are never written (checked after writablePrefixes). */
      readonly readOnlyPrefixes?: readonly string[];
    };

/** What the globals act on. Mutable on purpose: a reused context is re-bound per tx. */
export interface CcfBinding {
  tx: KvTx;
  access: KvAccess;
}

/** Why `access` forbids writing map `name`, or null when it allows it. */
export function writeDenial(access: KvAccess, name: string): string | null {
  const shown = (): string => JSON.stringify(name);
  if (access.mode === "read-only") return `map ${shown()} is read-only in this context`;
  const writable = access.writablePrefixes;
  if (writable !== undefined && !writable.some((prefix) => name.startsWith(prefix))) {
    const allowed = writable.map((p) => JSON.stringify(p)).join(", ");
    return `map ${shown()} is read-only here: writes are limited to maps starting with ${allowed}`;
  }
  const denied = access.readOnlyPrefixes?.find((prefix) => name.startsWith(prefix));
  if (denied !== undefined) {
    return `map ${shown()} is read-only here: maps starting with ${JSON.stringify(denied)} are`;
  }
  return null;
}

/** A ContextSetup for JsSandbox.call that installs `ccf` over `binding`. */
export function ccfGlobalsSetup(binding: CcfBinding): ContextSetup {
  return (ctx) => installCcfGlobals(ctx, binding);
}

/**
 * Guest side: builds `ccf` from the primitives `p`. Key and value types are checked here for
 * clear messages; a Proxy turns any string property of ccf.kv into that map.
 */
const GUEST_SOURCE = String.raw`(function (p) {
  "use strict";
  function need(x, what, name) {
    if (!(x instanceof ArrayBuffer)) {
      const where = "ccf.kv[" + JSON.stringify(name) + "]: ";
      throw new TypeError(where + what + " must be an ArrayBuffer");
    }
  }
  function makeMap(name) {
    const map = {
      get(k) { need(k, "key", name); return p.kvGet(name, k); },
      has(k) { need(k, "key", name); return p.kvHas(name, k); },
      set(k, v) { need(k, "key", name); need(v, "value", name); p.kvSet(name, k, v); return map; },
      delete(k) { need(k, "key", name); return p.kvDelete(name, k); },
      clear() { p.kvClear(name); },
      forEach(cb) {
        if (typeof cb !== "function") throw new TypeError("forEach needs a function");
        p.kvForEach(name, (v, k) => { cb(v, k, map); });
      },
      get size() { return p.kvSize(name); },
      getVersionOfPreviousWrite(k) { need(k, "key", name); return p.kvVersion(name, k); },
    };
    return Object.freeze(map);
  }
  const maps = new Map();
  const kv = new Proxy(Object.create(null), {
    get(_target, name) {
      if (typeof name !== "string") return undefined;
      let map = maps.get(name);
      if (map === undefined) {
        p.kvOpen(name);
        map = makeMap(name);
        maps.set(name, map);
      }
      return map;
    },
    set() { throw new TypeError("ccf.kv cannot be assigned to"); },
    defineProperty() { throw new TypeError("ccf.kv cannot be assigned to"); },
    deleteProperty() { throw new TypeError("ccf.kv cannot be assigned to"); },
  });
  function bufToStr(b) {
    if (!(b instanceof ArrayBuffer)) throw new TypeError("bufToStr needs an ArrayBuffer");
    return p.bufToStr(b);
  }
  return Object.freeze({
    kv,
    strToBuf(s) {
      if (typeof s !== "string") throw new TypeError("strToBuf needs a string");
      return p.strToBuf(s);
    },
    bufToStr,
    jsonCompatibleToBuf(v) { return p.strToBuf(JSON.stringify(v)); },
    bufToJsonCompatible(b) { return JSON.parse(bufToStr(b)); },
    crypto: Object.freeze({
      digest(algorithm, b) {
        if (!(b instanceof ArrayBuffer)) throw new TypeError("digest needs an ArrayBuffer");
        return p.digest(String(algorithm), b);
      },
    }),
    pemToId(pem) {
      if (typeof pem !== "string") throw new TypeError("pemToId needs a PEM string");
      return p.pemToId(pem);
    },
    tcbHexToPolicy(cpuid, tcb) {
      const n = arguments.length;
      if (n !== 2) throw new TypeError("Passed " + n + " arguments, but expected 2");
      if (typeof cpuid !== "string") throw new TypeError("CPUID could not be parsed");
      if (typeof tcb !== "string") throw new TypeError("TCB could not be parsed from hex_str");
      return JSON.parse(p.tcbHexToPolicy(cpuid, tcb));
    },
  });
})`;

type Primitive = (...args: QuickJSHandle[]) => HostFunctionResult;

/** Installs `ccf` as a global of `ctx`; every temporary handle is disposed. */
export function installCcfGlobals(ctx: QuickJSContext, binding: CcfBinding): void {
  const prims = ctx.newObject();
  try {
    for (const [name, impl] of Object.entries(primitives(ctx, binding))) {
      const fn = newHostFunction(ctx, name, impl);
      ctx.setProp(prims, name, fn);
      fn.dispose();
    }
    const factory = ctx.evalCode(GUEST_SOURCE, "<ccf-globals>");
    if (factory.error !== undefined) throw hostError(ctx, factory.error);
    const ccf = ctx.callFunction(factory.value, ctx.undefined, prims);
    factory.value.dispose();
    if (ccf.error !== undefined) throw hostError(ctx, ccf.error);
    ctx.setProp(ctx.global, "ccf", ccf.value);
    ccf.value.dispose();
  } finally {
    prims.dispose();
  }
}

/** Only a broken context (e.g. out of memory) fails to run the guest script; keep the message. */
function hostError(ctx: QuickJSContext, error: QuickJSHandle): JsSandboxError {
  const dumped = ctx.dump(error) as { message?: unknown } | null;
  error.dispose();
  const message = typeof dumped?.message === "string" ? dumped.message : String(dumped);
  return new JsSandboxError(
    { code: JsSandboxErrorCode.SetupFailed, setup: "ccf globals" },
    `installing ccf globals failed: ${message}`,
  );
}

function primitives(ctx: QuickJSContext, binding: CcfBinding): Record<string, Primitive> {
  const str = (h: QuickJSHandle | undefined): string => (h === undefined ? "" : ctx.getString(h));
  const bytes = (h: QuickJSHandle | undefined): Uint8Array => {
    if (h === undefined) throw new TypeError("missing ArrayBuffer argument");
    const view = ctx.getArrayBuffer(h);
    try {
      return view.value.slice(); // a copy: the view points into WASM memory
    } finally {
      view.dispose();
    }
  };
  const buf = (b: Uint8Array): QuickJSHandle => newGuestArrayBuffer(ctx, b);
  const writable = (name: string): MapHandle => {
    const denial = writeDenial(binding.access, name);
    if (denial !== null) {
      throw new JsHostError({ code: JsHostErrorCode.WriteDenied, map: name }, denial);
    }
    return binding.tx.rw(name);
  };
  const bool = (b: boolean): QuickJSHandle => (b ? ctx.true : ctx.false);
  return {
    kvOpen: (n) => void binding.tx.ro(str(n)),
    kvGet: (n, k) => {
      const value = binding.tx.ro(str(n)).get(bytes(k));
      return value === undefined ? ctx.undefined : buf(value);
    },
    kvHas: (n, k) => bool(binding.tx.ro(str(n)).has(bytes(k))),
    kvSet: (n, k, v) => void writable(str(n)).set(bytes(k), bytes(v)),
    kvDelete: (n, k) => bool(writable(str(n)).delete(bytes(k))),
    kvClear: (n) => void writable(str(n)).clear(),
    kvSize: (n) => ctx.newNumber(binding.tx.ro(str(n)).size),
    kvVersion: (n, k) => {
      const seqno = binding.tx.ro(str(n)).getVersionOfPreviousWrite(bytes(k));
      return seqno === undefined ? ctx.undefined : ctx.newNumber(seqno);
    },
    kvForEach: (n, cb) => {
      const map = binding.tx.ro(str(n));
      return forEachEntry(ctx, (visit) => map.forEach(visit), cb, buf);
    },
    strToBuf: (s) => buf(utf8(str(s))),
    bufToStr: (b) => ctx.newString(fromUtf8(bytes(b))),
    digest: (alg, b) => {
      const algorithm = str(alg);
      if (algorithm !== "SHA-256") {
        throw new JsHostError(
          { code: JsHostErrorCode.UnsupportedAlgorithm, algorithm },
          `unsupported digest algorithm ${algorithm}`,
        );
      }
      return buf(sha256(bytes(b)));
    },
    pemToId: (pem) => ctx.newString(memberIdFromCert(str(pem))),
    tcbHexToPolicy: (cpuid, tcb) =>
      ctx.newString(JSON.stringify(tcbHexToPolicy(str(cpuid), str(tcb)))),
  };
}

/**
 * Calls the guest callback for each entry; after the first guest exception (or interrupt) no
 * further entry is visited, and the exception is rethrown into the guest.
 */
function forEachEntry(
  ctx: QuickJSContext,
  forEach: (visit: (value: Uint8Array, key: Uint8Array) => void) => void,
  callback: QuickJSHandle | undefined,
  buf: (b: Uint8Array) => QuickJSHandle,
): VmCallResult<QuickJSHandle> | undefined {
  if (callback === undefined) throw new TypeError("forEach needs a function");
  let failure: QuickJSHandle | undefined;
  forEach((value, key) => {
    // After the first guest exception the remaining entries are passed over: the iteration
    // ends by data, not by throwing through MapHandle.forEach.
    if (failure !== undefined) return;
    const valueHandle = buf(value);
    const keyHandle = buf(key);
    const result = ctx.callFunction(callback, ctx.undefined, valueHandle, keyHandle);
    valueHandle.dispose();
    keyHandle.dispose();
    if (result.error !== undefined) {
      failure = result.error;
      return;
    }
    result.value.dispose();
  });
  return failure === undefined ? undefined : { error: failure };
}
