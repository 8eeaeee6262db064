// HeldListener (src/http/held-listener.ts): a socket bound before its server exists. A client
// that connects before a server adopts the socket waits, and gets its answer from the server
// once it does (before the fix such connections were accepted and reset); close() without a
// server resets them; a socket is adopted once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:https";
import { connect } from "node:net";
import { ecPrivateKeyPem } from "../../../src/crypto/identity.js";
import { HeldListener, listenAt } from "../../../src/http/held-listener.js";
import { httpsRequest } from "../../helpers/https.js";
import { closeServer } from "../../helpers/listen.js";
import { waitFor } from "../../helpers/network.js";
import { makePki } from "../../helpers/pki.js";

test("a request sent before a server adopts the socket is answered by that server", async () => {
  const pki = await makePki();
  const held = await HeldListener.bind("127.0.0.1", 0);
  const url = `https://127.0.0.1:${held.port}/ping`;
  const early = httpsRequest(url, { ca: pki.serviceCertPem }, "GET");
  await waitFor("the connection to be held", 5_000, async () =>
    held.heldCount === 1 ? true : undefined,
  );
  const server = createServer(
    { cert: pki.nodeCertPem, key: ecPrivateKeyPem(pki.nodeKeys.privateKey) },
    (req, res) => res.end(`pong ${req.url}`),
  );
  try {
    assert.equal(await listenAt(server, { host: "ignored", port: 1, held }), held.port);
    assert.equal(held.heldCount, 0);
    const answer = await early;
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "pong /ping");
    // Later connections reach the server directly.
    assert.equal((await httpsRequest(url, { ca: pki.serviceCertPem }, "GET")).body, "pong /ping");
    assert.throws(() => held.adopt(createServer()), /already adopted/);
  } finally {
    await closeServer(server);
  }
});

test("close() without a server closes the held connections and frees the port", async () => {
  const held = await HeldListener.bind("127.0.0.1", 0);
  const port = held.port;
  const client = connect(port, "127.0.0.1");
  const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
  client.on("error", () => {});
  await waitFor("the connection to be held", 5_000, async () =>
    held.heldCount === 1 ? true : undefined,
  );
  await held.close();
  await closed;
  assert.equal(held.heldCount, 0);
  const again = await HeldListener.bind("127.0.0.1", port);
  await again.close();
});

test("binding a port that is taken rejects with the OS error", async () => {
  const first = await HeldListener.bind("127.0.0.1", 0);
  try {
    await assert.rejects(HeldListener.bind("127.0.0.1", first.port), { code: "EADDRINUSE" });
  } finally {
    await first.close();
  }
});
