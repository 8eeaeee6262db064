/**
 * The safety invariants of the consensus simulation (reliability-checklist.md §1, items A1 and
 * A3), checked incrementally as hosts apply Ready batches, plus a periodic full scan.
 *
 * Owns: the global record of what any node ever committed (seqno -> view and payload hash),
 * the leader of every view, the nodes removed by a committed configuration, and every status
 * a client saw for its transactions.
 * Checks:
 * - MoreThanOneLeaderInv: at most one leader per view, ever.
 * - SignatureInv: a node's commit is a signature in its log; CommittedLogAppendOnly: it never
 *   decreases and no rollback goes below it.
 * - LogInv: every node's committed prefix equals the global committed prefix.
 * - MonoLogInv: views never decrease along a log and rise only just after a signature.
 * - LeaderCompletenessInv: a new leader's log holds the global committed prefix.
 * - NeverCommitEntryPrevTermsProp: a leader commits only signatures of its own view.
 * - Merkle roots agree at every signature (checked by the host, reported here).
 * - E5: no committed configuration re-adds a removed node; a node that knows it is retired
 *   never campaigns.
 * - A3: a transaction a client saw Committed is never reported Invalid (and vice versa), and a
 *   node's Committed/Invalid answer for a transaction never changes.
 */
import type { NodeId, RaftEntry, Role, TxStatus, View } from "../consensus/types.js";
import { sha256Into } from "../crypto/sha256-js.js";

/** A broken invariant; the message names the seed, the step and what broke. */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the checker reads of a simulated host. */
export interface CheckedHost {
  readonly id: NodeId;
  /** The host log; entry i has seqno i + 1. */
  readonly log: readonly RaftEntry[];
  /** sha256 of each log entry's payload, as the host computed it on append. */
  readonly leaves: readonly Uint8Array[];
  /** The last commit the host applied. */
  readonly commit: number;
}

interface CommittedEntry {
  readonly view: View;
  readonly leaf: Uint8Array;
}

export interface Removal {
  readonly seqno: number;
  readonly members: readonly NodeId[];
}

interface CheckedRange {
  readonly from: number;
  readonly to: number;
  readonly invariant: string;
  readonly rehash: boolean;
}

/**
 * Two 32-byte leaf hashes are equal: the same array, or the same bytes. A plain loop, since
 * the checker compares a leaf per committed entry per host (equalBytes wraps both in Buffers).
 */
function sameLeaf(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface ClientTx {
  readonly view: number;
  readonly seqno: number;
}

export class InvariantChecker {
  // Invariant: committed[s - 1] is what every node that committed seqno s holds there.
  private readonly committed: CommittedEntry[] = [];
  private readonly leaders = new Map<number, NodeId>();
  private committedConfig: readonly NodeId[];
  // Invariant: every node removed from a committed configuration; it never returns (E5).
  readonly retired = new Set<NodeId>();
  /** For each retired node, the committed configuration that removed it and its seqno. */
  readonly removals = new Map<NodeId, Removal>();
  /** Client transactions, in submission order. */
  readonly clientTxs: ClientTx[] = [];
  // Invariant: the final status any node reported for clientTxs[i], if any.
  private readonly finalStatus = new Map<number, TxStatus>();
  // Invariant: per node, the final status it reported for clientTxs[i], if any.
  private readonly nodeFinalStatus = new Map<NodeId, Map<number, TxStatus>>();
  /** Where scans hash a payload again (sha256-js: small inputs, no allocation). */
  private readonly scratchLeaf = new Uint8Array(32);
  // Invariant: the seqno each host's next rolling scan starts at (scanSome).
  private readonly scanCursor = new Map<NodeId, number>();
  checks = 0;
  /** Leaderships won by a node after its removal committed somewhere (see onRoleChange). */
  retiredLeaderships = 0;

  constructor(
    private readonly where: () => string,
    initialConfig: readonly NodeId[],
  ) {
    this.committedConfig = initialConfig;
  }

  get globalCommit(): number {
    return this.committed.length;
  }

  fail(invariant: string, message: string): never {
    throw new InvariantViolation(invariant, `${invariant} violated at ${this.where()}: ${message}`);
  }

  /** Before a host truncates its log to `seqno`. */
  onRollback(host: CheckedHost, seqno: number): void {
    if (seqno < host.commit) {
      this.fail("CommittedLogAppendOnly", `${host.id} rolls back to ${seqno} < ${host.commit}`);
    }
  }

  /** Before a host appends `entry` after its current log. */
  onAppend(host: CheckedHost, entry: RaftEntry): void {
    const prev = host.log.at(-1);
    if (entry.seqno !== host.log.length + 1) {
      this.fail("LogContiguity", `${host.id} appends ${entry.seqno} after ${host.log.length}`);
    }
    if (prev !== undefined && entry.view < prev.view) {
      this.fail(
        "MonoLogInv",
        `${host.id}: view ${entry.view} at ${entry.seqno} after ${prev.view}`,
      );
    }
    if (prev !== undefined && entry.view > prev.view && !prev.isSignature) {
      this.fail("MonoLogInv", `${host.id}: view rises at ${entry.seqno} after a non-signature`);
    }
  }

  /** A host applied commit `seqno` (from `host.commit`); `leaderView` if it leads. */
  onCommit(host: CheckedHost, seqno: number, leaderView: number | null): void {
    this.checks++;
    if (seqno < host.commit) {
      this.fail("MonotonicCommitIndex", `${host.id}: commit ${seqno} < ${host.commit}`);
    }
    if (seqno > host.log.length) {
      this.fail("SignatureInv", `${host.id}: commit ${seqno} beyond log ${host.log.length}`);
    }
    const entry = host.log[seqno - 1];
    if (seqno > 0 && entry?.isSignature !== true) {
      this.fail("SignatureInv", `${host.id}: commit ${seqno} is not a signature`);
    }
    if (leaderView !== null && seqno > 0 && entry!.view !== leaderView) {
      this.fail(
        "NeverCommitEntryPrevTermsProp",
        `leader ${host.id} in view ${leaderView} commits ${seqno} of view ${entry!.view}`,
      );
    }
    for (let s = host.commit + 1; s <= seqno; s++) this.checkCommitted(host, s);
  }

  private checkCommitted(host: CheckedHost, s: number): void {
    const entry = host.log[s - 1]!;
    const leaf = host.leaves[s - 1]!;
    const known = this.committed[s - 1];
    if (known === undefined) {
      this.committed.push({ view: entry.view, leaf });
      if (entry.configuration !== undefined) this.onCommittedConfig(entry.configuration, s);
      return;
    }
    if (known.view !== entry.view || !sameLeaf(known.leaf, leaf)) {
      this.fail(
        "LogInv",
        `${host.id} commits ${entry.view}.${s} but ${known.view}.${s} was committed elsewhere`,
      );
    }
  }

  private onCommittedConfig(nodes: readonly NodeId[], seqno: number): void {
    for (const id of nodes) {
      if (this.retired.has(id)) this.fail("E5", `configuration at ${seqno} re-adds ${id}`);
    }
    for (const id of this.committedConfig) {
      if (nodes.includes(id)) continue;
      this.retired.add(id);
      this.removals.set(id, { seqno, members: nodes });
    }
    this.committedConfig = nodes;
  }

  /** A leader host is about to append a configuration (E5: removed identities never return). */
  onPropose(configuration: readonly NodeId[]): void {
    for (const id of configuration) {
      if (this.retired.has(id)) this.fail("E5", `a leader proposes removed ${id} again`);
    }
  }

  /** A host applied a role change of its node. */
  onRoleChange(host: CheckedHost, role: Role, view: number, retired: boolean): void {
    if (role !== "Candidate" && role !== "Leader" && role !== "PreVoteCandidate") return;
    if (retired) this.fail("RetiredStopsCampaigning", `retired ${host.id} becomes ${role}`);
    if (role !== "Leader") return;
    const known = this.leaders.get(view);
    if (known !== undefined && known !== host.id) {
      this.fail("MoreThanOneLeaderInv", `${host.id} and ${known} both lead view ${view}`);
    }
    this.leaders.set(view, host.id);
    // Not a violation: a node whose removal committed on a leader that then crashed, before
    // any other node learned of that commit, may still win (its log is up to date and no
    // voter knows). Once it commits its removal it retires and hands over (checked above).
    if (this.retired.has(host.id)) this.retiredLeaderships++;
    // The host's own committed prefix matched the global one when it committed it (onCommit),
    // and the scans catch any later change, so only the entries after it need checking.
    const upTo = this.committed.length;
    if (host.log.length < upTo) {
      this.fail("LeaderCompletenessInv", `${host.id} holds ${host.log.length} < committed ${upTo}`);
    }
    const range = { from: host.commit + 1, to: upTo, rehash: false };
    this.checkRange(host, { ...range, invariant: "LeaderCompletenessInv" });
  }

  /**
   * Full scan: the host's committed prefix matches the global record, every payload hashed
   * again (so an entry changed in place after its checks is caught), and views never decrease
   * along the whole log.
   */
  scan(host: CheckedHost): void {
    this.checkPrefix(host, host.commit, "LogInv", true);
    this.checkViews(host, 1, host.log.length);
    this.scanCursor.set(host.id, 1);
  }

  /**
   * Rolling scan: the next `count` entries of the host's committed prefix after where its last
   * scan stopped (wrapping to seqno 1), hashed again and checked as `scan` does, so successive
   * calls re-check the whole prefix at a bounded cost per call.
   */
  scanSome(host: CheckedHost, count: number): void {
    let from = this.scanCursor.get(host.id) ?? 1;
    if (from > host.commit) from = 1;
    const to = Math.min(host.commit, from + count - 1);
    this.checkRange(host, { from, to, invariant: "LogInv", rehash: true });
    this.checkViews(host, from, to);
    this.scanCursor.set(host.id, to + 1);
  }

  private checkViews(host: CheckedHost, from: number, to: number): void {
    for (let s = Math.max(from, 2); s <= to; s++) {
      if (host.log[s - 1]!.view < host.log[s - 2]!.view) {
        this.fail("MonoLogInv", `${host.id}: view decreases at ${s}`);
      }
    }
  }

  private checkPrefix(host: CheckedHost, upTo: number, invariant: string, rehash: boolean): void {
    if (host.log.length < upTo) {
      this.fail(invariant, `${host.id} holds ${host.log.length} < committed ${upTo}`);
    }
    this.checkRange(host, { from: 1, to: upTo, invariant, rehash });
  }

  /** Seqnos [from, to] of the host's log hold the globally committed entries. */
  private checkRange(host: CheckedHost, range: CheckedRange): void {
    for (let s = range.from; s <= range.to; s++) {
      const known = this.committed[s - 1]!;
      const entry = host.log[s - 1]!;
      let leaf = host.leaves[s - 1]!;
      if (range.rehash) {
        sha256Into(entry.payload, 0, entry.payload.byteLength, this.scratchLeaf, 0);
        leaf = this.scratchLeaf;
      }
      if (entry.view !== known.view || !sameLeaf(leaf, known.leaf)) {
        this.fail(range.invariant, `${host.id} differs from the committed prefix at ${s}`);
      }
    }
  }

  /** Records a transaction id a leader returned to a client. */
  recordClientTx(tx: ClientTx): number {
    this.clientTxs.push(tx);
    return this.clientTxs.length - 1;
  }

  /** A3: `node` reports `status` for client transaction `index`. */
  onStatus(node: NodeId, index: number, status: TxStatus): void {
    this.checks++;
    const tx = this.clientTxs[index]!;
    if (status === "Committed") {
      const known = this.committed[tx.seqno - 1];
      if (known === undefined || known.view !== tx.view) {
        this.fail("A3", `${node} reports ${tx.view}.${tx.seqno} Committed, not in the log`);
      }
    }
    if (status !== "Committed" && status !== "Invalid") return;
    const seen = this.finalStatus.get(index);
    if (seen !== undefined && seen !== status) {
      this.fail("A3", `${node} reports ${tx.view}.${tx.seqno} ${status}, seen ${seen} before`);
    }
    this.finalStatus.set(index, status);
    let statuses = this.nodeFinalStatus.get(node);
    if (statuses === undefined) {
      statuses = new Map();
      this.nodeFinalStatus.set(node, statuses);
    }
    statuses.set(index, status);
  }

  /** A3 per node: once a node said Committed or Invalid, it never says anything else. */
  checkNodeStatusStable(node: NodeId, index: number, status: TxStatus): void {
    const before = this.nodeFinalStatus.get(node)?.get(index);
    if (before !== undefined && before !== status) {
      const tx = this.clientTxs[index]!;
      this.fail("A3", `${node} now reports ${tx.view}.${tx.seqno} ${status}, was ${before}`);
    }
  }
}
