/**
 * The deterministic simulation of Consortia's consensus (issue #4 item 5, reliability-checklist.md
 * J2): N simulated hosts, each running the node's own ConsensusDriver over a RaftNode, in one
 * process on a simulated millisecond clock, with a faulty network, crashes and restarts, partitions
 * and reconfigurations, all drawn from one seeded Prng, with the safety invariants of invariants.ts
 * checked after every step and a liveness phase at the end.
 *
 * Start: nodes n0..n{N-1} exist. n0, n1 and n2 start with the same two durable, committed
 * entries (seqno 1: a configuration [n0, n1, n2]; seqno 2: a signature over it), all in view 2,
 * and n0 starts as leader of view 2 (CCF's StartTerm). The other nodes are spares: empty logs,
 * role None, until a configuration adds them and they catch up from the leader. Once the spares
 * are used up, a configuration that grows adds a fresh node (n{N}, n{N+1}, ...), and a node
 * whose removal every remaining member durably committed may be decommissioned (stopped for
 * good), so configurations of 3 to N members keep changing for the whole run.
 *
 * A step is: maybe one fault or leader action (drawn from the rates), then the next event in
 * time (a message delivery, or a tick of every live node), then the per-step checks.
 * Invariants:
 * - Every random choice comes from `rng` or a stream forked from it, in a fixed order, so one
 *   seed replays one run exactly.
 * - A removed node is never added again (E5); a configuration keeps 3 to N members, and the
 *   next reconfiguration waits until every member has durably committed the current one.
 */
import { Prng } from "../base/prng.js";
import type { NodeId, RaftTimings, View } from "../consensus/types.js";
import { genesisEntries } from "./genesis.js";
import { newDisk, SimHost, type HostEnv } from "./host.js";
import { InvariantChecker, InvariantViolation } from "./invariants.js";
import type { SimMutation } from "./mutations.js";
import { SimNetwork, type NetworkConfig } from "./network.js";

export interface SimOptions {
  readonly seed: number;
  readonly steps: number;
  readonly nodes?: number;
  readonly log?: (line: string) => void;
  /** Simulated ms the liveness phase may take before it fails. */
  readonly livenessBoundMs?: number;
  /** Full re-hash scan of every host's committed prefix every this many steps. */
  readonly scanEvery?: number;
  /** Runs a deliberately broken consensus (mutations.ts), to show the checks catch it. */
  readonly mutation?: SimMutation;
  /** Rolling re-hash scan of the next SCAN_SLICE_ENTRIES of every host every this many steps. */
  readonly rollingScanEvery?: number;
}

export interface SimStats {
  steps: number;
  livenessSteps: number;
  simulatedMs: number;
  maxView: number;
  leaderships: number;
  maxCommit: number;
  clientWrites: number;
  messagesSent: number;
  messagesDelivered: number;
  messagesDropped: number;
  messagesDuplicated: number;
  crashes: number;
  /** Crashes followed by an immediate restart (counted in crashes and restarts too). */
  bounces: number;
  tornSyncs: number;
  restarts: number;
  partitions: number;
  reconfigurations: number;
  /** Leaderships of a node whose removal had committed on a now-crashed leader only. */
  retiredLeaderships: number;
  checks: number;
}

/** Per-step probabilities of each action in the faulty phase. */
const RATES = {
  clientWrite: 0.08,
  crash: 0.0015,
  restart: 0.01,
  bounce: 0.0005,
  partition: 0.002,
  heal: 0.004,
  reconfigure: 0.0025,
  decommission: 0.002,
  statusQuery: 1,
};

export const SIM_TIMINGS: RaftTimings = {
  heartbeatMs: 30,
  electionMs: 300,
  maxBatchEntries: 16,
  maxBatchBytes: 1024,
  maxInflightEntries: 64,
  newNodeGraceMs: 900,
  holdUntilSignature: true,
};

const TICK_MS = 10;
/** Defaults of the scans (SimOptions): a full one every 20,000 steps, a slice every 500. */
const SCAN_EVERY = 20_000;
const ROLLING_SCAN_EVERY = 500;
const SCAN_SLICE_ENTRIES = 128;
const INITIAL_MEMBERS = 3;
const MIN_MEMBERS = 3;
const START_VIEW = 2 as View;
/**
 * Node identities a run may create. Once the spares are used up, an added node is a fresh one
 * (removed identities never return, E5), so configurations keep changing all run long.
 */
const IDENTITIES_MAX = 1000;
const NO_VOTE = { view: 0 as View, votedFor: null };

const FAULTY_NETWORK: NetworkConfig = {
  minDelayMs: 1,
  maxDelayMs: 25,
  lateProbability: 0.01,
  dropProbability: 0.05,
  duplicateProbability: 0.03,
};

export function nodeId(i: number): NodeId {
  return `n${i}` as NodeId;
}

/** The replay command for a run (of `npm run sim`, main.ts). */
export function replayCommand(options: SimOptions): string {
  const { seed, steps, nodes = 5, mutation } = options;
  const tail = mutation === undefined ? "" : ` --mutation ${mutation}`;
  return `npm run sim -- --seed ${seed} --steps ${steps} --nodes ${nodes}${tail}`;
}

export class Simulation {
  readonly seed: number;
  readonly hosts: SimHost[];
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  private readonly rng: Prng;
  private readonly options: SimOptions;
  private readonly logLine: (line: string) => void;
  now = 0;
  private nextTickAt = TICK_MS;
  step = 0;
  private phase: "faulty" | "liveness" = "faulty";
  private requestId = 0;
  // Invariant: a node removed from any configuration a leader proposed; never added again.
  private readonly everRemoved = new Set<NodeId>();
  private readonly env: HostEnv;
  /** The most members a configuration gets (the `nodes` option). */
  private readonly membersMax: number;
  // Invariant: the hosts not decommissioned, in id order. A decommissioned node's removal had
  // committed (checker.retired); it was stopped for good, is never restarted, and its disk is
  // dropped.
  private inService: SimHost[];
  readonly stats: SimStats = {
    steps: 0,
    livenessSteps: 0,
    simulatedMs: 0,
    maxView: 0,
    leaderships: 0,
    maxCommit: 0,
    clientWrites: 0,
    messagesSent: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    crashes: 0,
    bounces: 0,
    tornSyncs: 0,
    restarts: 0,
    partitions: 0,
    reconfigurations: 0,
    retiredLeaderships: 0,
    checks: 0,
  };

  constructor(options: SimOptions) {
    this.options = options;
    this.seed = options.seed;
    this.rng = new Prng(options.seed);
    this.logLine = options.log ?? ((): void => undefined);
    const n = options.nodes ?? 5;
    if (n < INITIAL_MEMBERS) throw new RangeError(`at least ${INITIAL_MEMBERS} nodes`);
    this.membersMax = n;
    const ids = Array.from({ length: n }, (_, i) => nodeId(i));
    const members = ids.slice(0, INITIAL_MEMBERS);
    this.network = new SimNetwork(this.rng.fork(), { ...FAULTY_NETWORK });
    this.checker = new InvariantChecker(() => this.where(), members);
    const env: HostEnv = (this.env = {
      network: this.network,
      checker: this.checker,
      timings: SIM_TIMINGS,
      clock: { monotonicMs: () => this.now },
      tornSyncProbability: 0.002,
      rng: this.rng.fork(),
      mutation: options.mutation,
      log: (line) => this.logLine(`[${this.now}ms #${this.step}] ${line}`),
    });
    const genesis = genesisEntries(members, START_VIEW);
    this.hosts = ids.map((id, i) => {
      const disk =
        i < INITIAL_MEMBERS
          ? newDisk(genesis, { view: START_VIEW, votedFor: null }, genesis.length)
          : newDisk([], NO_VOTE, 0);
      return new SimHost(id, disk, env);
    });
    this.inService = [...this.hosts];
    this.hosts.forEach((h, i) => h.start(this.now, i === 0));
  }

  where(): string {
    return `seed ${this.seed} step ${this.step} (${this.now} ms, ${this.phase})`;
  }

  /** Runs the faulty steps, then the liveness phase. Throws InvariantViolation on failure. */
  run(): SimStats {
    for (let i = 0; i < this.options.steps; i++) this.stepOnce();
    this.stats.steps = this.step;
    this.scanAll();
    this.runLiveness();
    this.scanAll();
    return this.finishStats();
  }

  /** One faulty-phase step (public for tests that interleave their own actions). */
  stepOnce(): void {
    this.step++;
    if (this.phase === "faulty") this.maybeFault();
    this.maybeClientWrite();
    this.advance();
    this.queryStatus();
    if (this.step % (this.options.scanEvery ?? SCAN_EVERY) === 0) this.scanAll();
    else if (this.step % (this.options.rollingScanEvery ?? ROLLING_SCAN_EVERY) === 0) {
      for (const h of this.inService) if (h.alive) this.checker.scanSome(h, SCAN_SLICE_ENTRIES);
    }
  }

  finishStats(): SimStats {
    const s = this.stats;
    s.simulatedMs = this.now;
    s.messagesSent = this.network.stats.sent;
    s.messagesDelivered = this.network.stats.delivered;
    s.messagesDropped = this.network.stats.dropped;
    s.messagesDuplicated = this.network.stats.duplicated;
    s.maxCommit = this.checker.globalCommit;
    s.clientWrites = this.checker.clientTxs.length;
    s.checks = this.checker.checks;
    s.retiredLeaderships = this.checker.retiredLeaderships;
    for (const h of this.hosts) if (h.node !== null) s.maxView = Math.max(s.maxView, h.node.view);
    return s;
  }

  scanAll(): void {
    for (const h of this.inService) if (h.alive) this.checker.scan(h);
  }

  // ---------------------------------------------------------------------------------------
  // Time

  private advance(): void {
    const at = this.network.nextAt();
    if (at !== undefined && at <= this.nextTickAt) {
      this.now = Math.max(this.now, at);
      this.deliver();
      return;
    }
    this.now = this.nextTickAt;
    this.nextTickAt += TICK_MS;
    for (const h of this.inService) {
      if (!h.alive) continue;
      h.timer();
      this.afterHostEvent(h);
    }
  }

  private deliver(): void {
    const m = this.network.pop();
    if (m === undefined) return;
    const host = this.hostOf(m.frame.to);
    if (host === undefined || !host.alive) {
      this.network.stats.dropped++;
      return;
    }
    this.network.stats.delivered++;
    host.deliver(m.frame.from, m.frame.payload);
    this.afterHostEvent(host);
  }

  private afterHostEvent(h: SimHost): void {
    if (h.tornCrash) {
      h.tornCrash = false;
      this.stats.crashes++;
      this.stats.tornSyncs++;
    }
    if (h.node?.isLeader === true && h.node.role === "Leader") this.noteLeader(h);
  }

  private readonly leaderViews = new Set<number>();

  private noteLeader(h: SimHost): void {
    const view = h.node!.view;
    if (this.leaderViews.has(view)) return;
    this.leaderViews.add(view);
    this.stats.leaderships++;
  }

  private hostOf(id: NodeId): SimHost | undefined {
    return this.hosts[Number(id.slice(1))];
  }

  // ---------------------------------------------------------------------------------------
  // Leader actions

  /** The live host whose node leads (and so may write) in the highest view, if any. */
  leaderHost(): SimHost | undefined {
    let best: SimHost | undefined;
    for (const h of this.inService) {
      if (!h.canWrite || h.node === null) continue;
      if (best === undefined || h.node.view > best.node!.view) best = h;
    }
    return best;
  }

  private maybeClientWrite(): void {
    if (!this.rng.chance(RATES.clientWrite)) return;
    const leader = this.leaderHost();
    if (leader === undefined) return;
    this.clientWrite(leader);
  }

  /** A client write at `leader`; returns the index of the recorded transaction. */
  clientWrite(leader: SimHost): number {
    const e = leader.writeClient(++this.requestId);
    const index = this.checker.recordClientTx({ view: e.view, seqno: e.seqno });
    this.afterHostEvent(leader);
    return index;
  }

  /**
   * Adds a node (a spare, or a fresh identity once the spares are used up) or removes a member
   * (maybe the leader itself), if none is pending; configurations keep between MIN_MEMBERS and
   * `nodes` members, so odd and even sizes both occur all run long.
   */
  private reconfigure(): void {
    const leader = this.leaderHost();
    const node = leader?.node;
    if (leader === undefined || node == null) return;
    const configs = node.log.activeConfigurations(node.commitSeqno);
    if (configs.length > 1) return; // one pending reconfiguration at a time
    const current = configs[0]!.nodes;
    // As an operator waits for a new node to catch up: every member has durably committed the
    // current configuration. Otherwise two additions not caught up and a removal can leave no
    // electable majority once the leader fails.
    if (!current.every((id) => this.hostOf(id)!.disk.commit >= configs[0]!.seqno)) return;
    const grow =
      current.length <= MIN_MEMBERS || (current.length < this.membersMax && this.rng.chance(0.5));
    let next: NodeId[];
    if (grow) {
      const spares = this.inService
        .map((h) => h.id)
        .filter((id) => !current.includes(id) && !this.everRemoved.has(id));
      if (spares.length === 0 && this.hosts.length < IDENTITIES_MAX) spares.push(this.provision());
      if (spares.length === 0) return;
      next = [...current, this.rng.pick(spares)];
    } else {
      const gone = this.rng.pick(current);
      this.everRemoved.add(gone);
      next = current.filter((id) => id !== gone);
    }
    this.logLine(`[${this.now}ms #${this.step}] ${leader.id} proposes [${next.join(",")}]`);
    leader.writeConfiguration(next);
    this.stats.reconfigurations++;
    this.afterHostEvent(leader);
  }

  // ---------------------------------------------------------------------------------------
  // Faults

  private maybeFault(): void {
    const r = this.rng;
    if (r.chance(RATES.crash)) this.crashOne();
    if (r.chance(RATES.restart)) this.restartOne();
    if (r.chance(RATES.bounce)) this.bounceOne();
    if (r.chance(RATES.partition)) this.partition();
    if (this.network.partitioned && r.chance(RATES.heal)) {
      this.network.heal();
      this.logLine(`[${this.now}ms #${this.step}] heal`);
    }
    if (r.chance(RATES.reconfigure)) this.reconfigure();
    if (r.chance(RATES.decommission)) this.decommissionOne();
  }

  /** A fresh node (empty disk, role None) with the next identity; returns its id. */
  private provision(): NodeId {
    const h = new SimHost(nodeId(this.hosts.length), newDisk([], NO_VOTE, 0), this.env);
    this.hosts.push(h);
    this.inService.push(h);
    h.start(this.now, false);
    this.logLine(`[${this.now}ms #${this.step}] provision ${h.id}`);
    return h.id;
  }

  /**
   * Stops for good, as an operator would, a node whose removal committed and is durably known
   * committed by every member of the configuration that removed it: none of them counts on it
   * again, even after a restart.
   */
  private decommissionOne(): void {
    const done = this.inService.filter((h) => !h.canWrite && this.isRemovalSettled(h.id));
    if (done.length === 0) return;
    const h = this.rng.pick(done);
    if (h.alive) h.crash();
    h.decommission();
    this.inService = this.inService.filter((x) => x !== h);
    this.logLine(`[${this.now}ms #${this.step}] decommission ${h.id}`);
  }

  private isRemovalSettled(id: NodeId): boolean {
    const removal = this.checker.removals.get(id);
    if (removal === undefined) return false;
    return removal.members.every((m) => this.hostOf(m)!.disk.commit >= removal.seqno);
  }

  private crashOne(): void {
    const alive = this.inService.filter((h) => h.alive);
    if (alive.length === 0) return;
    const leader = this.leaderHost();
    const victim = leader !== undefined && this.rng.chance(0.3) ? leader : this.rng.pick(alive);
    victim.crash();
    this.stats.crashes++;
    this.logLine(`[${this.now}ms #${this.step}] crash ${victim.id}`);
  }

  /**
   * A crash and an immediate restart (a process bounce) of a node that is not the leader: it
   * loses whatever it had not made durable and comes back while its peers' messages to its
   * previous incarnation are still in flight.
   */
  private bounceOne(): void {
    const followers = this.inService.filter((h) => h.alive && !h.canWrite);
    if (followers.length === 0) return;
    const h = this.rng.pick(followers);
    h.crash();
    this.stats.crashes++;
    this.stats.bounces++;
    this.logLine(`[${this.now}ms #${this.step}] bounce ${h.id}`);
    this.restart(h);
  }

  private restartOne(): void {
    const down = this.inService.filter((h) => !h.alive);
    if (down.length === 0) return;
    this.restart(this.rng.pick(down));
  }

  private restart(h: SimHost): void {
    this.logLine(`[${this.now}ms #${this.step}] restart ${h.id}`);
    h.start(this.now, false);
    this.stats.restarts++;
    this.afterHostEvent(h);
  }

  private partition(): void {
    const ids = this.inService.map((h) => h.id);
    const kind = this.rng.intBelow(3);
    const leader = this.leaderHost();
    if (kind === 0) {
      const shuffled = this.rng.shuffle([...ids]);
      const k = 1 + this.rng.intBelow(ids.length - 1);
      this.network.split(shuffled.slice(0, k), shuffled.slice(k));
      this.logLine(`[${this.now}ms #${this.step}] split ${shuffled.slice(0, k).join(",")}`);
    } else if (kind === 1) {
      const one = leader !== undefined && this.rng.chance(0.5) ? leader.id : this.rng.pick(ids);
      this.network.split(
        [one],
        ids.filter((id) => id !== one),
      );
      this.logLine(`[${this.now}ms #${this.step}] isolate ${one}`);
    } else {
      const from = leader !== undefined && this.rng.chance(0.5) ? leader.id : this.rng.pick(ids);
      const to = this.rng.pick(ids.filter((id) => id !== from));
      this.network.cut(from, to);
      this.logLine(`[${this.now}ms #${this.step}] cut ${from}>${to}`);
    }
    this.stats.partitions++;
  }

  // ---------------------------------------------------------------------------------------
  // Client statuses (A3)

  private queryStatus(): void {
    const txs = this.checker.clientTxs;
    if (txs.length === 0) return;
    const recent = Math.min(64, txs.length);
    const index = this.rng.chance(0.7)
      ? txs.length - 1 - this.rng.intBelow(recent)
      : this.rng.intBelow(txs.length);
    const host = this.rng.pick(this.inService);
    if (host.node === null) return;
    this.observe(host, index);
  }

  private observe(host: SimHost, index: number): string {
    const tx = this.checker.clientTxs[index]!;
    const status = host.node!.status(tx.view, tx.seqno);
    this.checker.checkNodeStatusStable(host.id, index, status);
    this.checker.onStatus(host.id, index, status);
    return status;
  }

  // ---------------------------------------------------------------------------------------
  // Liveness

  private runLiveness(): void {
    this.phase = "liveness";
    this.network.heal();
    this.network.config.dropProbability = 0;
    this.network.config.duplicateProbability = 0;
    this.network.config.lateProbability = 0;
    for (const h of this.inService) if (!h.alive) this.restart(h);
    const deadline = this.now + (this.options.livenessBoundMs ?? 60_000);
    let probe: number | null = null;
    while (this.now < deadline) {
      this.step++;
      this.stats.livenessSteps++;
      this.advance();
      this.queryStatus();
      for (const h of this.inService) if (!h.alive) this.restart(h); // torn syncs crash nodes
      const leader = this.leaderHost();
      if (leader === undefined || !this.converged(leader)) continue;
      if (probe === null) {
        probe = this.clientWrite(leader);
        continue;
      }
      const state = this.probeState(leader, probe);
      if (state === "committed") return;
      if (state === "invalid") probe = null;
    }
    this.checker.fail(
      "Liveness",
      `no converged leader with a committed fresh write within ` +
        `${this.options.livenessBoundMs ?? 60_000} ms after healing; ${this.describe()}`,
    );
  }

  /** Every node of the leader's latest configuration is alive and has the leader's commit. */
  private converged(leader: SimHost): boolean {
    const node = leader.node!;
    const latest = node.log.configurations().at(-1)!.nodes;
    return latest.every((id) => this.hostOf(id)?.node?.commitSeqno === node.commitSeqno);
  }

  private probeState(leader: SimHost, probe: number): "committed" | "invalid" | "pending" {
    const latest = leader.node!.log.configurations().at(-1)!.nodes;
    let all = true;
    for (const id of latest) {
      const status = this.observe(this.hostOf(id)!, probe);
      if (status === "Invalid") return "invalid";
      if (status !== "Committed") all = false;
    }
    return all ? "committed" : "pending";
  }

  describe(): string {
    return this.inService
      .map((h) => {
        const n = h.node;
        if (n === null) return `${h.id}: down`;
        return `${h.id}: ${n.role} v${n.view} last ${n.lastSeqno} commit ${n.commitSeqno}`;
      })
      .join("; ");
  }
}

/** Runs one simulation; on failure rethrows with the replay command appended. */
export function runSimulation(options: SimOptions): SimStats {
  const sim = new Simulation(options);
  try {
    return sim.run();
  } catch (error) {
    const replay = replayCommand(options);
    if (error instanceof InvariantViolation) {
      throw new InvariantViolation(error.invariant, `${error.message}\nreplay: ${replay}`);
    }
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new InvariantViolation("Crash", `${sim.where()}: ${message}\nreplay: ${replay}`);
  }
}
