/**
 * Node-to-node channels (issue 4 item 2): mutually authenticated TLS streams that carry
 * length-prefixed frames (src/base/frames.ts) between the nodes of one service.
 *
 * Topology: a node DIALS every peer it sends to (one outbound connection per peer, dialled on
 * the first send) and ACCEPTS inbound connections. It writes only on its outbound connections
 * and reads only from inbound ones, so a message from A to B always travels on A's connection
 * to B, and each direction has one ordered stream.
 *
 * Authentication: both sides present their node certificate. Certificates are not chain-checked
 * by TLS (a node cert may still be self-signed before the service endorses it); TLS proves the
 * peer holds the certificate's key, the node id is derived from that key, and the caller's
 * `authorize` decides. The dialler also checks that it reached the node it meant to reach.
 *
 * Owns: the TLS server, the outbound sockets with their send queues and retry timers.
 * Invariants:
 * - No frame is written on an outbound socket before the server's identity was checked, and no
 *   inbound byte is decoded before the client's identity was checked.
 * - Per peer, queued frame bytes plus the socket's unflushed bytes stay <= queueMaxBytes; a send
 *   beyond that is dropped and counted (Raft tolerates message loss).
 * - A misbehaving connection (garbage, oversized frame, unknown key) ends that socket only;
 *   every socket and the server have error handlers, and `onMessage` exceptions are contained.
 * - After close() resolves, no socket, server or timer of this object is alive.
 *
 * Liveness: TCP alone does not notice a cut link. Bytes written to a peer that cannot be reached
 * sit in the kernel and are retransmitted with exponential backoff (minutes), and a connect to it
 * waits for SYN retries, so a connection that outlived a partition can stay stuck long after the
 * link returns. Hence:
 * - a dial that has not completed its handshake within `connectTimeoutMs` is abandoned and
 *   retried (backoff up to RETRY_MAX_MS);
 * - an outbound connection on which we kept sending while nothing at all arrived from that peer
 *   for `silenceMs` is recycled (closed and dialled again): every node answers what it receives
 *   (acknowledgements, votes), so silence while talking means the path is broken;
 * - a peer that dials us again has recycled its own connection (it stopped hearing from us) or
 *   restarted: our outbound connection to it is recycled too, at most once per `silenceMs` per
 *   peer, so the two sides never recycle each other in a loop.
 */
import type { X509Certificate } from "node:crypto";
import type { Socket } from "node:net";
import { connect, createServer, type Server, type TLSSocket } from "node:tls";
import { listenAt, type HeldListener } from "../../../http/held-listener.js";
import { concatBytes } from "../../../base/bytes.js";
import { CcfError } from "../../../base/errors.js";
import { encodeFrame, FrameDecoder, FRAME_PAYLOAD_MAX_BYTES } from "../../../base/frames.js";
import { nodeIdFromPublicKey } from "../../../crypto/identity.js";
import { parseAddress, type NetAddress } from "../../config/config-values.js";

export enum ChannelErrorCode {
  /** A peer address that is not "host:port". */
  InvalidAddress = "InvalidAddress",
}
export class ChannelError extends CcfError<{ code: ChannelErrorCode }> {}

export const DEFAULT_QUEUE_MAX_BYTES = 64 * 1024 * 1024;
const RETRY_INITIAL_MS = 50;
const RETRY_MAX_MS = 1000;
const DEFAULT_SILENCE_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 3000;
const TLS_MIN_VERSION = "TLSv1.3";

export interface NodeChannelsOptions {
  /** This node's id (hex SHA-256 of its public key's SPKI DER). */
  readonly selfId: string;
  /** This node's TLS identity; setIdentity replaces it for new connections. */
  readonly certPem: string;
  readonly keyPem: string;
  /** Whether a peer that proved possession of the key of `peerId` may talk to us. */
  readonly authorize: (peerId: string, peerCertDer: Uint8Array) => boolean;
  /** One whole frame payload received from `from`. */
  readonly onMessage: (from: string, payload: Uint8Array) => void;
  readonly log: (line: string) => void;
  readonly payloadMaxBytes?: number;
  /** Per-peer outbound buffer bound; sends beyond it are dropped and counted. */
  readonly queueMaxBytes?: number;
  /** Sending to a peer without hearing from it this long recycles the connection. */
  readonly silenceMs?: number;
  /** A dial whose TLS handshake has not completed by then is abandoned and retried. */
  readonly connectTimeoutMs?: number;
}

export interface NodeChannelStats {
  framesIn: number;
  framesOut: number;
  dropped: number;
  oversized: number;
  rejectedPeers: number;
  connects: number;
  disconnects: number;
  /** Outbound connections closed because the peer went silent (or redialled us). */
  recycled: number;
}

interface Peer {
  readonly id: string;
  address: NetAddress;
  /** Encoded frames not yet handed to a socket. Invariant: their total size is queuedBytes. */
  queue: Uint8Array[];
  queuedBytes: number;
  /** The outbound socket, connecting or connected; null while down. */
  socket: TLSSocket | null;
  /** Invariant: true only while `socket` is connected and the server's identity was checked. */
  ready: boolean;
  retryMs: number;
  /** Invariant: non-null only while `socket` is null (a redial is pending). */
  retryTimer: NodeJS.Timeout | null;
  flushScheduled: boolean;
  /** Frames were written to this peer / arrived from it since the last liveness check. */
  sentSinceCheck: boolean;
  heardSinceCheck: boolean;
  /** Consecutive liveness checks that saw sending without hearing. */
  silentChecks: number;
  /** When the outbound connection was last recycled (monotonic ms), or -Infinity. */
  recycledAt: number;
  /** The peer has connected to us before (a new connection from it is a redial). */
  dialledUs: boolean;
}

interface PeerIdentity {
  readonly id: string;
  readonly der: Uint8Array;
}

function identityOf(cert: X509Certificate | undefined): PeerIdentity | null {
  if (cert === undefined) return null;
  return { id: nodeIdFromPublicKey(cert.publicKey), der: new Uint8Array(cert.raw) };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class NodeChannels {
  readonly #opts: NodeChannelsOptions;
  readonly #payloadMaxBytes: number;
  readonly #queueMaxBytes: number;
  #certPem: string;
  #keyPem: string;
  readonly #stats: NodeChannelStats = {
    framesIn: 0,
    framesOut: 0,
    dropped: 0,
    oversized: 0,
    rejectedPeers: 0,
    connects: 0,
    disconnects: 0,
    recycled: 0,
  };
  readonly #peers = new Map<string, Peer>();
  #server: Server | null = null;
  /** Raw inbound sockets, from accept until they close (handshaking ones included). */
  readonly #rawInbound = new Set<Socket>();
  /** Authenticated inbound sockets and the peer each belongs to. */
  readonly #inbound = new Map<TLSSocket, string>();
  #closed = false;
  readonly #silenceMs: number;
  readonly #connectTimeoutMs: number;
  readonly #livenessTimer: NodeJS.Timeout;

  constructor(opts: NodeChannelsOptions) {
    this.#opts = opts;
    this.#payloadMaxBytes = opts.payloadMaxBytes ?? FRAME_PAYLOAD_MAX_BYTES;
    this.#queueMaxBytes = opts.queueMaxBytes ?? DEFAULT_QUEUE_MAX_BYTES;
    this.#certPem = opts.certPem;
    this.#keyPem = opts.keyPem;
    this.#silenceMs = opts.silenceMs ?? DEFAULT_SILENCE_MS;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    // Two checks per silence period: two silent checks in a row (between one and one and a half
    // periods of silence) recycle the connection.
    this.#livenessTimer = setInterval(() => this.#checkLiveness(), this.#silenceMs / 2);
    this.#livenessTimer.unref();
  }

  get stats(): Readonly<NodeChannelStats> {
    return this.#stats;
  }

  /**
   * Starts accepting peers; port 0 picks a free port. Resolves with the bound address. With
   * `listenOn` (bound to host:port already, node/startup/listening-sockets.ts), listens on it.
   */
  listen(
    host: string,
    port: number,
    listenOn?: HeldListener,
  ): Promise<{ host: string; port: number }> {
    const server = createServer({
      cert: this.#certPem,
      key: this.#keyPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: TLS_MIN_VERSION,
    });
    this.#server = server;
    server.on("connection", (raw: Socket) => {
      this.#rawInbound.add(raw);
      raw.on("close", () => this.#rawInbound.delete(raw));
      raw.on("error", (err) => this.#opts.log(`n2n: inbound socket error: ${errorText(err)}`));
    });
    server.on("secureConnection", (socket: TLSSocket) => this.#accept(socket));
    server.on("tlsClientError", (err) => {
      this.#opts.log(`n2n: inbound TLS handshake failed: ${errorText(err)}`);
    });
    return listenAt(server, { host, port, held: listenOn }).then((boundPort) => {
      server.on("error", (err) => this.#opts.log(`n2n: server error: ${errorText(err)}`));
      return { host, port: boundPort };
    });
  }

  /** Adds a peer or updates its address (an open connection to an old address is closed). */
  setPeer(peerId: string, address: string): void {
    const parsed = parseAddress(address);
    if (parsed.kind !== "ok") {
      throw new ChannelError(
        { code: ChannelErrorCode.InvalidAddress },
        `peer ${peerId}: ${parsed.reason}`,
      );
    }
    const peer = this.#peers.get(peerId);
    if (peer === undefined) {
      this.#peers.set(peerId, {
        id: peerId,
        address: parsed.value,
        queue: [],
        queuedBytes: 0,
        socket: null,
        ready: false,
        retryMs: RETRY_INITIAL_MS,
        retryTimer: null,
        flushScheduled: false,
        sentSinceCheck: false,
        heardSinceCheck: false,
        silentChecks: 0,
        recycledAt: -Infinity,
        dialledUs: false,
      });
      return;
    }
    const old = peer.address;
    peer.address = parsed.value;
    if (old.host !== parsed.value.host || old.port !== parsed.value.port) {
      peer.socket?.destroy();
    }
  }

  /** Forgets a peer: closes its connections both ways and drops (counts) its queue. */
  removePeer(peerId: string): void {
    const peer = this.#peers.get(peerId);
    if (peer !== undefined) {
      this.#peers.delete(peerId);
      this.#stats.dropped += peer.queue.length;
      peer.queue = [];
      peer.queuedBytes = 0;
      if (peer.retryTimer !== null) clearTimeout(peer.retryTimer);
      peer.retryTimer = null;
      peer.socket?.destroy();
    }
    for (const [socket, from] of this.#inbound) if (from === peerId) socket.destroy();
  }

  /** Queues one message for `peerId`; false (and counted) when it is dropped. */
  send(peerId: string, payload: Uint8Array): boolean {
    const peer = this.#closed ? undefined : this.#peers.get(peerId);
    if (peer === undefined || payload.byteLength > this.#payloadMaxBytes) {
      this.#stats.dropped += 1;
      const why = peer === undefined ? "unknown peer" : `${payload.byteLength}-byte payload`;
      this.#opts.log(`n2n: dropped a message to ${peerId}: ${why}`);
      return false;
    }
    const frame = encodeFrame(payload, this.#payloadMaxBytes);
    const unflushed = peer.socket?.writableLength ?? 0;
    if (peer.queuedBytes + unflushed + frame.byteLength > this.#queueMaxBytes) {
      this.#stats.dropped += 1;
      return false;
    }
    peer.queue.push(frame);
    peer.queuedBytes += frame.byteLength;
    if (peer.ready) this.#scheduleFlush(peer);
    else if (peer.socket === null && peer.retryTimer === null) this.#dial(peer);
    return true;
  }

  /** Replaces this node's TLS identity for connections made or accepted from now on. */
  setIdentity(certPem: string, keyPem: string): void {
    this.#certPem = certPem;
    this.#keyPem = keyPem;
    this.#server?.setSecureContext({ cert: certPem, key: keyPem, minVersion: TLS_MIN_VERSION });
  }

  /** Closes the server, every socket and every timer. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#livenessTimer);
    for (const peer of this.#peers.values()) {
      if (peer.retryTimer !== null) clearTimeout(peer.retryTimer);
      peer.retryTimer = null;
      peer.socket?.destroy();
    }
    for (const socket of this.#inbound.keys()) socket.destroy();
    for (const raw of this.#rawInbound) raw.destroy();
    const server = this.#server;
    this.#server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------------
  // Outbound

  #dial(peer: Peer): void {
    const socket = connect({
      host: peer.address.host,
      port: peer.address.port,
      cert: this.#certPem,
      key: this.#keyPem,
      rejectUnauthorized: false,
      minVersion: TLS_MIN_VERSION,
    });
    peer.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(this.#connectTimeoutMs, () => {
      socket.destroy(new Error(`no TLS handshake within ${this.#connectTimeoutMs} ms`));
    });
    socket.on("secureConnect", () => {
      socket.setTimeout(0);
      const who = identityOf(socket.getPeerX509Certificate());
      if (who === null || who.id !== peer.id || !this.#authorized(who)) {
        this.#stats.rejectedPeers += 1;
        this.#opts.log(
          `n2n: ${peer.id} at ${peer.address.host}:${peer.address.port} ` +
            `presented ${who === null ? "no certificate" : `node ${who.id}`}; refused`,
        );
        socket.destroy();
        return;
      }
      peer.ready = true;
      peer.silentChecks = 0;
      peer.retryMs = RETRY_INITIAL_MS;
      this.#stats.connects += 1;
      this.#scheduleFlush(peer);
    });
    // Servers never write on our outbound connection; bytes from them are a protocol error.
    socket.on("data", () => socket.destroy());
    socket.on("error", (err) => this.#opts.log(`n2n: to ${peer.id}: ${errorText(err)}`));
    socket.on("close", () => this.#onOutboundClose(peer, socket));
  }

  #onOutboundClose(peer: Peer, socket: TLSSocket): void {
    if (peer.socket !== socket) return;
    if (peer.ready) this.#stats.disconnects += 1;
    peer.socket = null;
    peer.ready = false;
    if (this.#closed || this.#peers.get(peer.id) !== peer || peer.queue.length === 0) return;
    const delay = peer.retryMs;
    peer.retryMs = Math.min(peer.retryMs * 2, RETRY_MAX_MS);
    peer.retryTimer = setTimeout(() => {
      peer.retryTimer = null;
      if (!this.#closed && this.#peers.get(peer.id) === peer && peer.socket === null) {
        this.#dial(peer);
      }
    }, delay);
    peer.retryTimer.unref();
  }

  /** Writes everything queued in one chunk at the end of this tick (batches small frames). */
  #scheduleFlush(peer: Peer): void {
    if (peer.flushScheduled) return;
    peer.flushScheduled = true;
    queueMicrotask(() => {
      peer.flushScheduled = false;
      const socket = peer.socket;
      if (!peer.ready || socket === null || peer.queue.length === 0) return;
      const frames = peer.queue;
      peer.queue = [];
      peer.queuedBytes = 0;
      this.#stats.framesOut += frames.length;
      peer.sentSinceCheck = true;
      socket.write(frames.length === 1 ? frames[0]! : concatBytes(frames));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Inbound

  #accept(socket: TLSSocket): void {
    socket.on("error", (err) => this.#opts.log(`n2n: inbound: ${errorText(err)}`));
    const who = identityOf(socket.getPeerX509Certificate());
    if (this.#closed || who === null || !this.#authorized(who)) {
      this.#stats.rejectedPeers += 1;
      this.#opts.log(`n2n: refused inbound ${who === null ? "without certificate" : who.id}`);
      socket.destroy();
      return;
    }
    // A peer that dials again has given up its previous connection: close what is left of it
    // here (late frames from it would arrive out of order) and recycle our connection to it.
    for (const [old, from] of this.#inbound) if (from === who.id) old.destroy();
    this.#inbound.set(socket, who.id);
    socket.on("close", () => this.#inbound.delete(socket));
    const peer = this.#peers.get(who.id);
    const redialled = peer?.dialledUs === true;
    if (peer !== undefined) peer.dialledUs = true;
    if (redialled && peer !== undefined) this.#recycle(peer, "it dialled us again");
    const decoder = new FrameDecoder({ payloadMaxBytes: this.#payloadMaxBytes });
    socket.on("data", (chunk: Uint8Array) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === "oversized") {
          this.#stats.oversized += 1;
          this.#opts.log(`n2n: ${who.id} declared a ${event.declaredBytes}-byte frame; closing`);
          socket.destroy();
          return;
        }
        this.#deliver(who.id, event.payload);
        if (socket.destroyed) return; // onMessage removed the peer or closed the channels
      }
    });
  }

  #authorized(who: PeerIdentity): boolean {
    try {
      return this.#opts.authorize(who.id, who.der);
    } catch (err: unknown) {
      this.#opts.log(`n2n: authorize(${who.id}) threw: ${errorText(err)}`);
      return false;
    }
  }

  #deliver(from: string, payload: Uint8Array): void {
    this.#stats.framesIn += 1;
    const peer = this.#peers.get(from);
    if (peer !== undefined) peer.heardSinceCheck = true;
    try {
      this.#opts.onMessage(from, payload);
    } catch (err: unknown) {
      this.#stats.dropped += 1;
      this.#opts.log(`n2n: onMessage from ${from} threw: ${errorText(err)}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Liveness

  /** Recycles outbound connections to peers we kept sending to without hearing from them. */
  #checkLiveness(): void {
    for (const peer of this.#peers.values()) {
      if (peer.heardSinceCheck) peer.silentChecks = 0;
      else if (peer.sentSinceCheck && peer.ready) peer.silentChecks += 1;
      peer.heardSinceCheck = false;
      peer.sentSinceCheck = false;
      if (peer.silentChecks >= 2) {
        this.#recycle(peer, `nothing heard from it for ${this.#silenceMs} ms while sending`);
      }
    }
  }

  /** Closes the outbound connection to `peer` so that it is dialled again (rate-limited). */
  #recycle(peer: Peer, why: string): void {
    peer.silentChecks = 0;
    const now = performance.now();
    if (peer.socket === null || now - peer.recycledAt < this.#silenceMs) return;
    peer.recycledAt = now;
    this.#stats.recycled += 1;
    this.#opts.log(`n2n: reconnecting to ${peer.id}: ${why}`);
    const socket = peer.socket;
    if (peer.ready) this.#stats.disconnects += 1;
    peer.socket = null;
    peer.ready = false;
    socket.destroy();
    // Dialled again at once, even with nothing queued: waiting for the next send would add a
    // round of silence.
    if (peer.retryTimer === null && !this.#closed) this.#dial(peer);
  }
}
