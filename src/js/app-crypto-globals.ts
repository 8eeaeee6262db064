/**
 * Installs the full `ccf.crypto` of CCF 6's JS runtime (js/ccf-app/src/global.ts CCFCrypto;
 * ccf-compatibility.md §9.1) on top of the `ccf` of ccf-globals.ts: digest (SHA-256/384/512),
 * sign, verifySignature, generateAesKey, generateRsaKeyPair, generateEcdsaKeyPair,
 * generateEddsaKeyPair, wrapKey, unwrapKey, isValidX509CertBundle, isValidX509CertChain and the
 * twelve PEM <-> JWK conversions. The work is done by app-crypto.ts, app-crypto-jwk.ts and
 * app-crypto-x509.ts; this module only carries values across the sandbox boundary.
 *
 * As in ccf-globals.ts, a small guest script builds the guest-facing functions over host
 * primitives that never become globals. The script checks argument types (a TypeError naming
 * the argument) and reads the algorithm objects' fields; the primitives check types again, so
 * the script is not trusted. ArrayBuffers are copied both ways; key pairs and JWKs cross as
 * JSON text.
 *
 * Errors reach the guest as the classes CCF throws: TypeError for an argument of the wrong
 * type, RangeError for an unsupported algorithm, curve or size, and InternalError with CCF's
 * "Failed to <operation>: <why>" message for a key or input the operation cannot use. The
 * `ccf` object of ccf-globals.ts is frozen, so a new frozen `ccf` with the new `crypto`
 * replaces the global (as gov-globals.ts does).
 */
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import {
  AppCryptoError,
  AppCryptoErrorCode,
  digest,
  generateAesKey,
  generateEcdsaKeyPair,
  generateEddsaKeyPair,
  generateRsaKeyPair,
  sign,
  signingAlgorithm,
  unwrapKey,
  verifySignature,
  wrapAlgorithm,
  wrapKey,
} from "./app-crypto.js";
import { JWK_TO_PEM, PEM_TO_JWK } from "./app-crypto-jwk.js";
import { isValidX509CertBundle, isValidX509CertChain } from "./app-crypto-x509.js";
import { isForeignError } from "../base/errors.js";
import { newHostFunction, type HostFunctionResult, newGuestArrayBuffer } from "./host-function.js";
import { JsSandboxError, JsSandboxErrorCode } from "./sandbox.js";

export interface AppCryptoOptions {
  /** The time certificate validity is checked against; the system clock when absent. */
  readonly now?: () => Date;
}

const GUEST_SOURCE = String.raw`(function (p, base) {
  "use strict";
  const kinds = {
    RangeError,
    TypeError,
    InternalError: typeof InternalError === "function" ? InternalError : Error,
  };
  // Host errors arrive as plain Errors carrying a name; rethrow them as that class.
  function host(f, ...args) {
    try {
      return f(...args);
    } catch (e) {
      const name = e !== null && typeof e === "object" ? e.name : undefined;
      if (typeof name === "string" && Object.prototype.hasOwnProperty.call(kinds, name)) {
        const C = kinds[name];
        if (!(e instanceof C)) throw new C(e.message);
      }
      throw e;
    }
  }
  function buf(x, what) {
    if (!(x instanceof ArrayBuffer)) throw new TypeError(what + " must be an ArrayBuffer");
    return x;
  }
  function str(x, what) {
    if (typeof x !== "string") throw new TypeError(what + " must be a string");
    return x;
  }
  function num(x, what) {
    if (typeof x !== "number") throw new TypeError(what + " must be a number");
    return x;
  }
  function obj(x, what) {
    if (typeof x !== "object" || x === null) throw new TypeError(what + " must be an object");
    return x;
  }
  const opt = (check) => (x, what) => (x === undefined || x === null ? undefined : check(x, what));
  const optStr = opt(str), optNum = opt(num), optBuf = opt(buf);
  function signing(a) {
    obj(a, "algorithm");
    return [str(a.name, "algorithm.name"), optStr(a.hash, "algorithm.hash"),
            optNum(a.saltLength, "algorithm.saltLength")];
  }
  function wrapping(a) {
    obj(a, "wrapAlgo");
    return [str(a.name, "wrapAlgo.name"), optNum(a.aesKeySize, "wrapAlgo.aesKeySize"),
            optBuf(a.label, "wrapAlgo.label")];
  }
  const crypto = {
    digest(algorithm, data) {
      return host(p.digest, str(algorithm, "digest algorithm"), buf(data, "data"));
    },
    sign(algorithm, key, plaintext) {
      return host(p.sign, ...signing(algorithm), str(key, "key"), buf(plaintext, "plaintext"));
    },
    verifySignature(algorithm, key, signature, plaintext) {
      return host(p.verifySignature, ...signing(algorithm), str(key, "key"),
                  buf(signature, "signature"), buf(plaintext, "plaintext"));
    },
    generateAesKey(size) { return host(p.generateAesKey, num(size, "size")); },
    generateRsaKeyPair(size, exponent) {
      const e = optNum(exponent, "exponent");
      return JSON.parse(host(p.generateRsaKeyPair, num(size, "size"), e));
    },
    generateEcdsaKeyPair(curve) {
      return JSON.parse(host(p.generateEcdsaKeyPair, str(curve, "curve")));
    },
    generateEddsaKeyPair(curve) {
      return JSON.parse(host(p.generateEddsaKeyPair, str(curve, "curve")));
    },
    wrapKey(key, wrappingKey, wrapAlgo) {
      return host(p.wrapKey, ...wrapping(wrapAlgo), buf(key, "key"),
                  buf(wrappingKey, "wrappingKey"));
    },
    unwrapKey(key, unwrappingKey, wrapAlgo) {
      return host(p.unwrapKey, ...wrapping(wrapAlgo), buf(key, "key"),
                  buf(unwrappingKey, "unwrappingKey"));
    },
    isValidX509CertBundle(pem) { return host(p.isValidX509CertBundle, str(pem, "pem")); },
    isValidX509CertChain(chain, trusted) {
      return host(p.isValidX509CertChain, str(chain, "chain"), str(trusted, "trusted"));
    },
  };
  for (const name of p.pemToJwkNames) {
    crypto[name] = function (pem, kid) {
      return JSON.parse(host(p.pemToJwk, name, str(pem, "pem"), optStr(kid, "kid")));
    };
  }
  for (const name of p.jwkToPemNames) {
    crypto[name] = function (jwk) {
      return host(p.jwkToPem, name, JSON.stringify(obj(jwk, "jwk")));
    };
  }
  return Object.freeze({ ...base, crypto: Object.freeze({ ...base.crypto, ...crypto }) });
})`;

type Primitive = (...args: QuickJSHandle[]) => HostFunctionResult;

/**
 * Replaces the global `ccf` (installed by installCcfGlobals) with one whose `crypto` has the
 * functions above. Every temporary handle is disposed.
 */
export function installAppCrypto(ctx: QuickJSContext, options: AppCryptoOptions = {}): void {
  const prims = ctx.newObject();
  const base = ctx.getProp(ctx.global, "ccf");
  try {
    if (ctx.typeof(base) !== "object") {
      throw setupError("the ccf global is missing (install the ccf globals first)");
    }
    for (const [name, impl] of Object.entries(primitives(ctx, options))) {
      const fn = newHostFunction(ctx, name, impl);
      ctx.setProp(prims, name, fn);
      fn.dispose();
    }
    setNames(ctx, prims, "pemToJwkNames", Object.keys(PEM_TO_JWK));
    setNames(ctx, prims, "jwkToPemNames", Object.keys(JWK_TO_PEM));
    const factory = ctx.evalCode(GUEST_SOURCE, "<app-crypto-globals>");
    if (factory.error !== undefined) throw setupError(guestMessage(ctx, factory.error));
    const ccf = ctx.callFunction(factory.value, ctx.undefined, prims, base);
    factory.value.dispose();
    if (ccf.error !== undefined) throw setupError(guestMessage(ctx, ccf.error));
    ctx.setProp(ctx.global, "ccf", ccf.value);
    ccf.value.dispose();
  } finally {
    base.dispose();
    prims.dispose();
  }
}

function setNames(ctx: QuickJSContext, target: QuickJSHandle, prop: string, names: string[]) {
  const array = ctx.newArray();
  names.forEach((name, i) => {
    const s = ctx.newString(name);
    ctx.setProp(array, i, s);
    s.dispose();
  });
  ctx.setProp(target, prop, array);
  array.dispose();
}

function guestMessage(ctx: QuickJSContext, error: QuickJSHandle): string {
  const dumped = ctx.dump(error) as { message?: unknown } | null;
  error.dispose();
  return typeof dumped?.message === "string" ? dumped.message : String(dumped);
}

function setupError(message: string): JsSandboxError {
  return new JsSandboxError(
    { code: JsSandboxErrorCode.SetupFailed, setup: "app crypto globals" },
    `installing ccf.crypto failed: ${message}`,
  );
}

/** Runs `body`; an AppCryptoError becomes the guest error CCF would throw (module comment). */
function guestErrors(
  ctx: QuickJSContext,
  operation: string,
  body: () => QuickJSHandle,
): HostFunctionResult {
  try {
    return body();
  } catch (err: unknown) {
    if (!(err instanceof AppCryptoError)) throw err;
    const range =
      err.code === AppCryptoErrorCode.UnsupportedAlgorithm ||
      err.code === AppCryptoErrorCode.InvalidParameter;
    const name = range ? "RangeError" : "InternalError";
    const message = range ? err.message : `Failed to ${operation}: ${err.message}`;
    return { error: ctx.newError({ name, message }) };
  }
}

interface Readers {
  str(h: QuickJSHandle | undefined, what: string): string;
  optStr(h: QuickJSHandle | undefined, what: string): string | undefined;
  num(h: QuickJSHandle | undefined, what: string): number;
  optNum(h: QuickJSHandle | undefined, what: string): number | undefined;
  bytes(h: QuickJSHandle | undefined, what: string): Uint8Array;
  optBytes(h: QuickJSHandle | undefined, what: string): Uint8Array | undefined;
}

/** Typed reads of primitive arguments; a wrong type is the guest's TypeError. */
function readers(ctx: QuickJSContext): Readers {
  // The guest script passes undefined for an absent optional argument (null included).
  const absent = (h: QuickJSHandle | undefined): h is undefined =>
    h === undefined || ctx.typeof(h) === "undefined";
  const typed = (h: QuickJSHandle | undefined, type: string, what: string): QuickJSHandle => {
    if (h === undefined || ctx.typeof(h) !== type) {
      throw new TypeError(`${what} must be ${type === "object" ? "an ArrayBuffer" : `a ${type}`}`);
    }
    return h;
  };
  const r: Readers = {
    str: (h, what) => ctx.getString(typed(h, "string", what)),
    optStr: (h, what) => (absent(h) ? undefined : r.str(h, what)),
    num: (h, what) => ctx.getNumber(typed(h, "number", what)),
    optNum: (h, what) => (absent(h) ? undefined : r.num(h, what)),
    bytes: (h, what) => {
      const handle = typed(h, "object", what);
      let view: ReturnType<QuickJSContext["getArrayBuffer"]>;
      try {
        view = ctx.getArrayBuffer(handle);
      } catch (err: unknown) {
        // An object that is not an ArrayBuffer (the guest script checks first; this is the
        // primitives' own check).
        if (!isForeignError(err)) throw err;
        throw new TypeError(`${what} must be an ArrayBuffer`);
      }
      try {
        return view.value.slice(); // a copy: the view points into WASM memory
      } finally {
        view.dispose();
      }
    },
    optBytes: (h, what) => (absent(h) ? undefined : r.bytes(h, what)),
  };
  return r;
}

/** Readers of arguments and makers of results shared by the primitives. */
interface Codec extends Readers {
  buf(b: Uint8Array): QuickJSHandle;
  json(value: unknown): QuickJSHandle;
  bool(b: boolean): QuickJSHandle;
}

function codec(ctx: QuickJSContext): Codec {
  return {
    ...readers(ctx),
    buf: (b) => newGuestArrayBuffer(ctx, b),
    json: (value) => ctx.newString(JSON.stringify(value)),
    bool: (b) => (b ? ctx.true : ctx.false),
  };
}

function primitives(ctx: QuickJSContext, options: AppCryptoOptions): Record<string, Primitive> {
  const c = codec(ctx);
  return { ...signaturePrimitives(ctx, c), ...keyPrimitives(ctx, c, options) };
}

/** digest, sign and verifySignature. */
function signaturePrimitives(ctx: QuickJSContext, c: Codec): Record<string, Primitive> {
  const signingOf = (name?: QuickJSHandle, hash?: QuickJSHandle, salt?: QuickJSHandle) =>
    signingAlgorithm({
      name: c.str(name, "algorithm.name"),
      hash: c.optStr(hash, "algorithm.hash"),
      saltLength: c.optNum(salt, "algorithm.saltLength"),
    });
  return {
    digest: (alg, data) =>
      guestErrors(ctx, "digest", () =>
        c.buf(digest(c.str(alg, "algorithm"), c.bytes(data, "data"))),
      ),
    sign: (name, hash, salt, key, data) =>
      guestErrors(ctx, "sign", () => {
        const algorithm = signingOf(name, hash, salt);
        return c.buf(sign(algorithm, c.str(key, "key"), c.bytes(data, "plaintext")));
      }),
    verifySignature: (name, hash, salt, key, signature, data) =>
      guestErrors(ctx, "verify signature", () => {
        const algorithm = signingOf(name, hash, salt);
        const valid = verifySignature({
          algorithm,
          key: c.str(key, "key"),
          signature: c.bytes(signature, "signature"),
          data: c.bytes(data, "plaintext"),
        });
        return c.bool(valid);
      }),
  };
}

/** Key generation, wrapping, JWK conversions and certificate checks. */
function keyPrimitives(
  ctx: QuickJSContext,
  c: Codec,
  options: AppCryptoOptions,
): Record<string, Primitive> {
  const wrapOf = (name?: QuickJSHandle, size?: QuickJSHandle, label?: QuickJSHandle) =>
    wrapAlgorithm({
      name: c.str(name, "wrapAlgo.name"),
      aesKeySize: c.optNum(size, "wrapAlgo.aesKeySize"),
      label: c.optBytes(label, "wrapAlgo.label"),
    });
  const now = options.now ?? (() => new Date());
  return {
    ...generatePrimitives(ctx, c),
    wrapKey: (name, size, label, key, wrappingKey) =>
      guestErrors(ctx, "wrap key", () => {
        const algo = wrapOf(name, size, label);
        return c.buf(wrapKey(c.bytes(key, "key"), c.bytes(wrappingKey, "wrappingKey"), algo));
      }),
    unwrapKey: (name, size, label, key, unwrappingKey) =>
      guestErrors(ctx, "unwrap key", () => {
        const algo = wrapOf(name, size, label);
        const wrapped = c.bytes(key, "key");
        return c.buf(unwrapKey(wrapped, c.bytes(unwrappingKey, "unwrappingKey"), algo));
      }),
    isValidX509CertBundle: (pem) => c.bool(isValidX509CertBundle(c.str(pem, "pem"))),
    isValidX509CertChain: (chain, trusted) => {
      const input = { chain: c.str(chain, "chain"), trusted: c.str(trusted, "trusted") };
      return c.bool(isValidX509CertChain({ ...input, now: now() }));
    },
    pemToJwk: (name, pem, kid) =>
      guestErrors(ctx, "convert pem to jwk", () => {
        const convert = conversion(PEM_TO_JWK, c.str(name, "conversion"));
        return c.json(convert(c.str(pem, "pem"), c.optStr(kid, "kid")));
      }),
    jwkToPem: (name, jwk) =>
      guestErrors(ctx, "convert jwk to pem", () => {
        const convert = conversion(JWK_TO_PEM, c.str(name, "conversion"));
        return ctx.newString(convert(JSON.parse(c.str(jwk, "jwk")) as unknown));
      }),
  };
}

function generatePrimitives(ctx: QuickJSContext, c: Codec): Record<string, Primitive> {
  return {
    generateAesKey: (size) =>
      guestErrors(ctx, "generate AES key", () => c.buf(generateAesKey(c.num(size, "size")))),
    generateRsaKeyPair: (size, exponent) =>
      guestErrors(ctx, "generate RSA key pair", () =>
        c.json(generateRsaKeyPair(c.num(size, "size"), c.optNum(exponent, "exponent"))),
      ),
    generateEcdsaKeyPair: (curve) =>
      guestErrors(ctx, "generate ECDSA key pair", () =>
        c.json(generateEcdsaKeyPair(c.str(curve, "curve"))),
      ),
    generateEddsaKeyPair: (curve) =>
      guestErrors(ctx, "generate EdDSA key pair", () =>
        c.json(generateEddsaKeyPair(c.str(curve, "curve"))),
      ),
  };
}

function conversion<F>(table: Readonly<Record<string, F>>, name: string): F {
  const convert = Object.hasOwn(table, name) ? table[name] : undefined;
  if (convert === undefined) throw new TypeError(`no key conversion ${JSON.stringify(name)}`);
  return convert;
}
