/**
 * The node's TurnScheduler: a deferred task runs in the check phase of this event-loop turn
 * (setImmediate), after the IO callbacks that were ready together with the one that deferred
 * it. Messages that arrive together are therefore processed as one batch.
 */
import type { TurnScheduler } from "./driver-io.js";

export const EVENT_LOOP_SCHEDULER: TurnScheduler = {
  defer(task: () => void): void {
    setImmediate(task);
  },
};
