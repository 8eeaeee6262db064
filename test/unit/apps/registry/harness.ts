/**
 * The registry app (apps/registry) built as the project's build builds it and run in the JS
 * app runtime (src/js/app-runtime.ts) over a real Store, as the node runs it: one transaction
 * per request, committed when the answer is 2xx. Requests are addressed by handler name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fromUtf8, utf8 } from "../../../../src/base/bytes.js";
import { installAppCrypto } from "../../../../src/js/app-crypto-globals.js";
import {
  DEFAULT_JS_RUNTIME_OPTIONS,
  JsAppRuntime,
  type JsAppRequest,
} from "../../../../src/js/app-runtime.js";
import { getQuickJS } from "../../../../src/js/quickjs.js";
import { Store } from "../../../../src/kv/store.js";
import { buildTsApp } from "../../../helpers/js-app-build.js";

export const APP_DIR = join(import.meta.dirname, "..", "..", "..", "..", "apps", "registry");
export const VIEW = 2;
export const MAPS = {
  chaincodes: "public:registry.chaincodes",
  enclaves: "public:registry.enclaves",
  enclaveStatus: "public:registry.enclave_status",
} as const;

export type Caller = {
  policy: string;
  id?: string;
  data?: { msp_id: string } | null;
};
export const USER: Caller = { policy: "user_cert", id: "a1".repeat(32), data: null };

export interface Answer {
  status: number;
  body: unknown;
  claimsDigest: Uint8Array | null;
  /** The seqno the request's writes got, when it wrote. */
  seqno: number | null;
}

export interface RegistryApp {
  readonly store: Store;
  call(
    handler: string,
    o?: { body?: string; params?: Record<string, string>; caller?: Caller },
  ): Answer;
  error(answer: Answer): { code: string; message: string };
  setRow(map: string, key: string, value: unknown): void;
  row(map: string, key: string): string | undefined;
}

export async function registryApp(): Promise<RegistryApp> {
  const bundle = await buildTsApp(APP_DIR);
  const modules = new Map(bundle.modules.map((m) => [`/${m.name}`, m.module]));
  const rt = new JsAppRuntime(await getQuickJS(), modules, {
    runtimeOptions: DEFAULT_JS_RUNTIME_OPTIONS,
    installers: [(ctx) => installAppCrypto(ctx)],
  });
  const store = new Store();
  const services = {
    lastCommittedTxId: () => ({ view: VIEW, seqno: 0 }),
    statusForTxId: () => "Committed",
    viewForSeqno: () => VIEW,
  };
  const setRow = (map: string, key: string, value: unknown) => {
    const tx = store.begin();
    tx.rw(map).set(utf8(key), utf8(typeof value === "string" ? value : JSON.stringify(value)));
    assert.equal(store.commit(tx).kind, "committed");
  };
  const row = (map: string, key: string) => {
    const v = store.get(map, utf8(key));
    return v === undefined ? undefined : fromUtf8(v);
  };
  return {
    store,
    setRow,
    row,
    call(handler, o = {}) {
      const request: JsAppRequest = {
        ...{ method: "GET", url: "/app/registry", path: "/app/registry", route: "/app/registry" },
        ...{ query: "", hostname: "h", headers: {}, params: o.params ?? {} },
        body: utf8(o.body ?? ""),
        caller: o.caller ?? USER,
      };
      const tx = store.begin();
      const access = { mode: "read-write" } as const;
      const outcome = rt.call(
        { module: "/endpoints.js", handler },
        request,
        { tx, access },
        services,
      );
      assert.equal(outcome.kind, "response", JSON.stringify(outcome));
      if (outcome.kind !== "response") throw new TypeError("unreachable");
      let seqno: number | null = null;
      if (outcome.status < 300 && tx.hasWrites) {
        const committed = store.commit(tx);
        assert.equal(committed.kind, "committed");
        seqno = (committed as { seqno?: number }).seqno ?? null;
      }
      const b = outcome.body;
      const body = b.kind === "json" ? (JSON.parse(b.text) as unknown) : b;
      return { status: outcome.status, body, claimsDigest: outcome.claimsDigest, seqno };
    },
    error(answer) {
      return (answer.body as { error: { code: string; message: string } }).error;
    },
  };
}

/** A policy for chaincode `id` (version "v1-measurement", sequence 1, virtual), with `extra`. */
export function policy(id = "cc1", extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    chaincode_id: id,
    version: "v1-measurement",
    sequence: 1,
    platforms: ["Insecure_Virtual"],
    ...extra,
  };
}
