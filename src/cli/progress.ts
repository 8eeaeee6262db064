/**
 * A byte-based progress bar for long CLI operations: cli-progress on a TTY, a line every 10%
 * otherwise (so CI logs show progress without control characters).
 */
import cliProgress from "cli-progress";

export interface Progress {
  update(doneBytes: number): void;
  stop(): void;
}

export function createProgress(options: { enabled: boolean; totalBytes: number }): Progress {
  if (!options.enabled) return { update: () => {}, stop: () => {} };
  const total = Math.max(1, options.totalBytes);
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: "verifying [{bar}] {percentage}% | {value}/{total} MiB", stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.ceil(total / 2 ** 20), 0);
    let stopped = false;
    return {
      update: (done) => bar.update(Math.floor(done / 2 ** 20)),
      stop: () => {
        if (!stopped) bar.stop();
        stopped = true;
      },
    };
  }
  let nextTenth = 1;
  return {
    update: (done) => {
      while (done / total >= nextTenth / 10 && nextTenth <= 10) {
        process.stderr.write(`verifying: ${nextTenth * 10}% (${Math.floor(done / 2 ** 20)} MiB)\n`);
        nextTenth++;
      }
    },
    stop: () => {},
  };
}
