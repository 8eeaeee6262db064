/**
 * Disaster recovery, the ledger side (ccf-compatibility.md §8.3; issue #5). A node started with
 * command Recover reads the previous service's ledger (after its newest usable committed snapshot,
 * if any) in two passes:
 *
 * 1. Public replay (`replayPublic`), before any member has helped: every entry's framing is
 *    checked by the reader, its leaf goes into a fresh Merkle tree (CCF's: leaf 0 is 32 zero
 *    bytes), and every signature must sign the recomputed root with a node certificate issued by
 *    the service certificate in force at that point (service.info in the replayed state, so a
 *    ledger that went through earlier recoveries verifies across them), and its COSE signature,
 *    when it has one, must verify with that service's key; a signature transaction writes
 *    nothing but its own maps (ledger/signature.ts). A ledger of Consortia 0.1 (leaves
 *    numbered from seqno 1) is refused at its first signature with a LegacyFormatError. The
 *    public write sets build the store. The replay stops at the last signature that verifies:
 *    an unsigned suffix or a torn last entry is dropped (the old service never committed them),
 *    while an entry or signature that does not verify is an error naming its file, offset and
 *    seqno. The final service certificate must be the one the operator named as the previous
 *    identity.
 * 2. Private replay (`replayPrivate`), once the members' shares have rebuilt the ledger secrets:
 *    the private domain of the snapshot and of every entry up to the recovery point, decrypted
 *    with the secret in force at its seqno, into a separate store that the node installs whole
 *    (Store.installRecovered).
 *
 * No consensus here: the caller turns the result into its Raft log and pipeline.
 */
import { fromHex, toHex } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import type { Seqno, View } from "../../base/ids.js";
import type { RaftEntry } from "../../consensus/types.js";
import { PAYLOAD_WINDOW } from "../../consensus/raft-log.js";
import { Store } from "../../kv/store.js";
import type { MapWrites } from "../../kv/write-set.js";
import { decodeEntry, decryptPrivateDomain, type LedgerEntry } from "../../ledger/entry-format.js";
import { decodeMaps } from "../../kv/codec.js";
import { ReplayBatches, ReplayPool, type Located } from "./replay-batches.js";
import { TxHistory } from "../../ledger/history.js";
import type { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import { listLedgerFiles, readLedger } from "../../ledger/io/ledger-reader.js";
import { renameSync } from "node:fs";
import { SignatureChecker } from "../../ledger/signature-checker.js";
import {
  CoseSignatureChecker,
  CoseSignatureError,
  coseSignaturesConfigOf,
  decodeCoseSignatureValue,
  DEFAULT_COSE_SIGNATURES_CONFIG,
  findCoseSignature,
  type CoseSignaturesConfig,
} from "../../ledger/cose-signature.js";
import { LegacyNumberingCheck } from "../../ledger/legacy-format.js";
import {
  findSignature,
  signatureTxWritesProblem,
  type SignatureValue,
} from "../../ledger/signature.js";
import {
  recordsSnapshotEvidence,
  snapshotDigest,
  snapshotTreeValue,
} from "../../ledger/snapshot.js";
import { decodeSnapshotEntry, decryptSnapshotMaps } from "../../ledger/snapshot-format.js";
import { GOV_MAPS } from "../../gov/tables.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../kv/service-tables.js";
import { sameCertificate } from "../../crypto/certs.js";

/** Every 2^16 entries a replayed store is compacted (below the last signature). */
const COMPACT_EVERY = 1 << 16;
const NO_PAYLOAD = new Uint8Array(0);

export enum RecoveryReplayErrorCode {
  /** An entry or signature of the previous ledger does not verify. */
  InvalidLedger = "InvalidLedger",
  /** The ledger holds no signature after its start: nothing can be recovered. */
  NothingSigned = "NothingSigned",
  /** The ledger's service is not the previous identity the operator named. */
  WrongPreviousIdentity = "WrongPreviousIdentity",
  /** A private domain does not decrypt with the recovered ledger secrets. */
  CannotDecrypt = "CannotDecrypt",
}
export type RecoveryReplayErrorType = {
  code: RecoveryReplayErrorCode;
  seqno?: number;
  file?: string;
  offset?: number;
};
export class RecoveryReplayError extends CcfError<RecoveryReplayErrorType> {}

/** The snapshot a recovery starts from (usableCommittedSnapshots vouched for its receipt). */
export interface RecoverySnapshot {
  readonly seqno: Seqno;
  readonly evidenceSeqno: Seqno;
  /** The snapshot entry (private domain still encrypted). */
  readonly entryBytes: Uint8Array;
}

export interface PublicReplayInput {
  readonly ledgerDir: string;
  /** ledger.read_only_directories: older committed chunks (damaged copies count as missing). */
  readonly readOnlyDirectories?: readonly string[];
  /** PEM of the service whose ledger this is (command.recover.previous_service_identity_file). */
  readonly previousServiceCertPem: string;
  /** The recovering node's secrets: they cover new entries; old ones are not decrypted here. */
  readonly secrets: LedgerSecrets;
  readonly snapshot?: RecoverySnapshot | undefined;
  /** Threads hashing entries beside this one (replay-worker.ts); 0: hash here. */
  readonly workers?: number;
  readonly log: (line: string) => void;
  /** Called after each ledger file with the last seqno replayed and bytes read so far. */
  readonly onProgress?: (seqno: number, bytesRead: number, bytesTotal: number) => void;
}

/** Where a replay starts: seqno 0, or a snapshot's seqno, view and view history. */
export interface ReplayBase {
  readonly seqno: Seqno;
  readonly view: View;
  /** CCF's view history up to `seqno` (empty at seqno 0), which later snapshots extend. */
  readonly viewHistory: readonly Seqno[];
}

export interface PublicReplay {
  /** The public domain at `lastSignedSeqno`, compacted there. */
  readonly store: Store;
  readonly history: TxHistory;
  /** Where the replay started: the snapshot's seqno, view and view history, or 0. */
  readonly base: ReplayBase;
  /**
   * Entries base+1 .. lastSignedSeqno for the Raft log (configurations left out). Only those
   * from `payloadsFrom` on carry their payload; older ones hold an empty one, and the node
   * must compact its log's payloads below `payloadsFrom` (the ledger files serve them).
   */
  readonly entries: RaftEntry[];
  readonly payloadsFrom: Seqno;
  readonly lastSignedSeqno: Seqno;
  readonly lastView: View;
  /** The root the last signature signed (hex), recorded as previous_service_last_signed_root. */
  readonly lastSignedRoot: string;
  /** Entries after the last signature that were dropped. */
  readonly droppedEntries: number;
  /**
   * Issuer and subject of the last COSE signature kept (CCF's defaults when there is none): a
   * recovered service signs with the same cose_signatures settings, as CCF's does.
   */
  readonly coseSignatures: CoseSignaturesConfig;
}

function fail(
  code: RecoveryReplayErrorCode,
  message: string,
  at: Omit<RecoveryReplayErrorType, "code"> = {},
): never {
  throw new RecoveryReplayError({ code, ...at }, message);
}

/** The public maps of a snapshot entry, as a store at its seqno; its tree and view history. */
function snapshotPublicStore(snapshot: RecoverySnapshot): {
  store: Store;
  tree: Uint8Array;
  hashAtSnapshot: Uint8Array;
  base: ReplayBase;
} {
  const entry = decodeSnapshotEntry(snapshot.entryBytes);
  const store = Store.fromSnapshot(snapshot.seqno, entry.publicMaps, true);
  const tree = snapshotTreeValue(entry.publicMaps);
  if (tree === null) {
    fail(RecoveryReplayErrorCode.InvalidLedger, `snapshot ${snapshot.seqno} holds no Merkle tree`);
  }
  const base = { seqno: snapshot.seqno, view: entry.view, viewHistory: entry.viewHistory };
  return { store, tree, hashAtSnapshot: entry.hashAtSnapshot, base };
}

/** Issuer and subject of the last COSE signature in `store`, or CCF's defaults. */
function coseSignaturesOf(store: Store): CoseSignaturesConfig {
  const value = store.get(SERVICE_TABLES.coseSignatures, SINGLETON_KEY_BYTES);
  if (value === undefined) return DEFAULT_COSE_SIGNATURES_CONFIG;
  return coseSignaturesConfigOf(decodeCoseSignatureValue(value));
}

/** The service certificate in force in `store` (service.info), or null before genesis. */
function serviceCertOf(store: Store): string | null {
  const value = store.get(SERVICE_TABLES.serviceInfo, SINGLETON_KEY_BYTES);
  return value === undefined ? null : GOV_MAPS.serviceInfo.codec.decode(value).cert;
}

/**
 * Public replay (see the module comment). With workers, entries' hashes and leaves are computed
 * on worker threads (replay-worker.ts) while this thread decodes, checks and applies earlier
 * batches, in seqno order. Throws RecoveryReplayError.
 */
export async function replayPublic(input: PublicReplayInput): Promise<PublicReplay> {
  const replay = new PublicReplayState(input);
  await readPublic(replay, input);
  return replay.finish();
}

/** Feeds every entry of the ledger after the replay's base to `replay.take`, in seqno order. */
async function readPublic(replay: PublicReplayState, input: PublicReplayInput): Promise<void> {
  const base = replay.base;
  const workers = input.workers ?? 0;
  const pool = workers > 0 ? new ReplayPool(workers, []) : null;
  const batches = new ReplayBatches<Located & { entry: Uint8Array }>(pool, "hash", batchFailed);
  const take = (hashed: Uint8Array, done: Located & { entry: Uint8Array }) =>
    replay.take(done, hashed);
  // Progress is reported as each file has been read (its entries may still be in flight).
  let lastRead = base.seqno as number;
  try {
    for (const item of readLedger(input.ledgerDir, {
      fromSeqno: base.seqno + 1,
      readOnlyDirectories: input.readOnlyDirectories ?? [],
      onIgnoredFile: (path, reason) => input.log(`ignoring ${path}: ${reason}`),
      onProgress: (read, total) => input.onProgress?.(lastRead, read, total),
    })) {
      if (item.kind === "torn-tail") {
        input.log(`${item.file}: ignoring a torn last entry at offset ${item.offset}`);
        replay.torn = true;
        break;
      }
      lastRead = item.seqno;
      const it = { seqno: item.seqno, file: item.file, offset: item.offset, entry: item.entry };
      if (!batches.parallel) replay.take(it);
      else await batches.add(item.entry, it, take);
    }
    await batches.drain(take);
  } finally {
    await batches.close();
  }
}

/** A public replay in progress: the state it builds, entry by entry, and its checks. */
class PublicReplayState {
  readonly store: Store;
  readonly history: TxHistory;
  /** Where the replay started: the snapshot's seqno, view and view history, or 0. */
  readonly base: ReplayBase = { seqno: 0 as Seqno, view: 0 as View, viewHistory: [] };
  readonly entries: { -readonly [K in keyof RaftEntry]: RaftEntry[K] }[] = [];
  /** Invariant: entries below payloadsFrom hold NO_PAYLOAD (see `keep`). */
  private payloadsFrom: number;
  private readonly checker = new SignatureChecker();
  private readonly coseChecker = new CoseSignatureChecker();
  /** From seqno 1 only: tells a Consortia 0.1 ledger at its first signature (legacy-format.ts). */
  private readonly legacy: LegacyNumberingCheck | null;
  private lastSigned: Seqno;
  private lastView: View;
  private lastSignedRoot = "";
  /**
   * The last signature made while the previous identity was in force: a ledger that goes on
   * under a later identity holds an aborted recovery's entries, which are set aside.
   */
  private underPrevious: { seqno: Seqno; view: View; root: string };
  /** The service certificate in force, and the seqno of the service.info write it came from. */
  private serviceCert: string | null;
  private serviceCertAt: number;
  private evidenceChecked: boolean;
  /** The ledger ended in a torn entry, which was not replayed. */
  torn = false;

  constructor(private readonly input: PublicReplayInput) {
    const { snapshot } = input;
    if (snapshot === undefined) {
      this.store = new Store();
      this.history = new TxHistory(input.secrets);
    } else {
      const start = snapshotPublicStore(snapshot);
      this.store = start.store;
      this.history = TxHistory.fromSnapshot(input.secrets, {
        seqno: snapshot.seqno,
        tree: start.tree,
        hashAtSnapshot: start.hashAtSnapshot,
      });
      this.base = start.base;
    }
    // Payloads (views of the ledger files' bytes) are dropped behind a window as the replay
    // goes, so the files can be freed: a 1M-entry ledger is not held in memory twice.
    this.payloadsFrom = this.base.seqno + 1;
    this.lastSigned = this.base.seqno;
    this.lastView = this.base.view;
    this.underPrevious = { seqno: this.base.seqno, view: this.base.view, root: "" };
    this.serviceCert = serviceCertOf(this.store);
    this.serviceCertAt = this.store.lastWriteSeqno(SERVICE_TABLES.serviceInfo);
    this.evidenceChecked = snapshot === undefined;
    this.legacy = snapshot === undefined ? new LegacyNumberingCheck() : null;
  }

  /** One entry, in seqno order; `hashed`: its write set digest and leaf from a worker. */
  take(item: Located & { entry: Uint8Array }, hashed?: Uint8Array): void {
    let entry: LedgerEntry;
    try {
      entry = decodeEntry(item.entry);
    } catch (e) {
      return fail(RecoveryReplayErrorCode.InvalidLedger, `${where(item)}: ${String(e)}`, item);
    }
    const signature = findSignature(entry.publicMaps);
    if (signature !== null) this.verifySignature(item, entry, signature);
    this.keep(item, entry, signature !== null, hashed);
    if (this.legacy?.active === true) {
      this.legacy.append(this.history.leafAt(item.seqno as Seqno));
      if (signature !== null) this.legacy.done();
    }
    const { snapshot } = this.input;
    if (snapshot !== undefined && item.seqno === snapshot.evidenceSeqno) {
      checkEvidence(snapshot, entry.publicMaps, item);
      this.evidenceChecked = true;
    }
    if (signature !== null) {
      this.lastSigned = item.seqno as Seqno;
      this.lastView = entry.view;
      this.lastSignedRoot = signature.root;
      const cert = this.serviceCert;
      if (cert !== null && sameCertificate(cert, this.input.previousServiceCertPem)) {
        this.underPrevious = { seqno: this.lastSigned, view: this.lastView, root: signature.root };
      }
    }
  }

  /**
   * A signature must sign the recomputed root, with a node certificate issued by the service
   * certificate in force (service.info as replayed so far), and its COSE signature, if any, by
   * that service's key.
   */
  private verifySignature(item: Located, entry: LedgerEntry, signature: SignatureValue): void {
    const root = this.history.rootForNextSignature();
    if (this.store.lastWriteSeqno(SERVICE_TABLES.serviceInfo) !== this.serviceCertAt) {
      this.serviceCert = serviceCertOf(this.store);
      this.serviceCertAt = this.store.lastWriteSeqno(SERVICE_TABLES.serviceInfo);
    }
    if (signature.root !== toHex(root)) {
      // At the first signature, a root of Consortia 0.1's numbering names the format.
      this.legacy?.checkMismatch(fromHex(signature.root) ?? root, item.seqno, where(item));
    }
    const problem = this.signatureProblem(item, entry, signature, root);
    if (problem !== null) {
      fail(RecoveryReplayErrorCode.InvalidLedger, `${where(item)}: ${problem}`, item);
    }
  }

  private signatureProblem(
    item: Located,
    entry: LedgerEntry,
    signature: SignatureValue,
    root: Uint8Array,
  ): string | null {
    if (signature.root !== toHex(root)) {
      return `signed root ${signature.root} is not the ledger's root ${toHex(root)}`;
    }
    const serviceCertPem = this.serviceCert;
    if (serviceCertPem === null) return "a signature before the service was created";
    const txId = { view: entry.view, seqno: item.seqno as Seqno };
    // Its own writes are covered only by the next root: at the last signature, by none.
    const writes = signatureTxWritesProblem(entry, entry.privateCiphertext.byteLength);
    if (writes !== null) return writes;
    const problem = this.checker.check(signature, txId, root, serviceCertPem);
    if (problem !== null) return problem;
    let cose: Uint8Array | null;
    try {
      cose = findCoseSignature(entry.publicMaps);
    } catch (err: unknown) {
      if (!(err instanceof CoseSignatureError)) throw err;
      return err.message;
    }
    return cose === null ? null : this.coseChecker.check(cose, { serviceCertPem, root, txId });
  }

  /** Records a verified entry in the history, the store and the Raft entries. */
  private keep(
    item: Located & { entry: Uint8Array },
    entry: LedgerEntry,
    isSignature: boolean,
    hashed: Uint8Array | undefined,
  ): void {
    const { history, store, entries } = this;
    if (hashed === undefined) history.appendEntry(item.entry, entry);
    else history.appendHashed(entry, hashed.subarray(0, 32), hashed.subarray(32, 64));
    store.apply(item.seqno as Seqno, { maps: entry.publicMaps });
    entries.push({
      seqno: item.seqno as Seqno,
      view: entry.view,
      isSignature,
      payload: item.entry,
    });
    if (entries.length > PAYLOAD_WINDOW) {
      entries[this.payloadsFrom - this.base.seqno - 1]!.payload = NO_PAYLOAD;
      this.payloadsFrom++;
    }
    // Nothing is rolled back below the last signature: its undo records can go.
    if (item.seqno % COMPACT_EVERY === 0 && this.lastSigned > store.compactedSeqno) {
      store.compact(this.lastSigned);
    }
  }

  /** After the last entry: the checks on the whole ledger, and the state at its last signature. */
  finish(): PublicReplay {
    const { input, store, base } = this;
    const { snapshot } = input;
    const last = store.seqno;
    this.setAsideLaterIdentity(last);
    if (this.lastSigned === base.seqno && snapshot === undefined) {
      fail(RecoveryReplayErrorCode.NothingSigned, `${input.ledgerDir} holds no signed transaction`);
    }
    if (
      !this.evidenceChecked &&
      snapshot !== undefined &&
      snapshot.evidenceSeqno <= this.lastSigned
    ) {
      fail(RecoveryReplayErrorCode.InvalidLedger, `snapshot ${snapshot.seqno}: no evidence found`);
    }
    const lastSigned = this.lastSigned;
    // Drop what no signature covers (the old service cannot have committed it).
    if (last > lastSigned) {
      store.rollback(lastSigned);
      this.history.retract(lastSigned);
      this.entries.length = lastSigned - base.seqno;
      input.log(`dropping ${last - lastSigned} entries after the last signature ${lastSigned}`);
    }
    store.compact(lastSigned);
    const keptCert = serviceCertOf(store);
    if (keptCert === null || !sameCertificate(keptCert, input.previousServiceCertPem)) {
      fail(
        RecoveryReplayErrorCode.WrongPreviousIdentity,
        "the ledger's service certificate is not the previous service identity given " +
          "(command.recover.previous_service_identity_file)",
      );
    }
    return {
      store,
      history: this.history,
      base,
      entries: this.entries,
      payloadsFrom: Math.min(this.payloadsFrom, lastSigned + 1) as Seqno,
      lastSignedSeqno: lastSigned,
      lastView: this.lastView,
      lastSignedRoot: this.lastSignedRoot,
      droppedEntries: last - lastSigned + (this.torn ? 1 : 0),
      coseSignatures: coseSignaturesOf(store),
    };
  }

  /**
   * When the ledger goes on under a later service identity than the previous one (an aborted
   * recovery's entries), the recovery point moves back to the last signature made under it.
   */
  private setAsideLaterIdentity(last: Seqno): void {
    const { underPrevious, input } = this;
    const finalCert = serviceCertOf(this.store);
    if (
      underPrevious.seqno > this.base.seqno &&
      underPrevious.seqno < this.lastSigned &&
      finalCert !== null &&
      !sameCertificate(finalCert, input.previousServiceCertPem)
    ) {
      input.log(
        `setting aside entries ${underPrevious.seqno + 1}..${last}: they were written under a ` +
          "later service identity (an aborted recovery)",
      );
      this.lastSigned = underPrevious.seqno;
      this.lastView = underPrevious.view;
      this.lastSignedRoot = underPrevious.root;
    }
  }
}

/**
 * Before a recovered node appends at `seqno` + 1: ledger files wholly after `seqno` (an aborted
 * recovery's, or an unsigned suffix) are renamed `*.ignored`, and a committed file reaching past
 * it loses its `.committed` suffix so the writer can truncate it (CCF issue #1652).
 */
export function setAsideLedgerAfter(dir: string, seqno: number, log: (line: string) => void) {
  for (const file of listLedgerFiles(dir)) {
    if (file.firstSeqno > seqno) {
      renameSync(file.path, `${file.path}.ignored`);
      log(`${file.name}: set aside as ${file.name}.ignored (after the recovery point ${seqno})`);
    } else if (file.committed && file.lastSeqno !== null && file.lastSeqno > seqno) {
      const uncommitted = file.path.replace(/\.committed$/, "");
      renameSync(file.path, uncommitted);
      log(`${file.name}: reaches past the recovery point ${seqno}; truncated there`);
    }
  }
}

function where(at: { seqno: number; file: string; offset: number }): string {
  return `${at.file} at offset ${at.offset} (seqno ${at.seqno})`;
}

/** The snapshot's evidence entry must name the snapshot's digest. */
function checkEvidence(
  snapshot: RecoverySnapshot,
  maps: readonly MapWrites[],
  at: { seqno: number; file: string; offset: number },
): void {
  const hash = toHex(snapshotDigest(snapshot.entryBytes));
  if (!recordsSnapshotEvidence(maps, hash, snapshot.seqno)) {
    fail(
      RecoveryReplayErrorCode.InvalidLedger,
      `${where(at)}: the evidence does not match snapshot ${snapshot.seqno} (digest ${hash})`,
      at,
    );
  }
}

export interface PrivateReplayInput {
  readonly ledgerDir: string;
  readonly readOnlyDirectories?: readonly string[];
  /** The previous service's secrets, restored from the members' shares. */
  readonly secrets: LedgerSecrets;
  readonly snapshot?: RecoverySnapshot | undefined;
  /** The recovery point: the last seqno replayed publicly. */
  readonly upTo: Seqno;
  /** Threads decrypting beside this one (replay-worker.ts); 0: decrypt here. */
  readonly workers?: number;
  readonly onProgress?: (seqno: number, bytesRead: number, bytesTotal: number) => void;
}

/**
 * Private replay: the private domain from the snapshot (if any) through `upTo`, as a store of
 * private maps only. With workers, batches of entries are decrypted on worker threads while
 * this thread decodes and applies the previous batches, in seqno order. Throws
 * RecoveryReplayError(CannotDecrypt) naming the first entry whose private domain does not
 * decrypt.
 */
export async function replayPrivate(input: PrivateReplayInput): Promise<Store> {
  const store = privateSnapshotStore(input);
  const workers = input.workers ?? 0;
  const pool = workers > 0 ? new ReplayPool(workers, input.secrets.list()) : null;
  const batches = new ReplayBatches<Located>(pool, "decrypt", batchFailed);
  // Nothing rolls this store back, and each plaintext is a fresh buffer (a worker's batch, or
  // the inline decryption's): its maps are adopted, final at once.
  const take = (plaintext: Uint8Array, at: Located) => {
    store.applyFinal(at.seqno as Seqno, { maps: decodeMaps(plaintext) });
  };
  let lastRead = store.seqno as number;
  try {
    for (const item of readLedger(input.ledgerDir, {
      fromSeqno: store.seqno + 1,
      readOnlyDirectories: input.readOnlyDirectories ?? [],
      onProgress: (read, total) => input.onProgress?.(Math.min(lastRead, input.upTo), read, total),
    })) {
      if (item.kind !== "entry" || item.seqno > input.upTo) break;
      lastRead = item.seqno;
      const at = { seqno: item.seqno, file: item.file, offset: item.offset };
      if (!batches.parallel) take(decryptInline(item.entry, at, input.secrets), at);
      else await batches.add(item.entry, at, take);
    }
    await batches.drain(take);
  } finally {
    await batches.close();
  }
  if (store.seqno !== input.upTo) {
    fail(
      RecoveryReplayErrorCode.InvalidLedger,
      `the ledger ends at ${store.seqno}, before the recovery point ${input.upTo}`,
    );
  }
  store.compact(store.seqno);
  return store;
}

/** The private maps of the snapshot a replay starts from, or an empty store. */
function privateSnapshotStore(input: PrivateReplayInput): Store {
  const { snapshot } = input;
  if (snapshot === undefined) return new Store();
  const maps = decryptSnapshotMaps(decodeSnapshotEntry(snapshot.entryBytes), input.secrets);
  if (maps === null) {
    fail(RecoveryReplayErrorCode.CannotDecrypt, `snapshot ${snapshot.seqno} does not decrypt`, {
      seqno: snapshot.seqno,
    });
  }
  return Store.fromSnapshot(snapshot.seqno, maps, true);
}

function cannotDecrypt(at: Located, why: string): never {
  return fail(RecoveryReplayErrorCode.CannotDecrypt, `${where(at)}: ${why}`, at);
}

/** An entry a replay worker could not hash or decrypt. */
function batchFailed(at: Located, error: string, undecryptable: boolean): never {
  if (undecryptable) cannotDecrypt(at, error);
  return fail(RecoveryReplayErrorCode.InvalidLedger, `${where(at)}: ${error}`, at);
}

function decryptInline(bytes: Uint8Array, at: Located, secrets: LedgerSecrets): Uint8Array {
  let decrypted;
  try {
    decrypted = decryptPrivateDomain(bytes, secrets);
  } catch (e) {
    return fail(RecoveryReplayErrorCode.InvalidLedger, `${where(at)}: ${String(e)}`, at);
  }
  if (decrypted.plaintext === null) {
    cannotDecrypt(at, "the private domain does not decrypt with the recovered ledger secrets");
  }
  return decrypted.plaintext;
}
