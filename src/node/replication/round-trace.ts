/**
 * Timestamps of a node's consensus events, to measure where a commit round's time goes: from a
 * signature on the primary, through its AppendEntries, each backup's receipt, sync and
 * acknowledgement, to the primary's commit (`npm run bench -- --round-stages` reads them; see
 * docs/performance.md). Off unless CONSORTIA_ROUND_TRACE names a directory, where each node
 * process appends JSON lines to `<pid>.jsonl`: `[wall-clock ms, event, seqno, peer?]`. Events
 * are buffered and written every few hundred, so a traced node pays a push per event.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

/**
 * sig: a signature entry handed to consensus (primary). ae-sent / ae-recv: AppendEntries whose
 * last entry is `seqno`, to or from `peer`. synced: the ledger synced up to `seqno`. ack-sent /
 * ack-recv: a successful AppendEntries response matching up to `seqno`. commit: commit advanced
 * to `seqno`.
 */
export type RoundEvent =
  "sig" | "ae-sent" | "ae-recv" | "synced" | "ack-sent" | "ack-recv" | "commit";

export interface RoundTrace {
  record(event: RoundEvent, seqno: number, peer?: string): void;
  /** Writes what is buffered. */
  flush(): void;
}

export const ROUND_TRACE_ENV = "CONSORTIA_ROUND_TRACE";
const FLUSH_EVERY = 512;

/** The trace CONSORTIA_ROUND_TRACE asks for, or undefined (the usual case). */
export function roundTraceFromEnv(env: NodeJS.ProcessEnv = process.env): RoundTrace | undefined {
  const dir = env[ROUND_TRACE_ENV];
  if (dir === undefined || dir === "") return undefined;
  mkdirSync(dir, { recursive: true });
  return new FileRoundTrace(join(dir, `${process.pid}.jsonl`));
}

class FileRoundTrace implements RoundTrace {
  private lines: string[] = [];

  constructor(private readonly file: string) {
    // The last events of a process that exits without stopping are lost; a bench stops nodes.
    setInterval(() => this.flush(), 1000).unref();
  }

  record(event: RoundEvent, seqno: number, peer?: string): void {
    const at = (performance.timeOrigin + performance.now()).toFixed(3);
    const who = peer === undefined ? "" : `,"${peer.slice(0, 12)}"`;
    this.lines.push(`[${at},"${event}",${seqno}${who}]`);
    if (this.lines.length >= FLUSH_EVERY) this.flush();
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const text = `${this.lines.join("\n")}\n`;
    this.lines = [];
    appendFileSync(this.file, text);
  }
}
