// resolvePorts (src/node/startup/startup-checks.ts): interfaces configured with port 0 get a
// concrete free port before the node publishes them, a published port 0 follows the port bound,
// and explicit ports are kept. The oracle for "free" is listening on the chosen port.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { parseNodeConfig } from "../../../../src/node/config/config.js";
import { resolvePorts } from "../../../../src/node/startup/startup-checks.js";

function configWith(n2n: object, rpc: object) {
  const document = {
    network: { node_to_node_interface: n2n, rpc_interfaces: { primary: rpc } },
    command: { type: "Join", join: { target_rpc_address: "node0.example.com:8000" } },
  };
  return parseNodeConfig(document, "/nonexistent/config.json");
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

test("port 0 becomes a free port, published under the published host", async () => {
  const config = await resolvePorts(
    configWith(
      { bind_address: "0.0.0.0:0", published_address: "node1.example.com:0" },
      { bind_address: "127.0.0.1:0" },
    ),
  );
  const n2n = config.network.nodeToNodeInterface;
  assert.notEqual(n2n.bindAddress.port, 0);
  assert.deepEqual(n2n.publishedAddress, { host: "node1.example.com", port: n2n.bindAddress.port });
  assert.ok(await canListen("0.0.0.0", n2n.bindAddress.port));
  const rpc = config.network.rpcInterfaces["primary"];
  assert.notEqual(rpc?.bindAddress.port, 0);
  assert.deepEqual(rpc?.publishedAddress, rpc?.bindAddress);
});

test("a published port 0 takes the bound port; explicit ports are kept", async () => {
  const config = await resolvePorts(
    configWith(
      { bind_address: "0.0.0.0:8101", published_address: "node1.example.com:0" },
      { bind_address: "127.0.0.1:0", published_address: "node1.example.com:443" },
    ),
  );
  assert.deepEqual(config.network.nodeToNodeInterface.publishedAddress, {
    host: "node1.example.com",
    port: 8101,
  });
  const rpc = config.network.rpcInterfaces["primary"];
  assert.notEqual(rpc?.bindAddress.port, 0);
  assert.deepEqual(rpc?.publishedAddress, { host: "node1.example.com", port: 443 });
});
