// The process metrics (src/node/metrics/process-metrics.ts): a loop blocked for BLOCK_MS shows
// up as event-loop delay of about that much (the sampling interval subtracted) and as busy
// time; memory and CPU are positive; the exposition parses (test/helpers/prometheus-text.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Exposition } from "../../../../src/node/metrics/exposition.js";
import { ProcessMetrics } from "../../../../src/node/metrics/process-metrics.js";
import { parsePrometheusText, sampleValue } from "../../../helpers/prometheus-text.js";

const BLOCK_MS = 200;

test("a blocked event loop shows as delay and busy time", async () => {
  const metrics = new ProcessMetrics();
  try {
    await sleep(50);
    const until = performance.now() + BLOCK_MS;
    while (performance.now() < until); // block the loop
    await sleep(50);
    const out = new Exposition();
    metrics.write(out);
    const families = parsePrometheusText(out.text());
    const value = (name: string, labels = {}) => sampleValue(families, name, labels)!;
    const max = value("consortia_event_loop_delay_max_seconds");
    // At least most of the block, never the block plus a whole sampling interval twice over.
    assert.ok(max >= (BLOCK_MS * 0.8) / 1000 && max < (BLOCK_MS + 500) / 1000, String(max));
    assert.ok(value("consortia_event_loop_delay_seconds", { quantile: "0.5" }) < BLOCK_MS / 1000);
    assert.ok(value("consortia_event_loop_delay_seconds_sum") >= (BLOCK_MS * 0.8) / 1000);
    assert.ok(value("consortia_event_loop_delay_seconds_count") > 0);
    assert.ok(value("consortia_event_loop_active_seconds_total") >= (BLOCK_MS * 0.8) / 1000);
    const utilization = value("consortia_event_loop_utilization");
    assert.ok(utilization > 0.3 && utilization <= 1, String(utilization));
    assert.ok(value("consortia_process_cpu_seconds_total") >= (BLOCK_MS * 0.8) / 1000);
    assert.ok(value("consortia_process_resident_memory_bytes") > 0);
    assert.ok(value("consortia_process_heap_used_bytes") > 0);
    assert.ok(
      value("consortia_process_heap_total_bytes") >= value("consortia_process_heap_used_bytes"),
    );
  } finally {
    metrics.stop();
  }
});
