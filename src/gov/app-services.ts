/**
 * The app services table (ADR 0005): `public:ccf.gov.app_services`, package id (lower-case hex
 * SHA-256 of a bundle file) -> JSON {address: "host:port", ca_cert?: PEM, timeout_ms?: number},
 * written by set_app_service and remove_app_service (constitution/actions-app-service.js).
 * Rows that do not parse are skipped by readers (the constitution checks what it writes; a
 * custom one might not). No IO.
 */
import { fromUtf8 } from "../base/bytes.js";
import { isTextDecodeError } from "../base/errors.js";
import type { ReadonlyMapHandle } from "../kv/tx.js";

/** How long a node waits for a call's result when the row names no timeout_ms. */
export const DEFAULT_APP_SERVICE_TIMEOUT_MS = 5000;

export interface AppServiceRow {
  readonly packageId: string;
  readonly address: string;
  /** PEM bundle the server's certificate must chain to; the service certificate when null. */
  readonly caCert: string | null;
  readonly timeoutMs: number;
}

function parseRow(keyBytes: Uint8Array, valueBytes: Uint8Array): AppServiceRow | null {
  let packageId: string;
  let value: unknown;
  try {
    packageId = fromUtf8(keyBytes);
    value = JSON.parse(fromUtf8(valueBytes));
  } catch (err: unknown) {
    if (isTextDecodeError(err)) return null;
    throw err;
  }
  if (!/^[0-9a-f]{64}$/.test(packageId)) return null;
  if (typeof value !== "object" || value === null) return null;
  const { address, ca_cert, timeout_ms } = value as Record<string, unknown>;
  if (typeof address !== "string") return null;
  if (ca_cert !== undefined && typeof ca_cert !== "string") return null;
  const timeoutOk = Number.isSafeInteger(timeout_ms) && (timeout_ms as number) > 0;
  if (timeout_ms !== undefined && !timeoutOk) return null;
  return {
    packageId,
    address,
    caCert: ca_cert ?? null,
    timeoutMs: timeoutOk ? (timeout_ms as number) : DEFAULT_APP_SERVICE_TIMEOUT_MS,
  };
}

/** The well-formed rows of the table, in package id order. */
export function appServiceRows(map: ReadonlyMapHandle): AppServiceRow[] {
  const rows: AppServiceRow[] = [];
  map.forEach((value, key) => {
    const row = parseRow(key, value);
    if (row !== null) rows.push(row);
  });
  return rows.sort((a, b) => (a.packageId < b.packageId ? -1 : a.packageId > b.packageId ? 1 : 0));
}
