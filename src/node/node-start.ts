/**
 * What a node starts from, by boot path, and the state that follows from it: a new service
 * (empty store, primary of view 2), a joiner (empty, or at the seqno of its snapshot, following),
 * or a recovery (the previous service's public replay, primary in a view after every old one).
 */
import { assert } from "../base/assert.js";
import type { NodeId, Seqno } from "../base/ids.js";
import type { View } from "../base/ids.js";
import type { LogBase } from "../consensus/raft-log.js";
import type { RaftEntry } from "../consensus/types.js";
import { Store } from "../kv/store.js";
import { TxHistory } from "../ledger/history.js";
import type { LedgerSecrets } from "../ledger/ledger-secrets.js";
import { snapshotTreeValue } from "../ledger/snapshot.js";
import type { JoinedNode } from "./join/join-boot.js";
import type { RecoveredNode } from "./recovery/recovery-boot.js";
import { trustedNodeIds } from "./replication/nodes-table.js";
import { StartupError, StartupErrorCode } from "./startup/startup-checks.js";
import type { NodeIdentity } from "./startup/node-identity.js";

/** The first service view is 2 (CCF's first primary is elected into view 2). */
export const START_VIEW = 2 as View;

export type NodeStart =
  | {
      readonly kind: "new-service";
      readonly identity: NodeIdentity;
      readonly secrets: LedgerSecrets;
    }
  | { readonly kind: "join"; readonly joined: JoinedNode }
  | { readonly kind: "recover"; readonly recovered: RecoveredNode };

/** The state a node's parts are built from. */
export interface StartingState {
  readonly identity: NodeIdentity;
  readonly secrets: LedgerSecrets;
  readonly store: Store;
  readonly history: TxHistory;
  /** The view the pipeline starts in. */
  readonly startView: View;
  /** The seqno of the snapshot or replay base the node started from (0: from the beginning). */
  readonly startupSeqno: Seqno;
  /** The first seqno the ledger writer appends, or undefined: wherever its files end. */
  readonly ledgerStartSeqno: Seqno | undefined;
  /** The Raft log's start: its base, entries already held, and the node's first role. */
  readonly raft: {
    readonly base: LogBase;
    readonly entries?: readonly RaftEntry[];
    readonly commitSeqno?: Seqno;
    readonly view: View;
    readonly startAsLeader: boolean;
  };
  /** A joiner's snapshot, until its evidence transaction confirms it. */
  readonly snapshotToConfirm: { seqno: Seqno; evidenceSeqno: Seqno; entryBytes: Uint8Array } | null;
}

const NOTHING = { seqno: 0 as Seqno, view: 0 as View, configuration: [] };

export function startingState(start: NodeStart, ledgerHasFiles: boolean): StartingState {
  switch (start.kind) {
    case "new-service":
      return {
        identity: start.identity,
        secrets: start.secrets,
        store: new Store(),
        history: new TxHistory(start.secrets),
        startView: START_VIEW,
        startupSeqno: 0 as Seqno,
        ledgerStartSeqno: 1 as Seqno,
        raft: { base: NOTHING, view: START_VIEW, startAsLeader: true },
        snapshotToConfirm: null,
      };
    case "join":
      return joinerState(start.joined);
    case "recover":
      return recoveredState(start.recovered, ledgerHasFiles);
  }
}

function joinerState(joined: JoinedNode): StartingState {
  const { identity, secrets, snapshot } = joined;
  const common = { identity, secrets, snapshotToConfirm: null };
  if (snapshot === undefined) {
    return {
      ...common,
      store: new Store(),
      history: new TxHistory(secrets),
      startView: START_VIEW,
      startupSeqno: 0 as Seqno,
      ledgerStartSeqno: 1 as Seqno,
      raft: { base: NOTHING, view: 0 as View, startAsLeader: false },
    };
  }
  const tree = snapshotTreeValue(snapshot.maps);
  if (tree === null) {
    throw new StartupError(
      { code: StartupErrorCode.UnusableSnapshot },
      `snapshot ${snapshot.seqno} holds no Merkle tree state`,
    );
  }
  // A node joining from a snapshot starts its store, history and ledger at its seqno.
  const store = Store.fromSnapshot(snapshot.seqno, snapshot.maps, true);
  const evidenceSeqno = joined.snapshotEvidenceSeqno;
  return {
    ...common,
    store,
    history: TxHistory.fromSnapshot(secrets, {
      seqno: snapshot.seqno,
      tree,
      hashAtSnapshot: snapshot.hashAtSnapshot,
    }),
    startView: snapshot.view,
    startupSeqno: snapshot.seqno,
    ledgerStartSeqno: (snapshot.seqno + 1) as Seqno,
    raft: {
      base: {
        seqno: snapshot.seqno,
        view: snapshot.view,
        configuration: trustedNodeIds(store),
        viewHistory: snapshot.viewHistory,
      },
      view: snapshot.view,
      startAsLeader: false,
    },
    snapshotToConfirm:
      evidenceSeqno === undefined
        ? null
        : { seqno: snapshot.seqno, evidenceSeqno, entryBytes: snapshot.entryBytes },
  };
}

/**
 * A recovered service continues the replayed store, history and Raft log (which keeps the old
 * entries, committed, but not their configurations: the recovering node alone is the new
 * service's first configuration), in a view after every view of the previous service. Its ledger
 * starts wherever its files say, or after the recovery point when they are all in read-only
 * directories.
 */
function recoveredState(recovered: RecoveredNode, ledgerHasFiles: boolean): StartingState {
  const { identity, secrets, replay } = recovered;
  const view = Math.max(START_VIEW, replay.lastView + 1) as View;
  assert(replay.lastSignedSeqno >= replay.base.seqno, "a replay ends at or after its base");
  return {
    identity,
    secrets,
    store: replay.store,
    history: replay.history,
    startView: view,
    startupSeqno: replay.base.seqno,
    ledgerStartSeqno: ledgerHasFiles ? undefined : ((replay.lastSignedSeqno + 1) as Seqno),
    raft: {
      base: { ...replay.base, configuration: [identity.signing.nodeId] },
      entries: replay.entries,
      commitSeqno: replay.lastSignedSeqno,
      view,
      startAsLeader: true,
    },
    snapshotToConfirm: null,
  };
}
