// Random JSON bodies for the endpoints that parse one from any client: the logging app's record
// writes (src/apps/logging.ts, POST /log/private and /log/public) and POST /node/join
// (src/node/join/join-endpoint.ts, a zod schema, then keys, quotes and certificates), each driven
// through its real handler on a real Store (the join endpoint after a real genesis, through the
// pipeline). Inputs: any JSON value, text that is not JSON or not UTF-8, and valid bodies with one
// part replaced, removed or added (wrong types, huge numbers, deep nesting, odd keys such as
// __proto__). Property: the answer is a success or an HttpError with a 4xx status and a CCF code,
// never a 500 or another exception, and a refused request writes nothing. JSON receipts
// (src/ledger/receipt.ts, which a node also reads from snapshot files) get the same changes:
// a ReceiptError, an invalid verdict, or a proof of the very same leaf.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import fc from "fast-check";
import { utf8 } from "../../src/base/bytes.js";
import type { View } from "../../src/base/ids.js";
import { makeVirtualQuote, VIRTUAL_MEASUREMENT } from "../../src/attestation/virtual.js";
import type { EndpointContext, UserCertCaller } from "../../src/apps/app.js";
import { loggingApp } from "../../src/apps/logging.js";
import { createSelfSignedCertificate } from "../../src/crypto/cert-issuance.js";
import {
  generateEcKeyPair,
  generateEncryptionKey,
  generateIdentity,
  nodeIdFromPublicKey,
} from "../../src/crypto/identity.js";
import { writeGenesis } from "../../src/gov/genesis.js";
import { HttpError } from "../../src/http/errors.js";
import { Router, type RpcRequest, type RpcResponse } from "../../src/http/router.js";
import { answerOf } from "../../src/http/server.js";
import { Store } from "../../src/kv/store.js";
import { TxHistory } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import { registerJoinEndpoint } from "../../src/node/join/join-endpoint.js";
import { TxPipeline } from "../../src/node/pipeline/tx-pipeline.js";
import { createStartIdentities } from "../../src/node/startup/start-identities.js";
import {
  parseReceipt,
  ReceiptError,
  receiptLeaf,
  verifyReceipt,
} from "../../src/ledger/receipt.js";
import { makePki, makeReceipt, tempDir } from "../helpers/pki.js";

const CASE_BOUND_MS = 5000;

function request(path: string, body: Uint8Array, callerCertDer: Uint8Array | null): RpcRequest {
  return {
    method: "POST",
    path,
    query: "",
    queryParams: new URLSearchParams(),
    headers: { "content-type": "application/json" },
    body,
    params: {},
    callerCertDer,
  };
}

/** A handler's answer: a response, or the HttpError it threw; anything else fails the test. */
async function answer(run: () => RpcResponse | Promise<unknown>): Promise<RpcResponse | HttpError> {
  const started = performance.now();
  try {
    return (await run()) as RpcResponse;
  } catch (error) {
    if (error instanceof HttpError) return error;
    assert.fail(`a non-HTTP error escaped: ${String(error)}`);
  } finally {
    const took = performance.now() - started;
    assert.ok(took < CASE_BOUND_MS, `the handler took ${took.toFixed(0)} ms`);
  }
}

function assertClientError(result: RpcResponse | HttpError): void {
  if (!(result instanceof HttpError)) return;
  assert.ok(result.status >= 400 && result.status < 500, `${result.status} ${result.message}`);
}

/** Deep arrays and objects: what a hostile client sends to find a recursive parser. */
const deepArb = fc
  .tuple(fc.integer({ min: 1, max: 5000 }), fc.boolean())
  .map(([depth, objects]) =>
    objects
      ? '{"a":'.repeat(depth) + "1" + "}".repeat(depth)
      : "[".repeat(depth) + "]".repeat(depth),
  );
const oddTextArb = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.constantFrom("", "null", "1e999", "-0", '"\\ud800"', "{", '{"__proto__":{"id":1}}', "[]"),
  deepArb,
);
const valueArb = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(1e308, -1, 2 ** 53, 1.5, "", "\ud800", null, true, [], {}),
);

// ---- The logging app ------------------------------------------------------------------------

const app = loggingApp();
const USER: UserCertCaller = {
  policy: "user_cert",
  userId: "ab".repeat(32),
  certPem: "PEM",
  userData: undefined,
};

function postRecord(
  store: Store,
  domain: string,
  body: Uint8Array,
): Promise<RpcResponse | HttpError> {
  const endpoint = app.endpoints.find((e) => e.method === "POST" && e.path === `/log/${domain}`);
  assert.ok(endpoint !== undefined);
  return answer(() => {
    const tx = store.begin();
    const context: EndpointContext = {
      request: request(`/app/log/${domain}`, body, null),
      caller: USER,
      tx,
      setClaimsDigest: () => undefined,
    };
    const response = endpoint.handler(context);
    assert.equal(store.commit(tx).kind, "committed");
    return response;
  });
}

/** A valid record with one field replaced or removed, or one field added. */
const recordArb = fc
  .record({
    field: fc.constantFrom("id", "msg", "record_claim", "__proto__", "extra"),
    value: fc.option(valueArb, { nil: undefined }),
    id: fc.nat(),
  })
  .map(({ field, value, id }) => {
    const record: Record<string, unknown> = { id, msg: "hello" };
    Object.defineProperty(record, field, {
      value,
      enumerable: true,
      configurable: true,
      writable: true,
    });
    if (value === undefined) delete record[field];
    return utf8(JSON.stringify(record));
  });

test("property: the logging app answers any body with success or a 400", async () => {
  const store = new Store();
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        recordArb,
        valueArb.map((v) => utf8(JSON.stringify(v))),
        oddTextArb.map(utf8),
        fc.uint8Array({ maxLength: 40 }),
      ),
      fc.constantFrom("private", "public"),
      async (body, domain) => {
        const before = store.seqno;
        const result = await postRecord(store, domain, body);
        assertClientError(result);
        if (result instanceof HttpError) assert.equal(store.seqno, before, "a refused write wrote");
      },
    ),
    { numRuns: 2000 },
  );
});

// ---- POST /node/join ------------------------------------------------------------------------

interface JoinRig {
  readonly router: Router;
  readonly store: Store;
  readonly pipeline: TxPipeline;
  readonly cleanup: () => void;
}

const HOST_DATA = "cd".repeat(32);
let rig: JoinRig;
let validJoin: Record<string, unknown>;
let joinerCertDer: Uint8Array;

async function makeJoinRig(): Promise<JoinRig> {
  const now = new Date(Date.now() - 60_000);
  const service = await createStartIdentities({ now });
  const member = await generateIdentity({ name: "member0", now });
  const encryption = generateEncryptionKey();
  const { dir, cleanup } = tempDir("consortia-join-fuzz-");
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(7));
  const store = new Store();
  const pipeline = new TxPipeline({
    store,
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    identity: service.node,
    options: {
      view: 2 as View,
      sigTxInterval: 1000,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 5,
    },
    nowMs: 0,
  });
  pipeline.execute((tx) =>
    writeGenesis(tx, {
      members: [{ certPem: member.certPem }],
      constitution: "export function resolve() { return 'Open'; }",
      serviceCertPem: service.serviceCertPem,
      serviceData: null,
      configuration: {
        recovery_threshold: 0,
        maximum_node_certificate_validity_days: 30,
        maximum_service_certificate_validity_days: 365,
        reconfiguration_type: "OneTransaction",
        recent_cose_proposals_window_size: 100,
      },
      node: {
        nodeId: service.node.nodeId,
        info: {
          node_to_node_interface: {
            bind_address: "127.0.0.1:0",
            published_address: "10.0.0.1:8081",
          },
          rpc_interfaces: { primary: { bind_address: "127.0.0.1:0" } },
          quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
          encryption_pub_key: encryption.publicKeyPem,
          status: "Trusted",
          node_data: null,
        },
      },
      virtualMeasurement: VIRTUAL_MEASUREMENT,
      virtualHostData: HOST_DATA,
    }),
  );
  const router = new Router();
  registerJoinEndpoint(router, {
    pipeline,
    role: () => ({ isPrimary: true, primaryRpcAddress: null }),
    startupSeqno: 0,
    serviceIdentity: () => ({
      certPem: service.serviceCertPem,
      privateKey: service.serviceKeys.privateKey,
      coseSignatures: { issuer: "service.example.com", subject: "ledger.signature" },
    }),
    ledgerSecrets: () => secrets.list(),
    now: () => new Date(),
    log: () => undefined,
  });
  const keys = generateEcKeyPair();
  const certPem = await createSelfSignedCertificate({
    keys,
    subject: "CN=CCF Node",
    validityDays: 30,
    now,
  });
  const publicKeyDer = new Uint8Array(keys.publicKey.export({ type: "spki", format: "der" }));
  joinerCertDer = new Uint8Array(new X509Certificate(certPem).raw);
  validJoin = {
    node_info_network: {
      node_to_node_interface: { bind_address: "127.0.0.1:0", published_address: "n1:8081" },
      rpc_interfaces: {
        primary_rpc_interface: {
          bind_address: "127.0.0.1:0",
          published_address: "n1:8080",
          protocol: "tcp",
          app_protocol: "HTTP1",
        },
      },
      will_locally_seal_ledger_secrets: false,
    },
    quote_info: makeVirtualQuote(publicKeyDer, HOST_DATA),
    public_encryption_key: encryption.publicKeyPem,
    startup_seqno: 0,
    node_data: { name: nodeIdFromPublicKey(keys.publicKey).slice(0, 8) },
  };
  return { router, store, pipeline, cleanup };
}

before(async () => {
  rig = await makeJoinRig();
});

after(async () => {
  await rig.pipeline.close();
  rig.cleanup();
});

/** Every path to a value inside `value` (object keys and array indices). */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== "object" || value === null) return [prefix];
  const own = Array.isArray(value) ? value.map((_, i) => String(i)) : Object.keys(value);
  return [
    prefix,
    ...own.flatMap((k) => paths((value as Record<string, unknown>)[k], [...prefix, k])),
  ];
}

/** A copy of `doc` with the value at `path` replaced (or removed, for undefined). */
function replaced(doc: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = (Array.isArray(doc) ? [...doc] : { ...(doc as object) }) as Record<string, unknown>;
  const [head, ...rest] = path;
  const next = replaced(copy[head!], rest, value);
  if (next === undefined) delete copy[head!];
  else
    Object.defineProperty(copy, head!, {
      value: next,
      enumerable: true,
      configurable: true,
      writable: true,
    });
  return copy;
}

function postJoin(body: Uint8Array, withCert: boolean): Promise<RpcResponse | HttpError> {
  const match = rig.router.match("POST", "/node/join");
  assert.equal(match.kind, "handler");
  if (match.kind !== "handler") throw new Error("no join handler");
  const handler = match.handler;
  return answer(async () =>
    answerOf(await handler(request("/node/join", body, withCert ? joinerCertDer : null))),
  );
}

test("property: POST /node/join answers any body with a 4xx or a join, never a 500", async () => {
  const all = paths(validJoin);
  const mutatedArb = fc
    .tuple(
      fc.nat(),
      fc.option(fc.oneof(valueArb, fc.constantFrom("__proto__")), { nil: undefined }),
      fc.boolean(),
    )
    .map(([at, value, addKey]) => {
      const path = all[at % all.length]!;
      const target = addKey ? [...path, value === "__proto__" ? "__proto__" : "extra"] : path;
      return utf8(JSON.stringify(replaced(validJoin, target, value)) ?? "null");
    });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        mutatedArb,
        mutatedArb,
        valueArb.map((v) => utf8(JSON.stringify(v))),
        oddTextArb.map(utf8),
        fc.uint8Array({ maxLength: 40 }),
      ),
      fc.boolean(),
      async (body, withCert) => {
        const before = rig.store.seqno;
        const result = await postJoin(body, withCert);
        assertClientError(result);
        if (result instanceof HttpError)
          assert.equal(rig.store.seqno, before, "a refused join wrote");
      },
    ),
    { numRuns: 400 },
  );
});

// ---- JSON receipts --------------------------------------------------------------------------

test("property: a changed JSON receipt is a ReceiptError, invalid, or proves the same leaf", async () => {
  const pki = await makePki();
  const built = [3, 8].map((leafCount) => makeReceipt(pki, { leafCount, index: leafCount - 2 }));
  const valid = built.map((b) => JSON.parse(JSON.stringify(b.receipt)) as Record<string, unknown>);
  for (const receipt of valid) {
    assert.equal(verifyReceipt(parseReceipt(receipt), pki.serviceCertPem).kind, "valid");
  }
  fc.assert(
    fc.property(
      fc.nat(),
      fc.nat(),
      fc.option(valueArb, { nil: undefined }),
      fc.boolean(),
      (which, at, value, addKey) => {
        const original = valid[which % valid.length]!;
        const all = paths(original);
        const path = all[at % all.length]!;
        // Through JSON text, as receipts arrive (a removed array element becomes null).
        const text = JSON.stringify(replaced(original, addKey ? [...path, "extra"] : path, value));
        const changed: unknown = JSON.parse(text ?? "null");
        let leaf: string | null = null;
        try {
          const receipt = parseReceipt(changed);
          if (verifyReceipt(receipt, pki.serviceCertPem).kind === "valid") {
            leaf = Buffer.from(receiptLeaf(receipt)).toString("hex");
          }
        } catch (error) {
          if (error instanceof ReceiptError) return;
          throw error;
        }
        if (leaf === null) return;
        const expected = Buffer.from(receiptLeaf(parseReceipt(original))).toString("hex");
        assert.equal(leaf, expected, "a changed receipt verifies for another leaf");
      },
    ),
    { numRuns: 1000, includeErrorInReport: true },
  );
});
