// The multi-host harness (test/helpers/netns.ts) gives real separate hosts: each namespace
// resolves the others by name, reaches them over IPv4 and IPv6, and a cut link partitions one
// host until it is healed. Skipped, saying why, where namespaces cannot be made.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hosts, netnsUnavailable } from "../helpers/netns.js";

const unavailable = netnsUnavailable();

/** A one-shot TCP server on `host` at `port` (both families), and a client connecting to it. */
const SERVER = `require("net").createServer((s) => s.end("hi")).listen(PORT, "::", () => console.log("up"))`;
const CLIENT = `const s = require("net").connect({ host: process.argv[1], port: PORT, timeout: 1500 });
s.on("data", (d) => { console.log(String(d)); process.exit(0); });
s.on("timeout", () => { console.log("timeout"); process.exit(2); });
s.on("error", (e) => { console.log(e.code); process.exit(3); });`;

test(
  "hosts on namespaces: names, IPv4 and IPv6, and a cut link",
  { skip: unavailable ?? false, timeout: 60_000 },
  async () => {
    const net = Hosts.create(["n0", "n1", "client"]);
    try {
      const port = 7100;
      const server = net.spawn("n0", ["node", "-e", SERVER.replace("PORT", String(port))], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      try {
        await new Promise<void>((resolve) => server.stdout!.once("data", () => resolve()));
        const connect = (from: string, to: string) =>
          net.run(from, ["node", "-e", CLIENT.replace("PORT", String(port)), to]);
        const n0 = net.host("n0");
        const resolved = net.run("client", ["getent", "ahosts", n0.fqdn]).stdout;
        assert.ok(resolved.includes(n0.ipv4) && resolved.includes(n0.ipv6), resolved);
        for (const to of [n0.fqdn, n0.ipv4, n0.ipv6, "n0"]) {
          const r = connect("client", to);
          assert.equal(r.stdout.trim(), "hi", `client -> ${to}: ${r.stdout}${r.stderr}`);
        }
        net.cut("n0");
        assert.notEqual(
          connect("client", n0.ipv4).stdout.trim(),
          "hi",
          "a cut host is unreachable",
        );
        assert.notEqual(connect("n1", n0.fqdn).stdout.trim(), "hi");
        net.heal("n0");
        assert.equal(connect("n1", n0.fqdn).stdout.trim(), "hi", "a healed host is reachable");
      } finally {
        server.kill();
      }
    } finally {
      net.destroy();
    }
    const left = (await import("node:child_process")).spawnSync("ip", ["netns", "list"], {
      encoding: "utf8",
    });
    assert.doesNotMatch(left.stdout, new RegExp(`${process.pid % 100000}`), "namespaces removed");
  },
);
