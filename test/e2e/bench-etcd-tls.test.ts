// The bench's etcd baseline runs under the same transport rules as Consortia: clients must
// present a certificate from the run's CA, and a put through the JSON gateway over mTLS works.
// Needs the Debian etcd-server binary; skipped (saying so) where it is not installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import {
  checkPut,
  etcdVersion,
  findLeader,
  putBodies,
  startEtcdCluster,
} from "../../bench/etcd.js";

const version = etcdVersion();

/** The status of GET /health with the given TLS options, or the connection error's code. */
function health(url: string, tls: object): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(new URL("/health", url), { ...tls, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

test(
  "etcd baseline: members and clients over mTLS; a client without a certificate is refused",
  {
    skip: version === null ? "etcd not on PATH (apt-get install -y etcd-server)" : false,
    timeout: 60_000,
  },
  async () => {
    const cluster = await startEtcdCluster(1);
    try {
      const leader = await findLeader(cluster);
      assert.match(leader.clientUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
      await checkPut(leader, cluster.tls, putBodies()());
      assert.equal(await health(leader.clientUrl, cluster.tls), 200);
      const noCert = await health(leader.clientUrl, { ca: cluster.tls.ca });
      // Refused in the handshake (a TLS alert), not answered.
      assert.match(String(noCert), /SSL|ECONNRESET|EPIPE/, `without a certificate: ${noCert}`);
    } finally {
      await cluster.stop();
    }
  },
);
