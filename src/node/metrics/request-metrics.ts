/**
 * Requests a node's RPC interfaces answered, by endpoint, method and status, with their latency
 * (README, "Metrics"). The endpoint is the matched route's template (`/app/log/private`,
 * `/gov/members/proposals/{proposalId}`), never the raw path, so the number of series is bounded
 * by the routes; requests no route matched (unknown paths, 405s, refusals before routing) share
 * the endpoint UNMATCHED_ENDPOINT.
 *
 * The server calls `onAnswered` once per answer: one Map lookup by template, a scan of that
 * endpoint's few (method, status) series, and a histogram update. A series and its label text
 * are made once, at its first request. Invariant: at most SERIES_MAX series; an answer that
 * would need one more is only counted in `unrecorded`.
 */
import type { RequestObserver } from "../../http/server.js";
import { Histogram, REQUEST_SECONDS_BUCKETS } from "./histogram.js";
import { labelText, type Exposition } from "./exposition.js";

/** The endpoint label of requests no route matched. */
export const UNMATCHED_ENDPOINT = "unmatched";

/** More series than any node's routes produce in practice (JS apps included). */
export const SERIES_MAX = 4096;

interface Series {
  readonly method: string;
  readonly status: number;
  /** `method="GET",endpoint="/node/commit",status="200"`. */
  readonly labels: string;
  readonly latency: Histogram;
}

export class RequestMetrics implements RequestObserver {
  /** Series by endpoint, in order of first request. */
  private readonly byEndpoint = new Map<string, Series[]>();
  private seriesCount = 0;
  /** Answers not recorded because SERIES_MAX series exist. */
  unrecorded = 0;

  onAnswered(
    method: string,
    template: string | undefined,
    status: number,
    elapsedMs: number,
  ): void {
    const endpoint = template ?? UNMATCHED_ENDPOINT;
    let list = this.byEndpoint.get(endpoint);
    if (list === undefined) {
      list = [];
      this.byEndpoint.set(endpoint, list);
    }
    let series: Series | undefined;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.status === status && s.method === method) {
        series = s;
        break;
      }
    }
    if (series === undefined) {
      if (this.seriesCount >= SERIES_MAX) {
        this.unrecorded++;
        return;
      }
      series = newSeries(method, endpoint, status);
      list.push(series);
      this.seriesCount++;
    }
    series.latency.observe(elapsedMs / 1000);
  }

  /** The request families, every series in order of first request. */
  write(out: Exposition): void {
    out.family(
      "consortia_http_requests_total",
      "counter",
      "Requests answered by this node's RPC interfaces, by method, endpoint (route template) " +
        "and status.",
    );
    for (const list of this.byEndpoint.values()) {
      for (const s of list) out.sample(s.labels, s.latency.count);
    }
    out.family(
      "consortia_http_request_duration_seconds",
      "histogram",
      "Time from a request's arrival to its answer being written, by method, endpoint and status.",
    );
    for (const list of this.byEndpoint.values()) {
      for (const s of list) out.histogram(s.labels, s.latency);
    }
    out.single(
      "consortia_http_requests_unrecorded_total",
      "counter",
      `Requests answered but not recorded above: ${SERIES_MAX} series already existed.`,
      this.unrecorded,
    );
  }
}

function newSeries(method: string, endpoint: string, status: number): Series {
  const labels = labelText({ method, endpoint, status: String(status) });
  return { method, status, labels, latency: new Histogram(REQUEST_SECONDS_BUCKETS) };
}
