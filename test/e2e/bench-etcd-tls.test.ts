// The bench's etcd baseline runs under the same transport rules as Consortia: clients must
// present a certificate from the run's CA, and a put through the JSON gateway over mTLS works.
// Needs the Debian etcd-server binary; skipped (saying so) where it is not installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { httpsRequest, type Tls } from "../helpers/https.js";
import {
  checkPut,
  etcdVersion,
  findLeader,
  putBodies,
  startEtcdCluster,
} from "../../bench/etcd.js";

const version = etcdVersion();

/** The bench's TLS buffers as the PEM strings the e2e helper takes. */
function tlsText(tls: { ca: Buffer; cert: Buffer; key: Buffer }): Required<Tls> {
  return { ca: tls.ca.toString(), cert: tls.cert.toString(), key: tls.key.toString() };
}

/** The status of GET /health with the given TLS options, or the connection error's code. */
function health(url: string, tls: Tls): Promise<number | string> {
  return httpsRequest(`${url}/health`, tls, "GET").then(
    (reply) => reply.status,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
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
      assert.equal(await health(leader.clientUrl, tlsText(cluster.tls)), 200);
      const noCert = await health(leader.clientUrl, { ca: tlsText(cluster.tls).ca });
      // Refused in the handshake (a TLS alert), not answered.
      assert.match(String(noCert), /SSL|ECONNRESET|EPIPE/, `without a certificate: ${noCert}`);
    } finally {
      await cluster.stop();
    }
  },
);
