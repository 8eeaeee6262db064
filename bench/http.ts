/**
 * `npm run bench [-- --duration 10] [--connections 32] [--json] [--port 8700]`
 *
 * Starts a sandbox (one node, service open, user0) in a temporary workspace, then drives
 * POST /app/log/private over mTLS with keep-alive (autocannon, user0's client certificate) for a
 * fixed duration, and prints throughput and latency p50/p99 (response latency: the node answers
 * after local execution with a txId; commit follows at the next signature). Stops the node it
 * started. Loopback only; bounded by --duration.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    port: { type: "string", default: "8700" },
    json: { type: "boolean", default: false },
  },
});
const durationS = Number(args.duration);
const connections = Number(args.connections);
const port = Number(args.port);
if (!(durationS >= 1 && durationS <= 600)) throw new Error("--duration: 1..600 seconds");
if (!(connections >= 1 && connections <= 1024)) throw new Error("--connections: 1..1024");

const workspace = mkdtempSync(join(tmpdir(), "consortia-bench-http-"));
const entry = join(import.meta.dirname, "..", "src", "cli", "entry.ts");
const tsx = import.meta.resolve("tsx");

function stopNode(): void {
  try {
    const pid = Number(readFileSync(join(workspace, "sandbox_0", "node.pid"), "utf8"));
    if (Number.isSafeInteger(pid) && pid > 0) process.kill(pid, "SIGTERM");
  } catch {
    // No pid file: the sandbox never started a node, so there is nothing to stop.
  }
}

try {
  const started = spawnSync(
    process.execPath,
    [
      "--import",
      tsx,
      entry,
      "sandbox",
      "--no-wait",
      "--workspace",
      workspace,
      "--port",
      String(port),
    ],
    { encoding: "utf8", timeout: 120_000 },
  );
  if (started.status !== 0) {
    throw new Error(`sandbox failed to start:\n${started.stdout}\n${started.stderr}`);
  }
  const common = join(workspace, "sandbox_common");
  const tlsOptions = {
    ca: readFileSync(join(common, "service_cert.pem")),
    cert: readFileSync(join(common, "user0_cert.pem")),
    key: readFileSync(join(common, "user0_privk.pem")),
  };
  let counter = 0;
  const result = await autocannon({
    url: `https://127.0.0.1:${port}`,
    connections,
    duration: durationS,
    tlsOptions,
    requests: [
      {
        method: "POST",
        path: "/app/log/private",
        headers: { "content-type": "application/json" },
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ id: counter++ % 100_000, msg: "x".repeat(100) }),
        }),
      },
    ],
  });
  const summary = {
    bench: "http",
    endpoint: "POST /app/log/private",
    duration_s: durationS,
    connections,
    requests_per_s: Math.round(result.requests.average),
    latency_p50_ms: result.latency.p50,
    latency_p99_ms: result.latency.p99,
    total_requests: result.requests.total,
    errors: result.errors,
    non_2xx: result.non2xx,
    node: process.version,
  };
  console.log(
    `http: POST /app/log/private, ${connections} connections, ${durationS} s, mTLS keep-alive`,
  );
  console.log(`  throughput   ${summary.requests_per_s.toLocaleString("en-US")} requests/s`);
  console.log(`  latency      p50 ${summary.latency_p50_ms} ms, p99 ${summary.latency_p99_ms} ms`);
  console.log(`  errors       ${summary.errors}, non-2xx ${summary.non_2xx}`);
  if (args.json) console.log(JSON.stringify(summary));
} finally {
  stopNode();
  rmSync(workspace, { recursive: true, force: true });
}
