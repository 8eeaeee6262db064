/**
 * `node --import tsx bench/request-metrics.ts [--requests 5000000] [--rounds 3]`
 *
 * What request metrics add to a request's CPU (src/node/metrics/request-metrics.ts, fed by the
 * RPC server's RequestObserver): per simulated request, the server's two clock reads and one
 * `onAnswered` over four route templates, against a loop of the two clock reads alone. Prints
 * CPU nanoseconds per request for both and their difference, per round. A request's whole CPU on a
 * node is a few hundred microseconds (`npm run bench:request`).
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { RequestMetrics } from "../src/node/metrics/request-metrics.js";

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "5000000" },
    rounds: { type: "string", default: "3" },
  },
});
const requests = Number(args.requests);
const rounds = Number(args.rounds);
const TEMPLATES = ["/app/log/private", "/node/commit", "/gov/members/proposals/{proposalId}", "/x"];

/** CPU nanoseconds (user + system: others' load on a shared machine does not count) per run. */
function timed(body: (i: number) => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < requests; i++) body(i);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1e3) / requests;
}

const metrics = new RequestMetrics();
let sink = 0;
for (let round = 1; round <= rounds; round++) {
  const clocks = timed(() => {
    const start = performance.now();
    sink += performance.now() - start;
  });
  const observed = timed((i) => {
    const start = performance.now();
    metrics.onAnswered("POST", TEMPLATES[i & 3], 200, performance.now() - start);
  });
  const extra = (observed - clocks).toFixed(1);
  console.log(
    `round ${round}: clocks ${clocks.toFixed(1)} ns, clocks + onAnswered ${observed.toFixed(1)} ` +
      `ns per request (+${extra} ns)`,
  );
}
if (sink < 0) console.log(sink);
