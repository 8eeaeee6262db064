/**
 * The joiner side of `POST /node/join` (ccf-compatibility.md §2.3): posts the join
 * request over HTTPS with the node's self-signed certificate as the TLS client certificate,
 * trusting only the service certificate, until the service answers with network_info.
 *
 * Guarantees:
 *  - the server is authenticated by its chain to `serviceCertPem`, never by its host name: every
 *    node certificate is endorsed by the service key, and a primary's published address need
 *    not be one of its certificate's SANs;
 *  - a 307/308 with a Location is followed at once (a backup pointing at the primary); after
 *    any wait the next attempt starts again from `targetAddress`, since the primary may change;
 *  - connection errors, timeouts, 5xx and Pending answers are retried every `retryTimeoutMs`;
 *  - a 4xx (InvalidQuote, NodeAlreadyExists, ...) ends the join with a JoinError naming the
 *    server's error code and message; so does an abort, a malformed answer or a redirect loop.
 */
import { nodeClientTls } from "../../http/client-tls.js";
import { request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { assert } from "../../base/assert.js";
import { CcfError } from "../../base/errors.js";
import {
  JOIN_PATH,
  joinResponseSchema,
  type JoinRequest,
  type JoinResponse,
  type NetworkInfo,
} from "./join-endpoint.js";

export enum JoinErrorCode {
  /** The service answered 4xx: the join cannot succeed by retrying. */
  Rejected = "Rejected",
  /** The caller's AbortSignal fired. */
  Aborted = "Aborted",
  /** A 2xx whose body is not a JoinResponse, or a redirect without a usable Location. */
  MalformedResponse = "MalformedResponse",
  TooManyRedirects = "TooManyRedirects",
}
export type JoinErrorType = {
  code: JoinErrorCode;
  /** HTTP status and CCF error code of a Rejected join. */
  status?: number;
  serverCode?: string;
};
export class JoinError extends CcfError<JoinErrorType> {}

export interface JoinNetworkOptions {
  /** "host:port" of any node of the service. */
  readonly targetAddress: string;
  readonly serviceCertPem: string;
  /** The node's self-signed certificate and its key (TLS client identity). */
  readonly nodeCertPem: string;
  readonly nodeKeyPem: string;
  readonly request: JoinRequest;
  /** Invariant: > 0. Pause between attempts that failed or got a Pending answer. */
  readonly retryTimeoutMs: number;
  log(line: string): void;
  readonly signal?: AbortSignal;
  /** Called on every Pending answer (the node waits for a transition_node_to_trusted). */
  onPending?(nodeId: string): void;
}

export interface JoinResult {
  readonly nodeId: string;
  readonly networkInfo: NetworkInfo;
}

/** Redirects followed in a row before the join is considered looping. */
const MAX_REDIRECTS = 8;
/** A request that takes longer is abandoned and retried. */
const REQUEST_TIMEOUT_MS = 30_000;

interface Reply {
  readonly status: number;
  readonly location: string | undefined;
  readonly text: string;
}

/** What one attempt came to: done, follow a redirect, or wait and start over. */
type Step =
  | { kind: "joined"; result: JoinResult }
  | { kind: "redirect"; address: string }
  | { kind: "retry"; reason: string };

function isAborted(o: JoinNetworkOptions): boolean {
  return o.signal?.aborted === true;
}

function aborted(): JoinError {
  return new JoinError({ code: JoinErrorCode.Aborted }, "join aborted");
}

/**
 * What one POST came to: the server's reply, or why no reply came (the socket, TLS, a reset,
 * the timeout, an abort: the "error" events of the request). A bad argument still throws.
 */
type Posted = { kind: "reply"; reply: Reply } | { kind: "unreachable"; reason: string };

function post(o: JoinNetworkOptions, address: string, body: string): Promise<Posted> {
  return new Promise((resolve) => {
    // The first settlement wins: a destroyed request may still emit "error" afterwards.
    const unreachable = (reason: string) => resolve({ kind: "unreachable", reason });
    const onError = (err: Error) => unreachable(err.message);
    const req = httpsRequest(
      `https://${address}${JOIN_PATH}`,
      {
        method: "POST",
        agent: false,
        ...nodeClientTls(o),
        headers: {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
        },
        timeout: REQUEST_TIMEOUT_MS,
        ...(o.signal !== undefined ? { signal: o.signal } : {}),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", onError);
        res.on("end", () =>
          resolve({
            kind: "reply",
            reply: {
              status: res.statusCode ?? 0,
              location: res.headers.location,
              text: Buffer.concat(chunks).toString("utf8"),
            },
          }),
        );
      },
    );
    req.on("timeout", () => {
      unreachable(`no answer within ${REQUEST_TIMEOUT_MS} ms`);
      req.destroy();
    });
    req.on("error", onError);
    req.end(body);
  });
}

/** "CODE: message" from a CCF error body, or the raw text when it is not one. */
function describeError(text: string): { code: string | undefined; summary: string } {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const code = body.error?.code;
    const message = body.error?.message;
    if (typeof code === "string" && typeof message === "string") {
      return { code, summary: `${code}: ${message}` };
    }
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  return { code: undefined, summary: text.length > 0 ? text.slice(0, 500) : "(empty body)" };
}

/** "host:port" of an https Location; null when it is not one. */
function redirectAddress(location: string | undefined): string | null {
  if (location === undefined) return null;
  try {
    const url = new URL(location);
    return url.protocol === "https:" && url.host !== "" ? url.host : null;
  } catch (err: unknown) {
    if (err instanceof TypeError) return null;
    throw err;
  }
}

function parseAnswer(address: string, text: string): JoinResponse {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    document = undefined;
  }
  const parsed = joinResponseSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? "" : ` at ${issue.path.join(".")}: ${issue.message}`;
    throw new JoinError(
      { code: JoinErrorCode.MalformedResponse },
      `join answer from ${address} is not a valid join response${where}`,
    );
  }
  return parsed.data;
}

function stepOf(o: JoinNetworkOptions, address: string, reply: Reply): Step {
  const { status } = reply;
  if (status === 307 || status === 308) {
    const next = redirectAddress(reply.location);
    if (next === null) {
      throw new JoinError(
        { code: JoinErrorCode.MalformedResponse },
        `join redirect from ${address} has no usable https Location (${reply.location ?? "none"})`,
      );
    }
    return { kind: "redirect", address: next };
  }
  if (status >= 200 && status < 300) {
    const answer = parseAnswer(address, reply.text);
    if (answer.node_status === "Trusted" && answer.network_info !== undefined) {
      return {
        kind: "joined",
        result: { nodeId: answer.node_id, networkInfo: answer.network_info },
      };
    }
    if (answer.node_status === "Retired") {
      throw new JoinError(
        { code: JoinErrorCode.Rejected, status, serverCode: "Retired" },
        `join refused by ${address}: node ${answer.node_id} is Retired`,
      );
    }
    o.onPending?.(answer.node_id);
    return { kind: "retry", reason: `node ${answer.node_id} is ${answer.node_status}` };
  }
  const error = describeError(reply.text);
  if (status >= 400 && status < 500) {
    throw new JoinError(
      { code: JoinErrorCode.Rejected, status, ...(error.code ? { serverCode: error.code } : {}) },
      `join rejected by ${address} with ${status} ${error.summary}`,
    );
  }
  return { kind: "retry", reason: `${address} answered ${status} ${error.summary}` };
}

/** One attempt from `targetAddress`, following redirects. */
async function attempt(
  o: JoinNetworkOptions,
  body: string,
): Promise<Exclude<Step, { kind: "redirect" }>> {
  let address = o.targetAddress;
  for (let hops = 0; hops <= MAX_REDIRECTS; hops++) {
    const posted = await post(o, address, body);
    if (posted.kind === "unreachable") {
      if (isAborted(o)) throw aborted();
      return { kind: "retry", reason: `could not reach ${address}: ${posted.reason}` };
    }
    const step = stepOf(o, address, posted.reply);
    if (step.kind !== "redirect") return step;
    o.log(`join: ${address} redirected to ${step.address}`);
    address = step.address;
  }
  throw new JoinError(
    { code: JoinErrorCode.TooManyRedirects },
    `join from ${o.targetAddress} was redirected more than ${MAX_REDIRECTS} times`,
  );
}

/**
 * Joins the service at `targetAddress`: resolves once the node is Trusted, with its id and the
 * network information; rejects with JoinError on a 4xx answer or an abort.
 */
export async function joinNetwork(o: JoinNetworkOptions): Promise<JoinResult> {
  // command.join.retry_timeout is validated positive with the rest of the configuration.
  assert(o.retryTimeoutMs > 0, "retryTimeoutMs must be positive");
  const body = JSON.stringify(o.request);
  for (;;) {
    if (isAborted(o)) throw aborted();
    const step = await attempt(o, body);
    if (step.kind === "joined") {
      o.log(`join: node ${step.result.nodeId} is Trusted`);
      return step.result;
    }
    o.log(`join: ${step.reason}; retrying in ${o.retryTimeoutMs} ms`);
    try {
      await sleep(o.retryTimeoutMs, undefined, o.signal !== undefined ? { signal: o.signal } : {});
    } catch (err: unknown) {
      if (isAborted(o)) throw aborted();
      throw err;
    }
  }
}
