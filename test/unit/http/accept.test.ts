// Content negotiation (src/http/accept.ts) as /node/metrics uses it: JSON by default and for
// application/json, Prometheus text for text/plain and for Prometheus' own Accept header, JSON
// for an Accept naming nothing offered. Expected answers are written out by hand from RFC 9110.
import { test } from "node:test";
import assert from "node:assert/strict";
import { negotiate } from "../../../src/http/accept.js";

const OFFERS = ["application/json", "text/plain"] as const;

test("the offer with the highest quality wins, the default on ties and on no match", () => {
  const cases: [string | undefined, string][] = [
    [undefined, "application/json"],
    ["", "application/json"],
    ["*/*", "application/json"],
    ["application/json", "application/json"],
    ["text/plain", "text/plain"],
    ["TEXT/Plain; charset=utf-8", "text/plain"],
    ["text/*", "text/plain"],
    ["application/json, text/plain", "application/json"],
    ["text/plain, application/json", "application/json"],
    ["text/plain;q=0.9, application/json;q=0.8", "text/plain"],
    ["application/json;q=0, */*", "text/plain"],
    ["text/plain;q=0", "application/json"],
    ["image/png", "application/json"],
    ["garbage", "application/json"],
    [
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;" +
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      "text/plain",
    ],
  ];
  for (const [accept, expected] of cases) {
    assert.equal(negotiate(accept, OFFERS), expected, String(accept));
  }
});
