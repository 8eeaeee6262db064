// The joiner's rpc interfaces (src/node/join/pending-server.ts) take their session, header and
// idle limits from the node configuration (rpcLimitsOf): a config with a hard session limit of
// 1, max_headers_count 3 and max_header_size 64 is enforced over real TLS sockets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { parseNodeConfig } from "../../../../src/node/config/config.js";
import { servePending } from "../../../../src/node/join/pending-server.js";
import { makePki } from "../../../helpers/pki.js";

const FIXTURE = join(import.meta.dirname, "../../../fixtures/config/start-minimal.json");

function configWithLimits(): ReturnType<typeof parseNodeConfig> {
  const doc = JSON.parse(readFileSync(FIXTURE, "utf8")) as Record<string, any>;
  doc["network"]["rpc_interfaces"]["primary_rpc_interface"] = {
    bind_address: "127.0.0.1:0",
    max_open_sessions_soft: 1,
    max_open_sessions_hard: 1,
    http_configuration: { max_headers_count: 3, max_header_size: "64B" },
  };
  doc["idle_connection_timeout"] = "30s";
  return parseNodeConfig(doc, "/somewhere/node.json");
}

function openTls(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
    socket.once("close", () => reject(new Error("closed before the handshake")));
  });
}

/** Opens a session once the server has seen the previous one close (it may lag the client). */
async function openWhenFree(port: number, ca: string): Promise<TLSSocket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openTls(port, ca);
    } catch (e) {
      if (attempt >= 20) throw e;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function firstLine(socket: TLSSocket, request: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8").split("\r\n")[0]!));
    socket.write(request);
  });
}

test("a joiner's rpc interface enforces the configured session and header limits", async () => {
  const pki = await makePki();
  const state = () => ({ node_id: "n0", state: "Pending" as const });
  const [server] = await servePending(
    configWithLimits(),
    pki.nodeCertPem,
    pki.nodeKeys.privateKey,
    state,
  );
  assert.ok(server !== undefined);
  try {
    const socket = await openTls(server.port, pki.serviceCertPem);
    const ok = "GET /node/state HTTP/1.1\r\nhost: a\r\n\r\n";
    assert.equal(await firstLine(socket, ok), "HTTP/1.1 200 OK");
    // The hard limit is 1: a second session is closed before its handshake.
    await assert.rejects(openTls(server.port, pki.serviceCertPem));
    const four = "GET /node/state HTTP/1.1\r\nhost: a\r\nx-1: 1\r\nx-2: 2\r\nx-3: 3\r\n\r\n";
    assert.match(await firstLine(socket, four), /^HTTP\/1\.1 431 /);
    socket.destroy();
    const again = await openWhenFree(server.port, pki.serviceCertPem);
    const long = `GET /node/state HTTP/1.1\r\nhost: a\r\nx-1: ${"v".repeat(65)}\r\n\r\n`;
    assert.match(await firstLine(again, long), /^HTTP\/1\.1 431 /);
    again.destroy();
  } finally {
    await server.close();
  }
});
