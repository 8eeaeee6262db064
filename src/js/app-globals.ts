/**
 * The JS application additions to the `ccf` global (ccf-compatibility.md §9, CCF's
 * js/ccf-app/src/global.ts), installed on top of the `ccf` of ccf-globals.ts for one request:
 * - `ccf.rpc.setApplyWrites(bool)` (commit the writes, or not, whatever the status: without
 *   it, writes commit on a 2xx answer) and
 *   `ccf.rpc.setClaimsDigest(ArrayBuffer)` (32 bytes, recorded in the transaction's leaf);
 * - `ccf.consensus.getLastCommittedTxId()`, `getStatusForTxId(view, seqno)` and
 *   `getViewForSeqno(seqno)`, answered by the node through JsAppServices;
 * - `ccf.enableUntrustedDateTime(bool)` (returns the previous setting): until it is enabled,
 *   `Date.now()` and `new Date()` give the epoch, as CCF's runtime does; `ccf.enableMetricsLogging`
 *   is accepted and does nothing;
 * - `ccf.historicalState` in historical endpoints: `{transactionId, receipt, kv}`, where `kv`
 *   reads what that transaction wrote (get/has; writing, forEach and size throw);
 * - `ccf.historical.getStateRange(handle, from, to, expirySeconds)`: the committed states of
 *   seqnos from..to as `[{transactionId, receipt, kv}]` (kv as in historicalState), or null
 *   while the node cannot give them yet (the range is not committed); `dropCachedStates(handle)`
 *   forgets what the node keeps for the handle. Both are answered by JsAppServices; without them
 *   (validation) they throw "not supported";
 * - the global `snp_attestation` (imported by @microsoft/ccf-app's snp_attestation module):
 *   `verifySnpAttestation(evidence, endorsements, uvm_endorsements?, endorsed_tcb?)` verifies a
 *   raw SEV-SNP report with the node's verifier and returns SnpAttestationResult (app-snp.ts);
 *   a report that does not verify is a RangeError with the reason.
 *
 * The request's effects (apply-writes, claims digest) are collected in a JsAppRequestState that
 * the caller reads after the call. As in gov-globals.ts, a guest script builds the objects over
 * host primitives that never become globals; the primitives check their arguments again.
 */
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { newHostFunction, type HostFunctionResult, newGuestArrayBuffer } from "./host-function.js";
import { JsSandboxError, JsSandboxErrorCode } from "./sandbox.js";
import { SNP_BYTE_FIELDS, verifySnpAttestation } from "./app-snp.js";

/** What a JS app may learn from the node about consensus. */
export interface JsAppServices {
  lastCommittedTxId(): { view: number; seqno: number };
  /** CCF's TxStatus: "Unknown", "Pending", "Committed" or "Invalid". */
  statusForTxId(view: number, seqno: number): string;
  /** The view of `seqno`, or null when this node does not know it. */
  viewForSeqno(seqno: number): number | null;
  /** ccf.historical.getStateRange: the states of seqnos from..to, or null (not available yet). */
  stateRange?(handle: number, from: number, to: number): JsHistoricalState[] | null;
  /** ccf.historical.dropCachedStates: whether anything was kept for `handle`. */
  dropCachedStates?(handle: number): boolean;
}

/** The committed transaction a historical endpoint reads (CCF's HistoricalState). */
export interface JsHistoricalState {
  /** "view.seqno". */
  readonly transactionId: string;
  /** CCF's receipt object, or null when it is no longer held. */
  readonly receipt: unknown;
  /** What the transaction wrote to (map, key); undefined when it wrote nothing there or removed. */
  get(map: string, key: Uint8Array): Uint8Array | undefined;
}

/** Effects a handler asks for through `ccf.rpc`; read by the caller after the call. */
export interface JsAppRequestState {
  /** ccf.rpc.setApplyWrites: null until called; then it decides whether writes commit. */
  applyWrites: boolean | null;
  claimsDigest: Uint8Array | null;
  /**
   * The states ccf.historical.getStateRange fetched during the request, by slot. The owner of a
   * reused interpreter empties it before each request, so states never outlive their request.
   */
  rangeStates?: JsHistoricalState[];
}

export const CLAIMS_DIGEST_BYTES = 32;

const GUEST_SOURCE = String.raw`(function (p, base) {
  "use strict";
  let untrustedDateTime = false;
  const RealDate = Date;
  const now = () => (untrustedDateTime ? RealDate.now() : 0);
  function CcfDate(...args) {
    if (new.target === undefined) return new RealDate(now()).toString();
    return Reflect.construct(RealDate, args.length === 0 ? [now()] : args, new.target);
  }
  CcfDate.prototype = RealDate.prototype;
  CcfDate.now = now;
  CcfDate.parse = RealDate.parse;
  CcfDate.UTC = RealDate.UTC;
  Object.defineProperty(RealDate.prototype, "constructor", { value: CcfDate });
  globalThis.Date = CcfDate;
  const readOnly = () => { throw new Error("historical state is read-only"); };
  function historicalKv(read) {
    const maps = new Map();
    const makeMap = (name) => Object.freeze({
      get(k) {
        if (!(k instanceof ArrayBuffer)) throw new TypeError("key must be an ArrayBuffer");
        return read(name, k);
      },
      has(k) { return this.get(k) !== undefined; },
      set: readOnly, delete: readOnly, clear: readOnly,
      forEach() { throw new Error("forEach is not supported on historical state"); },
      get size() { throw new Error("size is not supported on historical state"); },
      getVersionOfPreviousWrite() { return undefined; },
    });
    return new Proxy(Object.create(null), {
      get(_target, name) {
        if (typeof name !== "string") return undefined;
        if (!maps.has(name)) maps.set(name, makeMap(name));
        return maps.get(name);
      },
    });
  }
  function historicalState() {
    if (p.historicalInfo === undefined) return {};
    const info = JSON.parse(p.historicalInfo());
    const kv = historicalKv((name, k) => p.historicalGet(name, k));
    const state = { transactionId: info.transactionId, receipt: info.receipt, kv };
    return { historicalState: Object.freeze(state) };
  }
  function uint(v, what) {
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(what + " must be an integer >= 0");
    return v;
  }
  function getStateRange(handle, from, to, expirySeconds) {
    if (p.stateRange === undefined) notSupported("ccf.historical.getStateRange")();
    uint(handle, "handle");
    if (uint(from, "startSeqno") < 1) throw new RangeError("startSeqno must be >= 1");
    if (uint(to, "endSeqno") < from) throw new RangeError("endSeqno must be >= startSeqno");
    if (expirySeconds !== undefined) uint(expirySeconds, "secondsUntilExpiry");
    const infos = JSON.parse(p.stateRange(handle, from, to));
    if (infos === null) return null;
    return infos.map((info) => Object.freeze({
      transactionId: info.transactionId,
      receipt: info.receipt,
      kv: historicalKv((name, k) => p.rangeGet(info.slot, name, k)),
    }));
  }
  function dropCachedStates(handle) {
    if (p.dropCachedStates === undefined) notSupported("ccf.historical.dropCachedStates")();
    return p.dropCachedStates(uint(handle, "handle"));
  }
  function hexToBuf(hex) {
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(2 * i, 2), 16);
    return bytes.buffer;
  }
  function verifySnpAttestation(evidence, endorsements, uvmEndorsements, endorsedTcb) {
    const n = arguments.length;
    if (n < 2 || n > 4) {
      throw new TypeError("Passed " + n + " arguments, but expected between 2 and 4");
    }
    const buffer = (v, what) => {
      if (!(v instanceof ArrayBuffer)) throw new TypeError(what + " must be an ArrayBuffer");
      return v;
    };
    buffer(evidence, "evidence");
    buffer(endorsements, "endorsements");
    if (uvmEndorsements !== undefined) buffer(uvmEndorsements, "uvm_endorsements");
    if (endorsedTcb !== undefined && typeof endorsedTcb !== "string") {
      throw new TypeError("endorsed_tcb must be a string");
    }
    const result = JSON.parse(
      p.verifySnpAttestation(evidence, endorsements, uvmEndorsements, endorsedTcb),
    );
    const a = result.attestation;
    for (const field of ${JSON.stringify(SNP_BYTE_FIELDS)}) a[field] = hexToBuf(a[field]);
    a.signature = { r: hexToBuf(a.signature.r), s: hexToBuf(a.signature.s) };
    return result;
  }
  globalThis.snp_attestation = Object.freeze({ verifySnpAttestation });
  function notSupported(what) {
    return () => { throw new Error(what + " is not supported by JS apps on Consortia yet"); };
  }
  return Object.freeze({
    ...base,
    ...historicalState(),
    rpc: Object.freeze({
      setApplyWrites(v) { p.setApplyWrites(v === true); },
      setClaimsDigest(b) {
        if (!(b instanceof ArrayBuffer)) throw new TypeError("setClaimsDigest: ArrayBuffer needed");
        p.setClaimsDigest(b);
      },
    }),
    consensus: Object.freeze({
      getLastCommittedTxId() { return JSON.parse(p.lastCommittedTxId()); },
      getStatusForTxId(view, seqno) { return p.statusForTxId(Number(view), Number(seqno)); },
      getViewForSeqno(seqno) { return p.viewForSeqno(Number(seqno)); },
    }),
    historical: Object.freeze({ getStateRange, dropCachedStates }),
    enableUntrustedDateTime(v) {
      const previous = untrustedDateTime;
      untrustedDateTime = v === true;
      return previous;
    },
    enableMetricsLogging(v) { return false; },
  });
})`;

type Primitive = (...args: QuickJSHandle[]) => HostFunctionResult;

/** Replaces the global `ccf` (installed by installCcfGlobals) with one carrying the additions. */
export function installAppGlobals(
  ctx: QuickJSContext,
  state: JsAppRequestState,
  services: JsAppServices,
  historical?: JsHistoricalState,
): void {
  const prims = ctx.newObject();
  const base = ctx.getProp(ctx.global, "ccf");
  try {
    const all = {
      ...primitives(ctx, state, services),
      ...(historical === undefined ? {} : historicalPrimitives(ctx, historical)),
      ...rangePrimitives(ctx, services, state),
    };
    for (const [name, impl] of Object.entries(all)) {
      const fn = newHostFunction(ctx, name, impl);
      ctx.setProp(prims, name, fn);
      fn.dispose();
    }
    const factory = ctx.evalCode(GUEST_SOURCE, "<app-globals>");
    if (factory.error !== undefined) throw setupError(ctx, factory.error);
    const ccf = ctx.callFunction(factory.value, ctx.undefined, prims, base);
    factory.value.dispose();
    if (ccf.error !== undefined) throw setupError(ctx, ccf.error);
    ctx.setProp(ctx.global, "ccf", ccf.value);
    ccf.value.dispose();
  } finally {
    base.dispose();
    prims.dispose();
  }
}

function setupError(ctx: QuickJSContext, error: QuickJSHandle): JsSandboxError {
  const dumped = ctx.dump(error) as { message?: unknown } | null;
  error.dispose();
  const message = typeof dumped?.message === "string" ? dumped.message : String(dumped);
  return new JsSandboxError(
    { code: JsSandboxErrorCode.SetupFailed, setup: "app globals" },
    `installing app globals failed: ${message}`,
  );
}

function primitives(
  ctx: QuickJSContext,
  state: JsAppRequestState,
  services: JsAppServices,
): Record<string, Primitive> {
  const num = (h: QuickJSHandle | undefined, what: string): number => {
    const n = h === undefined ? Number.NaN : ctx.getNumber(h);
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`${what} must be an integer`);
    return n;
  };
  return {
    setApplyWrites: (v) => {
      state.applyWrites = v !== undefined && ctx.dump(v) === true;
    },
    setClaimsDigest: (b) => {
      if (b === undefined) throw new TypeError("setClaimsDigest needs an ArrayBuffer");
      const view = ctx.getArrayBuffer(b);
      const digest = view.value.slice();
      view.dispose();
      if (digest.length !== CLAIMS_DIGEST_BYTES) {
        throw new TypeError(`a claims digest has ${CLAIMS_DIGEST_BYTES} bytes`);
      }
      state.claimsDigest = digest;
    },
    verifySnpAttestation: (...args) => snpPrimitive(ctx, args),
    lastCommittedTxId: () => ctx.newString(JSON.stringify(services.lastCommittedTxId())),
    statusForTxId: (view, seqno) =>
      ctx.newString(services.statusForTxId(num(view, "view"), num(seqno, "seqno"))),
    viewForSeqno: (seqno) => {
      const view = services.viewForSeqno(num(seqno, "seqno"));
      return view === null ? ctx.null : ctx.newNumber(view);
    },
  };
}

/** A copy of the guest ArrayBuffer `h`, or undefined when `h` is undefined. */
function guestBytes(ctx: QuickJSContext, h: QuickJSHandle | undefined): Uint8Array | undefined {
  if (h === undefined || ctx.typeof(h) === "undefined") return undefined;
  const view = ctx.getArrayBuffer(h);
  const bytes = view.value.slice();
  view.dispose();
  return bytes;
}

/** snp_attestation.verifySnpAttestation behind the guest's argument checks; JSON out. */
function snpPrimitive(ctx: QuickJSContext, args: QuickJSHandle[]): QuickJSHandle {
  const [evidence, endorsements, uvm, tcb] = args;
  const evidenceBytes = guestBytes(ctx, evidence);
  const endorsementBytes = guestBytes(ctx, endorsements);
  if (evidenceBytes === undefined || endorsementBytes === undefined) {
    throw new TypeError("evidence and endorsements must be ArrayBuffers");
  }
  const endorsedTcb =
    tcb === undefined || ctx.typeof(tcb) === "undefined" ? undefined : ctx.getString(tcb);
  const result = verifySnpAttestation(
    {
      evidence: evidenceBytes,
      endorsements: endorsementBytes,
      uvmEndorsements: guestBytes(ctx, uvm),
      endorsedTcb,
    },
    new Date(),
  );
  return ctx.newString(JSON.stringify(result));
}

/** `state.get(map, key)` for the guest: key bytes in, a copy of the value (or undefined) out. */
function readHistorical(
  ctx: QuickJSContext,
  state: JsHistoricalState,
  name: QuickJSHandle | undefined,
  key: QuickJSHandle | undefined,
): QuickJSHandle {
  if (name === undefined || key === undefined) throw new TypeError("map and key needed");
  const view = ctx.getArrayBuffer(key);
  const bytes = view.value.slice();
  view.dispose();
  const value = state.get(ctx.getString(name), bytes);
  if (value === undefined) return ctx.undefined;
  return newGuestArrayBuffer(ctx, value);
}

function historicalPrimitives(
  ctx: QuickJSContext,
  historical: JsHistoricalState,
): Record<string, Primitive> {
  return {
    historicalInfo: () =>
      ctx.newString(
        JSON.stringify({ transactionId: historical.transactionId, receipt: historical.receipt }),
      ),
    historicalGet: (name, key) => readHistorical(ctx, historical, name, key),
  };
}

/** ccf.historical over `services`; the states a call fetched are kept (by slot) in `state`. */
function rangePrimitives(
  ctx: QuickJSContext,
  services: JsAppServices,
  state: JsAppRequestState,
): Record<string, Primitive> {
  const { stateRange, dropCachedStates } = services;
  if (stateRange === undefined || dropCachedStates === undefined) return {};
  const int = (h: QuickJSHandle | undefined): number => {
    const n = h === undefined ? Number.NaN : ctx.getNumber(h);
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError("an integer >= 0 is needed");
    return n;
  };
  return {
    stateRange: (handle, from, to) => {
      const states = stateRange.call(services, int(handle), int(from), int(to));
      if (states === null) return ctx.newString("null");
      const slots = (state.rangeStates ??= []);
      const infos = states.map((fetched) => {
        slots.push(fetched);
        return {
          slot: slots.length - 1,
          transactionId: fetched.transactionId,
          receipt: fetched.receipt,
        };
      });
      return ctx.newString(JSON.stringify(infos));
    },
    rangeGet: (slot, name, key) => {
      const fetched = state.rangeStates?.[int(slot)];
      if (fetched === undefined) throw new TypeError("no such historical state");
      return readHistorical(ctx, fetched, name, key);
    },
    dropCachedStates: (handle) =>
      dropCachedStates.call(services, int(handle)) ? ctx.true : ctx.false,
  };
}
