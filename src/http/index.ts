/**
 * The HTTP layer's public surface: CCF's error table and bodies, the runtime-mutable router and
 * the HTTPS RPC server. Only re-exports; each module documents its own invariants.
 */
export * from "./errors.js";
export * from "./router.js";
export * from "./server.js";
