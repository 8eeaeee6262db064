/**
 * The attestation layer's public surface: making and verifying node quotes, by format.
 * Only re-exports; virtual.ts documents the invariants.
 */
export * from "./virtual.js";
