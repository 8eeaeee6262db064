// Which failures the CLI reports as one line (src/cli/cli-error.ts isReportable, and the
// sandbox's failureMessage): typed errors, CliErrors and node's IO errors are the user's to
// read; an AssertionError, or any other untyped error, is a bug that keeps its stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { AssertionError } from "../../../src/base/assert.js";
import { CliError, isReportable } from "../../../src/cli/cli-error.js";
import { ClientError, ClientErrorCode } from "@consortia/client";
import {
  failureMessage,
  SandboxError,
  SandboxErrorCode,
} from "../../../src/cli/commands/sandbox-error.js";

function thrownBy(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  assert.fail("expected a throw");
}

test("typed errors, CliErrors and node IO errors are reported; bugs are not", () => {
  const enoent = thrownBy(() => readFileSync("/no/such/consortia/file"));
  const client = new ClientError({ code: ClientErrorCode.Timeout }, "no answer");
  for (const reportable of [new CliError("bad flag"), client, enoent]) {
    assert.equal(isReportable(reportable), true, String(reportable));
  }
  for (const bug of [new AssertionError("invariant"), new TypeError("x is undefined"), "text"]) {
    assert.equal(isReportable(bug), false, String(bug));
  }
});

test("a sandbox failure is a message, except a bug, which the sandbox rethrows", () => {
  const timeout = new SandboxError({ code: SandboxErrorCode.Timeout }, "service still Opening");
  assert.equal(failureMessage(timeout), "service still Opening");
  assert.equal(failureMessage("node 1 exited (code 1)"), "node 1 exited (code 1)");
  assert.equal(failureMessage(new AssertionError("invariant")), null);
});
