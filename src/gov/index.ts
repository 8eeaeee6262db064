/**
 * The public surface of the governance core: table names and value shapes, genesis, the
 * proposal lifecycle, member acks and views, the constitution boundary and gov errors. Pure (no
 * HTTP, no interpreter). The COSE request checks live in cose-request.ts, imported directly.
 */
export * from "./tables.js";
export * from "./errors.js";
export * from "./constitution-runner.js";
export * from "./genesis.js";
export * from "./proposals.js";
export * from "./members.js";
