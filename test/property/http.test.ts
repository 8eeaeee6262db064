// Random HTTP/1.1 traffic against the node's HTTPS server (src/http/server.ts, limits.ts) over
// real TLS on loopback, with small limits so that the generated headers sit around them: request
// lines of random methods, targets and versions; header sets with sizes and counts at the limits,
// duplicate and invalid headers, content-length and transfer-encoding in every combination;
// bodies by content-length (right, short, long) or chunked (valid, bad sizes, no terminator);
// pipelined requests; all of it written in pieces cut at random points, then the client ends,
// holds or resets its side. Properties: the server never crashes or logs an unexpected error;
// every byte it sends parses as whole responses, each with a content-length (a 204 to OPTIONS
// with none), and every error is a CCF error body whose code is known and whose status is that
// code's; a connection the client holds open is closed by the server within its time limits;
// and a good request on a new connection then succeeds. Oracles besides: 431 exactly when a header is over the limits, 413
// exactly when a body is, and ambiguous framing (CL/TE conflicts, RFC 9112 §6.3) is a 400 that
// never runs the request hidden behind it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import fc from "fast-check";
import { ecPrivateKeyPem } from "../../src/crypto/identity.js";
import { HTTP_STATUS_OF_CODE, HttpErrorCode } from "../../src/http/errors.js";
import { Router } from "../../src/http/router.js";
import { createRpcServer, type RpcServer } from "../../src/http/server.js";
import { TurnSlicer } from "../../src/http/turn-slicer.js";
import { makePki } from "../helpers/pki.js";

const MAX_BODY_BYTES = 256;
const LIMITS = {
  maxHeaderSizeBytes: 128,
  maxHeadersCount: 8,
  headersTimeoutMs: 600,
  requestTimeoutMs: 1000,
  idleTimeoutMs: 1000,
};
/** How long a held connection may stay open: the longest limit, the linger, and slack. */
const CLOSE_BOUND_MS = 6000;

let server: RpcServer;
const logged: string[] = [];
/** Requests that reached GET /app/smuggled, which only a smuggled request asks for. */
let smuggledHits = 0;

before(async () => {
  const pki = await makePki();
  const router = new Router();
  router.add("GET", "/app/ok", () => ({ status: 200, body: { ok: true } }));
  router.add("POST", "/app/echo", (req) => ({ status: 200, body: req.body }));
  router.add("GET", "/app/items/{id}", (req) => ({ status: 200, body: { id: req.params["id"] } }));
  router.add("GET", "/app/smuggled", () => {
    smuggledHits += 1;
    return { status: 200, body: { smuggled: true } };
  });
  server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: pki.nodeCertPem,
    keyPem: ecPrivateKeyPem(pki.nodeKeys.privateKey),
    maxBodyBytes: MAX_BODY_BYTES,
    router,
    log: (message, error) => logged.push(`${message}: ${String(error)}`),
    limits: LIMITS,
    // As in a node, requests go through a slicer; a tiny budget queues most of them.
    slicer: new TurnSlicer({ budgetMs: 0.05 }),
  });
});

after(async () => {
  await server.close();
});

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytesOf = (parts: (string | Uint8Array)[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? enc(p) : p)));

/** Printable text, or any byte at all (CTLs, CR, LF, NUL, high bytes). */
const textArb = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.uint8Array({ maxLength }).map((b) => Buffer.from(b).toString("latin1")),
  );
const sizeAroundLimit = fc.oneof(
  fc.nat({ max: 16 }),
  fc.integer({ min: LIMITS.maxHeaderSizeBytes - 2, max: LIMITS.maxHeaderSizeBytes + 2 }),
  fc.integer({ min: 1000, max: 40_000 }),
);
const headerArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constant<[string, string]>(["Host", "node"]),
  fc.constantFrom<[string, string]>(
    ["Connection", "close"],
    ["Connection", "keep-alive"],
    ["Transfer-Encoding", "chunked"],
    ["Transfer-Encoding", "gzip, chunked"],
    ["Transfer-Encoding", "chunked, identity"],
    ["Transfer-Encoding", "identity"],
    ["Content-Type", "application/json"],
    ["Expect", "100-continue"],
  ),
  fc
    .oneof(
      fc.nat({ max: 2 * MAX_BODY_BYTES }).map(String),
      fc.constantFrom("-1", "1e3", "0x10", " 5", "5 ", "1, 2", "99999999999999999999", ""),
    )
    .map((v): [string, string] => ["Content-Length", v]),
  fc
    .tuple(sizeAroundLimit, sizeAroundLimit, fc.boolean())
    .map(([n, v, odd]): [string, string] => [
      odd ? `x-${"\u00e9".repeat(Math.min(n, 300))}` : `x-${"a".repeat(n)}`,
      "v".repeat(v),
    ]),
  fc.tuple(textArb(12), textArb(24)),
);

/** How a body is framed on the wire. */
const framingArb = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc.record({ kind: fc.constant("raw" as const), delta: fc.integer({ min: -4, max: 4 }) }),
  fc.record({
    kind: fc.constant("chunked" as const),
    sizes: fc.array(fc.nat({ max: 80 }), { maxLength: 4 }),
    badSize: fc.option(fc.constantFrom("zz", "-1", "ffffffffffffffff", "1;ext=1", " 3"), {
      nil: null,
    }),
    terminated: fc.boolean(),
  }),
);

const requestArb = fc.record({
  method: fc.oneof(
    // Not HEAD: its responses carry a content-length but no body, which the parser here cannot
    // tell apart from a cut response without knowing which request each answers.
    fc.constantFrom("GET", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH"),
    textArb(8),
  ),
  target: fc.oneof(
    fc.constantFrom(
      "/app/ok",
      "/app/echo",
      "/app/items/7?x=1",
      "*",
      "http://node/app/ok",
      "http://[bad/app",
      "/%zz",
      "//app/ok",
    ),
    textArb(40).map((t) => `/${t}`),
  ),
  version: fc.oneof(
    fc.constantFrom("HTTP/1.1", "HTTP/1.0"),
    fc.constantFrom("HTTP/2.0", "HTTP/1.1x", "http/1.1", ""),
  ),
  headers: fc.array(headerArb, { maxLength: LIMITS.maxHeadersCount + 3 }),
  framing: framingArb,
  body: fc.uint8Array({ maxLength: 2 * MAX_BODY_BYTES }),
});
type GenRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function encodeBody(r: GenRequest): (string | Uint8Array)[] {
  const f = r.framing;
  if (f.kind === "none") return [];
  if (f.kind === "raw") {
    return [
      `Content-Length: ${r.body.byteLength}\r\n\r\n`,
      r.body.subarray(0, r.body.byteLength + f.delta),
    ];
  }
  const parts: (string | Uint8Array)[] = ["Transfer-Encoding: chunked\r\n\r\n"];
  let at = 0;
  for (const size of f.sizes) {
    const chunk = r.body.subarray(at, at + size);
    at += chunk.byteLength;
    parts.push(`${f.badSize ?? chunk.byteLength.toString(16)}\r\n`, chunk, "\r\n");
  }
  if (f.terminated) parts.push("0\r\n\r\n");
  return parts;
}

function encodeRequest(r: GenRequest): Uint8Array {
  const head = `${r.method} ${r.target} ${r.version}`.trimEnd();
  const parts: (string | Uint8Array)[] = [`${head}\r\n`];
  for (const [name, value] of r.headers) parts.push(`${name}: ${value}\r\n`);
  const body = encodeBody(r);
  parts.push(...(body.length === 0 ? ["\r\n"] : body));
  return bytesOf(parts);
}

const GOOD_REQUEST = "GET /app/ok HTTP/1.1\r\nHost: node\r\n\r\n";

const caseArb = fc.record({
  requests: fc.array(
    fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: requestArb }),
    { minLength: 1, maxLength: 3 },
  ),
  truncateAt: fc.option(fc.nat(), { nil: null }),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
  ending: fc.constantFrom("end", "end", "hold", "reset"),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function wireBytes(c: Case): Uint8Array {
  const all = bytesOf(c.requests.map((r) => (r === null ? GOOD_REQUEST : encodeRequest(r))));
  return c.truncateAt === null ? all : all.subarray(0, c.truncateAt % (all.byteLength + 1));
}

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const to of [...at, bytes.byteLength]) {
    if (to > from) chunks.push(bytes.subarray(from, to));
    from = to;
  }
  return chunks;
}

interface Exchange {
  readonly received: Buffer;
  /** Whether the server closed the connection within CLOSE_BOUND_MS (or the client reset). */
  readonly closed: boolean;
  readonly ms: number;
}

/** Writes the pieces over a fresh TLS connection, then ends, holds or resets it. */
async function exchange(pieces: readonly Uint8Array[], ending: Case["ending"]): Promise<Exchange> {
  const started = Date.now();
  const tcp = netConnect(server.port, "127.0.0.1");
  tcp.on("error", () => undefined);
  const socket = tlsConnect({ socket: tcp, rejectUnauthorized: false });
  const received: Buffer[] = [];
  socket.on("data", (d: Buffer) => received.push(d));
  socket.on("error", () => undefined); // a reset from the server is an answer too
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), CLOSE_BOUND_MS);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  await new Promise<void>((resolve) => {
    socket.once("secureConnect", () => resolve());
    socket.once("close", () => resolve());
  });
  for (const piece of pieces) {
    if (socket.destroyed) break;
    socket.write(piece);
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (ending === "end") socket.end();
  if (ending === "reset") {
    await new Promise((resolve) => setTimeout(resolve, 20));
    tcp.resetAndDestroy();
  }
  const wasClosed = await closed;
  socket.destroy();
  return { received: Buffer.concat(received), closed: wasClosed, ms: Date.now() - started };
}

const KNOWN_CODES = new Set<string>(Object.values(HttpErrorCode));

/** Parses every response in `bytes`; fails on anything that is not whole, framed responses. */
function parseResponses(bytes: Buffer, bodies: Buffer[] = []): number[] {
  const statuses: number[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const headEnd = bytes.indexOf("\r\n\r\n", at);
    assert.ok(
      headEnd >= 0,
      `an incomplete response head: ${bytes.subarray(at, at + 200).toString("latin1")}`,
    );
    const lines = bytes.subarray(at, headEnd).toString("latin1").split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]!);
    assert.ok(status !== null, `a bad status line: ${lines[0]}`);
    const headers = new Map(
      lines
        .slice(1)
        .map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
    );
    const code = Number(status[1]);
    if (code >= 100 && code < 200) {
      // An interim response (100 Continue for "Expect: 100-continue") has no body.
      at = headEnd + 4;
      continue;
    }
    // 204 and 304 carry no body and no content-length (RFC 9110 §8.6); every other response
    // must say how long its body is.
    const bodiless = code === 204 || code === 304;
    if (bodiless)
      assert.ok(!headers.has("content-length"), `response ${code} has a content-length`);
    const length = bodiless ? 0 : Number(headers.get("content-length"));
    assert.ok(Number.isSafeInteger(length), `response ${code} has no content-length`);
    const body = bytes.subarray(headEnd + 4, headEnd + 4 + length);
    assert.equal(body.byteLength, length, `response ${code} is cut short`);
    if (code >= 400) checkErrorBody(code, body.toString("utf8"));
    statuses.push(code);
    bodies.push(body);
    at = headEnd + 4 + length;
  }
  return statuses;
}

function checkErrorBody(status: number, text: string): void {
  const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
  const code = parsed.error?.code;
  assert.ok(typeof code === "string" && KNOWN_CODES.has(code), `unknown error code in ${text}`);
  assert.equal(typeof parsed.error?.message, "string");
  assert.equal(status, HTTP_STATUS_OF_CODE[code as HttpErrorCode], text);
  assert.ok(status !== 500, `a 500 for client input: ${text}`);
}

async function assertServerHealthy(): Promise<void> {
  const good = await exchange(
    [enc(GOOD_REQUEST.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"))],
    "hold",
  );
  assert.deepEqual(parseResponses(good.received), [200], "a good request afterwards");
  assert.deepEqual(logged.splice(0), [], "the server logged unexpected errors");
}

test("property: random traffic gets whole CCF-style responses or a close, never a crash", async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const result = await exchange(split(wireBytes(c), c.cuts), c.ending);
      const statuses = parseResponses(result.received);
      assert.ok(statuses.length <= c.requests.length, `${statuses.length} responses`);
      if (c.ending === "hold") assert.ok(result.closed, "a held connection was never closed");
      if (c.ending === "end") assert.ok(result.closed, "an ended connection was never closed");
      if (c.requests[0] === null && c.truncateAt === null && c.ending !== "reset") {
        assert.equal(statuses[0], 200, "the good first request");
      }
      await assertServerHealthy();
    }),
    { numRuns: Number(process.env["FUZZ_RUNS"] ?? 60), includeErrorInReport: true },
  );
});

/** Header names and values of sizes near the per-header limit, ASCII or two-byte characters. */
const sizedTextArb = fc
  .tuple(
    fc.oneof(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: LIMITS.maxHeaderSizeBytes - 3, max: LIMITS.maxHeaderSizeBytes + 3 }),
    ),
    fc.boolean(),
  )
  .map(([bytes, wide]) => (wide ? "\u00e9".repeat(Math.ceil(bytes / 2)) : "a".repeat(bytes)));

test("property: 431 exactly when a header count or size is over the limit, else 200", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(sizedTextArb, sizedTextArb, fc.boolean()), {
        maxLength: LIMITS.maxHeadersCount + 2,
      }),
      async (extra) => {
        // Names must be tokens: wide characters go in values only.
        const headers = extra.map(([name, value], i) => [
          `x${i}-${name.replace(/\u00e9/g, "ab")}`.slice(0, name.length + 3),
          value,
        ]);
        const all = [["Host", "node"], ["Connection", "close"], ...headers];
        const over =
          all.length > LIMITS.maxHeadersCount ||
          all.some(
            ([n, v]) =>
              Buffer.byteLength(n!) > LIMITS.maxHeaderSizeBytes ||
              Buffer.byteLength(v!) > LIMITS.maxHeaderSizeBytes,
          );
        const head = all.map(([n, v]) => `${n}: ${v}\r\n`).join("");
        const reply = await exchange(
          [Buffer.from(`GET /app/ok HTTP/1.1\r\n${head}\r\n`, "utf8")],
          "hold",
        );
        assert.deepEqual(parseResponses(reply.received), [over ? 431 : 200]);
        assert.ok(reply.closed);
      },
    ),
    { numRuns: Number(process.env["FUZZ_RUNS"] ?? 60), includeErrorInReport: true },
  );
  assert.deepEqual(logged.splice(0), []);
});

test("property: 413 exactly when a body is over the limit, else the body echoed intact", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 * MAX_BODY_BYTES }),
      fc.option(fc.array(fc.nat(), { maxLength: 5 }), { nil: null }),
      fc.array(fc.nat(), { maxLength: 4 }),
      async (size, chunkCuts, writeCuts) => {
        const body = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
        let framed: Uint8Array;
        if (chunkCuts === null) {
          framed = bytesOf([`Content-Length: ${size}\r\n\r\n`, body]);
        } else {
          const parts: (string | Uint8Array)[] = ["Transfer-Encoding: chunked\r\n\r\n"];
          for (const chunk of split(body, chunkCuts)) {
            parts.push(`${chunk.byteLength.toString(16)}\r\n`, chunk, "\r\n");
          }
          parts.push("0\r\n\r\n");
          framed = bytesOf(parts);
        }
        const head = "POST /app/echo HTTP/1.1\r\nHost: node\r\nConnection: close\r\n";
        const wire = bytesOf([head, framed]);
        const reply = await exchange(split(wire, writeCuts), "hold");
        const bodies: Buffer[] = [];
        const statuses = parseResponses(reply.received, bodies);
        if (size > MAX_BODY_BYTES) {
          assert.deepEqual(statuses, [413]);
        } else {
          assert.deepEqual(statuses, [200]);
          assert.ok(Buffer.from(body).equals(bodies[0]!), "the body echoed intact");
        }
        assert.ok(reply.closed);
      },
    ),
    { numRuns: Number(process.env["FUZZ_RUNS"] ?? 60), includeErrorInReport: true },
  );
  assert.deepEqual(logged.splice(0), []);
});

/** Framing headers that disagree about where a body ends (RFC 9112 §6.3: an error). */
const ambiguousFramingArb = fc.constantFrom(
  ["Content-Length: 5", "Content-Length: 60"],
  ["Content-Length: 5", "Content-Length: 5, 60"],
  ["Content-Length: 60", "Transfer-Encoding: chunked"],
  ["Transfer-Encoding: chunked", "Content-Length: 60"],
  ["Transfer-Encoding: chunked, identity"],
  ["Transfer-Encoding: identity, chunked", "Content-Length: 60"],
  ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"],
  ["Transfer-Encoding : chunked", "Content-Length: 60"],
  ["Transfer-Encoding: chunked", " Content-Length: 60"],
  ["Content-Length: +60"],
  ["Content-Length: 6 0"],
  ["Content-Length:\t60\t", "Transfer-Encoding:\tchunked"],
  ["Transfer-Encoding: xchunked", "Content-Length: 60"],
  ["Transfer-Encoding: chunked\u000bx"],
);

test("property: ambiguous framing is refused, and what it hides is never run", async () => {
  await fc.assert(
    fc.asyncProperty(
      ambiguousFramingArb,
      fc.constantFrom("\r\n", "\n"),
      fc.array(fc.nat(), { maxLength: 4 }),
      async (framing, eol, cuts) => {
        const hidden = `GET /app/smuggled HTTP/1.1${eol}Host: node${eol}${eol}`;
        const chunk = `5${eol}hello${eol}0${eol}${eol}`;
        const head = ["POST /app/echo HTTP/1.1", "Host: node", ...framing].join(eol);
        const wire = enc(`${head}${eol}${eol}${chunk}${hidden}`);
        const before = smuggledHits;
        const reply = await exchange(split(wire, cuts), "hold");
        const statuses = parseResponses(reply.received);
        assert.equal(smuggledHits, before, `a smuggled request ran: ${JSON.stringify(framing)}`);
        assert.ok(statuses.length <= 1 && statuses.every((st) => st === 400), String(statuses));
        assert.ok(reply.closed);
      },
    ),
    { numRuns: Number(process.env["FUZZ_RUNS"] ?? 60), includeErrorInReport: true },
  );
  assert.deepEqual(logged.splice(0), []);
});
