/**
 * What a page of the console is: a title (its <h1> and the document title) and a render
 * function that fills its container. `params` are the hash route's query (#/ledger?seqno=5);
 * `signal` aborts when the user leaves the page, and stops its timers and calls.
 */
export interface Page {
  readonly title: string;
  render(
    container: HTMLElement,
    params: URLSearchParams,
    signal: AbortSignal,
  ): void | Promise<void>;
}

/** Says `text` to screen readers through the page's polite live region. */
export function announce(text: string): void {
  const region = document.getElementById("announcer");
  if (region !== null) region.textContent = text;
}

/** Runs `tick` now and then every `intervalMs` until `signal` aborts; never overlapping. */
export function every(intervalMs: number, signal: AbortSignal, tick: () => Promise<void>): void {
  const run = async (): Promise<void> => {
    if (signal.aborted) return;
    await tick();
    if (!signal.aborted) setTimeout(() => void run(), intervalMs);
  };
  void run();
}
