/**
 * The crypto layer's public surface: hashing, prehashed ECDSA, certificates and identities.
 * Only re-exports; each module documents its own invariants.
 */
export * from "./hash.js";
export * from "./ecdsa.js";
export * from "./certs.js";
export * from "./identity.js";
export * from "./aead.js";
export * from "./cose.js";
