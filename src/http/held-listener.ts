/**
 * A listening socket bound before the server that will serve it exists (a node binds its
 * interfaces before it writes anything: node/startup/listening-sockets.ts).
 *
 * Connections that arrive before a server adopts the socket are held, paused and unread, and
 * handed to that server when it adopts it: a client that connects while the node is still
 * starting waits for its answer, instead of being refused or reset. At most HELD_MAX are held;
 * beyond that a connection is closed at once. close() (a start that failed) closes the held
 * ones with the socket.
 */
import { createServer, type Server as NetServer, type Socket } from "node:net";

/** Connections held before the socket is adopted; later ones are closed. */
const HELD_MAX = 1024;

export class HeldListener {
  readonly #socket: NetServer;
  /** Each held connection and the listeners this class put on it. */
  readonly #held = new Map<Socket, () => void>();
  /** Adopted by a server, or closed: connections are no longer held. */
  #adopted = false;

  private constructor(socket: NetServer) {
    this.#socket = socket;
    socket.on("connection", (connection: Socket) => this.#hold(connection));
  }

  /** Binds host:port (port 0 picks one); rejects with the OS error (EADDRINUSE, ...). */
  static async bind(host: string, port: number): Promise<HeldListener> {
    const socket = createServer({ pauseOnConnect: true });
    const listener = new HeldListener(socket);
    await listenAt(socket, { host, port });
    return listener;
  }

  /** The port bound. */
  get port(): number {
    const at = this.#socket.address();
    if (typeof at !== "object" || at === null) throw new RangeError("the socket is not bound");
    return at.port;
  }

  /** Connections waiting for a server. */
  get heldCount(): number {
    return this.#held.size;
  }

  /**
   * `server` listens on this socket from now on and is given the connections held so far, as
   * if they had just arrived. Once per listener; resolves with the port.
   */
  adopt(server: NetServer): Promise<number> {
    if (this.#adopted) throw new RangeError("the socket was already adopted by a server");
    this.#adopted = true;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#socket, () => {
        server.off("error", reject);
        const held = [...this.#held];
        this.#held.clear();
        for (const [connection, release] of held) {
          release();
          if (!connection.destroyed) server.emit("connection", connection);
        }
        resolve(this.port);
      });
    });
  }

  /** Closes the socket and the connections it holds (no server adopted it). */
  close(): Promise<void> {
    this.#adopted = true;
    for (const connection of this.#held.keys()) connection.destroy();
    this.#held.clear();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #hold(connection: Socket): void {
    if (this.#adopted || this.#held.size >= HELD_MAX) {
      connection.destroy();
      return;
    }
    const onClose = (): void => void this.#held.delete(connection);
    // A reset while held is the client's business; the socket is dropped with it.
    const onError = (): void => void connection.destroy();
    connection.on("close", onClose);
    connection.on("error", onError);
    this.#held.set(connection, () => {
      connection.off("close", onClose);
      connection.off("error", onError);
    });
  }
}

/**
 * Makes `server` listen: on `held` when given (adopting its connections), else on host:port
 * (port 0 picks one). Resolves with the port it listens on.
 */
export function listenAt(
  server: NetServer,
  at: { readonly host: string; readonly port: number; readonly held?: HeldListener | undefined },
): Promise<number> {
  if (at.held !== undefined) return at.held.adopt(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : at.port);
    });
  });
}
