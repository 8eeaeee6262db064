/**
 * HttpsTransport (@consortia/client/node) against real TLS servers on loopback: it trusts only
 * the service certificate (a server whose certificate the service did not issue is refused),
 * presents the TLS client certificate it is given, lower-cases answer headers, and bounds every
 * request by its timeout and every answer by responseBytesMax. The oracle is the server: what it
 * saw (the peer certificate) and what it sent.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import { test } from "node:test";
import { ClientError, ClientErrorCode } from "@consortia/client";
import { HttpsTransport } from "@consortia/client/node";
import { ecPrivateKeyPem, generateIdentity } from "../../../src/crypto/identity.js";
import { makePki } from "../../helpers/pki.js";

type Handler = Parameters<typeof createServer>[1];

async function serve(
  tls: { cert: string; key: string },
  handler: Handler,
): Promise<{ server: Server; url: string }> {
  const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: false }, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { server, url: `https://127.0.0.1:${port}` };
}

function closeAll(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function rejectsWith(promise: Promise<unknown>, code: ClientErrorCode): Promise<ClientError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return err instanceof ClientError && err.code === code;
  });
  return caught as ClientError;
}

test("a node whose certificate the service issued answers; its client certificate is presented", async () => {
  const pki = await makePki();
  const user = await generateIdentity({ name: "user0", now: new Date() });
  const tls = { cert: pki.nodeCertPem, key: ecPrivateKeyPem(pki.nodeKeys.privateKey) };
  let peer = "";
  const { server, url } = await serve(tls, (req, res) => {
    peer = (req.socket as TLSSocket).getPeerCertificate().fingerprint256 ?? "";
    res.writeHead(200, { "X-Ms-Ccf-Transaction-Id": "2.3", "content-type": "application/json" });
    res.end(JSON.stringify({ method: req.method, url: req.url }));
  });
  const transport = new HttpsTransport({
    url,
    caPem: pki.serviceCertPem,
    certPem: user.certPem,
    keyPem: user.privateKeyPem,
  });
  try {
    const answer = await transport.send({
      method: "POST",
      path: "/app/x?y=1",
      headers: {},
      body: new Uint8Array([1]),
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["x-ms-ccf-transaction-id"], "2.3");
    assert.deepEqual(JSON.parse(new TextDecoder().decode(answer.body)), {
      method: "POST",
      url: "/app/x?y=1",
    });
    assert.equal(peer, new X509Certificate(user.certPem).fingerprint256);
  } finally {
    transport.close();
    await closeAll(server);
  }
});

test("a server the service certificate did not issue is refused as a Network error", async () => {
  const pki = await makePki();
  const other = await makePki();
  const tls = { cert: other.nodeCertPem, key: ecPrivateKeyPem(other.nodeKeys.privateKey) };
  const { server, url } = await serve(tls, (_req, res) => res.end("{}"));
  const transport = new HttpsTransport({ url, caPem: pki.serviceCertPem });
  try {
    const err = await rejectsWith(
      transport.send({ method: "GET", path: "/node/state", headers: {} }),
      ClientErrorCode.Network,
    );
    assert.match(err.message, /GET \/node\/state failed/);
  } finally {
    transport.close();
    await closeAll(server);
  }
});

test("a node that does not answer in time, or answers too much, is a typed error", async () => {
  const pki = await makePki();
  const tls = { cert: pki.nodeCertPem, key: ecPrivateKeyPem(pki.nodeKeys.privateKey) };
  const { server, url } = await serve(tls, (req, res) => {
    if (req.url === "/big") res.end(new Uint8Array(4096));
    // Otherwise never answer.
  });
  const transport = new HttpsTransport({
    url,
    caPem: pki.serviceCertPem,
    timeoutMs: 300,
    responseBytesMax: 1024,
  });
  try {
    const started = Date.now();
    const err = await rejectsWith(
      transport.send({ method: "GET", path: "/slow", headers: {} }),
      ClientErrorCode.Timeout,
    );
    assert.match(err.message, /no answer from https:\/\/127\.0\.0\.1:\d+ within 300 ms/);
    assert.ok(Date.now() - started < 5_000);
    await rejectsWith(
      transport.send({ method: "GET", path: "/big", headers: {} }),
      ClientErrorCode.BadResponse,
    );
  } finally {
    transport.close();
    await closeAll(server);
  }
});
