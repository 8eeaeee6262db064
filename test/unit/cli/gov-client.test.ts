/**
 * GovClient's error mapping: what `consortia gov` and the sandbox print when the node says no.
 * A CCF error body must surface its status, code and message; a body that is not CCF's must
 * still name the status; a node that is not listening must fail fast with the socket code after
 * bounded retries instead of hanging; signing without a member identity is refused up front.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { generateIdentity } from "../../../src/crypto/identity.js";
import {
  GovClient,
  GovClientError,
  GovClientErrorCode,
  errorFromResponse,
  isNoPrimaryForWrite,
} from "../../../src/cli/gov-client.js";

test("a CCF error body yields the HTTP status, the CCF code and the CCF message", () => {
  const body = JSON.stringify({
    error: { code: "ProposalNotOpen", message: "Proposal abc is currently in state Accepted." },
  });
  const err = errorFromResponse("POST", "/gov/x", { status: 400, headers: {}, body });
  assert.equal(err.type.code, GovClientErrorCode.Http);
  assert.equal(err.type.status, 400);
  assert.equal(err.type.ccfCode, "ProposalNotOpen");
  assert.equal(
    err.message,
    "POST /gov/x failed: 400 ProposalNotOpen: Proposal abc is currently in state Accepted.",
  );
});

test("a body that is not a CCF error still names the status and keeps the text", () => {
  const err = errorFromResponse("GET", "/gov/y", { status: 502, headers: {}, body: "bad gateway" });
  assert.equal(err.type.status, 502);
  assert.equal(err.type.ccfCode, undefined);
  assert.equal(err.message, "GET /gov/y failed: HTTP 502: bad gateway");
});

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
      assert.ok(err instanceof GovClientError);
      assert.equal(err.type.code, GovClientErrorCode.Network);
      assert.equal(err.type.ccfCode, "ECONNREFUSED");
      return true;
    });
    assert.ok(Date.now() - started >= 40, "the two retries were not waited for");
    await assert.rejects(client.waitUntilReady({ timeoutMs: 200, intervalMs: 20 }), (err) => {
      assert.ok(err instanceof GovClientError);
      assert.equal(err.type.code, GovClientErrorCode.Timeout);
      return true;
    });
    await assert.rejects(client.propose([{ name: "trigger_snapshot" }]), (err: unknown) => {
      assert.ok(err instanceof GovClientError);
      assert.equal(err.type.code, GovClientErrorCode.NoSigner);
      return true;
    });
    // With a signer, the same call gets as far as the network.
    const signer = { certPem, keyPem: privateKeyPem };
    await assert.rejects(client.vote("p1", true, signer), (err: unknown) => {
      assert.ok(err instanceof GovClientError);
      assert.equal(err.type.code, GovClientErrorCode.Network);
      return true;
    });
  } finally {
    client.close();
  }
});

test("a write answered 503 PrimaryNotFound is sent again until a primary answers, for a bounded time", async () => {
  const noPrimary = {
    status: 503,
    headers: {},
    body: JSON.stringify({ error: { code: "PrimaryNotFound", message: "No primary." } }),
  };
  const ok = { status: 200, headers: {}, body: JSON.stringify({ proposal_id: "p" }) };
  assert.equal(isNoPrimaryForWrite("POST", noPrimary), true);
  assert.equal(isNoPrimaryForWrite("GET", noPrimary), false, "reads report it at once");
  assert.equal(isNoPrimaryForWrite("POST", { ...noPrimary, body: "no" }), false);
  const other = JSON.stringify({ error: { code: "ServiceNotOpen", message: "" } });
  assert.equal(isNoPrimaryForWrite("POST", { ...noPrimary, body: other }), false);

  const scripted = (answers: { status: number; headers: object; body: string }[]) => {
    const client = new GovClient({ url: "https://127.0.0.1:1", caPem: "", primaryWaitMs: 2_000 });
    let calls = 0;
    (client as unknown as { sendOnce: () => Promise<unknown> }).sendOnce = async () =>
      answers[Math.min(calls++, answers.length - 1)];
    return { client, calls: () => calls };
  };
  const recovering = scripted([noPrimary, noPrimary, ok]);
  const answer = await recovering.client.send("POST", "/gov/members/proposals:create");
  assert.equal(answer.status, 200);
  assert.equal(recovering.calls(), 3);
  const read = scripted([noPrimary, ok]);
  assert.equal((await read.client.send("GET", "/node/network/nodes/primary")).status, 503);
  assert.equal(read.calls(), 1);
  const never = scripted([noPrimary]);
  const started = Date.now();
  assert.equal((await never.client.send("POST", "/gov/x")).status, 503);
  assert.ok(Date.now() - started >= 2_000, "retried for primaryWaitMs");
  assert.ok(Date.now() - started < 5_000, "and then gave up");
});
