/**
 * Disaster recovery, the ledger side (ccf-api.md 8; issue #5). A node started with command
 * Recover reads the previous service's ledger (after its newest usable committed snapshot, if
 * any) in two passes:
 *
 * 1. Public replay (`replayPublic`), before any member has helped: every entry's framing is
 *    checked by the reader, its leaf goes into a fresh Merkle tree, and every signature must sign
 *    the recomputed root with a node certificate issued by the service certificate in force at
 *    that point (service.info in the replayed state, so a ledger that went through earlier
 *    recoveries verifies across them). The public write sets build the store. The replay stops
 *    at the last signature that verifies: an unsigned suffix or a torn last entry is dropped (the
 *    old service never committed them), while an entry or signature that does not verify is an
 *    error naming its file, offset and seqno. The final service certificate must be the one the
 *    operator named as the previous identity.
 * 2. Private replay (`replayPrivate`), once the members' shares have rebuilt the ledger secrets:
 *    the private domain of the snapshot and of every entry up to the recovery point, decrypted
 *    with the secret in force at its seqno, into a separate store that the node installs whole
 *    (Store.installRecovered).
 *
 * No consensus here: the caller turns the result into its Raft log and pipeline.
 */
import { toHex, fromUtf8 } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";
import type { Seqno, View } from "../base/ids.js";
import type { RaftEntry } from "../consensus/types.js";
import { Store } from "../kv/store.js";
import type { MapWrites } from "../kv/write-set.js";
import { decodeEntry, decryptPrivateMaps, type LedgerEntry } from "../ledger/entry-format.js";
import { TxHistory } from "../ledger/history.js";
import type { LedgerSecrets } from "../ledger/ledger-secrets.js";
import { listLedgerFiles, readLedger } from "../ledger/io/ledger-reader.js";
import { renameSync } from "node:fs";
import { SignatureChecker } from "../ledger/ledger-verifier.js";
import { findSignature } from "../ledger/signature.js";
import { snapshotDigest, SNAPSHOT_EVIDENCE_MAP, SNAPSHOT_TREE_MAP } from "../ledger/snapshot.js";
import { GOV_MAPS, GOV_TABLES } from "../gov/tables.js";
import { SINGLETON_KEY_BYTES } from "../kv/service-tables.js";
import { sameCertificate } from "../crypto/certs.js";

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
  readonly view: View;
  readonly evidenceSeqno: Seqno;
  /** The snapshot entry (private domain still encrypted). */
  readonly entryBytes: Uint8Array;
}

export interface PublicReplayInput {
  readonly ledgerDir: string;
  /** PEM of the service whose ledger this is (command.recover.previous_service_identity_file). */
  readonly previousServiceCertPem: string;
  /** The recovering node's secrets: they cover new entries; old ones are not decrypted here. */
  readonly secrets: LedgerSecrets;
  readonly snapshot?: RecoverySnapshot | undefined;
  readonly log: (line: string) => void;
  /** Called after each ledger file with the last seqno replayed and bytes read so far. */
  readonly onProgress?: (seqno: number, bytesRead: number, bytesTotal: number) => void;
}

export interface PublicReplay {
  /** The public domain at `lastSignedSeqno`, compacted there. */
  readonly store: Store;
  readonly history: TxHistory;
  /** Where the replay started: the snapshot's seqno and view, or 0. */
  readonly base: { readonly seqno: Seqno; readonly view: View };
  /** Entries base+1 .. lastSignedSeqno for the Raft log (configurations left out). */
  readonly entries: RaftEntry[];
  readonly lastSignedSeqno: Seqno;
  readonly lastView: View;
  /** The root the last signature signed (hex), recorded as previous_service_last_signed_root. */
  readonly lastSignedRoot: string;
  /** Entries after the last signature that were dropped. */
  readonly droppedEntries: number;
}

function fail(
  code: RecoveryReplayErrorCode,
  message: string,
  at: Omit<RecoveryReplayErrorType, "code"> = {},
): never {
  throw new RecoveryReplayError({ code, ...at }, message);
}

/** The public maps of a snapshot entry, as a store at its seqno. */
function snapshotPublicStore(snapshot: RecoverySnapshot): { store: Store; frontier: Uint8Array } {
  const entry = decodeEntry(snapshot.entryBytes, "snapshot");
  const store = Store.fromSnapshot(snapshot.seqno, { maps: entry.publicMaps });
  const frontier = store.get(SNAPSHOT_TREE_MAP, SINGLETON_KEY_BYTES);
  if (frontier === undefined) {
    fail(RecoveryReplayErrorCode.InvalidLedger, `snapshot ${snapshot.seqno} holds no Merkle tree`);
  }
  return { store, frontier };
}

/** The service certificate in force in `store` (service.info), or null before genesis. */
function serviceCertOf(store: Store): string | null {
  const value = store.get(GOV_TABLES.serviceInfo, SINGLETON_KEY_BYTES);
  return value === undefined ? null : GOV_MAPS.serviceInfo.codec.decode(value).cert;
}

/** Public replay (see the module comment). Throws RecoveryReplayError. */
export function replayPublic(input: PublicReplayInput): PublicReplay {
  const { snapshot } = input;
  let store: Store;
  let history: TxHistory;
  if (snapshot === undefined) {
    store = new Store();
    history = new TxHistory(input.secrets);
  } else {
    const start = snapshotPublicStore(snapshot);
    store = start.store;
    history = TxHistory.fromSnapshot(input.secrets, {
      seqno: snapshot.seqno,
      frontier: start.frontier,
    });
  }
  const base = { seqno: (snapshot?.seqno ?? 0) as Seqno, view: (snapshot?.view ?? 0) as View };
  const entries: RaftEntry[] = [];
  const checker = new SignatureChecker();
  let lastSigned = base.seqno;
  let lastView = base.view;
  let lastSignedRoot = "";
  // The last signature made while the previous identity was in force: a ledger that goes on
  // under a later identity holds an aborted recovery's entries, which are set aside.
  let underPrevious = { seqno: base.seqno, view: base.view, root: "" };
  let serviceCert = serviceCertOf(store);
  let serviceCertAt = store.lastWriteSeqno(GOV_TABLES.serviceInfo);
  let evidenceChecked = snapshot === undefined;
  let torn = false;
  for (const item of readLedger(input.ledgerDir, {
    fromSeqno: base.seqno + 1,
    onProgress: (read, total) => input.onProgress?.(store.seqno, read, total),
  })) {
    if (item.kind === "torn-tail") {
      input.log(`${item.file}: ignoring a torn last entry at offset ${item.offset}`);
      torn = true;
      break;
    }
    const at = { seqno: item.seqno, file: item.file, offset: item.offset };
    let entry: LedgerEntry;
    try {
      entry = decodeEntry(item.entry);
    } catch (e) {
      return fail(RecoveryReplayErrorCode.InvalidLedger, `${where(at)}: ${String(e)}`, at);
    }
    const signature = findSignature(entry.publicMaps);
    if (signature !== null) {
      const root = history.rootForNextSignature();
      if (store.lastWriteSeqno(GOV_TABLES.serviceInfo) !== serviceCertAt) {
        serviceCert = serviceCertOf(store);
        serviceCertAt = store.lastWriteSeqno(GOV_TABLES.serviceInfo);
      }
      const problem =
        signature.root !== toHex(root)
          ? `signed root ${signature.root} is not the ledger's root ${toHex(root)}`
          : serviceCert === null
            ? "a signature before the service was created"
            : checker.check(
                signature,
                { view: entry.view, seqno: item.seqno as Seqno },
                root,
                serviceCert,
              );
      if (problem !== null) {
        fail(RecoveryReplayErrorCode.InvalidLedger, `${where(at)}: ${problem}`, at);
      }
    }
    history.appendEntry(item.entry, entry);
    store.apply(item.seqno as Seqno, { maps: entry.publicMaps });
    entries.push({
      seqno: item.seqno as Seqno,
      view: entry.view,
      isSignature: signature !== null,
      payload: item.entry,
    });
    if (snapshot !== undefined && item.seqno === snapshot.evidenceSeqno) {
      checkEvidence(snapshot, entry.publicMaps, at);
      evidenceChecked = true;
    }
    if (signature !== null) {
      lastSigned = item.seqno as Seqno;
      lastView = entry.view;
      lastSignedRoot = signature.root;
      if (serviceCert !== null && sameCertificate(serviceCert, input.previousServiceCertPem)) {
        underPrevious = { seqno: lastSigned, view: lastView, root: signature.root };
      }
    }
  }
  const last = store.seqno;
  const finalCert = serviceCertOf(store);
  if (
    underPrevious.seqno > base.seqno &&
    underPrevious.seqno < lastSigned &&
    finalCert !== null &&
    !sameCertificate(finalCert, input.previousServiceCertPem)
  ) {
    input.log(
      `setting aside entries ${underPrevious.seqno + 1}..${last}: they were written under a ` +
        "later service identity (an aborted recovery)",
    );
    lastSigned = underPrevious.seqno;
    lastView = underPrevious.view;
    lastSignedRoot = underPrevious.root;
  }
  if (lastSigned === base.seqno && snapshot === undefined) {
    fail(RecoveryReplayErrorCode.NothingSigned, `${input.ledgerDir} holds no signed transaction`);
  }
  if (!evidenceChecked && snapshot !== undefined && snapshot.evidenceSeqno <= lastSigned) {
    fail(RecoveryReplayErrorCode.InvalidLedger, `snapshot ${snapshot.seqno}: no evidence found`);
  }
  // Drop what no signature covers (the old service cannot have committed it).
  if (last > lastSigned) {
    store.rollback(lastSigned);
    history.retract(lastSigned);
    entries.length = lastSigned - base.seqno;
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
    history,
    base,
    entries,
    lastSignedSeqno: lastSigned,
    lastView,
    lastSignedRoot,
    droppedEntries: last - lastSigned + (torn ? 1 : 0),
  };
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
  const value = maps.find((m) => m.name === SNAPSHOT_EVIDENCE_MAP)?.writes[0]?.value;
  const evidence =
    value == null ? null : (JSON.parse(fromUtf8(value)) as { hash?: unknown; version?: unknown });
  const hash = toHex(snapshotDigest(snapshot.entryBytes));
  if (evidence?.hash !== hash || evidence.version !== snapshot.seqno) {
    fail(
      RecoveryReplayErrorCode.InvalidLedger,
      `${where(at)}: the evidence does not match snapshot ${snapshot.seqno} (digest ${hash})`,
      at,
    );
  }
}

export interface PrivateReplayInput {
  readonly ledgerDir: string;
  /** The previous service's secrets, restored from the members' shares. */
  readonly secrets: LedgerSecrets;
  readonly snapshot?: RecoverySnapshot | undefined;
  /** The recovery point: the last seqno replayed publicly. */
  readonly upTo: Seqno;
  readonly onProgress?: (seqno: number, bytesRead: number, bytesTotal: number) => void;
}

/** Every 2^16 entries the private store is compacted (it needs no undo records). */
const COMPACT_EVERY = 1 << 16;

/**
 * Private replay: the private domain from the snapshot (if any) through `upTo`, as a store of
 * private maps only. Throws RecoveryReplayError(CannotDecrypt) naming the first entry whose
 * private domain does not decrypt.
 */
export function replayPrivate(input: PrivateReplayInput): Store {
  const { snapshot } = input;
  let store: Store;
  if (snapshot === undefined) {
    store = new Store();
  } else {
    const entry = decodeEntry(snapshot.entryBytes, "snapshot");
    const maps = decryptPrivateMaps(entry, input.secrets);
    if (maps === null) {
      fail(RecoveryReplayErrorCode.CannotDecrypt, `snapshot ${snapshot.seqno} does not decrypt`, {
        seqno: snapshot.seqno,
      });
    }
    store = Store.fromSnapshot(snapshot.seqno, { maps });
  }
  for (const item of readLedger(input.ledgerDir, {
    fromSeqno: store.seqno + 1,
    onProgress: (read, total) => input.onProgress?.(store.seqno, read, total),
  })) {
    if (item.kind !== "entry" || item.seqno > input.upTo) break;
    const at = { seqno: item.seqno, file: item.file, offset: item.offset };
    const maps = decryptPrivateMaps(decodeEntry(item.entry), input.secrets);
    if (maps === null) {
      fail(
        RecoveryReplayErrorCode.CannotDecrypt,
        `${where(at)}: the private domain does not decrypt with the recovered ledger secrets`,
        at,
      );
    }
    store.apply(item.seqno as Seqno, { maps });
    if (item.seqno % COMPACT_EVERY === 0) store.compact(item.seqno as Seqno);
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
