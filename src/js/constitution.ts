/**
 * The QuickJS-backed constitution runner: calls a constitution's validate, resolve and apply,
 * and ballots' vote, in the JS sandbox over a kv Tx (ccf-compatibility.md §4.2, §5.2).
 *
 * Semantics:
 * - The constitution is one module (CCF concatenates the constitution files; assembling them is
 *   the caller's job), evaluated afresh for every call as "/constitution.js". It is either fixed
 *   at construction (`create(source)`) or, as in CCF, read at every call from the
 *   `public:ccf.gov.constitution` singleton through the call's tx (`fromKv()`), so a
 *   set_constitution takes effect for the next proposal. A ballot is its own module
 *   "/ballot.js" exporting `vote(proposal, proposerId)`.
 * - KV access: validate, resolve and vote read-only; apply read-write, but only `public:` maps
 *   and never `public:ccf.internal.` ones (CCF's read_write_restrictions: apply writes gov and
 *   public application tables). A refused write is a JS exception in the guest.
 * - `ccf.node` / `ccf.network` exist only in apply and forward to the injected GovHost; the
 *   other governance globals (gov-globals.ts) exist in every call.
 * - Every guest failure is an outcome, never a host exception: "Exception thrown: <message>"
 *   (with the guest stack as trace), "Operation took too long to complete." for the deadline,
 *   "Out of memory." for the heap limit.
 * - Results follow src/gov/constitution-runner.ts: validate must return an object (else
 *   "Validation failed to return an object"), `valid` is true only for `true` and a non-string
 *   description is ""; resolve's result is converted with String(); a ballot votes for only
 *   when it returns `true`.
 *
 * Cost: each call creates a runtime and compiles the constitution, ~2 ms with the default
 * constitution; fine for governance, which runs a handful of calls per request.
 */
import { fromUtf8 } from "../base/bytes.js";
import { isTextDecodeError } from "../base/errors.js";
import { SINGLETON_KEY } from "../kv/encoding.js";
import { type Tx } from "../kv/tx.js";
import { INTERNAL_TABLES_PREFIX, SERVICE_TABLES } from "../kv/service-tables.js";
import type { ConstitutionRunner, JsCallOutcome, ResolveVote } from "../gov/constitution-runner.js";
import { type CcfBinding, type KvAccess, installCcfGlobals } from "./ccf-globals.js";
import { type GovHost, installGovGlobals } from "./gov-globals.js";
import { getQuickJS, type QuickJSWASMModule } from "./quickjs.js";
import type { AppGlobalsInstaller } from "./app-runtime.js";
import {
  DEFAULT_JS_LIMITS,
  type JsLimits,
  type JsLogFn,
  type JsonValue,
  type JsOutcome,
  JsSandbox,
} from "./sandbox.js";

// The interface this class implements is the governance layer's (gov/constitution-runner.ts).
export type { JsCallOutcome } from "../gov/constitution-runner.js";

export interface QuickJsConstitutionOptions {
  /** Receives ccf.node / ccf.network calls made by apply. */
  readonly host: GovHost;
  /** Overrides of DEFAULT_JS_LIMITS (deadline 1000 ms, 100 MiB heap, 256 KiB stack). */
  readonly limits?: Partial<JsLimits>;
  /** Receives guest console output. */
  readonly log?: JsLogFn;
  /** Globals a proposed JS app's modules see when set_js_app is validated. */
  readonly appGlobalsInstallers?: readonly AppGlobalsInstaller[];
}

const CONSTITUTION_MODULE = "/constitution.js";
const BALLOT_MODULE = "/ballot.js";

/** apply may write public maps, except the node's internal ones. */
export const APPLY_ACCESS: KvAccess = {
  mode: "read-write",
  writablePrefixes: ["public:"],
  readOnlyPrefixes: [INTERNAL_TABLES_PREFIX],
};
const READ_ONLY: KvAccess = { mode: "read-only" };

export const TIMEOUT_REASON = "Operation took too long to complete.";
export const OUT_OF_MEMORY_REASON = "Out of memory.";

export class QuickJsConstitution implements ConstitutionRunner {
  /** Invariant: DEFAULT_JS_LIMITS with the options' overrides (validated by the sandbox). */
  private readonly limits: JsLimits;
  /** The sandbox of the last constitution source used; rebuilt when the source changes. */
  private cached: { source: string; sandbox: JsSandbox } | null = null;

  /** `source` null: the constitution is read from the KV at every call. */
  constructor(
    private readonly quickjs: QuickJSWASMModule,
    readonly source: string | null,
    private readonly options: QuickJsConstitutionOptions,
  ) {
    this.limits = { ...DEFAULT_JS_LIMITS, ...options.limits };
    if (source !== null) this.sandboxFor(source);
  }

  /** A runner of a fixed constitution, over the process-wide QuickJS module. */
  static async create(
    source: string,
    options: QuickJsConstitutionOptions,
  ): Promise<QuickJsConstitution> {
    return new QuickJsConstitution(await getQuickJS(), source, options);
  }

  /** A runner of whatever constitution the tx sees in `public:ccf.gov.constitution`. */
  static async fromKv(options: QuickJsConstitutionOptions): Promise<QuickJsConstitution> {
    return new QuickJsConstitution(await getQuickJS(), null, options);
  }

  validate(tx: Tx, proposal: string): JsCallOutcome<{ valid: boolean; description: string }> {
    const outcome = this.callConstitution(tx, "validate", [proposal], false);
    if (outcome.kind === "error") return outcome;
    const value = outcome.value;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return { kind: "error", reason: "Validation failed to return an object" };
    }
    const description = typeof value.description === "string" ? value.description : "";
    return { kind: "ok", value: { valid: value.valid === true, description } };
  }

  resolve(
    tx: Tx,
    proposal: string,
    proposerId: string,
    votes: readonly ResolveVote[],
    proposalId: string,
  ): JsCallOutcome<string> {
    const voteArgs = votes.map((v) => ({ member_id: v.member_id, vote: v.vote }));
    const args: JsonValue[] = [proposal, proposerId, voteArgs, proposalId];
    const outcome = this.callConstitution(tx, "resolve", args, false);
    if (outcome.kind === "error") return outcome;
    // String() of the JSON round-trip equals the guest's String() for plain data.
    return { kind: "ok", value: String(outcome.value) };
  }

  apply(tx: Tx, proposal: string, proposalId: string): JsCallOutcome<void> {
    const outcome = this.callConstitution(tx, "apply", [proposal, proposalId], true);
    return outcome.kind === "error" ? outcome : { kind: "ok", value: undefined };
  }

  vote(tx: Tx, ballotSource: string, proposal: string, proposerId: string): JsCallOutcome<boolean> {
    const ballot = new JsSandbox(
      this.quickjs,
      { [BALLOT_MODULE]: ballotSource },
      this.sandboxOptions(),
    );
    const outcome = convert(
      this.call(ballot, BALLOT_MODULE, "vote", [proposal, proposerId], tx, false),
    );
    return outcome.kind === "error" ? outcome : { kind: "ok", value: outcome.value === true };
  }

  private callConstitution(
    tx: Tx,
    exportName: string,
    args: JsonValue[],
    isApply: boolean,
  ): JsCallOutcome<JsonValue | undefined> {
    const source = this.source ?? constitutionInKv(tx);
    if (source === null) {
      return { kind: "error", reason: `no constitution in ${SERVICE_TABLES.constitution}` };
    }
    const sandbox = this.sandboxFor(source);
    return convert(this.call(sandbox, CONSTITUTION_MODULE, exportName, args, tx, isApply));
  }

  private sandboxFor(source: string): JsSandbox {
    if (this.cached?.source !== source) {
      const modules = { [CONSTITUTION_MODULE]: source };
      this.cached = {
        source,
        sandbox: new JsSandbox(this.quickjs, modules, this.sandboxOptions()),
      };
    }
    return this.cached.sandbox;
  }

  private sandboxOptions(): { limits: JsLimits; log?: JsLogFn } {
    const log = this.options.log;
    return log === undefined ? { limits: this.limits } : { limits: this.limits, log };
  }

  /** One sandbox call with `ccf` (plus the gov additions) bound to `tx`. */
  private call(
    sandbox: JsSandbox,
    module: string,
    exportName: string,
    args: JsonValue[],
    tx: Tx,
    isApply: boolean,
  ): JsOutcome {
    const binding: CcfBinding = { tx, access: isApply ? APPLY_ACCESS : READ_ONLY };
    const log = this.options.log;
    const govOptions = {
      quickjs: this.quickjs,
      limits: this.limits,
      ...(log === undefined ? {} : { log }),
      ...(isApply ? { host: this.options.host } : {}),
      ...(this.options.appGlobalsInstallers === undefined
        ? {}
        : { appGlobalsInstallers: this.options.appGlobalsInstallers }),
    };
    return sandbox.call({
      module,
      exportName,
      args,
      setup: (ctx) => {
        installCcfGlobals(ctx, binding);
        installGovGlobals(ctx, binding, govOptions);
      },
    });
  }
}

/** The constitution source stored in the KV (a JSON string), or null when absent or not one. */
function constitutionInKv(tx: Tx): string | null {
  const stored = tx.ro(SERVICE_TABLES.constitution).get(SINGLETON_KEY);
  if (stored === undefined) return null;
  try {
    const source = JSON.parse(fromUtf8(stored)) as unknown;
    return typeof source === "string" ? source : null;
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return null;
  }
}

/** Maps a sandbox outcome to a JsCallOutcome carrying the guest's (JSON) result. */
function convert(outcome: JsOutcome): JsCallOutcome<JsonValue | undefined> {
  switch (outcome.kind) {
    case "timeout":
      return { kind: "error", reason: TIMEOUT_REASON };
    case "out-of-memory":
      return { kind: "error", reason: OUT_OF_MEMORY_REASON };
    case "exception": {
      const reason = `Exception thrown: ${outcome.message}`;
      return outcome.stack === undefined
        ? { kind: "error", reason }
        : { kind: "error", reason, trace: outcome.stack };
    }
    case "ok":
      return { kind: "ok", value: outcome.value };
  }
}
