/**
 * An app server (ADR 0005, issue #14): serves one bundle file to the nodes of a service over
 * mutual TLS. The server presents its own certificate; a node must present a client certificate
 * issued by the service certificate (its service-endorsed node certificate), or TLS refuses it.
 * After `hello` with the right package id a node gets the bundle's bytes; then each `call` runs
 * in app-executor.ts, one ConnectionExecutor (and so one versioned cache) per node connection.
 *
 * The package id is the lower-case hex SHA-256 of the bundle file: startAppServer refuses any
 * other (AppServiceError PackageMismatch), and a hello naming another package is answered with
 * an `error` (code PackageMismatch) and the connection is closed.
 *
 * Owns its TLS server and sockets. A malformed frame closes that connection only. After close()
 * resolves no socket or server of it is alive.
 */
import type { Socket } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { fromUtf8, toHex } from "../base/bytes.js";
import { isNodeError } from "../base/errors.js";
import { assert } from "../base/assert.js";
import { encodeFrame, FrameDecoder, FRAME_PAYLOAD_MAX_BYTES } from "../base/frames.js";
import { sha256 } from "../crypto/hash.js";
import { JsAppError, parseBundle } from "../js/app-bundle.js";
import { DEFAULT_JS_RUNTIME_OPTIONS, type JsAppRuntime } from "../js/app-runtime.js";
import { getQuickJS } from "../js/quickjs.js";
import { bundleRuntime, ConnectionExecutor } from "./app-executor.js";
import {
  AppServiceError,
  AppServiceErrorCode,
  decodeNodeMessage,
  encodeAppMessage,
  type ServerMessage,
} from "./messages.js";

/** Connections a server accepts at once (one per node is the normal load). */
export const CONNECTIONS_MAX = 1024;

export interface AppServerOptions {
  /** The bundle file's bytes: CCF's {metadata, modules} JSON. */
  readonly bundle: Uint8Array;
  /** Must be packageIdOf(bundle). */
  readonly packageId: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The server's certificate and key (PEM). */
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** The service certificate (PEM) node client certificates must be issued by. */
  readonly serviceCert: string;
  readonly log?: (line: string) => void;
}

export interface AppServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The package id of a bundle file: the lower-case hex SHA-256 of its bytes. */
export function packageIdOf(bundle: Uint8Array): string {
  return toHex(sha256(bundle));
}

function invalid(code: AppServiceErrorCode, message: string): AppServiceError {
  return new AppServiceError({ code }, message);
}

/** The bundle's modules ("/name" -> source); throws AppServiceError on a bad bundle. */
function bundleModules(bytes: Uint8Array): Map<string, string> {
  try {
    const bundle = parseBundle(JSON.parse(fromUtf8(bytes)));
    return new Map(bundle.modules.map((m) => ["/" + m.name, m.module]));
  } catch (err: unknown) {
    if (err instanceof JsAppError || err instanceof SyntaxError || err instanceof TypeError) {
      throw invalid(AppServiceErrorCode.InvalidOptions, `invalid bundle: ${err.message}`);
    }
    throw err;
  }
}

export async function startAppServer(o: AppServerOptions): Promise<AppServer> {
  const expected = packageIdOf(o.bundle);
  if (o.packageId !== expected) {
    throw invalid(
      AppServiceErrorCode.PackageMismatch,
      `package id ${o.packageId} is not the bundle's SHA-256 digest ${expected}`,
    );
  }
  const hello = { t: "bundle", package_id: expected, bundle: o.bundle } as const;
  if (encodeAppMessage(hello).byteLength > FRAME_PAYLOAD_MAX_BYTES) {
    throw invalid(
      AppServiceErrorCode.InvalidOptions,
      `the bundle is larger than the ${FRAME_PAYLOAD_MAX_BYTES}-byte frame limit`,
    );
  }
  const runtime = bundleRuntime(
    await getQuickJS(),
    bundleModules(o.bundle),
    DEFAULT_JS_RUNTIME_OPTIONS,
    o.log,
  );
  const log = o.log ?? (() => undefined);
  const where = `${o.host}:${o.port}`;
  // Every TCP connection, handshaking or not: close() ends them all, or it would wait for them.
  const sockets = new Set<Socket>();
  let closing = false;
  const server = tlsServer(o, (socket) => {
    if (closing) socket.destroy();
    else serveConnection(socket, o, runtime, log);
  });
  server.maxConnections = CONNECTIONS_MAX;
  server.on("connection", (socket: Socket) => {
    // Small request/answer frames: Nagle's algorithm would hold each for a delayed ACK.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", (err) => log(`refused a TLS client: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    const refuse = (err: Error) =>
      reject(
        invalid(AppServiceErrorCode.ListenFailed, `cannot listen on ${where}: ${err.message}`),
      );
    server.once("error", refuse);
    server.listen(o.port, o.host, () => {
      server.off("error", refuse);
      resolve();
    });
  });
  server.on("error", (err) => log(`server error: ${err.message}`));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : o.port;
  log(`serving package ${expected} on ${o.host}:${port}`);
  return {
    host: o.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The TLS server; certificates and keys that cannot be used are InvalidOptions. */
function tlsServer(o: AppServerOptions, onSecure: (socket: TLSSocket) => void): Server {
  try {
    return createServer(
      {
        cert: o.tlsCert,
        key: o.tlsKey,
        ca: o.serviceCert,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      onSecure,
    );
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw invalid(
      AppServiceErrorCode.InvalidOptions,
      `unusable TLS certificate or key: ${err.message}`,
    );
  }
}

function serveConnection(
  socket: TLSSocket,
  o: AppServerOptions,
  runtime: JsAppRuntime,
  log: (line: string) => void,
): void {
  const decoder = new FrameDecoder();
  const executor = new ConnectionExecutor(runtime);
  let greeted = false;
  // A result or need too large for one frame fails its call instead (the node answers 500).
  const send = (m: ServerMessage) => {
    if (socket.destroyed) return;
    let payload = encodeAppMessage(m);
    if (payload.byteLength > FRAME_PAYLOAD_MAX_BYTES) {
      assert(m.t === "result" || m.t === "need", `a ${m.t} message fits in a frame`);
      executor.forget(m.id);
      const message = `the ${m.t} exceeds the frame limit of ${FRAME_PAYLOAD_MAX_BYTES} bytes`;
      payload = encodeAppMessage({ t: "failed", id: m.id, reason: "exception", message });
    }
    socket.write(encodeFrame(payload));
  };
  socket.on("error", (err) => log(`connection error: ${err.message}`));
  socket.on("data", (chunk: Buffer) => {
    for (const event of decoder.push(new Uint8Array(chunk))) {
      if (socket.destroyed) return;
      if (event.kind === "oversized") {
        log(`closing a connection: a frame of ${event.declaredBytes} bytes`);
        socket.destroy();
        return;
      }
      try {
        const m = decodeNodeMessage(event.payload);
        if (m.t === "hello") {
          greeted = m.package_id === o.packageId;
          send(
            greeted
              ? { t: "bundle", package_id: o.packageId, bundle: o.bundle }
              : {
                  t: "error",
                  code: AppServiceErrorCode.PackageMismatch,
                  message: `this server serves package ${o.packageId}, not ${m.package_id}`,
                },
          );
          if (!greeted) socket.end();
        } else if (!greeted) {
          socket.destroy();
        } else if (m.t === "call") {
          send(executor.onCall(m));
        } else {
          const answer = executor.onValues(m.id, m);
          if (answer !== null) send(answer);
        }
      } catch (err: unknown) {
        if (!(err instanceof AppServiceError)) throw err;
        log(`closing a connection: ${err.message}`);
        socket.destroy();
      }
    }
  });
}
