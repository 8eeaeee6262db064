// The round trace (src/node/replication/round-trace.ts) and the bench's reading of it
// (bench/round-stages.ts): lines a traced node writes parse back, and each stage of a round is
// measured between the right events, the backup that acknowledged first standing for the quorum.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../../bench/load.js";
import { parseTrace, roundStages, type TraceEvent } from "../../bench/round-stages.js";
import { ROUND_TRACE_ENV, roundTraceFromEnv } from "../../src/node/replication/round-trace.js";

test("a traced node's events parse back in time order, with their seqno and peer", () => {
  const dir = mkdtempSync(join(tmpdir(), "consortia-trace-"));
  try {
    assert.equal(roundTraceFromEnv({}), undefined, "off unless asked");
    const trace = roundTraceFromEnv({ [ROUND_TRACE_ENV]: dir })!;
    trace.record("sig", 7);
    trace.record("ae-sent", 7, "a".repeat(64));
    trace.flush();
    const [file] = readdirSync(dir);
    const events = parseTrace(`${readFileSync(join(dir, file!), "utf8")}[1,"cut`);
    assert.deepEqual(
      events.map((e) => e.slice(1)),
      [
        ["sig", 7],
        ["ae-sent", 7, "a".repeat(12)],
      ],
    );
    assert.ok(Math.abs(events[0]![0] - Date.now()) < 60_000, "wall-clock milliseconds");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Two rounds (signatures 10 and 20, 50 ms apart) traced on a primary and two backups. */
function traces(): TraceEvent[][] {
  const primary: TraceEvent[] = [];
  const fast: TraceEvent[] = [];
  const slow: TraceEvent[] = [];
  for (const [t, s] of [
    [1000, 10],
    [1050, 20],
  ] as const) {
    primary.push([t, "sig", s], [t + 0.1, "ae-sent", s, "b1"], [t + 0.1, "ae-sent", s, "b2"]);
    primary.push([t + 1, "synced", s], [t + 9, "ack-recv", s, "b1"], [t + 10, "commit", s]);
    fast.push([t + 2, "ae-recv", s], [t + 5, "synced", s], [t + 5.5, "ack-sent", s]);
    slow.push([t + 3, "ae-recv", s], [t + 8, "synced", s], [t + 8.5, "ack-sent", s]);
  }
  // An earlier signature, at start-up: not under load (more than 100 ms before the next).
  primary.unshift([500, "sig", 4], [500.1, "ae-sent", 4], [501, "commit", 4]);
  return [fast, primary, slow].map((t) => t.sort((a, b) => a[0] - b[0]));
}

test("each stage of a round is measured between its events, for rounds under load", () => {
  const stages = roundStages(traces());
  const by = Object.fromEntries(stages.map((s) => [s.name, s.samples.map((x) => +x.toFixed(2))]));
  // The second signature only: the first follows the start-up one by 500 ms.
  assert.deepEqual(by, {
    "sign → AE sent": [0.1],
    "AE sent → received": [1.9],
    "received → synced": [3],
    "synced → ack sent": [0.5],
    "ack sent → received": [3.5],
    "primary synced": [1],
    "quorum → commit": [1],
    "sign → commit": [10],
  });
});

test("the stages' quantiles are the bench's percentiles of the sorted samples", () => {
  assert.equal(percentile([1, 2, 3, 4, 5], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 5], 90), 5);
  assert.ok(Number.isNaN(percentile([], 50)));
});
