/**
 * The node process as Prometheus sees it (README, "Metrics"): event-loop utilisation and delay,
 * memory and CPU time.
 *
 * Event-loop utilisation is reported two ways: a counter of the seconds the loop was busy since
 * start (`rate()` of it is the utilisation over any range, whoever scrapes), and a gauge of the
 * utilisation over the last full WINDOW_MS. Event-loop delay is sampled by Node
 * (monitorEventLoopDelay, every DELAY_RESOLUTION_MS) into a histogram that is read and reset at
 * each window: the summary's quantiles describe the last window, its sum and count everything
 * since start. Before the first window ends, the partial one is reported. Node records each
 * whole interval between its timer's runs, so the resolution is subtracted: an idle loop has
 * a delay near 0.
 *
 * Owns one unref'd timer and the delay monitor, both ended by stop().
 */
import {
  monitorEventLoopDelay,
  performance,
  type EventLoopUtilization,
  type IntervalHistogram,
} from "node:perf_hooks";
import type { Exposition } from "./exposition.js";

export const WINDOW_MS = 5_000;
const DELAY_RESOLUTION_MS = 10;
const QUANTILES = [0.5, 0.9, 0.99] as const;
const NS_PER_S = 1e9;
const RESOLUTION_NS = DELAY_RESOLUTION_MS * 1e6;

/** A recorded interval (ns) as the delay beyond the sampling interval, in seconds. */
function delaySeconds(intervalNs: number): number {
  return Math.max(0, intervalNs - RESOLUTION_NS) / NS_PER_S;
}

/** The delays a histogram recorded, summed, in seconds. */
function delaySumSeconds(h: IntervalHistogram): number {
  return h.count === 0 ? 0 : Math.max(0, h.mean - RESOLUTION_NS) * (h.count / NS_PER_S);
}

interface DelayWindow {
  readonly quantilesS: readonly (readonly [number, number])[];
  readonly maxS: number;
}

export class ProcessMetrics {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({
    resolution: DELAY_RESOLUTION_MS,
  });
  private readonly timer: NodeJS.Timeout;
  private windowStart: EventLoopUtilization = performance.eventLoopUtilization();
  private windowUtilization: number | null = null;
  private lastDelay: DelayWindow | null = null;
  /** Delay samples of finished windows: their count and sum in seconds. */
  private delayCount = 0;
  private delaySumS = 0;

  constructor() {
    this.delay.enable();
    this.timer = setInterval(() => this.endWindow(), WINDOW_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.delay.disable();
  }

  private endWindow(): void {
    const now = performance.eventLoopUtilization();
    this.windowUtilization = performance.eventLoopUtilization(now, this.windowStart).utilization;
    this.windowStart = now;
    this.lastDelay = this.readDelay();
    this.delayCount += this.delay.count;
    this.delaySumS += delaySumSeconds(this.delay);
    this.delay.reset();
  }

  private readDelay(): DelayWindow {
    const h = this.delay;
    if (h.count === 0) return { quantilesS: QUANTILES.map((q) => [q, NaN] as const), maxS: NaN };
    return {
      quantilesS: QUANTILES.map((q) => [q, delaySeconds(h.percentile(q * 100))] as const),
      maxS: delaySeconds(h.max),
    };
  }

  write(out: Exposition): void {
    const elu = performance.eventLoopUtilization();
    const utilization =
      this.windowUtilization ?? performance.eventLoopUtilization(elu, this.windowStart).utilization;
    out.single(
      "consortia_event_loop_utilization",
      "gauge",
      `Share of the last ${WINDOW_MS / 1000} s the event loop was busy (0 to 1).`,
      utilization,
    );
    out.single(
      "consortia_event_loop_active_seconds_total",
      "counter",
      "Seconds the event loop was busy since the process started.",
      elu.active / 1000,
    );
    const current = this.lastDelay ?? this.readDelay();
    const live = this.lastDelay === null ? this.delay : null;
    const count = this.delayCount + (live?.count ?? 0);
    const sum = this.delaySumS + (live === null ? 0 : delaySumSeconds(live));
    out
      .family(
        "consortia_event_loop_delay_seconds",
        "summary",
        `Event-loop delay sampled every ${DELAY_RESOLUTION_MS} ms; quantiles over the last ` +
          `${WINDOW_MS / 1000} s, sum and count since start.`,
      )
      .summary(current.quantilesS, sum, count);
    out.single(
      "consortia_event_loop_delay_max_seconds",
      "gauge",
      `Longest event-loop delay of the last ${WINDOW_MS / 1000} s.`,
      current.maxS,
    );
    writeProcess(out);
  }
}

/** Memory and CPU of the process, and when it started. */
function writeProcess(out: Exposition): void {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  out.single(
    "consortia_process_cpu_seconds_total",
    "counter",
    "User and system CPU time the process used.",
    (cpu.user + cpu.system) / 1e6,
  );
  out.single(
    "consortia_process_resident_memory_bytes",
    "gauge",
    "Resident set size of the process.",
    memory.rss,
  );
  out.single("consortia_process_heap_used_bytes", "gauge", "V8 heap in use.", memory.heapUsed);
  out.single("consortia_process_heap_total_bytes", "gauge", "V8 heap allocated.", memory.heapTotal);
  out.single(
    "consortia_process_external_memory_bytes",
    "gauge",
    "Memory of C++ objects bound to JavaScript objects (buffers included).",
    memory.external,
  );
  out.single(
    "consortia_process_start_time_seconds",
    "gauge",
    "When the process started, in seconds since the Unix epoch.",
    performance.timeOrigin / 1000,
  );
}
