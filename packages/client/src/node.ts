/**
 * `@consortia/client/node`: the Node 20 parts of the client.
 * - httpsTransport: node:https with one keep-alive agent that trusts only the service
 *   certificate (the CA), optionally presents a TLS client certificate, and bounds every
 *   request by a timeout. Idle pooled sockets are closed after IDLE_MS, before a node would
 *   close them, so a request is never sent on a socket the server is closing.
 * - nodeCoseSigner: a governance signer over node:crypto from PEM key and certificate.
 * - connect: a ConsortiaClient over both.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { Agent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { ConsortiaClient, type ClientOptions } from "./client.js";
import { ClientError, ClientErrorCode, type Answer } from "./errors.js";
import { CURVE_ALG, type CoseSigner, type MemberPem } from "./signer.js";
import type { Transport, TransportRequest } from "./transport.js";

export * from "./index.js";

/** Idle pooled connections are closed after this, before a node's own idle timeout. */
const IDLE_MS = 20_000;
/** The largest answer accepted (default of responseBytesMax); a larger one is BadResponse. */
export const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;

export interface HttpsTransportOptions {
  /** e.g. https://127.0.0.1:8000 */
  readonly url: string;
  /** The service certificate: the only trust anchor for the node's TLS certificate. */
  readonly caPem: string;
  /** A TLS client certificate and key (user_cert / member_cert authentication). */
  readonly certPem?: string;
  readonly keyPem?: string;
  /** Per request (default 10 s). */
  readonly timeoutMs?: number;
  /** Connections kept per node (default 8). */
  readonly socketsMax?: number;
  /** The largest answer body accepted (default RESPONSE_BYTES_MAX). */
  readonly responseBytesMax?: number;
}

function networkError(request: TransportRequest, err: Error): ClientError {
  const socketCode = (err as { code?: unknown }).code;
  return new ClientError(
    {
      code: ClientErrorCode.Network,
      ...(typeof socketCode === "string" && { ccfCode: socketCode }),
    },
    `${request.method} ${request.path} failed: ${err.message}`,
  );
}

export class HttpsTransport implements Transport {
  readonly origin: string;
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly responseBytesMax: number;

  constructor(readonly options: HttpsTransportOptions) {
    this.origin = new URL(options.url).origin;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.responseBytesMax = options.responseBytesMax ?? RESPONSE_BYTES_MAX;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: options.socketsMax ?? 8,
      ca: options.caPem,
      ...(options.certPem !== undefined && { cert: options.certPem }),
      ...(options.keyPem !== undefined && { key: options.keyPem }),
    });
    const watched = new WeakSet<Socket>();
    this.agent.on("free", (socket: Socket) => {
      socket.setTimeout(IDLE_MS);
      if (watched.has(socket)) return;
      watched.add(socket);
      // Also fires when a request on it times out, which abandons the socket anyway.
      socket.on("timeout", () => socket.destroy());
    });
  }

  close(): void {
    this.agent.destroy();
  }

  send(request: TransportRequest): Promise<Answer> {
    const url = new URL(request.path, this.origin);
    const headers: Record<string, string | number> = { ...request.headers };
    if (request.body !== undefined) headers["content-length"] = request.body.byteLength;
    return new Promise<Answer>((resolve, reject) => {
      const req = httpsRequest(
        url,
        { method: request.method, agent: this.agent, headers },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.byteLength;
            if (size <= this.responseBytesMax) return void chunks.push(chunk);
            req.destroy();
            const limit = `${this.responseBytesMax} bytes`;
            const message = `${request.method} ${request.path}: answer larger than ${limit}`;
            reject(new ClientError({ code: ClientErrorCode.BadResponse }, message));
          });
          res.on("error", (err) => reject(networkError(request, err)));
          res.on("end", () => {
            const answerHeaders: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined)
                answerHeaders[name] = Array.isArray(value) ? value.join(", ") : value;
            }
            const body = new Uint8Array(Buffer.concat(chunks));
            resolve({ status: res.statusCode ?? 0, headers: answerHeaders, body });
          });
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        req.destroy();
        const message =
          `${request.method} ${request.path} failed: no answer from ${this.origin} ` +
          `within ${this.timeoutMs} ms`;
        reject(new ClientError({ code: ClientErrorCode.Timeout }, message));
      });
      req.on("error", (err) => reject(networkError(request, err)));
      req.end(request.body);
    });
  }
}

const NODE_CURVES: Readonly<Record<string, keyof typeof CURVE_ALG>> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};
const NODE_HASHES = { "-7": "sha256", "-35": "sha384", "-36": "sha512" } as const;

/** A governance signer over node:crypto. Throws ClientError(BadKey) for unusable PEM. */
export function nodeCoseSigner(member: MemberPem): CoseSigner {
  let key: KeyObject;
  let certDer: Buffer;
  try {
    key = createPrivateKey(member.keyPem);
    certDer = new X509Certificate(member.certPem).raw;
  } catch (err: unknown) {
    if (!(err instanceof Error)) throw err;
    throw new ClientError(
      { code: ClientErrorCode.BadKey },
      `unusable member key or certificate: ${err.message}`,
    );
  }
  const certSpki = new X509Certificate(member.certPem).publicKey.export({
    type: "spki",
    format: "der",
  });
  const keySpki = createPublicKey(key).export({ type: "spki", format: "der" });
  if (!certSpki.equals(keySpki)) {
    throw new ClientError(
      { code: ClientErrorCode.BadKey },
      "the private key is not the member certificate's key",
    );
  }
  const curve = NODE_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
  if (key.asymmetricKeyType !== "ec" || curve === undefined) {
    throw new ClientError(
      { code: ClientErrorCode.BadKey },
      "the member key is not EC P-256, P-384 or P-521",
    );
  }
  const alg = CURVE_ALG[curve];
  const hash = NODE_HASHES[String(alg) as keyof typeof NODE_HASHES];
  return {
    memberId: createHash("sha256").update(certDer).digest("hex"),
    alg,
    sign: async (toBeSigned) =>
      new Uint8Array(sign(hash, toBeSigned, { key, dsaEncoding: "ieee-p1363" })),
  };
}

export interface ConnectOptions
  extends HttpsTransportOptions, Omit<ClientOptions, "transport" | "signer"> {
  /** Signs governance writes; default: the TLS client certificate and key, when both are given. */
  readonly signer?: CoseSigner;
}

/** A client of the node at `url`, over HTTPS pinned to the service certificate. */
export function connect(options: ConnectOptions): ConsortiaClient {
  const transport = new HttpsTransport(options);
  const signer =
    options.signer ??
    (options.certPem !== undefined && options.keyPem !== undefined
      ? nodeCoseSigner({ certPem: options.certPem, keyPem: options.keyPem })
      : undefined);
  return new ConsortiaClient({
    ...options,
    transport,
    ...(signer !== undefined && { signer }),
  });
}
