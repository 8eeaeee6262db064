/**
 * Host functions the guest calls (the primitives behind `ccf`, `console`), and how their
 * failures cross the sandbox boundary.
 *
 * quickjs-emscripten turns whatever a host function throws into a guest exception (keeping only
 * `name` and `message`). That is right for what the guest caused, and wrong for a host bug:
 * guest code could catch an AssertionError and carry on. So every host function is made with
 * newHostFunction, which sorts what its implementation throws:
 *  - a JsHostError (the guest's call is refused: a write to a read-only map, a service that is
 *    not Opening, ...) becomes a plain guest Error with the same message, as CCF's JS runtime
 *    throws; its code and metadata stay on the host side;
 *  - an AssertionError still reaches the guest (its call cannot complete), and is also kept for
 *    the context, so the sandbox rethrows it on the host once the guest returns (takeHostFault):
 *    nothing the guest does can swallow it;
 *  - anything else (a TypeError for a bad argument) is the guest's exception, unchanged.
 */
import type { QuickJSContext, QuickJSHandle, VmCallResult } from "quickjs-emscripten-core";
import { AssertionError } from "../base/assert.js";
import { CcfError, type ErrorType } from "../base/errors.js";

export enum JsHostErrorCode {
  /** The binding's access policy forbids writing the map. */
  WriteDenied = "WriteDenied",
  /** ccf.crypto.digest was asked for an algorithm other than SHA-256. */
  UnsupportedAlgorithm = "UnsupportedAlgorithm",
  /** ccf.gov.validateConstitution found the proposed constitution unusable. */
  InvalidConstitution = "InvalidConstitution",
  /** ccf.gov.validateJsApp found the proposed JS app bundle unusable. */
  InvalidJsApp = "InvalidJsApp",
}
export type JsHostErrorType =
  | { code: JsHostErrorCode.WriteDenied; map: string }
  | { code: JsHostErrorCode.UnsupportedAlgorithm; algorithm: string }
  | { code: JsHostErrorCode.InvalidConstitution }
  | { code: JsHostErrorCode.InvalidJsApp };

/**
 * A guest call the host refuses. Areas with their own codes (the node's GovHost) subclass it
 * with their own type; the guest sees only the message, whatever the subclass.
 */
export class JsHostError<T extends ErrorType = JsHostErrorType> extends CcfError<T> {}

/** What a host function may return: a handle, a thrown-into-guest error, or nothing. */
export type HostFunctionResult = QuickJSHandle | VmCallResult<QuickJSHandle> | void;

/** The first host AssertionError of each context, until takeHostFault collects it. */
const hostFaults = new WeakMap<QuickJSContext, AssertionError>();

/** ctx.newFunction with the error handling described in the module comment. */
export function newHostFunction(
  ctx: QuickJSContext,
  name: string,
  impl: (...args: QuickJSHandle[]) => HostFunctionResult,
): QuickJSHandle {
  return ctx.newFunction(name, (...args) => {
    try {
      return impl(...args);
    } catch (error: unknown) {
      if (error instanceof JsHostError) {
        return { error: ctx.newError({ name: "Error", message: error.message }) };
      }
      if (error instanceof AssertionError && !hostFaults.has(ctx)) hostFaults.set(ctx, error);
      throw error;
    }
  });
}

/** The AssertionError a host function of `ctx` raised, if any (cleared by the call). */
export function takeHostFault(ctx: QuickJSContext): AssertionError | undefined {
  const fault = hostFaults.get(ctx);
  hostFaults.delete(ctx);
  return fault;
}

/**
 * A guest ArrayBuffer holding a copy of `bytes`. quickjs-emscripten copies an ArrayBuffer into
 * WASM memory; a view over a whole buffer is passed as that buffer, without a copy of our own.
 */
export function newGuestArrayBuffer(ctx: QuickJSContext, bytes: Uint8Array): QuickJSHandle {
  const { buffer, byteOffset, byteLength } = bytes;
  const whole = byteOffset === 0 && byteLength === buffer.byteLength;
  return ctx.newArrayBuffer(whole ? buffer : buffer.slice(byteOffset, byteOffset + byteLength));
}
