/**
 * The Recover boot path (command.type Recover): a service whose nodes are all gone is recovered
 * from its ledger. The node replays the public domain of the previous service's ledger (in
 * ledger.directory, after the newest committed snapshot whose receipt verifies against the
 * previous identity), and creates a new service identity. The node host then starts the new
 * service as Recovering from that replay (DisasterRecovery); members open it and submit their
 * shares. This module never builds the node itself: it returns what the node starts from.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { assert } from "../../base/assert.js";
import { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import { splitSnapshotFile } from "../../ledger/snapshot.js";
import type { NodeConfig } from "../config/config.js";
import { snapshotDirsOf } from "../config/directories.js";
import { usableCommittedSnapshots } from "../snapshots/usable-snapshots.js";
import { newServiceIdentity, type NodeIdentity } from "../startup/node-identity.js";
import { replayPublic, type PublicReplay, type RecoverySnapshot } from "./recovery-replay.js";

/** Threads hashing entries beside the node's during the public replay. */
const REPLAY_WORKERS = 2;

export interface RecoveryBootDeps {
  readonly now: Date;
  readonly log: (line: string) => void;
}

/** What a recovering node starts from. */
export interface RecoveredNode {
  readonly identity: NodeIdentity;
  readonly secrets: LedgerSecrets;
  readonly replay: PublicReplay;
  readonly snapshot: RecoverySnapshot | undefined;
  readonly previousServiceCertPem: string;
}

export async function recoverPublicLedger(
  config: NodeConfig,
  deps: RecoveryBootDeps,
): Promise<RecoveredNode> {
  if (config.command.type !== "Recover") throw new TypeError("recovery needs command Recover");
  mkdirSync(config.snapshots.directory, { recursive: true });
  const recover = config.command.recover;
  const previousServiceCertPem = readFileSync(recover.previousServiceIdentityFile, "utf8");
  const snapshot = recoverySnapshot(config, previousServiceCertPem, deps.log);
  const secrets = new LedgerSecrets(randomBytes(32));
  deps.log(`reading the public ledger in ${config.ledger.directory}`);
  const started = performance.now();
  const replay = await replayPublic({
    workers: REPLAY_WORKERS,
    ledgerDir: config.ledger.directory,
    readOnlyDirectories: config.ledger.readOnlyDirectories,
    previousServiceCertPem,
    secrets,
    snapshot,
    log: (line) => deps.log(`[recovery] ${line}`),
    onProgress: (seqno, read, total) =>
      deps.log(`public replay: seqno ${seqno}, ${Math.round((100 * read) / total)}%`),
  });
  const seconds = (performance.now() - started) / 1000;
  const count = replay.lastSignedSeqno - replay.base.seqno;
  deps.log(
    `public replay: ${count} transactions to seqno ${replay.lastSignedSeqno} ` +
      `(view ${replay.lastView}) in ${seconds.toFixed(2)} s ` +
      `(${Math.round(count / Math.max(seconds, 1e-6))} tx/s)`,
  );
  // CCF: a recovered service keeps the issuer and subject of the last COSE signature it replayed.
  const identity = await newServiceIdentity(config, deps.now, {
    validityDays: recover.initialServiceCertificateValidityDays,
    coseSignatures: replay.coseSignatures,
  });
  return { identity, secrets, replay, snapshot, previousServiceCertPem };
}

/** The newest committed snapshot whose receipt verifies against the previous identity. */
function recoverySnapshot(
  config: NodeConfig,
  previousServiceCertPem: string,
  log: (line: string) => void,
): RecoverySnapshot | undefined {
  const dirs = snapshotDirsOf(config);
  const found = usableCommittedSnapshots(dirs, previousServiceCertPem, log)[0];
  if (found === undefined) return undefined;
  const split = splitSnapshotFile(found.bytes);
  assert(split !== null, "usableCommittedSnapshots returns only files whose framing splits");
  log(`recovering from snapshot ${found.path} (seqno ${found.seqno}) and the ledger`);
  return { seqno: found.seqno, evidenceSeqno: found.evidenceSeqno, entryBytes: split.entry };
}
