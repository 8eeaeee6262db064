// The node's request slice budget from CONSORTIA_REQUEST_SLICE_MS (src/node/node-host.ts): 1 ms
// by default, 0 turns slicing off, and a value it cannot use stops the start with a one-line
// StartupError instead of a crash.
import { test } from "node:test";
import assert from "node:assert/strict";
import { requestSliceMs } from "../../../src/node/node-host.js";
import { StartupError, StartupErrorCode } from "../../../src/node/startup/startup-checks.js";

test("the slice budget is 1 ms unless the environment sets one", () => {
  assert.equal(requestSliceMs({}), 1);
  assert.equal(requestSliceMs({ CONSORTIA_REQUEST_SLICE_MS: "" }), 1);
  assert.equal(requestSliceMs({ CONSORTIA_REQUEST_SLICE_MS: "0" }), 0);
  assert.equal(requestSliceMs({ CONSORTIA_REQUEST_SLICE_MS: "2.5" }), 2.5);
});

test("a budget that is not a number of ms >= 0 is a StartupError naming the variable", () => {
  for (const raw of ["abc", "-1", "Infinity", "1ms"]) {
    assert.throws(
      () => requestSliceMs({ CONSORTIA_REQUEST_SLICE_MS: raw }),
      (e: unknown) =>
        e instanceof StartupError &&
        e.code === StartupErrorCode.InvalidEnvironment &&
        e.message.includes("CONSORTIA_REQUEST_SLICE_MS") &&
        e.message.includes(`"${raw}"`),
    );
  }
});
