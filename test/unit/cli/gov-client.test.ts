/**
 * GovClient, the CLI's face over @consortia/client, against a real closed port (real sockets,
 * real node:https): a node that is not listening must fail fast with the socket code after
 * bounded retries instead of hanging; signing without a member identity is refused up front,
 * and a member's PEM becomes a signer that gets the request as far as the network. The SDK's
 * error mapping and retry rules are covered by test/unit/client/client.test.ts.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { generateIdentity } from "../../../src/crypto/identity.js";
import { ClientError, ClientErrorCode } from "@consortia/client";
import { GovClient } from "../../../src/cli/gov-client.js";

/** A port nobody listens on: bind, read the port, close. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

test("a refused connection is retried a bounded number of times, then reported", async () => {
  const { certPem, privateKeyPem } = await generateIdentity({ name: "m", now: new Date() });
  const port = await closedPort();
  const client = new GovClient({
    url: `https://127.0.0.1:${port}`,
    caPem: certPem,
    connectRetries: 2,
    retryDelayMs: 20,
  });
  const started = Date.now();
  try {
    await assert.rejects(client.listProposals(), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.type.code, ClientErrorCode.Network);
      assert.equal(err.type.ccfCode, "ECONNREFUSED");
      return true;
    });
    assert.ok(Date.now() - started >= 40, "the two retries were not waited for");
    await assert.rejects(client.waitUntilReady({ timeoutMs: 200, intervalMs: 20 }), (err) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.type.code, ClientErrorCode.Timeout);
      return true;
    });
    await assert.rejects(client.propose([{ name: "trigger_snapshot" }]), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.type.code, ClientErrorCode.NoSigner);
      return true;
    });
    // With a signer, the same call gets as far as the network.
    const signer = { certPem, keyPem: privateKeyPem };
    await assert.rejects(client.vote("p1", true, signer), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.type.code, ClientErrorCode.Network);
      return true;
    });
  } finally {
    client.close();
  }
});
