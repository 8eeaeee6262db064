/**
 * The governance additions to the `ccf` global (ccf-compatibility.md §4.2), installed on top of
 * the `ccf` of ccf-globals.ts:
 * - `ccf.crypto.isValidX509CertBundle(pem)`: every PEM block parses as an X.509 certificate
 *   (node:crypto, through src/crypto); validity dates are not checked, as in CCF;
 * - `ccf.gov.validateConstitution(src)`: the source evaluates as a module whose validate,
 *   resolve and apply exports are functions; throws a JS Error saying why otherwise;
 * - `ccf.node.*` and `ccf.network.*` (only when a GovHost is given, i.e. in apply): forwarded to
 *   the injected GovHost. ArrayBuffer arguments (PEMs) reach the host as strings, and a host
 *   function that refuses the call (a JsHostError, e.g. the GovHost's) becomes a JS Error with
 *   its message in the guest (host-function.ts).
 *
 * The `ccf` object of ccf-globals.ts is frozen, so a new frozen `ccf` is built from its fields
 * plus the additions and replaces the global. As there, a small guest script builds the guest
 * objects over host primitives that never become globals, and the primitives re-check types.
 */
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { CertError, parseCertificate } from "../crypto/certs.js";
import { type CcfBinding, installCcfGlobals } from "./ccf-globals.js";
import {
  JsHostError,
  JsHostErrorCode,
  newHostFunction,
  type HostFunctionResult,
} from "./host-function.js";
import type { JsLimits, JsLogFn } from "./sandbox.js";
import { JsSandbox, JsSandboxError, JsSandboxErrorCode } from "./sandbox.js";
import type { QuickJSWASMModule } from "./quickjs.js";
import { bundleProblem, JsAppError, parseBundle, type JsAppBundle } from "./app-bundle.js";
import { appGlobalsSetup, NO_CONSENSUS_SERVICES, type AppGlobalsInstaller } from "./app-runtime.js";
import { utf8 } from "../base/bytes.js";
import { SINGLETON_KEY } from "../kv/encoding.js";
import { SERVICE_TABLES } from "../kv/service-tables.js";

/** What modules_quickjs_version records: the engine the runtime compiles with. */
const QUICKJS_VERSION = "quickjs-emscripten (Bellard QuickJS)";

/** What governance scripts may ask of the node; implemented by the node layer. */
export interface GovHost {
  transitionServiceToOpen(previousIdentityPem: string | undefined, nextIdentityPem: string): void;
  triggerLedgerChunk(): void;
  triggerSnapshot(): void;
  triggerRecoverySharesRefresh(): void;
  /** trigger_ledger_rekey: a fresh ledger secret for every transaction after this one. */
  triggerLedgerRekey(): void;
  getLatestLedgerSecretSeqno(): number;
  /** Returns the endorsed certificate as PEM. `validFrom` is an ASN.1 time ("YYMMDDhhmmssZ"). */
  generateEndorsedCertificate(csrPem: string, validFrom: string, validityDays: number): string;
}

export interface GovGlobalsOptions {
  /** The module used for the nested evaluation of validateConstitution. */
  readonly quickjs: QuickJSWASMModule;
  /** Limits of that nested evaluation. */
  readonly limits: JsLimits;
  readonly log?: JsLogFn;
  /** When absent, `ccf.node` and `ccf.network` are not installed (validate, resolve, ballots). */
  readonly host?: GovHost;
  /** Installed when a proposed JS app's modules are evaluated (validateJsApp). */
  readonly appGlobalsInstallers?: readonly AppGlobalsInstaller[];
}

const PEM_CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** True when `pem` holds at least one certificate and every certificate block parses. */
export function isValidX509CertBundle(pem: string): boolean {
  const blocks = pem.match(PEM_CERT_BLOCK);
  if (blocks === null) return false;
  try {
    for (const block of blocks) parseCertificate(block);
    return true;
  } catch (err: unknown) {
    if (err instanceof CertError) return false;
    throw err;
  }
}

const REQUIRED_EXPORTS = ["validate", "resolve", "apply"];
const CONSTITUTION_MODULE = "/constitution.js";
/** Not a name a constitution would import; it only reads the constitution's namespace. */
const CHECK_MODULE = "/__consortia_constitution_check.js";
const CHECK_SOURCE = `import * as c from ${JSON.stringify(CONSTITUTION_MODULE)};
export function missing() {
  return ${JSON.stringify(REQUIRED_EXPORTS)}.filter((n) => typeof c[n] !== "function");
}`;

/**
 * Why `source` is not a usable constitution, or null when it is. It is evaluated in a fresh
 * runtime (so nothing it does at top level reaches the caller's context) with a read-only `ccf`
 * over `binding.tx`, under `limits`.
 */
export function constitutionProblem(
  quickjs: QuickJSWASMModule,
  source: string,
  binding: Pick<CcfBinding, "tx">,
  limits: JsLimits,
  log?: JsLogFn,
): string | null {
  const box = new JsSandbox(
    quickjs,
    { [CONSTITUTION_MODULE]: source, [CHECK_MODULE]: CHECK_SOURCE },
    log === undefined ? { limits } : { limits, log },
  );
  const outcome = box.call({
    module: CHECK_MODULE,
    exportName: "missing",
    setup: (ctx) => installCcfGlobals(ctx, { tx: binding.tx, access: { mode: "read-only" } }),
  });
  switch (outcome.kind) {
    case "timeout":
      return "evaluating it took too long";
    case "out-of-memory":
      return "evaluating it ran out of memory";
    case "exception":
      return `evaluating it threw: ${outcome.message}`;
    case "ok": {
      const missing = Array.isArray(outcome.value) ? outcome.value : [];
      if (missing.length === 0) return null;
      return `it does not export ${missing.join(", ")} as function(s)`;
    }
  }
}

const GUEST_SOURCE = String.raw`(function (p, base) {
  "use strict";
  function str(x, what) {
    if (typeof x !== "string") throw new TypeError(what + " must be a string");
    return x;
  }
  function pem(x, what) {
    if (x instanceof ArrayBuffer) return base.bufToStr(x);
    return str(x, what + " (an ArrayBuffer or string)");
  }
  const extra = {
    crypto: Object.freeze({
      ...base.crypto,
      isValidX509CertBundle(s) { return p.isValidX509CertBundle(str(s, "cert bundle")); },
    }),
    gov: Object.freeze({
      validateConstitution(s) { p.validateConstitution(str(s, "constitution")); },
      validateJsApp(bundle) { p.validateJsApp(JSON.stringify(bundle)); },
    }),
  };
  if (p.refreshAppBytecodeCache !== undefined) {
    extra.refreshAppBytecodeCache = () => { p.refreshAppBytecodeCache(); };
  }
  if (p.transitionServiceToOpen !== undefined) {
    extra.node = Object.freeze({
      transitionServiceToOpen(previous, next) {
        const prev = previous === undefined || previous === null
          ? undefined : pem(previous, "previous service identity");
        p.transitionServiceToOpen(prev, pem(next, "next service identity"));
      },
      triggerLedgerChunk() { p.triggerLedgerChunk(); },
      triggerSnapshot() { p.triggerSnapshot(); },
      triggerRecoverySharesRefresh() { p.triggerRecoverySharesRefresh(); },
      triggerLedgerRekey() { p.triggerLedgerRekey(); },
    });
    extra.network = Object.freeze({
      getLatestLedgerSecretSeqno() { return p.getLatestLedgerSecretSeqno(); },
      generateEndorsedCertificate(csr, validFrom, days) {
        return p.generateEndorsedCertificate(
          pem(csr, "certificate signing request"), str(validFrom, "valid_from"), days);
      },
    });
  }
  return Object.freeze({ ...base, ...extra });
})`;

type Primitive = (...args: QuickJSHandle[]) => HostFunctionResult;

/** Replaces the global `ccf` (installed by installCcfGlobals) with one carrying the additions. */
export function installGovGlobals(
  ctx: QuickJSContext,
  binding: CcfBinding,
  options: GovGlobalsOptions,
): void {
  const prims = ctx.newObject();
  const base = ctx.getProp(ctx.global, "ccf");
  try {
    for (const [name, impl] of Object.entries(primitives(ctx, binding, options))) {
      const fn = newHostFunction(ctx, name, impl);
      ctx.setProp(prims, name, fn);
      fn.dispose();
    }
    const factory = ctx.evalCode(GUEST_SOURCE, "<gov-globals>");
    if (factory.error !== undefined) throw hostError(ctx, factory.error);
    const ccf = ctx.callFunction(factory.value, ctx.undefined, prims, base);
    factory.value.dispose();
    if (ccf.error !== undefined) throw hostError(ctx, ccf.error);
    ctx.setProp(ctx.global, "ccf", ccf.value);
    ccf.value.dispose();
  } finally {
    base.dispose();
    prims.dispose();
  }
}

function hostError(ctx: QuickJSContext, error: QuickJSHandle): JsSandboxError {
  const dumped = ctx.dump(error) as { message?: unknown } | null;
  error.dispose();
  const message = typeof dumped?.message === "string" ? dumped.message : String(dumped);
  return new JsSandboxError(
    { code: JsSandboxErrorCode.SetupFailed, setup: "gov globals" },
    `installing gov globals failed: ${message}`,
  );
}

function primitives(
  ctx: QuickJSContext,
  binding: CcfBinding,
  options: GovGlobalsOptions,
): Record<string, Primitive> {
  const str = (h: QuickJSHandle | undefined, what: string): string => {
    if (h === undefined || ctx.typeof(h) !== "string")
      throw new TypeError(`${what} must be a string`);
    return ctx.getString(h);
  };
  const common: Record<string, Primitive> = {
    isValidX509CertBundle: (pem) =>
      isValidX509CertBundle(str(pem, "cert bundle")) ? ctx.true : ctx.false,
    validateJsApp: (bundle) => {
      const problem = jsAppProblem(options, binding, str(bundle, "bundle"));
      if (problem !== null) {
        throw new JsHostError({ code: JsHostErrorCode.InvalidJsApp }, `invalid bundle: ${problem}`);
      }
    },
    validateConstitution: (src) => {
      const problem = constitutionProblem(
        options.quickjs,
        str(src, "constitution"),
        binding,
        options.limits,
        options.log,
      );
      if (problem !== null) {
        throw new JsHostError(
          { code: JsHostErrorCode.InvalidConstitution },
          `invalid constitution: ${problem}`,
        );
      }
    },
  };
  const host = options.host;
  if (host === undefined) return common;
  return {
    ...common,
    refreshAppBytecodeCache: () => refreshAppBytecodeCache(binding),
    transitionServiceToOpen: (previous, next) => {
      const prev =
        previous === undefined || ctx.typeof(previous) === "undefined"
          ? undefined
          : str(previous, "previous service identity");
      host.transitionServiceToOpen(prev, str(next, "next service identity"));
    },
    triggerLedgerChunk: () => host.triggerLedgerChunk(),
    triggerSnapshot: () => host.triggerSnapshot(),
    triggerRecoverySharesRefresh: () => host.triggerRecoverySharesRefresh(),
    triggerLedgerRekey: () => host.triggerLedgerRekey(),
    getLatestLedgerSecretSeqno: () => ctx.newNumber(host.getLatestLedgerSecretSeqno()),
    generateEndorsedCertificate: (csr, validFrom, days) => {
      const validityDays = days === undefined ? Number.NaN : ctx.getNumber(days);
      if (days === undefined || ctx.typeof(days) !== "number" || !Number.isInteger(validityDays)) {
        throw new TypeError("validity days must be an integer");
      }
      const cert = host.generateEndorsedCertificate(
        str(csr, "certificate signing request"),
        str(validFrom, "valid_from"),
        validityDays,
      );
      return ctx.newString(cert);
    },
  };
}

/** Why the bundle (JSON) cannot be deployed, or null: its shape, then its modules in QuickJS. */
function jsAppProblem(
  options: GovGlobalsOptions,
  binding: Pick<CcfBinding, "tx">,
  json: string,
): string | null {
  let bundle: JsAppBundle;
  try {
    bundle = parseBundle(JSON.parse(json) as unknown);
  } catch (err: unknown) {
    if (err instanceof JsAppError) return err.message;
    throw err;
  }
  const readOnly: CcfBinding = { tx: binding.tx, access: { mode: "read-only" } };
  const state = { applyWrites: false, claimsDigest: null };
  const installers = options.appGlobalsInstallers ?? [];
  return bundleProblem(options.quickjs, bundle, {
    // The same limits as the validate call that asks: its own deadline covers this one.
    limits: options.limits,
    setup: appGlobalsSetup(readOnly, state, NO_CONSENSUS_SERVICES, installers),
  });
}

/**
 * CCF compiles every module to bytecode here. This QuickJS build cannot save or load bytecode,
 * so the compiled code Consortia keeps is its cached interpreters (src/js/interpreter-cache.ts),
 * which a write to the bytecode map drops: the map is emptied and the version records the
 * engine, as CCF's apply leaves them.
 */
function refreshAppBytecodeCache(binding: CcfBinding): void {
  binding.tx.rw(SERVICE_TABLES.modulesQuickjsBytecode).clear();
  const version = binding.tx.rw(SERVICE_TABLES.modulesQuickjsVersion);
  version.set(SINGLETON_KEY, utf8(JSON.stringify(QUICKJS_VERSION)));
}
