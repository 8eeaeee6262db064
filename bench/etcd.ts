/**
 * The etcd baseline of `npm run bench`: a real etcd cluster (the Debian etcd-server binary on
 * PATH) on 127.0.0.1, free ports, data in a temporary directory, default fsync behaviour; the
 * leader is found through the JSON gateway (POST /v3/maintenance/status) and loaded with puts
 * (POST /v3/kv/put, fresh 16 B key, 100 B value). etcd answers a put only once it is committed,
 * so its put rate is its committed rate.
 *
 * Like a Consortia network, the cluster speaks TLS everywhere: clients must present a
 * certificate (`--client-cert-auth`) and members talk to each other over mutually authenticated
 * TLS (`--peer-client-cert-auth`), with P-256 certificates from a CA made for the run (the
 * sandbox's default curve), so both systems pay for the same transport.
 *
 * Invariants:
 * - every member process started is stopped by PID in stop() (SIGTERM, then SIGKILL), and its
 *   data directory removed, including when startup fails half-way;
 * - `pids` lists every member started so far, for a signal handler's last-resort cleanup.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServiceCertificate, endorseNodeCertificate } from "../src/crypto/cert-issuance.js";
import { ecPrivateKeyPem, generateEcKeyPair } from "../src/crypto/identity.js";
import { requestJson, stopPids, type Tls } from "./sandbox.js";

const READY_TIMEOUT_MS = 30_000;

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly child: ChildProcess;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  readonly dir: string;
  /** The client's TLS material (CA, client certificate and key) for every member. */
  readonly tls: Tls;
  /** PIDs of every member started (for signal handlers). */
  readonly pids: number[];
  stop(): Promise<string[]>;
}

/** "3.4.23", or null when no etcd binary is on PATH. */
export function etcdVersion(): string | null {
  const run = spawnSync("etcd", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (run.error !== undefined || run.status !== 0) return null;
  return /etcd Version: (\S+)/.exec(run.stdout)?.[1] ?? "unknown";
}

/** `count` distinct free loopback ports (held open together so they differ, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            if (address === null || typeof address === "string") reject(new Error("no port"));
            else resolve(address.port);
          });
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface EtcdTlsFiles {
  readonly client: Tls;
  /** etcd's TLS flags for its client and peer listeners (one certificate serves both). */
  readonly flags: string[];
}

/**
 * A CA, one member certificate (server and client use, SAN 127.0.0.1) and one client
 * certificate, written into `dir`.
 */
async function makeEtcdTls(dir: string): Promise<EtcdTlsFiles> {
  const now = new Date();
  const caKeys = generateEcKeyPair("secp256r1");
  const caPem = await createServiceCertificate({
    keys: caKeys,
    subject: "CN=etcd bench CA",
    validityDays: 2,
    now,
  });
  const issue = async (subject: string) => {
    const keys = generateEcKeyPair("secp256r1");
    const cert = await endorseNodeCertificate({
      servicePrivateKey: caKeys.privateKey,
      serviceCertPem: caPem,
      nodePublicKey: keys.publicKey,
      subject,
      subjectAltNames: ["iPAddress:127.0.0.1", "dNSName:localhost"],
      validityDays: 2,
      now,
    });
    return { cert, key: ecPrivateKeyPem(keys.privateKey) };
  };
  const member = await issue("CN=etcd member");
  const client = await issue("CN=etcd bench client");
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const ca = file("ca.pem", caPem);
  const cert = file("member.pem", member.cert);
  const memberKey = file("member.key", member.key);
  return {
    client: {
      ca: Buffer.from(caPem),
      cert: Buffer.from(client.cert),
      key: Buffer.from(client.key),
    },
    flags: [
      ...["--cert-file", cert, "--key-file", memberKey, "--trusted-ca-file", ca],
      "--client-cert-auth",
      ...["--peer-cert-file", cert, "--peer-key-file", memberKey, "--peer-trusted-ca-file", ca],
      "--peer-client-cert-auth",
    ],
  };
}

export async function startEtcdCluster(size: number): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), "consortia-bench-etcd-"));
  const pids: number[] = [];
  const members: EtcdMember[] = [];
  const tlsFiles = await makeEtcdTls(dir);
  const cluster: EtcdCluster = {
    members,
    dir,
    tls: tlsFiles.client,
    pids,
    stop: async () => {
      // etcd members shut down gracefully on SIGTERM (a leader hands over first), which can
      // outlast the grace period once their peers are gone: say whose PID it was.
      const notes = await stopPids(pids);
      rmSync(dir, { recursive: true, force: true });
      return notes.map((note) => `etcd member: ${note}`);
    },
  };
  try {
    const ports = await freePorts(2 * size);
    const names = Array.from({ length: size }, (_, i) => `m${i}`);
    const peerUrl = (i: number) => `https://127.0.0.1:${ports[size + i]}`;
    const initial = names.map((name, i) => `${name}=${peerUrl(i)}`).join(",");
    for (const [i, name] of names.entries()) {
      const clientUrl = `https://127.0.0.1:${ports[i]}`;
      const log = openSync(join(dir, `${name}.log`), "w");
      let child: ChildProcess;
      try {
        child = spawn(
          "etcd",
          [
            ...["--name", name, "--data-dir", join(dir, name)],
            ...["--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl],
            ...["--listen-peer-urls", peerUrl(i), "--initial-advertise-peer-urls", peerUrl(i)],
            ...["--initial-cluster", initial, "--initial-cluster-state", "new"],
            ...["--initial-cluster-token", `consortia-bench-${process.pid}`],
            ...tlsFiles.flags,
          ],
          { stdio: ["ignore", log, log] },
        );
      } finally {
        closeSync(log);
      }
      if (child.pid !== undefined) pids.push(child.pid);
      members.push({ name, clientUrl, child });
    }
    await waitHealthy(members, dir, tlsFiles.client);
    return cluster;
  } catch (err: unknown) {
    await cluster.stop();
    throw err;
  }
}

async function waitHealthy(members: readonly EtcdMember[], dir: string, tls: Tls): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (const member of members) {
    for (;;) {
      if (member.child.exitCode !== null || member.child.signalCode !== null) {
        throw new Error(`etcd ${member.name} exited during startup:\n${tail(dir, member.name)}`);
      }
      if (await healthy(member.clientUrl, tls)) break;
      if (Date.now() > deadline) {
        throw new Error(`etcd ${member.name} not healthy in time:\n${tail(dir, member.name)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function healthy(clientUrl: string, tls: Tls): Promise<boolean> {
  try {
    const res = await requestJson(clientUrl, "/health", tls);
    return res.status === 200 && (res.body as { health?: unknown } | null)?.health === "true";
  } catch {
    // Not listening yet, or no leader yet: the caller retries until its deadline.
    return false;
  }
}

function tail(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, `${name}.log`), "utf8")
      .trimEnd()
      .split("\n")
      .slice(-15)
      .join("\n");
  } catch (err: unknown) {
    return `(no log: ${String(err)})`;
  }
}

/** The member that reports itself leader (POST /v3/maintenance/status), else the first. */
export async function findLeader(cluster: EtcdCluster): Promise<EtcdMember> {
  for (const member of cluster.members) {
    const res = await requestJson(member.clientUrl, "/v3/maintenance/status", cluster.tls, {
      body: "{}",
    });
    const status = (res.body ?? {}) as { leader?: string; header?: { member_id?: string } };
    if (status.leader !== undefined && status.leader === status.header?.member_id) return member;
  }
  return cluster.members[0]!;
}

/** Request bodies for puts: a fresh 16-byte key per call, a 100-byte value. */
export function putBodies(): () => string {
  const value = Buffer.alloc(100, "v").toString("base64");
  const prefix = String(process.pid % 1000).padStart(3, "0");
  let seq = 0;
  return () => {
    const key = `k${prefix}${String(seq++).padStart(12, "0")}`;
    return JSON.stringify({ key: Buffer.from(key).toString("base64"), value });
  };
}

/** One put through the gateway; throws unless it returns a revision (a sanity check). */
export async function checkPut(member: EtcdMember, tls: Tls, body: string): Promise<void> {
  const res = await requestJson(member.clientUrl, "/v3/kv/put", tls, { body });
  const answer = res.body as { header?: { revision?: string } } | null;
  if (res.status !== 200 || answer?.header?.revision === undefined) {
    throw new Error(`etcd sanity put failed: ${res.status} ${JSON.stringify(answer)}`);
  }
}
