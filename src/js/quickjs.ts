/**
 * The process-wide QuickJS WASM module (quickjs-emscripten-core with the
 * @jitl/quickjs-wasmfile-release-sync variant: Bellard QuickJS, the engine family CCF vendors).
 *
 * Invariant: at most one healthy module per process. Loading costs ~15-25 ms and every runtime
 * created from the module shares its WASM memory, so runtimes are cheap and the module is not.
 * A module whose WASM instance aborted (an emscripten `abort`, e.g. a failed QuickJS assertion
 * while freeing a runtime) is unusable; the sandbox reports it through `discardQuickJS`, and the
 * next `getQuickJS` loads a fresh one instead of failing every later call.
 *
 * Why QuickJS, and why this variant: style.md §9.
 */
import { newQuickJSWASMModuleFromVariant, type QuickJSWASMModule } from "quickjs-emscripten-core";

export type { QuickJSWASMModule } from "quickjs-emscripten-core";

/** The module being loaded or loaded; null before the first use and after a discard. */
let loading: Promise<QuickJSWASMModule> | null = null;
/** Invariant: the value `loading` resolved to, or null while it is pending or absent. */
let loaded: QuickJSWASMModule | null = null;

/** The shared QuickJS module, loaded on first use. Concurrent first callers share one load. */
export function getQuickJS(): Promise<QuickJSWASMModule> {
  if (loading === null) {
    // A dynamic import keeps the variant's WASM off the start-up path of commands that never run
    // JS. A default import of the variant does not typecheck under NodeNext (TS2345).
    const load = newQuickJSWASMModuleFromVariant(import("@jitl/quickjs-wasmfile-release-sync"));
    load.then(
      (module) => {
        if (loading === load) loaded = module;
      },
      // A failed load must not stick: the next caller retries.
      () => {
        if (loading === load) loading = null;
      },
    );
    loading = load;
  }
  return loading;
}

/** Forgets `module` if it is the current one, so the next getQuickJS loads a fresh instance. */
export function discardQuickJS(module: QuickJSWASMModule): void {
  if (loaded !== module) return;
  loaded = null;
  loading = null;
}
