/**
 * How the RPC server stops (server.ts's close()): it stops accepting, closes idle connections,
 * and sets `closing`, from which server.ts answers requests that arrive on open keep-alive
 * connections 503 with `connection: close` and closes each connection once its in-flight
 * request is answered. Connections still busy after the grace are cut. Without this, keep-alive
 * clients under load keep sending and a stopping node waits for the whole grace.
 */
import type { Server } from "node:https";

/**
 * Short: a stopping node must exit within 2 s of SIGTERM (cli/commands/node.ts), and requests
 * arriving after close() are refused at once, so only requests already running wait for it.
 */
export const DEFAULT_CLOSE_GRACE_MS = 500;

/** close(), idempotent: every call resolves once the server is closed. */
export function closer(
  server: Server,
  state: { closing: boolean },
  graceMs: number,
): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () => {
    // Keep-alive clients would otherwise keep sending on their open connections until cut.
    state.closing = true;
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };
}
