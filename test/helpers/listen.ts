/** Plain TCP listeners for tests about ports: who holds one, and whether it is free. */
import { createServer, type Server } from "node:net";

/** A listener on host:port, or null when the OS refuses (EADDRINUSE, EADDRNOTAVAIL...). */
export function tryListen(host: string, port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(port, host, () => resolve(server));
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Whether host:port can be listened on now (it is left free again). */
export async function canListen(host: string, port: number): Promise<boolean> {
  const server = await tryListen(host, port);
  if (server === null) return false;
  await closeServer(server);
  return true;
}
