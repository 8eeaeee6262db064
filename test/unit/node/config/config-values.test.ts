// The value formats of the node config (src/node/config-values.ts): size strings in powers of
// 1024, time strings converted to milliseconds, `host:port` addresses with bracketed IPv6, and
// the dotted keys that every ConfigError names. These parsers decide what an operator's typo
// turns into, so both the accepted spellings and the rejected near-misses are pinned here.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatAddress,
  formatKey,
  parseAddress,
  parseSizeBytes,
  parseTimeMs,
  type ValueResult,
} from "../../../../src/node/config/config-values.js";

function ok<T>(result: ValueResult<T>): T {
  assert.equal(result.kind, "ok", result.kind === "error" ? result.reason : "");
  return (result as { value: T }).value;
}

function reason<T>(result: ValueResult<T>): string {
  assert.equal(result.kind, "error");
  return (result as { reason: string }).reason;
}

test("size strings use powers of 1024 and bare numbers mean bytes", () => {
  assert.equal(ok(parseSizeBytes("5MB")), 5 * 1024 * 1024);
  assert.equal(ok(parseSizeBytes("1KB")), 1024);
  assert.equal(ok(parseSizeBytes("16KB")), 16384);
  assert.equal(ok(parseSizeBytes("2GB")), 2 * 1024 ** 3);
  assert.equal(ok(parseSizeBytes("1TB")), 1024 ** 4);
  assert.equal(ok(parseSizeBytes("12B")), 12);
  assert.equal(ok(parseSizeBytes("1001")), 1001);
  assert.equal(ok(parseSizeBytes("0")), 0);
  assert.equal(ok(parseSizeBytes(4096)), 4096);
  assert.equal(ok(parseSizeBytes("3kb")), 3072, "CCF compares size units case-insensitively");
});

test("malformed sizes are rejected with a reason that quotes the input and shows the format", () => {
  for (const bad of [
    "",
    "MB",
    "5XB",
    "12345ms",
    "-1KB",
    "1.5MB",
    "5 megabytes",
    "5 MB",
    " 5MB",
    "0x10",
  ]) {
    const why = reason(parseSizeBytes(bad));
    assert.match(why, /bad size/);
    assert.ok(why.includes(JSON.stringify(bad)), why);
    assert.match(why, /"5MB"/);
  }
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.match(reason(parseSizeBytes(bad)), /bad size/);
  }
  assert.match(reason(parseSizeBytes("99999999TB")), /too large/);
});

test("time strings convert every unit to milliseconds", () => {
  assert.equal(ok(parseTimeMs("100ms")), 100);
  assert.equal(ok(parseTimeMs("1s")), 1000);
  assert.equal(ok(parseTimeMs("5min")), 300_000);
  assert.equal(ok(parseTimeMs("2h")), 7_200_000);
  assert.equal(ok(parseTimeMs("10us")), 0.01);
  assert.equal(ok(parseTimeMs("10000us")), 10);
  assert.equal(ok(parseTimeMs("0ms")), 0);
});

test("a time without a unit, or with an unknown or miscased unit, is rejected", () => {
  assert.match(reason(parseTimeMs("1000")), /a unit is required/);
  assert.match(reason(parseTimeMs(1000)), /a unit is required/);
  for (const bad of ["", "ms", "1m", "1MS", "1sec", "1.5s", "-1s", "1d", "1 s"]) {
    const why = reason(parseTimeMs(bad));
    assert.match(why, /bad time/);
    assert.match(why, /"100ms"/);
  }
});

test("every whole amount of every unit round-trips through its multiplier", () => {
  const units: Array<[string, number]> = [
    ["B", 1],
    ["KB", 1024],
    ["MB", 1024 ** 2],
    ["GB", 1024 ** 3],
  ];
  fc.assert(
    fc.property(fc.nat(1_000_000), fc.constantFrom(...units), (n, [unit, factor]) => {
      assert.equal(ok(parseSizeBytes(`${n}${unit}`)), n * factor);
    }),
  );
  fc.assert(
    fc.property(fc.nat(1_000_000), (n) => {
      assert.equal(ok(parseTimeMs(`${n}s`)), ok(parseTimeMs(`${n * 1000}ms`)));
    }),
  );
});

test("addresses accept IPv4, host names and bracketed IPv6 with ports 0 to 65535", () => {
  assert.deepEqual(ok(parseAddress("127.0.0.1:8080")), { host: "127.0.0.1", port: 8080 });
  assert.deepEqual(ok(parseAddress("localhost:0")), { host: "localhost", port: 0 });
  assert.deepEqual(ok(parseAddress("node-0.example.com:65535")), {
    host: "node-0.example.com",
    port: 65535,
  });
  assert.deepEqual(ok(parseAddress("[::1]:8080")), { host: "::1", port: 8080 });
  assert.deepEqual(ok(parseAddress("[fe80::1:2]:443")), { host: "fe80::1:2", port: 443 });
});

test("bad addresses say what is wrong with them", () => {
  const cases: Array<[string, RegExp]> = [
    ["127.0.0.1", /host:port/],
    ["127.0.0.1:65536", /port must be a number from 0 to 65535/],
    ["127.0.0.1:-1", /port/],
    ["127.0.0.1:", /port/],
    ["127.0.0.1:80a", /port/],
    [":8080", /host is empty/],
    ["::1:8080", /must be written in brackets/],
    ["[127.0.0.1]:80", /not an IPv6 address/],
    ["[::g]:80", /not an IPv6 address/],
    ["300.1.1.1:80", /not an IPv4 address/],
    ["bad_host:80", /not a valid host name/],
    ["-host:80", /not a valid host name/],
  ];
  for (const [input, expected] of cases) {
    const why = reason(parseAddress(input));
    assert.match(why, expected, input);
    assert.ok(why.startsWith(`bad address ${JSON.stringify(input)}`), why);
  }
});

test("formatAddress brackets IPv6 hosts so that parseAddress reads it back", () => {
  for (const text of ["127.0.0.1:1", "[::1]:8080", "example.com:443"]) {
    assert.equal(formatAddress(ok(parseAddress(text))), text);
  }
});

test("keys are dotted, with array indices and quoted names that are not identifiers", () => {
  assert.equal(formatKey([]), "");
  assert.equal(formatKey(["ledger", "chunk_size"]), "ledger.chunk_size");
  assert.equal(
    formatKey(["command", "start", "members", 0, "certificate_file"]),
    "command.start.members[0].certificate_file",
  );
  assert.equal(
    formatKey(["network", "rpc_interfaces", "a.b", "x"]),
    'network.rpc_interfaces["a.b"].x',
  );
});
