// ListeningSockets (src/node/startup/listening-sockets.ts): a node's interfaces are bound before
// anything is written. Interfaces configured with port 0 keep the port the OS picked (no other
// process can take it before the node serves), a published port 0 follows the port bound,
// explicit ports are kept, and a port held elsewhere fails with one error naming the interface.
// The oracle for "held" and "free" is listening on the port from this test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { parseNodeConfig } from "../../../../src/node/config/config.js";
import { ListeningSockets } from "../../../../src/node/startup/listening-sockets.js";
import { freePort, StartupError } from "../../../../src/node/startup/startup-checks.js";
import { canListen, closeServer, tryListen } from "../../../helpers/listen.js";

function configWith(n2n: object, rpc: object) {
  const document = {
    network: { node_to_node_interface: n2n, rpc_interfaces: { primary: rpc } },
    command: { type: "Join", join: { target_rpc_address: "node0.example.com:8000" } },
  };
  return parseNodeConfig(document, "/nonexistent/config.json");
}

test("port 0 becomes a port held until close, published under the published host", async () => {
  const sockets = await ListeningSockets.bind(
    configWith(
      { bind_address: "0.0.0.0:0", published_address: "node1.example.com:0" },
      { bind_address: "127.0.0.1:0" },
    ),
  );
  const n2n = sockets.config.network.nodeToNodeInterface;
  assert.notEqual(n2n.bindAddress.port, 0);
  assert.deepEqual(n2n.publishedAddress, { host: "node1.example.com", port: n2n.bindAddress.port });
  const rpc = sockets.config.network.rpcInterfaces["primary"];
  assert.ok(rpc !== undefined);
  assert.notEqual(rpc.bindAddress.port, 0);
  assert.deepEqual(rpc.publishedAddress, rpc.bindAddress);
  assert.equal(await canListen("0.0.0.0", n2n.bindAddress.port), false, "held");
  assert.equal(await canListen("127.0.0.1", rpc.bindAddress.port), false, "held");
  await sockets.close();
  assert.ok(await canListen("0.0.0.0", n2n.bindAddress.port), "released");
  assert.ok(await canListen("127.0.0.1", rpc.bindAddress.port), "released");
});

test("a published port 0 takes the bound port; explicit ports are kept", async () => {
  const n2nPort = await freePort("0.0.0.0");
  const sockets = await ListeningSockets.bind(
    configWith(
      { bind_address: `0.0.0.0:${n2nPort}`, published_address: "node1.example.com:0" },
      { bind_address: "127.0.0.1:0", published_address: "node1.example.com:443" },
    ),
  );
  try {
    assert.deepEqual(sockets.config.network.nodeToNodeInterface.publishedAddress, {
      host: "node1.example.com",
      port: n2nPort,
    });
    const rpc = sockets.config.network.rpcInterfaces["primary"];
    assert.notEqual(rpc?.bindAddress.port, 0);
    assert.deepEqual(rpc?.publishedAddress, { host: "node1.example.com", port: 443 });
  } finally {
    await sockets.close();
  }
});

test("a port held elsewhere fails naming the interface; nothing stays bound", async () => {
  const n2nPort = await freePort("127.0.0.1");
  const blocker = await tryListen("0.0.0.0", n2nPort);
  assert.ok(blocker !== null);
  const rpcPort = await freePort("127.0.0.1");
  try {
    // The rpc interfaces are bound first: the failure releases this one again.
    const config = configWith(
      { bind_address: `127.0.0.1:${n2nPort}` },
      { bind_address: `127.0.0.1:${rpcPort}` },
    );
    await assert.rejects(ListeningSockets.bind(config), (e: unknown) => {
      assert.ok(e instanceof StartupError);
      assert.equal(e.code, "CannotListen");
      const expected =
        `cannot listen on 127.0.0.1:${n2nPort} (EADDRINUSE) for ` +
        "network.node_to_node_interface: another process (or interface) holds that port";
      assert.equal(e.message, expected);
      return true;
    });
    assert.ok(await canListen("127.0.0.1", rpcPort), "the rpc interface was released");
  } finally {
    await closeServer(blocker);
  }
});

test("a socket a server took and closed is bound again at its address", async () => {
  const sockets = await ListeningSockets.bind(
    configWith({ bind_address: "127.0.0.1:0" }, { bind_address: "127.0.0.1:0" }),
  );
  const port = sockets.config.network.rpcInterfaces["primary"]!.bindAddress.port;
  // A joiner's pending server: it listens on the bound socket, then closes it.
  const pending = createServer();
  await sockets.takeRpc("primary").adopt(pending);
  assert.equal(await canListen("127.0.0.1", port), false, "held by the pending server");
  await closeServer(pending);
  await sockets.rebindRpc();
  assert.equal(await canListen("127.0.0.1", port), false, "held again");
  await sockets.close();
  assert.ok(await canListen("127.0.0.1", port), "released");
});
