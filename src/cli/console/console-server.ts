/**
 * The console's local server (`consortia console`): on 127.0.0.1 only, it serves the built
 * single-page app (dist/console/), passes the pages' calls under /api/ on to the network
 * (proxy-routes.ts says which; network-client.ts pins the service certificate), and answers the
 * ledger explorer from ledger files (ledger-api.ts).
 *
 *   GET  /, /<asset>                        the app (index.html and the files beside it)
 *   GET  /api/console                       what this console is connected to
 *   GET  /api/ledger, /api/ledger/entries   ledger-api.ts
 *   ANY  /api/node|gov|app/...              PROXY_ROUTES, to the first node that answers
 *   GET  /api/nodes/<nodeId>/node/...       PER_NODE_ROUTES, to that node's published address
 *
 * Invariants: it is not an open proxy (only listed paths, to the configured network only);
 * request bodies are at most REQUEST_BODY_BYTES_MAX and refused before being buffered beyond
 * it; every call to the network has a time limit; every refusal or failure is a CCF-style JSON
 * error (console-error.ts). Requests whose Host is not this console's address, or writes from
 * another Origin, are refused (a web page elsewhere cannot use it through DNS rebinding or a
 * cross-site form). The member's private key never reaches this server: pages sign in the
 * browser and send COSE_Sign1 bodies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isNodeError } from "../../base/errors.js";
import { ConsoleError, ConsoleErrorCode } from "./console-error.js";
import { LedgerApi, parseLedgerQuery } from "./ledger-api.js";
import type { NetworkClient, UpstreamResponse } from "./network-client.js";
import { NodeDirectory } from "./node-directory.js";
import { isNodeId, matchRoute, PER_NODE_ROUTES, PROXY_ROUTES } from "./proxy-routes.js";
import { StaticFiles } from "./static-files.js";

/** CCF's default max_body_size: a signed proposal larger than this no node would take. */
export const REQUEST_BODY_BYTES_MAX = 1024 * 1024;
/** Longest query string passed on. */
export const QUERY_CHARS_MAX = 2048;
/** Response headers of the network passed back to the page. */
const PASSED_HEADERS = ["content-type", "x-ms-ccf-transaction-id", "retry-after", "allow"];

export interface ConsoleServerOptions {
  readonly port: number;
  readonly network: NetworkClient;
  readonly ledger: LedgerApi;
  readonly staticFiles: StaticFiles;
  /** Shown by GET /api/console: where the console's settings came from. */
  readonly description: Readonly<Record<string, unknown>>;
}

export class ConsoleServer {
  private readonly server: Server;
  private readonly nodes: NodeDirectory;

  constructor(private readonly options: ConsoleServerOptions) {
    this.nodes = new NodeDirectory(options.network);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => answerError(res, err));
    });
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  /** Listens on 127.0.0.1; resolves with the port (the given one, or a free one for 0). */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    this.options.network.close();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    checkOrigin(req, (this.server.address() as AddressInfo).port);
    const url = new URL(req.url ?? "/", "http://console.invalid");
    const method = req.method ?? "GET";
    if (!url.pathname.startsWith("/api/")) {
      const file = this.options.staticFiles.get(method, url.pathname);
      res.writeHead(200, file.headers).end(file.body);
      return;
    }
    const api = url.pathname.slice("/api".length);
    if (api === "/console" && method === "GET") {
      answerJson(res, 200, this.options.description);
    } else if (api === "/ledger" || api === "/ledger/entries") {
      if (method !== "GET") throw notServed(method, api);
      const ledger = this.options.ledger;
      const body =
        api === "/ledger" ? ledger.summary() : ledger.entries(parseLedgerQuery(url.searchParams));
      answerJson(res, 200, body);
    } else if (api.startsWith("/nodes/")) {
      await this.proxyToNode(req, res, api, url.search);
    } else {
      await this.proxy(req, res, api, url.search);
    }
  }

  private async proxy(req: IncomingMessage, res: ServerResponse, path: string, query: string) {
    const route = routeFor(PROXY_ROUTES, req.method ?? "GET", path);
    const body = route.cose ? await readCoseBody(req) : undefined;
    checkQuery(query);
    // Only one alternative to JSON is passed on: COSE, for receipts.
    const cose = (req.headers.accept ?? "").includes("application/cose");
    const response = await this.options.network.send({
      method: route.method,
      pathAndQuery: path + query,
      ...(cose ? { accept: "application/cose" } : {}),
      ...(body === undefined ? {} : { body, contentType: "application/cose" }),
    });
    answerUpstream(res, response);
  }

  private async proxyToNode(req: IncomingMessage, res: ServerResponse, api: string, q: string) {
    const [, , nodeId = "", ...rest] = api.split("/");
    const path = `/${rest.join("/")}`;
    if (!isNodeId(nodeId)) throw notFound(api);
    const route = routeFor(PER_NODE_ROUTES, req.method ?? "GET", path);
    checkQuery(q);
    const url = await this.nodes.urlOf(nodeId);
    const response = await this.options.network.send({
      method: route.method,
      pathAndQuery: path + q,
      url,
    });
    answerUpstream(res, response);
  }
}

function routeFor(routes: Parameters<typeof matchRoute>[0], method: string, path: string) {
  const match = matchRoute(routes, method, path);
  switch (match.kind) {
    case "route":
      return match.route;
    case "unknown-path":
      throw notFound(path);
    case "other-method":
      throw notServed(method, path);
  }
}

function notFound(path: string): ConsoleError {
  return new ConsoleError(
    ConsoleErrorCode.ResourceNotFound,
    `the console does not pass on ${path}`,
  );
}

function notServed(method: string, path: string): ConsoleError {
  return new ConsoleError(
    ConsoleErrorCode.UnsupportedHttpVerb,
    `the console does not pass on ${method} ${path}`,
  );
}

function checkQuery(query: string): void {
  if (query.length > QUERY_CHARS_MAX) {
    throw new ConsoleError(
      ConsoleErrorCode.InvalidInput,
      `query string over ${QUERY_CHARS_MAX} characters`,
    );
  }
}

/**
 * Host must name this console (127.0.0.1 or localhost, this port), and a write's Origin, when
 * the browser sends one, must be this console.
 */
function checkOrigin(req: IncomingMessage, port: number): void {
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (!hosts.includes(req.headers.host ?? "")) {
    throw new ConsoleError(
      ConsoleErrorCode.AuthorizationFailed,
      `Host must be 127.0.0.1:${port} or localhost:${port}`,
    );
  }
  const origin = req.headers.origin;
  const write = req.method !== "GET" && req.method !== "HEAD";
  if (write && origin !== undefined && !hosts.some((h) => origin === `http://${h}`)) {
    throw new ConsoleError(ConsoleErrorCode.AuthorizationFailed, "cross-origin write refused");
  }
}

/** The body of a signed governance request: application/cose, at most the limit. */
async function readCoseBody(req: IncomingMessage): Promise<Uint8Array> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
  if (type !== "application/cose") {
    throw new ConsoleError(
      ConsoleErrorCode.InvalidInput,
      "governance writes must be application/cose (a COSE_Sign1 signed in the page)",
    );
  }
  const tooLarge = () =>
    new ConsoleError(
      ConsoleErrorCode.RequestBodyTooLarge,
      `request body over ${REQUEST_BODY_BYTES_MAX} bytes`,
    );
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > REQUEST_BODY_BYTES_MAX) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > REQUEST_BODY_BYTES_MAX) throw tooLarge();
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function answerUpstream(res: ServerResponse, response: UpstreamResponse): void {
  const headers: Record<string, string> = { "cache-control": "no-store" };
  for (const name of PASSED_HEADERS) {
    const value = response.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  headers["content-length"] = String(response.body.byteLength);
  res.writeHead(response.status, headers).end(response.body);
}

function answerJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
    })
    .end(text);
}

/**
 * A ConsoleError as its CCF-style body. Anything else is a bug: answered 500 without details,
 * then rethrown outside the request, so the process stops with its stack (style.md §3.4).
 */
function answerError(res: ServerResponse, err: unknown): void {
  if (err instanceof ConsoleError) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A refused body is not read: close the connection rather than drain it.
    if (err.code === ConsoleErrorCode.RequestBodyTooLarge) res.setHeader("connection", "close");
    answerJson(res, err.status, err.body);
    return;
  }
  if (isNodeError(err)) {
    // The page went away mid-request (its socket reset while the body was read).
    res.destroy();
    return;
  }
  if (!res.headersSent) {
    answerJson(res, 500, { error: { code: "InternalError", message: "Internal error." } });
  }
  process.nextTick(() => {
    throw err;
  });
}
