/**
 * Names of the built-in service tables (ccf-api.md 6.1), in one place: code never repeats
 * these literals. Singleton tables use an 8-byte all-zero key.
 */

export const SERVICE_TABLES = {
  signatures: "public:ccf.internal.signatures",
  tree: "public:ccf.internal.tree",
} as const;

/** The key of singleton (ServiceValue) tables: 8 zero bytes. */
export const SINGLETON_KEY_BYTES = new Uint8Array(8);
