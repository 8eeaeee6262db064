// An app written against @microsoft/ccf-app 6.0.1 from npm (test/fixtures/js-apps/ccf-app,
// built as an app's own build would: esbuild, ccf-app bundled in, a shared chunk imported by
// both entry modules) runs unchanged in the JS app runtime (src/js/app-runtime.ts,
// app-globals.ts, app-crypto-globals.ts) over a real Store: typedKv and typedKvSet bound at
// module top level, every converter, ccf-app's crypto aliases called unbound, setApplyWrites
// and setClaimsDigest, the consensus functions, historicalState read through typedKv,
// getStateRange/dropCachedStates over the node's services (null answered as 202), the
// untrusted clock and the snp_attestation module (refusing an empty report). The oracle is
// ccf-app's documented API (its .d.ts) and the fixture's own logic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fromUtf8, utf8 } from "../../../src/base/bytes.js";
import { Store } from "../../../src/kv/store.js";
import { getQuickJS } from "../../../src/js/quickjs.js";
import { installAppCrypto } from "../../../src/js/app-crypto-globals.js";
import {
  DEFAULT_JS_RUNTIME_OPTIONS,
  JsAppRuntime,
  type JsAppOutcome,
  type JsAppRequest,
} from "../../../src/js/app-runtime.js";
import type { JsAppServices, JsHistoricalState } from "../../../src/js/app-globals.js";
import { buildTsApp } from "../../helpers/js-app-build.js";
import { makePki } from "../../helpers/pki.js";

const APP_DIR = join(import.meta.dirname, "..", "..", "fixtures", "js-apps", "ccf-app");

/** A past transaction that wrote records[id] = {msg, by: "u"} (or nothing when msg is null). */
function pastState(seqno: number, id: string, msg: string | null): JsHistoricalState {
  return {
    transactionId: `3.${seqno}`,
    receipt: { node_id: "n", leaf_components: { claims_digest: "00" } },
    get: (map, key) =>
      map === "records" && msg !== null && fromUtf8(key) === id
        ? utf8(JSON.stringify({ msg, by: "u" }))
        : undefined,
  };
}

function services(committed: number, dropped: number[]): JsAppServices {
  return {
    lastCommittedTxId: () => ({ view: 3, seqno: committed }),
    statusForTxId: (_view, seqno) => (seqno <= committed ? "Committed" : "Unknown"),
    viewForSeqno: (seqno) => (seqno <= committed ? 3 : null),
    stateRange: (_handle, from, to) => {
      if (to > committed) return null;
      const states: JsHistoricalState[] = [];
      for (let s = from; s <= to; s++) states.push(pastState(s, "1", s % 2 === 0 ? `v${s}` : null));
      return states;
    },
    dropCachedStates: (handle) => {
      dropped.push(handle);
      return true;
    },
  };
}

interface Harness {
  call(module: string, handler: string, req?: Partial<JsAppRequest>): JsAppOutcome;
  readonly store: Store;
  readonly dropped: number[];
  readonly userCert: string;
}

async function harness(): Promise<Harness> {
  const bundle = await buildTsApp(APP_DIR);
  const names = bundle.modules.map((m) => m.name);
  assert.ok(names.includes("records.js") && names.includes("checks.js"), names.join());
  assert.ok(
    names.some((n) => n.startsWith("chunks/")),
    "ccf-app is shared in a chunk",
  );
  const modules = new Map(bundle.modules.map((m) => [`/${m.name}`, m.module]));
  const rt = new JsAppRuntime(await getQuickJS(), modules, {
    runtimeOptions: DEFAULT_JS_RUNTIME_OPTIONS,
    installers: [(ctx) => installAppCrypto(ctx)],
  });
  const store = new Store();
  const dropped: number[] = [];
  const userCert = (await makePki()).nodeCertPem;
  const svc = services(40, dropped);
  return {
    store,
    dropped,
    userCert,
    call(module, handler, req = {}) {
      const request: JsAppRequest = {
        ...{ method: "GET", url: "/app/x", path: "/app/x", route: "/app/x", query: "" },
        ...{ hostname: "h", headers: {}, params: {}, body: new Uint8Array(0) },
        caller: { policy: "user_cert", id: "user-a", data: null, cert: userCert },
        ...req,
      };
      const tx = store.begin();
      const access = { mode: "read-write" } as const;
      const outcome = rt.call({ module: `/${module}`, handler }, request, { tx, access }, svc);
      const keep = outcome.kind === "response" && (outcome.applyWrites ?? outcome.status < 300);
      if (keep && tx.hasWrites) store.commit(tx);
      return outcome;
    },
  };
}

function answer(outcome: JsAppOutcome): { status: number; body: unknown } {
  assert.equal(outcome.kind, "response", JSON.stringify(outcome));
  if (outcome.kind !== "response") throw new TypeError("unreachable");
  const b = outcome.body;
  const body =
    b.kind === "json"
      ? JSON.parse(b.text)
      : b.kind === "text"
        ? b.text
        : b.kind === "none"
          ? null
          : b;
  return { status: outcome.status, body };
}

test("typedKv records: write, read with version, list, delete, claims digest", async () => {
  const h = await harness();
  const put = (id: string, msg: string, query = "") =>
    h.call("records.js", "putRecord", {
      params: { id },
      query,
      body: utf8(JSON.stringify({ msg })),
    });
  const first = put("1", "hello", "claim=1");
  assert.deepEqual(answer(first), { status: 200, body: { id: "1" } });
  assert.ok(first.kind === "response" && first.claimsDigest?.length === 32);
  assert.equal(fromUtf8(h.store.get("records", utf8("1"))!), '{"msg":"hello","by":"user-a"}');
  assert.ok(answer(put("2", "world")).status === 200);
  const got = answer(h.call("records.js", "getRecord", { params: { id: "1" } }));
  assert.equal(got.status, 200);
  assert.deepEqual(
    { ...(got.body as object), version: undefined },
    {
      msg: "hello",
      by: "user-a",
      version: undefined,
    },
  );
  assert.equal(typeof (got.body as { version: unknown }).version, "number");
  assert.deepEqual(answer(h.call("records.js", "listRecords")).body, { size: 2, ids: ["1", "2"] });
  assert.equal(answer(h.call("records.js", "deleteRecord", { params: { id: "2" } })).status, 204);
  const gone = answer(h.call("records.js", "getRecord", { params: { id: "2" } }));
  assert.equal(gone.status, 404);
  assert.equal((gone.body as { error: { code: string } }).error.code, "ResourceNotFound");
});

test("setApplyWrites keeps the writes of a 409 and drops those of a 200; typedKvSet", async () => {
  const h = await harness();
  const refused = answer(h.call("records.js", "failedButAudited", { params: { id: "7" } }));
  assert.deepEqual(refused, { status: 409, body: "refused, but audited" });
  assert.deepEqual(answer(h.call("records.js", "isAudited", { params: { id: "7" } })).body, true);
  assert.deepEqual(answer(h.call("records.js", "isAudited", { params: { id: "8" } })).body, false);
  const dropped = answer(h.call("records.js", "okButDiscarded", { params: { id: "8" } }));
  assert.deepEqual(dropped, { status: 200, body: "accepted, not kept" });
  assert.deepEqual(answer(h.call("records.js", "isAudited", { params: { id: "8" } })).body, false);
});

test("historicalState through typedKv, and getStateRange / dropCachedStates", async () => {
  const h = await harness();
  const historical = pastState(12, "1", "then");
  const past = answer(
    h.call("records.js", "historicalRecord", { params: { id: "1" }, historical }),
  );
  assert.deepEqual(past.body, {
    msg: "then",
    by: "u",
    transactionId: "3.12",
    receipt: { node_id: "n", leaf_components: { claims_digest: "00" } },
  });
  const range = answer(
    h.call("records.js", "recordRange", { params: { id: "1" }, query: "from=5&to=9" }),
  );
  assert.deepEqual(range.body, {
    entries: [
      { seqno: 6, msg: "v6" },
      { seqno: 8, msg: "v8" },
    ],
    count: 5,
    dropped: true,
  });
  assert.deepEqual(h.dropped, [5009]);
  const pending = h.call("records.js", "recordRange", {
    params: { id: "1" },
    query: "from=5&to=41",
  });
  assert.equal(answer(pending).status, 202);
  const bad = h.call("records.js", "recordRange", { params: { id: "1" }, query: "from=9&to=5" });
  assert.ok(bad.kind === "failure" && /endSeqno must be >= startSeqno/.test(bad.message));
});

test("converters round-trip as ccf-app defines them", async () => {
  const h = await harness();
  assert.deepEqual(answer(h.call("checks.js", "converters")).body, {
    bool: true,
    int8: -5,
    uint8: 200,
    int16: -30000,
    uint16: 60000,
    int32: -2e9,
    uint32: 4e9,
    int64: (-(2n ** 62n)).toString(),
    uint64: (2n ** 63n).toString(),
    float32: 1.5,
    float64: Math.PI,
    string: "héllo ✓",
    json: { a: [1, { b: null }] },
    checkedJson: { c: "d" },
    typedArray: [1, 65535],
    arrayBuffer: 3,
    utf8Bytes: 2,
  });
});

test("ccf-app's crypto aliases work unbound", async () => {
  const h = await harness();
  assert.deepEqual(answer(h.call("checks.js", "cryptoChecks")).body, {
    digest: 0xba,
    ecdsa: true,
    eddsa: true,
    rsaPss: true,
    hmacBytes: 32,
    aesKwp: true,
    rsaOaep: true,
    rsaOaepAesKwp: true,
    jwk: { kty: "EC", crv: "P-256", kid: "k1" },
    jwkRoundTrip: true,
    callerCertIsBundle: true,
    garbageIsBundle: false,
  });
});

test("consensus, the untrusted clock and snp_attestation", async () => {
  const h = await harness();
  assert.deepEqual(answer(h.call("checks.js", "consensus")).body, {
    last: { view: 3, seqno: 40 },
    status: "Committed",
    view: 3,
    future: "Unknown",
  });
  assert.deepEqual(answer(h.call("checks.js", "time")).body, {
    before: 0,
    previous: false,
    afterIsRecent: true,
  });
  const snp = answer(h.call("checks.js", "snp"));
  assert.equal(snp.status, 501);
  // ccf-app's verifySnpAttestation reaches the verifier, which refuses an empty report.
  assert.match(String(snp.body), /^SEV-SNP: .*0 bytes.*1184/);
});
