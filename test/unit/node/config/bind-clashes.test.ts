// Two interfaces of one node on one port are a config error (src/node/config/bind-clashes.ts),
// found by the schema before anything is bound or written: the key of the second interface's
// bind_address, and the first named in the message. One port clashes on equal hosts (IPv6 in
// any spelling) and whenever either host is a wildcard (0.0.0.0, or :: which Linux makes
// dual-stack); different ports, different specific hosts and port 0 do not. The oracle for
// the clash matrix is Linux itself: whether two listeners can share the address pair.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clashes } from "../../../../src/node/config/bind-clashes.js";
import {
  ConfigError,
  ConfigErrorCode,
  parseNodeConfig,
} from "../../../../src/node/config/config.js";
import { freePort } from "../../../../src/node/startup/startup-checks.js";
import { closeServer, tryListen } from "../../../helpers/listen.js";

function parse(n2n: string, rpc: Record<string, string>) {
  const rpcInterfaces = Object.fromEntries(
    Object.entries(rpc).map(([name, bind]) => [name, { bind_address: bind }]),
  );
  const document = {
    network: { node_to_node_interface: { bind_address: n2n }, rpc_interfaces: rpcInterfaces },
    command: { type: "Join", join: { target_rpc_address: "node0.example.com:8000" } },
  };
  return () => parseNodeConfig(document, "/nonexistent/config.json");
}

test("an rpc interface and the node-to-node interface on one port", () => {
  assert.throws(parse("0.0.0.0:8950", { primary: "0.0.0.0:8950" }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.type.code, ConfigErrorCode.BadAddress);
    assert.equal(e.key, "network.node_to_node_interface.bind_address");
    assert.equal(
      e.message,
      "network.node_to_node_interface.bind_address: 0.0.0.0:8950 takes the port of " +
        "network.rpc_interfaces.primary.bind_address (0.0.0.0:8950): each interface needs a " +
        "port of its own",
    );
    return true;
  });
});

test("two rpc interfaces on one port, a wildcard and a specific host", () => {
  const run = parse("127.0.0.1:8001", { a: "127.0.0.1:8950", b: "[::]:8950" });
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, "network.rpc_interfaces.b.bind_address");
    assert.match(e.message, /\[::\]:8950 takes the port of network\.rpc_interfaces\.a\./);
    return true;
  });
});

test("distinct ports, distinct specific hosts and port 0 are fine", () => {
  parse("0.0.0.0:8001", { a: "0.0.0.0:8002", b: "127.0.0.1:8003" })();
  parse("127.0.0.1:8950", { a: "127.0.0.2:8950", b: "[::1]:8950" })();
  parse("0.0.0.0:0", { a: "0.0.0.0:0", b: "127.0.0.1:0" })();
});

/** Whether Linux lets listeners on `a` and then `b` (one port) coexist. */
async function coexist(a: string, b: string): Promise<boolean> {
  const port = await freePort("0.0.0.0");
  const first = await tryListen(a, port);
  assert.ok(first !== null, `cannot listen on ${a}:${port}`);
  const second = await tryListen(b, port);
  await closeServer(first);
  if (second !== null) await closeServer(second);
  return second !== null;
}

test("every pair said to clash cannot listen together", async () => {
  const hosts = ["0.0.0.0", "127.0.0.1", "127.0.0.2", "::", "0:0::0", "::1"];
  for (const a of hosts) {
    for (const b of hosts) {
      const clash = clashes({ host: a, port: 8950 }, { host: b, port: 8950 });
      // A clash the check reports where Linux would let both listen is the conservative side
      // the module comment takes (an IPv4 wildcard and ::1); the reverse would be a bug.
      if (!clash) assert.ok(await coexist(a, b), `${a} and ${b} were allowed but clash`);
    }
  }
});
