// The deterministic consensus simulation (src/sim, reliability-checklist.md J2): 1,000,000 faulty
// steps over many seeds of 5- and 7-node runs (lossy, reordering, duplicating network,
// partitions, crashes with torn syncs, bounces, reconfigurations) with every safety invariant
// checked after every step and a liveness phase at the end; plus proofs that the checker bites
// (on a tampered log, and on deliberately broken consensus: mutations.ts), that a seed replays
// exactly, and that the hosts run the node's own ConsensusDriver over encoded frames.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NodeId, RaftEntry, Seqno, View } from "../../../src/consensus/types.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { InvariantChecker, InvariantViolation } from "../../../src/sim/invariants.js";
import { SIM_MUTATIONS, type SimMutation } from "../../../src/sim/mutations.js";
import { Simulation, nodeId, runSimulation, type SimOptions } from "../../../src/sim/simulation.js";

const SEEDS = 20;
const STEPS = 50_000;
/** Every fourth seed runs 7 nodes: more spares, so more reconfigurations before they run out. */
const nodesOf = (seed: number): number => (seed % 4 === 0 ? 7 : 5);

test(`${SEEDS} seeds x ${STEPS} faulty steps keep every invariant and converge`, () => {
  let steps = 0;
  let commits = 0;
  let crashes = 0;
  let reconfigurations = 0;
  let partitions = 0;
  const failures: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    try {
      const stats = runSimulation({ seed, steps: STEPS, nodes: nodesOf(seed) });
      steps += stats.steps;
      commits += stats.maxCommit;
      crashes += stats.crashes;
      reconfigurations += stats.reconfigurations;
      partitions += stats.partitions;
    } catch (error) {
      failures.push(`seed ${seed}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
  // Counted from the runs' own step counters, not from the loop bounds.
  assert.ok(steps >= 1_000_000, `ran ${steps} faulty steps`);
  // The runs did real work under real faults (not an idle cluster).
  assert.ok(commits > SEEDS * 2000, `committed ${commits}`);
  assert.ok(crashes > SEEDS * 50, `crashes ${crashes}`);
  assert.ok(reconfigurations > SEEDS * 3, `reconfigurations ${reconfigurations}`);
  assert.ok(partitions > SEEDS * 50, `partitions ${partitions}`);
});

/** The first violation a run with `mutation` reports, within `steps` faulty steps. */
function violationOf(mutation: SimMutation, seed: number, steps: number): InvariantViolation {
  try {
    runSimulation({ seed, steps, mutation });
  } catch (error) {
    if (error instanceof InvariantViolation) return error;
    throw error;
  }
  assert.fail(`mutation ${mutation} seed ${seed}: no violation in ${steps} steps`);
}

test("the checker bites: deliberately broken consensus is caught on every seed tried", () => {
  // What each bug breaks first: a commit a later leader lacks; two leaders in one view, or a
  // leader elected without the committed prefix. Over-acknowledging can also stall a peer for
  // good first (Liveness): the leader skips entries the peer lacks, then takes the peer's NACKs
  // for stale ones, since they are below the match it was told (leaders hold unsigned entries
  // back until their signature, so the skipped ones are often exactly those).
  const expected: Record<SimMutation, readonly string[]> = {
    "ack-unheld-entries": ["LeaderCompletenessInv", "LogInv", "Liveness"],
    "grant-every-vote": ["MoreThanOneLeaderInv", "LeaderCompletenessInv"],
  };
  for (const mutation of SIM_MUTATIONS) {
    for (let seed = 1; seed <= 3; seed++) {
      const violation = violationOf(mutation, seed, 20_000);
      assert.ok(expected[mutation].includes(violation.invariant), violation.message);
      assert.match(violation.message, new RegExp(`seed ${seed} step \\d+`));
      assert.match(violation.message, /replay: npm run sim -- --seed/);
    }
  }
});

test("one seed replays exactly", () => {
  const a = runSimulation({ seed: 7, steps: 2000 });
  const b = runSimulation({ seed: 7, steps: 2000 });
  const c = runSimulation({ seed: 8, steps: 2000 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

/** Flips a payload bit of seqno `commit - back` on a live host after 1,500 steps; the runs on. */
function flipAndRun(options: SimOptions, back: number): { victim: string; run: () => void } {
  const sim = new Simulation(options);
  for (let i = 0; i < 1500; i++) sim.stepOnce();
  const victim = sim.hosts.find((h) => h.alive && h.commit > back + 10);
  assert.ok(victim !== undefined, "some node committed something");
  const s = victim.commit - back;
  const entry = victim.log[s - 1]!;
  const payload = entry.payload.slice();
  payload[payload.length - 1]! ^= 1;
  victim.log[s - 1] = { ...entry, payload }; // a private copy: other nodes share the original
  return { victim: victim.id, run: () => range(200).forEach(() => sim.stepOnce()) };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

for (const [scans, options, back] of [
  ["the full scan", { seed: 3, steps: 0, scanEvery: 100 }, 3],
  ["the rolling scan", { seed: 3, steps: 0, scanEvery: 1e9, rollingScanEvery: 10 }, 100],
] as const) {
  test(`the checker bites: a flipped committed payload is caught by ${scans}`, () => {
    const { victim, run } = flipAndRun(options, back);
    assert.throws(
      run,
      (error: unknown) =>
        error instanceof InvariantViolation &&
        error.invariant === "LogInv" &&
        error.message.includes("seed 3") &&
        error.message.includes(victim),
    );
  });
}

test("the hosts run the node's ConsensusDriver: n2n frames, a corrupt one dropped and counted", () => {
  const sim = new Simulation({ seed: 5, steps: 0 });
  for (let i = 0; i < 500; i++) sim.stepOnce();
  // The backup that has been up longest (most frames received): bounces restart nodes.
  const backups = sim.hosts.filter((h) => h.alive && h.node?.isLeader !== true);
  const host = backups.sort((a, b) => b.driverStats!.received - a.driverStats!.received)[0];
  assert.ok(host !== undefined, "some backup is up");
  const before = { ...host.driverStats! };
  assert.ok(before.received > 0 && before.sent > 0 && before.syncs > 0, JSON.stringify(before));
  host.deliver(nodeId(0), Uint8Array.of(0xa1, 0x00));
  assert.equal(host.driverStats!.malformed, before.malformed + 1);
  assert.equal(host.driverStats!.received, before.received);
  for (let i = 0; i < 500; i++) sim.stepOnce(); // and the run goes on, every invariant checked
});

function entry(seqno: number, view: number, isSignature: boolean, tag: number): RaftEntry {
  return {
    seqno: seqno as Seqno,
    view: view as View,
    isSignature,
    payload: Uint8Array.of(tag, seqno),
  };
}

function fakeHost(id: string, log: RaftEntry[], commit: number) {
  return { id: id as NodeId, log, leaves: log.map((e) => sha256(e.payload)), commit };
}

test("the checker bites: two leaders in one view, divergent commits, A3 flips", () => {
  const checker = new InvariantChecker(() => "seed 99 step 1", ["a", "b", "c"] as NodeId[]);
  const a = fakeHost("a", [entry(1, 2, true, 1)], 0);
  const b = fakeHost("b", [entry(1, 3, true, 2)], 0);
  checker.onRoleChange(a, "Leader", 2, false);
  assert.throws(
    () => checker.onRoleChange(b, "Leader", 2, false),
    /MoreThanOneLeaderInv violated at seed 99/,
  );
  checker.onCommit(a, 1, null);
  assert.throws(() => checker.onCommit(b, 1, null), /LogInv violated at seed 99/);
  const unsigned = fakeHost("c", [entry(1, 2, false, 1)], 0);
  assert.throws(() => checker.onCommit(unsigned, 1, null), /SignatureInv/);
  assert.throws(() => checker.onRoleChange(b, "Candidate", 4, true), /RetiredStopsCampaigning/);
  const tx = checker.recordClientTx({ view: 2, seqno: 1 });
  checker.onStatus("a" as NodeId, tx, "Committed");
  assert.throws(() => checker.onStatus("b" as NodeId, tx, "Invalid"), /A3 violated/);
  assert.throws(() => checker.onAppend(a, entry(2, 1, false, 3)), /MonoLogInv/);
});
