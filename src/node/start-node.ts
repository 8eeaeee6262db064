/**
 * Starting a node, from its config to serving: its listening sockets, bound before anything is
 * written (port 0 gets its concrete port there), the boot path of the config's command (Start:
 * a new service identity; Join: join-boot.ts; Recover: recovery-boot.ts), the node host, the
 * node's own first transaction (genesis for a new service, the recovery's start), the
 * certificate files, every frontend, and serve(). A start that fails undoes what it began
 * (abandonStart) before its error reaches the caller.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { assert } from "../base/assert.js";
import { formatTxId, type Seqno } from "../base/ids.js";
import type { Clock } from "../base/io.js";
import type { StorageError } from "../base/storage-error.js";
import { writeGenesis } from "../gov/genesis.js";
import type { Tx } from "../kv/tx.js";
import { DEFAULT_COSE_SIGNATURES_CONFIG } from "../ledger/cose-signature.js";
import { LedgerSecrets } from "../ledger/ledger-secrets.js";
import { SystemClock } from "../platform/system-clock.js";
import type { NodeConfig } from "./config/config.js";
import { joinService } from "./join/join-boot.js";
import { NodeHost, type NodeHostDeps } from "./node-host.js";
import { HARD_STATE_FILE } from "./node-wiring.js";
import { START_VIEW, type NodeStart } from "./node-start.js";
import { recoverPublicLedger } from "./recovery/recovery-boot.js";
import { registerFrontends } from "./register-frontends.js";
import { genesisInput } from "./startup/genesis-input.js";
import { newServiceIdentity, trustedNodeInfo } from "./startup/node-identity.js";
import { ListeningSockets } from "./startup/listening-sockets.js";
import {
  checkEmptyLedger,
  checkWritableDirectory,
  StartupError,
  StartupErrorCode,
} from "./startup/startup-checks.js";

export interface StartNodeDeps {
  readonly log: (line: string) => void;
  /** Wall-clock time (default: the system's). */
  readonly now?: () => Date;
  /** Monotonic time (default: SystemClock). */
  readonly clock?: Clock;
  /** Aborts a join that is still waiting. */
  readonly signal?: AbortSignal;
  /** Told at the first storage fault of the running node (NodeHost), which must then stop. */
  readonly onStorageFault?: (fault: StorageError) => void;
}

export async function startNode(configured: NodeConfig, deps: StartNodeDeps): Promise<NodeHost> {
  // First of all: a port clash fails the start while nothing is on disk.
  const sockets = await ListeningSockets.bind(configured);
  const config = sockets.config;
  const hostDeps: NodeHostDeps = {
    log: deps.log,
    now: deps.now ?? (() => new Date()),
    clock: deps.clock ?? new SystemClock(),
    onStorageFault: deps.onStorageFault,
  };
  const started: Started = { sockets, host: null, ledgerBefore: null, written: [] };
  try {
    checkWritableDirectory("ledger directory", config.ledger.directory);
    checkWritableDirectory("snapshot directory", config.snapshots.directory);
    const start = await boot(config, hostDeps, deps.signal, sockets);
    // What a new service or a joiner writes into its (empty) ledger directory is its own.
    if (start.kind !== "recover") started.ledgerBefore = new Set(ledgerEntries(config));
    const host = new NodeHost(config, start, hostDeps);
    started.host = host;
    beginService(host, start, started.written, hostDeps.log);
    await registerFrontends(host, hostDeps);
    await host.serve(sockets);
    return host;
  } catch (err: unknown) {
    await abandonStart(started, config, hostDeps.log);
    throw err;
  }
}

/** What a start has begun so far: what abandonStart undoes. */
interface Started {
  readonly sockets: ListeningSockets;
  host: NodeHost | null;
  /** The ledger directory's entries before a new service or a joiner wrote (null: Recover). */
  ledgerBefore: Set<string> | null;
  /** The certificate files written. */
  readonly written: string[];
}

/**
 * Undoes a start that failed part-way, so that nothing it began keeps the process alive (a
 * caller in-process is left without listeners, timers, workers or an open ledger) and the
 * operator can start the node again once the cause is fixed: the node stops, the sockets no
 * server took are closed, the certificate files written are deleted, and so are the files a new
 * service or a joiner wrote into its ledger directory. Their identity lived only in this
 * process: no node can ever continue that ledger, and Start and Join still refuse a directory
 * that holds one. A recovery's ledger is the previous service's, and is kept.
 */
async function abandonStart(
  started: Started,
  config: NodeConfig,
  log: (line: string) => void,
): Promise<void> {
  const undo = async (what: string, step: () => Promise<void> | void): Promise<void> => {
    try {
      await step();
    } catch (e: unknown) {
      // The start's own error is the one reported; this one is logged.
      log(`start failed; then ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const host = started.host;
  if (host !== null) await undo("stopping the node", () => host.stop());
  await undo("closing its sockets", () => started.sockets.close());
  const before = started.ledgerBefore;
  const ledgerFiles =
    before === null ? [] : ledgerEntries(config).filter((name) => !before.has(name));
  const paths = [...started.written, ...ledgerFiles.map((f) => join(config.ledger.directory, f))];
  for (const path of paths) await undo(`deleting ${path}`, () => rmSync(path, { force: true }));
  if (ledgerFiles.length > 0) {
    log(`start failed: deleted ${ledgerFiles.join(", ")} from ${config.ledger.directory}`);
  }
}

/** The ledger's chunks and the hard state in the ledger directory (nothing else in it). */
function ledgerEntries(config: NodeConfig): string[] {
  const directory = config.ledger.directory;
  const names = existsSync(directory) ? readdirSync(directory) : [];
  return names.filter((name) => name.startsWith("ledger_") || name === HARD_STATE_FILE);
}

/** The boot path of the config's command: what the node starts from. */
async function boot(
  config: NodeConfig,
  deps: NodeHostDeps,
  signal: AbortSignal | undefined,
  sockets: ListeningSockets,
): Promise<NodeStart> {
  const now = deps.now();
  switch (config.command.type) {
    case "Start": {
      checkEmptyLedger(config.ledger.directory);
      mkdirSync(config.snapshots.directory, { recursive: true });
      const start = config.command.start;
      const identity = await newServiceIdentity(config, now, {
        validityDays: start.initialServiceCertificateValidityDays,
        subject: start.serviceSubjectName,
        // CCF: command.start.cose_signatures, each field empty unless set.
        coseSignatures: { ...DEFAULT_COSE_SIGNATURES_CONFIG, ...start.coseSignatures },
      });
      const secrets = new LedgerSecrets(randomBytes(32));
      return { kind: "new-service", identity, secrets };
    }
    case "Join": {
      checkEmptyLedger(config.ledger.directory);
      const joined = await joinService(config, { now, log: deps.log, signal, sockets });
      return { kind: "join", joined };
    }
    case "Recover":
      return {
        kind: "recover",
        recovered: await recoverPublicLedger(config, { now, log: deps.log }),
      };
  }
}

/** The node's first steps once built, by boot path, and its certificate files (`written`). */
function beginService(
  host: NodeHost,
  start: NodeStart,
  written: string[],
  log: (line: string) => void,
): void {
  const command = host.config.command;
  switch (start.kind) {
    case "new-service":
      host.driver.process(); // the Ready that makes this node the primary of view 2
      writeFirstTransaction(host, "genesis", (tx) => {
        writeGenesis(tx, genesisInput(host.config, host.identity, START_VIEW));
      });
      host.pipeline.emitSignature();
      host.driver.process();
      break;
    case "recover":
      beginRecoveredService(host, log);
      break;
    case "join":
      break;
  }
  // Whole or absent, never half-written: operators and tests poll for these files.
  const outputs: [string, string][] = [
    [host.config.outputFiles.nodeCertificateFile, host.nodeCertPem],
  ];
  if (command.type !== "Join")
    outputs.unshift([command.serviceCertificateFile, host.serviceCertPem]);
  for (const [path, text] of outputs) {
    writeFileAtomically(path, text);
    written.push(path);
  }
}

/**
 * The recovered service's first transaction (DisasterRecovery.writeStart) goes first: the
 * signature the new primary emits once it handles its leadership (driver.process) then covers
 * it, and no signature of the new service precedes the transaction recording its identity
 * (replays check signers against it).
 */
function beginRecoveredService(host: NodeHost, log: (line: string) => void): void {
  const recovery = host.disasterRecovery;
  assert(recovery !== null, "a node built from a recovery has a disaster recovery");
  const createTxId = formatTxId({ view: host.view, seqno: (host.store.seqno + 1) as Seqno });
  const node = {
    id: host.nodeId,
    info: trustedNodeInfo(host.config, host.identity),
    certPem: host.nodeCertPem,
  };
  writeFirstTransaction(host, "recovery start", (tx) => recovery.writeStart(tx, node, createTxId));
  host.driver.process();
  log(`service recovering as ${createTxId}: waiting for the members`);
}

/** A node's own first transaction must take the next seqno: anything else stops the start. */
function writeFirstTransaction(
  host: NodeHost,
  kind: "genesis" | "recovery start",
  write: (tx: Tx) => void,
): void {
  const seqno = host.store.seqno + 1;
  const outcome = host.system.write(kind, write);
  if (outcome.kind !== "written" || outcome.txId.seqno !== seqno) {
    const result = outcome.kind === "written" ? formatTxId(outcome.txId) : outcome.reason;
    throw new StartupError(
      { code: StartupErrorCode.FirstTransactionFailed },
      `the ${kind} transaction did not commit as seqno ${seqno} (${result})`,
    );
  }
}

/** Writes `path` through a temporary file and a rename, so a reader sees all of it or nothing. */
function writeFileAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}
