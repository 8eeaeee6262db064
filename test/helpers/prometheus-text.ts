/**
 * An independent parser of the Prometheus text exposition format, version 0.0.4, for tests: it
 * checks every line and throws on the first one that breaks the format, naming it. Checked:
 * HELP and TYPE once per family, before its samples; names match [a-zA-Z_:][a-zA-Z0-9_:]* and
 * label names [a-zA-Z_][a-zA-Z0-9_]*; label values use only the escapes \\, \" and \n; values
 * are numbers, +Inf, -Inf or NaN; counters end in _total; a family's samples are contiguous and
 * named after it (histograms: _bucket with le, _sum, _count; summaries: quantile, _sum,
 * _count); each histogram series has buckets with ascending le, non-decreasing cumulative
 * counts, a last bucket le="+Inf" equal to its _count, and a _sum. It shares no code with
 * src/node/metrics.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function fail(lineNo: number, line: string, why: string): never {
  throw new Error(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
}

function parseValue(text: string): number | null {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  return NUMBER.test(text) ? Number(text) : null;
}

/** Parses `{a="x",b="y"}` at the start of `text`; returns the labels and what follows. */
function parseLabels(text: string): { labels: Record<string, string>; rest: string } | string {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === "}") return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf("=", i);
    if (eq < 0) return "label without '='";
    const name = text.slice(i, eq);
    if (!LABEL.test(name) || name.startsWith("__")) return `bad label name ${name}`;
    if (name in labels) return `label ${name} repeated`;
    if (text[eq + 1] !== '"') return "label value not quoted";
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\n") return "raw newline in a label value";
      if (text[j] !== "\\") {
        value += text[j];
        continue;
      }
      const next = text[++j];
      if (next === "\\" || next === '"') value += next;
      else if (next === "n") value += "\n";
      else return `bad escape \\${next ?? ""}`;
    }
    if (j >= text.length) return "unterminated label value";
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") return "expected ',' or '}' after a label";
  }
}

function parseSample(line: string, lineNo: number): Sample {
  const brace = line.indexOf("{");
  const space = line.indexOf(" ");
  const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
  if (nameEnd <= 0) fail(lineNo, line, "no sample name");
  const name = line.slice(0, nameEnd);
  if (!NAME.test(name)) fail(lineNo, line, "bad metric name");
  let rest = line.slice(nameEnd);
  let labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    const parsed = parseLabels(rest);
    if (typeof parsed === "string") fail(lineNo, line, parsed);
    labels = parsed.labels;
    rest = parsed.rest;
  }
  const fields = rest.split(" ");
  if (fields.length !== 2 || fields[0] !== "") fail(lineNo, line, "expected ' value'");
  const value = parseValue(fields[1]!);
  if (value === null) fail(lineNo, line, "bad value");
  return { name, labels, value };
}

function unescapeHelp(text: string, lineNo: number, line: string): string {
  return text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    return fail(lineNo, line, `bad escape in HELP \\${c}`);
  });
}

/** The families of `text`, in order; throws on any line that breaks the format. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  let current: Family | null = null;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) fail(lineNo, line, "bad family name");
      if (kind === "HELP") {
        if (helps.has(name) || families.has(name)) fail(lineNo, line, "HELP repeated or late");
        helps.set(name, unescapeHelp(rest, lineNo, line));
        return;
      }
      if (families.has(name)) fail(lineNo, line, "TYPE repeated");
      if (!TYPES.has(rest)) fail(lineNo, line, "unknown type");
      if (!helps.has(name)) fail(lineNo, line, "TYPE without HELP before it");
      if (rest === "counter" && !name.endsWith("_total")) fail(lineNo, line, "counter not _total");
      current = { name, type: rest, help: helps.get(name)!, samples: [] };
      families.set(name, current);
      return;
    }
    if (line.startsWith("#") || line === "") fail(lineNo, line, "unexpected line");
    const sample = parseSample(line, lineNo);
    const family = current as Family | null;
    if (family === null || !belongsTo(sample, family)) {
      fail(lineNo, line, "sample outside its family");
    }
    family.samples.push(sample);
  });
  for (const family of families.values()) {
    if (family.type === "histogram") checkHistogram(family);
  }
  return families;
}

function belongsTo(sample: Sample, family: Family): boolean {
  const suffix = sample.name.slice(family.name.length);
  if (!sample.name.startsWith(family.name)) return false;
  switch (family.type) {
    case "histogram":
      if (suffix === "_bucket") return "le" in sample.labels;
      return suffix === "_sum" || suffix === "_count";
    case "summary":
      if (suffix === "") return "quantile" in sample.labels;
      return suffix === "_sum" || suffix === "_count";
    default:
      return suffix === "";
  }
}

/** The labels of a sample without `le`, as a key. */
function seriesKey(sample: Sample): string {
  const { le: _le, ...rest } = sample.labels;
  return JSON.stringify(Object.entries(rest).sort());
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: Sample[]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const key = seriesKey(s);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (s.name.endsWith("_bucket")) entry.buckets.push(s);
    else if (s.name.endsWith("_sum")) entry.sum = s.value;
    else entry.count = s.value;
  }
  for (const [key, { buckets, sum, count }] of series) {
    const where = `${family.name} ${key}`;
    if (sum === undefined || count === undefined) throw new Error(`${where}: no _sum or _count`);
    if (buckets.length === 0) throw new Error(`${where}: no buckets`);
    const les = buckets.map((b) => parseValue(b.labels["le"]!));
    for (let i = 1; i < buckets.length; i++) {
      if (!(les[i]! > les[i - 1]!)) throw new Error(`${where}: le not ascending at ${i}`);
      if (buckets[i]!.value < buckets[i - 1]!.value) {
        throw new Error(`${where}: bucket counts decrease at le=${buckets[i]!.labels["le"]}`);
      }
    }
    const last = buckets.at(-1)!;
    if (last.labels["le"] !== "+Inf") throw new Error(`${where}: last bucket is not +Inf`);
    if (last.value !== count) throw new Error(`${where}: +Inf bucket ${last.value} != ${count}`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`, or undefined. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
