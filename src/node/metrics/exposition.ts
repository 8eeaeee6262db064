/**
 * The Prometheus text exposition format, version 0.0.4 (README, "Metrics"): one family at a
 * time, its `# HELP` and `# TYPE` lines, then its samples `name{label="value",...} value`.
 * Help text escapes `\` and newlines; label values also escape `"`. Values are decimal numbers,
 * `+Inf`, `-Inf` or `NaN`.
 *
 * Label sets are formatted once, where a series is created (`labelText`), and reused at every
 * scrape, so the request path never builds a string. Writing happens only at a scrape.
 *
 * Invariant: every name matches METRIC_NAME, every label name LABEL_NAME; a family is declared
 * once, before its samples, and a sample belongs to the family declared last (a histogram's
 * `_bucket`, `_sum` and `_count`, a summary's `_sum` and `_count`).
 */
import { assert } from "../../base/assert.js";
import type { Histogram } from "./histogram.js";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type MetricType = "counter" | "gauge" | "histogram" | "summary";

/** A label value with `\`, `"` and newlines escaped, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** `a="x",b="y"`, in the order given: the inside of a sample's braces ("" for none). */
export function labelText(labels: Readonly<Record<string, string>>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    assert(LABEL_NAME.test(name) && !name.startsWith("__"), `label name ${name}`);
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  return parts.join(",");
}

/** A sample value as the format writes it. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** `le` of each finite bound, formatted once per bucket layout. */
const LE_TEXT = new WeakMap<readonly number[], string[]>();

function leTexts(bounds: readonly number[]): string[] {
  let texts = LE_TEXT.get(bounds);
  if (texts === undefined) {
    texts = [...bounds.map((b) => `le="${formatValue(b)}"`), 'le="+Inf"'];
    LE_TEXT.set(bounds, texts);
  }
  return texts;
}

/** One scrape's text, built family by family. */
export class Exposition {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();
  private current: { name: string; type: MetricType } | null = null;

  /** Declares a family: its HELP and TYPE lines. */
  family(name: string, type: MetricType, help: string): this {
    assert(METRIC_NAME.test(name), `metric name ${name}`);
    assert(!this.declared.has(name), `metric family ${name} declared once`);
    this.declared.add(name);
    this.current = { name, type };
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  /** A sample of the current counter or gauge family; `labels` from labelText. */
  sample(labels: string, value: number): this {
    const family = this.current;
    assert(family !== null, "a sample follows its family");
    assert(family.type === "counter" || family.type === "gauge", `${family.name} takes samples`);
    this.push(family.name, labels, value);
    return this;
  }

  /** Declares a counter or gauge with one unlabelled sample. */
  single(name: string, type: "counter" | "gauge", help: string, value: number): this {
    return this.family(name, type, help).sample("", value);
  }

  /** One labelled series of the current histogram family. */
  histogram(labels: string, histogram: Histogram): this {
    const family = this.current;
    assert(family?.type === "histogram", "histogram samples follow a histogram family");
    const counts = histogram.cumulative();
    const les = leTexts(histogram.bounds);
    const prefix = labels === "" ? "" : `${labels},`;
    for (let i = 0; i < counts.length; i++) {
      this.push(`${family.name}_bucket`, prefix + les[i]!, counts[i]!);
    }
    this.push(`${family.name}_sum`, labels, histogram.sum);
    this.push(`${family.name}_count`, labels, histogram.count);
    return this;
  }

  /** One series of the current summary family: quantiles, then sum and count. */
  summary(quantiles: readonly (readonly [number, number])[], sum: number, count: number): this {
    const family = this.current;
    assert(family?.type === "summary", "summary samples follow a summary family");
    for (const [q, value] of quantiles) this.push(family.name, `quantile="${q}"`, value);
    this.push(`${family.name}_sum`, "", sum);
    this.push(`${family.name}_count`, "", count);
    return this;
  }

  /** The exposition: every line, each ending in a newline. */
  text(): string {
    return this.lines.length === 0 ? "" : `${this.lines.join("\n")}\n`;
  }

  private push(name: string, labels: string, value: number): void {
    this.lines.push(`${labels === "" ? name : `${name}{${labels}}`} ${formatValue(value)}`);
  }
}
