/**
 * Node-to-node channels over real loopback TLS: delivery and order, queueing before the peer
 * listens, peer authorization both ways, hostile clients (garbage, oversized frame headers),
 * the queue bound, contained onMessage failures and identity replacement.
 */
import { before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer as createNetServer, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { type EcKeyPair } from "../../../../src/crypto/certs.js";
import {
  createSelfSignedCertificate,
  createServiceCertificate,
  endorseNodeCertificate,
} from "../../../../src/crypto/cert-issuance.js";
import {
  ecPrivateKeyPem,
  generateEcKeyPair,
  isIssuedBy,
  nodeIdFromPublicKey,
} from "../../../../src/crypto/identity.js";
import {
  NodeChannels,
  type NodeChannelsOptions,
} from "../../../../src/node/replication/n2n/channels.js";

interface NodeIdentity {
  readonly id: string;
  readonly keys: EcKeyPair;
  readonly certPem: string;
  readonly keyPem: string;
}

interface TestNode extends NodeIdentity {
  readonly channels: NodeChannels;
  readonly received: { from: string; text: string; bytes: Uint8Array }[];
  readonly logs: string[];
  address: string;
}

let serviceKeys: EcKeyPair;
let serviceCertPem: string;

before(async () => {
  serviceKeys = generateEcKeyPair();
  serviceCertPem = await createServiceCertificate({
    keys: serviceKeys,
    validityDays: 1,
    now: new Date(),
  });
});

async function endorsedCert(keys: EcKeyPair): Promise<string> {
  return endorseNodeCertificate({
    servicePrivateKey: serviceKeys.privateKey,
    serviceCertPem,
    nodePublicKey: keys.publicKey,
    validityDays: 1,
    now: new Date(),
  });
}

async function makeIdentity(endorsed = true): Promise<NodeIdentity> {
  const keys = generateEcKeyPair();
  const certPem = endorsed
    ? await endorsedCert(keys)
    : await createSelfSignedCertificate({
        keys,
        subject: "CN=rogue",
        validityDays: 1,
        now: new Date(),
      });
  return {
    id: nodeIdFromPublicKey(keys.publicKey),
    keys,
    certPem,
    keyPem: ecPrivateKeyPem(keys.privateKey),
  };
}

const issuedByService = (_id: string, der: Uint8Array): boolean => isIssuedBy(der, serviceCertPem);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A node with channels (not listening yet), closed when the test ends. */
function makeNode(
  t: TestContext,
  identity: NodeIdentity,
  options: Partial<NodeChannelsOptions> = {},
): TestNode {
  const received: TestNode["received"] = [];
  const logs: string[] = [];
  const channels = new NodeChannels({
    selfId: identity.id,
    certPem: identity.certPem,
    keyPem: identity.keyPem,
    authorize: issuedByService,
    onMessage: (from, bytes) => received.push({ from, text: decode(bytes), bytes }),
    log: (line) => logs.push(line),
    ...options,
  });
  t.after(() => channels.close());
  return { ...identity, channels, received, logs, address: "" };
}

async function listen(node: TestNode, port = 0): Promise<void> {
  const bound = await node.channels.listen("127.0.0.1", port);
  node.address = `${bound.host}:${bound.port}`;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port that nothing listens on (bound once, then released). */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(typeof address === "object" && address !== null);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once("close", () => resolve());
  });
}

/** Two endorsed nodes that know each other's addresses. */
async function pair(t: TestContext, options: Partial<NodeChannelsOptions> = {}) {
  const a = makeNode(t, await makeIdentity());
  const b = makeNode(t, await makeIdentity(), options);
  await listen(a);
  await listen(b);
  a.channels.setPeer(b.id, b.address);
  b.channels.setPeer(a.id, a.address);
  return { a, b };
}

test("messages flow both ways in order, a 1 MiB payload intact", async (t) => {
  const { a, b } = await pair(t);
  const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 31 + 7) & 0xff);
  assert.equal(a.channels.send(b.id, text("one")), true);
  assert.equal(a.channels.send(b.id, big), true);
  assert.equal(a.channels.send(b.id, text("three")), true);
  await waitFor("B to receive 3 messages", () => b.received.length === 3);
  assert.deepEqual(
    b.received.map((m) => m.from),
    [a.id, a.id, a.id],
  );
  assert.equal(b.received[0]!.text, "one");
  assert.deepEqual(b.received[1]!.bytes, big);
  assert.equal(b.received[2]!.text, "three");

  for (const m of b.received) b.channels.send(a.id, text(`ack ${m.bytes.byteLength}`));
  await waitFor("A to receive 3 replies", () => a.received.length === 3);
  assert.deepEqual(
    a.received.map((m) => [m.from, m.text]),
    [
      [b.id, "ack 3"],
      [b.id, `ack ${1024 * 1024}`],
      [b.id, "ack 5"],
    ],
  );
  assert.equal(a.channels.stats.framesOut, 3);
  assert.equal(b.channels.stats.framesIn, 3);
  assert.equal(a.channels.stats.connects, 1);
  assert.equal(b.channels.stats.connects, 1);
  assert.equal(a.channels.stats.dropped + b.channels.stats.dropped, 0);
});

test("sends before the peer listens are queued and delivered once it does", async (t) => {
  const a = makeNode(t, await makeIdentity());
  const b = makeNode(t, await makeIdentity());
  const port = await freePort();
  a.channels.setPeer(b.id, `127.0.0.1:${port}`);
  assert.equal(a.channels.send(b.id, text("early 1")), true);
  assert.equal(a.channels.send(b.id, text("early 2")), true);
  await sleep(300); // several refused dials, backing off
  assert.ok(
    a.logs.some((l) => l.includes("ECONNREFUSED")),
    a.logs.join("\n"),
  );
  await listen(b, port);
  assert.equal(a.channels.send(b.id, text("late")), true);
  await waitFor("queued messages", () => b.received.length === 3, 4000);
  assert.deepEqual(
    b.received.map((m) => m.text),
    ["early 1", "early 2", "late"],
  );
  assert.equal(a.channels.stats.connects, 1);
});

test("an unauthorized peer is rejected; good peers still get through", async (t) => {
  const { a, b } = await pair(t);
  const rogue = makeNode(t, await makeIdentity(false), { authorize: () => true });
  rogue.channels.setPeer(b.id, b.address);
  assert.equal(rogue.channels.send(b.id, text("let me in")), true);
  await waitFor("B to reject the rogue", () => b.channels.stats.rejectedPeers >= 1);
  assert.ok(b.logs.some((l) => l.includes(rogue.id)));

  a.channels.send(b.id, text("hello"));
  await waitFor("A's message", () => b.received.length === 1);
  await sleep(100);
  assert.deepEqual(
    b.received.map((m) => [m.from, m.text]),
    [[a.id, "hello"]],
  );
  assert.equal(rogue.received.length, 0);
});

test("garbage and oversized frame headers close that socket only", async (t) => {
  const { a, b } = await pair(t);
  const port = Number(b.address.split(":")[1]);

  const raw = netConnect(port, "127.0.0.1");
  raw.on("error", () => {}); // a reset is an acceptable way to be thrown out
  raw.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await closed(raw);
  assert.ok(
    b.logs.some((l) => l.includes("handshake failed")),
    b.logs.join("\n"),
  );

  // A genuine, authorized node identity that then declares a 1 GiB frame.
  const tls = tlsConnect({
    host: "127.0.0.1",
    port,
    cert: a.certPem,
    key: a.keyPem,
    rejectUnauthorized: false,
  });
  tls.on("error", () => {});
  await new Promise<void>((resolve) => tls.once("secureConnect", () => resolve()));
  tls.write(new Uint8Array([0x00, 0x00, 0x00, 0x40])); // 2^30, little-endian
  await closed(tls);
  assert.equal(b.channels.stats.oversized, 1);
  assert.equal(b.received.length, 0);

  a.channels.send(b.id, text("still alive"));
  await waitFor("a good message", () => b.received.length === 1);
  assert.equal(b.received[0]!.text, "still alive");

  // A client that connects and never speaks must not hold close() up.
  const silent = netConnect(port, "127.0.0.1");
  silent.on("error", () => {});
  await new Promise<void>((resolve) => silent.once("connect", () => resolve()));
  await b.channels.close();
  await closed(silent);
  assert.equal(b.channels.send(a.id, text("too late")), false);
});

test("the outbound queue is bounded; excess and unknown-peer sends are dropped", async (t) => {
  const a = makeNode(t, await makeIdentity(), { queueMaxBytes: 1024 });
  const port = await freePort();
  a.channels.setPeer("b", `127.0.0.1:${port}`);
  const results = Array.from({ length: 12 }, () => a.channels.send("b", new Uint8Array(100)));
  // Each frame is 104 bytes: 9 fit in 1024, the other 3 are dropped.
  assert.deepEqual(results, [...Array<boolean>(9).fill(true), ...Array<boolean>(3).fill(false)]);
  assert.equal(a.channels.stats.dropped, 3);
  assert.equal(a.channels.send("nobody", text("x")), false);
  assert.equal(a.channels.stats.dropped, 4);
  a.channels.removePeer("b");
  assert.equal(a.channels.stats.dropped, 13); // the 9 queued frames went with the peer
  assert.equal(a.channels.send("b", text("x")), false);
});

test("an exception in onMessage is contained and counted", async (t) => {
  const received: string[] = [];
  const { a, b } = await pair(t, {
    onMessage: (_from, bytes) => {
      if (decode(bytes) === "boom") throw new Error("handler exploded");
      received.push(decode(bytes));
    },
  });
  a.channels.send(b.id, text("boom"));
  a.channels.send(b.id, text("after"));
  await waitFor("the message after the throw", () => received.length === 1);
  assert.deepEqual(received, ["after"]);
  assert.equal(b.channels.stats.dropped, 1);
  assert.equal(b.channels.stats.framesIn, 2);
  assert.ok(b.logs.some((l) => l.includes("handler exploded")));
});

test("dialling an address whose node is not the expected peer is refused", async (t) => {
  const { a, b } = await pair(t);
  const c = makeNode(t, await makeIdentity());
  await listen(c);
  a.channels.setPeer(b.id, c.address); // wrong address for B: C answers there
  a.channels.send(b.id, text("for B only"));
  await waitFor("A to refuse C", () => a.channels.stats.rejectedPeers >= 1);
  await sleep(100);
  assert.equal(c.received.length, 0);
  assert.equal(a.channels.stats.connects, 0);
  assert.ok(a.logs.some((l) => l.includes(c.id)));

  a.channels.setPeer(b.id, b.address); // corrected: the queued message now reaches B
  await waitFor("delivery to B", () => b.received.length === 1, 3000);
  assert.equal(b.received[0]!.text, "for B only");
});

test("setIdentity: a node endorsed after starting is accepted on its next connection", async (t) => {
  const b = makeNode(t, await makeIdentity());
  await listen(b);
  const early = await makeIdentity(false);
  const a = makeNode(t, early);
  a.channels.setPeer(b.id, b.address);
  // TLS 1.3: A's handshake completes before B checks A's certificate, so A writes this frame
  // and B drops it with the connection. Lost messages are Raft's to retry.
  a.channels.send(b.id, text("lost while self-signed"));
  await waitFor("B to reject the self-signed A", () => b.channels.stats.rejectedPeers >= 1);
  await waitFor("A to see the hang-up", () => a.channels.stats.disconnects >= 1);
  assert.equal(b.received.length, 0);
  a.channels.setIdentity(await endorsedCert(early.keys), early.keyPem);
  a.channels.send(b.id, text("endorsed now"));
  await waitFor("delivery with the endorsed cert", () => b.received.length >= 1, 3000);
  assert.deepEqual(
    b.received.map((m) => [m.from, m.text]),
    [[early.id, "endorsed now"]],
  );
});

test("liveness: sending without hearing back recycles the connection; answers keep it", async (t) => {
  // a -> b with b silent: a reconnects after 2-3 checks of silenceMs / 2.
  const silent = await pair(t);
  const a = makeNode(t, await makeIdentity(), { silenceMs: 300 });
  await listen(a);
  a.channels.setPeer(silent.b.id, silent.b.address);
  const ticker = setInterval(() => a.channels.send(silent.b.id, text("ping")), 30);
  t.after(() => clearInterval(ticker));
  await waitFor("a recycled its silent connection", () => a.channels.stats.recycled >= 1, 5000);
  assert.ok(
    a.logs.some((l) => /reconnecting to .*nothing heard from it/.test(l)),
    a.logs.join(),
  );
  await waitFor("a reconnected", () => a.channels.stats.connects >= 2);
  const before = silent.b.received.length;
  await waitFor("b still receives after the recycle", () => silent.b.received.length > before);

  // The same traffic answered by the peer (as every Raft message is) is never recycled.
  const c = makeNode(t, await makeIdentity(), { silenceMs: 300 });
  const d = makeNode(t, await makeIdentity(), {
    onMessage: (from) => d.channels.send(from, text("ack")),
  });
  await listen(c);
  await listen(d);
  c.channels.setPeer(d.id, d.address);
  d.channels.setPeer(c.id, c.address);
  const answered = setInterval(() => c.channels.send(d.id, text("ping")), 30);
  t.after(() => clearInterval(answered));
  await sleep(1500);
  assert.equal(c.channels.stats.recycled, 0, c.logs.join("\n"));
  assert.ok(c.received.length > 10);
});

test("liveness: a peer that dials again makes us recycle ours to it, once per period", async (t) => {
  const { a, b } = await pair(t, { silenceMs: 60_000 });
  /** Sends `message` until it arrives (a frame written while a socket closes is lost). */
  const deliver = async (from: TestNode, to: TestNode, message: string) => {
    const deadline = Date.now() + 5000;
    while (!to.received.some((m) => m.text === message)) {
      if (Date.now() > deadline) assert.fail(`${message} not delivered`);
      from.channels.send(to.id, text(message));
      await sleep(50);
    }
  };
  /** a drops its connection to b and dials again, as a recycle does. */
  const redial = async () => {
    const closes = a.channels.stats.disconnects;
    a.channels.setPeer(b.id, "127.0.0.1:1");
    a.channels.setPeer(b.id, b.address);
    await waitFor("a's connection closed", () => a.channels.stats.disconnects > closes);
  };
  await deliver(a, b, "hello");
  await deliver(b, a, "hello back");
  await redial();
  await deliver(a, b, "again");
  await waitFor("b recycled", () => b.channels.stats.recycled === 1);
  assert.ok(
    b.logs.some((l) => /dialled us again/.test(l)),
    b.logs.join(),
  );
  await deliver(b, a, "still there");
  // b's redial made a recycle its own once; nothing recycles again within the period.
  await redial();
  await deliver(a, b, "and again");
  await deliver(b, a, "and back");
  await sleep(200);
  assert.equal(b.channels.stats.recycled, 1);
  assert.ok(a.channels.stats.recycled <= 1, String(a.channels.stats.recycled));
});

test("liveness: a dial that never completes its TLS handshake is abandoned and retried", async (t) => {
  // A TCP server that accepts and never speaks TLS: without a connect timeout the dial would
  // wait forever and nothing queued would ever leave.
  const sockets: Socket[] = [];
  const mute = createNetServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => mute.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    mute.close();
  });
  const port = (mute.address() as { port: number }).port;
  const a = makeNode(t, await makeIdentity(), { connectTimeoutMs: 200 });
  const b = makeNode(t, await makeIdentity());
  a.channels.setPeer(b.id, `127.0.0.1:${port}`);
  a.channels.send(b.id, text("queued"));
  await waitFor("a gave up and dialled again", () => sockets.length >= 2, 5000);
  assert.ok(
    a.logs.some((l) => /no TLS handshake within 200 ms/.test(l)),
    a.logs.join("\n"),
  );
  // Once the peer really listens there, the queued message goes through.
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => mute.close(() => resolve()));
  await listen(b, port);
  await waitFor("delivered after retries", () => b.received.some((m) => m.text === "queued"), 8000);
});
