/**
 * Where a commit round's time goes, from the nodes' round traces (src/node/replication/
 * round-trace.ts, JSON lines `[wall ms, event, seqno, peer?]`, one file per node process). For
 * each signature the primary made under load, the stages of its round:
 *
 *   sign → AE sent            the primary's AppendEntries carrying it leaves
 *   AE sent → received        in flight, then waiting for the backup's event loop
 *   received → synced         the backup appends and syncs its ledger
 *   synced → ack sent         the backup answers
 *   ack sent → received       in flight, then waiting for the primary's event loop (the first
 *                             acknowledgement: with the primary, one backup is a majority)
 *   primary synced            the primary's own sync of the signature (in parallel)
 *   quorum → commit           from the later of that ack and the primary's sync to the commit
 *   sign → commit             the whole round
 *
 * Backups' clocks are the same machine's wall clock (the benchmark's nodes share a host).
 */

export type TraceEvent = readonly [number, string, number, string?];

export interface Stage {
  readonly name: string;
  /** Milliseconds, one per signature measured. */
  readonly samples: number[];
}

/** A trace file's events, in order (lines that do not parse are skipped). */
export function parseTrace(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      events.push(JSON.parse(line) as TraceEvent);
    } catch {
      // A line cut by a process that was killed mid-write.
    }
  }
  return events.sort((a, b) => a[0] - b[0]);
}

/** The first event of `kind` at or after `from` ms whose seqno is at least `seqno`. */
function first(events: readonly TraceEvent[], kind: string, seqno: number, from: number) {
  // Events are in time order: start at the first one at or after `from`.
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid]![0] < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < events.length; i++) {
    const e = events[i]!;
    if (e[1] === kind && e[2] >= seqno) return e[0];
  }
  return undefined;
}

const count = (events: readonly TraceEvent[], kind: string) =>
  events.filter((e) => e[1] === kind).length;

/**
 * The stages of every round whose signature came less than `underLoadMs` after the previous
 * one (signatures under load, not the service's start-up), from the traces of all nodes.
 */
export function roundStages(traces: readonly TraceEvent[][], underLoadMs = 100): Stage[] {
  // The primary made the signatures (the most, should a leadership change show in the traces).
  const signatures = traces.map((t) => count(t, "sig"));
  const primary = traces[signatures.indexOf(Math.max(0, ...signatures))] ?? [];
  const backups = traces.filter((t) => t !== primary && count(t, "ae-recv") > 0);
  const names = [
    "sign → AE sent",
    "AE sent → received",
    "received → synced",
    "synced → ack sent",
    "ack sent → received",
    "primary synced",
    "quorum → commit",
    "sign → commit",
  ];
  const stages = names.map((name) => ({ name, samples: [] as number[] }));
  const sigs = primary.filter((e) => e[1] === "sig");
  for (let i = 1; i < sigs.length; i++) {
    const [t0, , s] = sigs[i]!;
    if (t0 - sigs[i - 1]![0] >= underLoadMs) continue;
    const round = measureRound(primary, backups, t0, s);
    if (round === undefined) continue;
    round.forEach((ms, k) => stages[k]!.samples.push(ms));
  }
  return stages;
}

/** One round's stage durations in `roundStages`' order, or undefined if it did not complete. */
function measureRound(
  primary: readonly TraceEvent[],
  backups: readonly TraceEvent[][],
  t0: number,
  seqno: number,
): number[] | undefined {
  const sent = first(primary, "ae-sent", seqno, t0);
  const acked = first(primary, "ack-recv", seqno, t0);
  const synced = first(primary, "synced", seqno, t0);
  const commit = first(primary, "commit", seqno, t0);
  if ([sent, acked, synced, commit].includes(undefined)) return undefined;
  // The backup whose acknowledgement left first is the one the primary heard first.
  let fastest: { recv: number; synced: number; ackSent: number } | undefined;
  for (const b of backups) {
    const recv = first(b, "ae-recv", seqno, sent!);
    const bSynced = recv === undefined ? undefined : first(b, "synced", seqno, recv);
    const ackSent = bSynced === undefined ? undefined : first(b, "ack-sent", seqno, bSynced);
    if (ackSent === undefined) continue;
    if (fastest === undefined || ackSent < fastest.ackSent) {
      fastest = { recv: recv!, synced: bSynced!, ackSent };
    }
  }
  if (fastest === undefined) return undefined;
  return [
    sent! - t0,
    fastest.recv - sent!,
    fastest.synced - fastest.recv,
    fastest.ackSent - fastest.synced,
    acked! - fastest.ackSent,
    synced! - t0,
    commit! - Math.max(acked!, synced!),
    commit! - t0,
  ];
}
