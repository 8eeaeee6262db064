/**
 * The write set of one transaction: what the ledger records and followers apply.
 *
 * Invariant (canonical form): maps are sorted by name (UTF-16 code unit order, which equals
 * byte order for the ASCII names we allow) with no duplicates; inside a map, writes are sorted
 * by key bytes with no duplicate keys. The codec accepts only canonical input, so the same
 * write set always encodes to the same bytes and decode(encode(w)) == w.
 */

export const PUBLIC_PREFIX = "public:";

export interface KeyWrite {
  readonly key: Uint8Array;
  /** The new value, or null for a removal. */
  readonly value: Uint8Array | null;
}

export interface MapWrites {
  readonly name: string;
  readonly writes: readonly KeyWrite[];
}

export interface WriteSet {
  readonly maps: readonly MapWrites[];
}

export function isPublicMap(name: string): boolean {
  return name.startsWith(PUBLIC_PREFIX);
}

/** Splits a canonical write set into the public (clear) and private (encrypted) domains. */
export function splitDomains(writeSet: WriteSet): {
  publicMaps: readonly MapWrites[];
  privateMaps: readonly MapWrites[];
} {
  const publicMaps: MapWrites[] = [];
  const privateMaps: MapWrites[] = [];
  for (const map of writeSet.maps) (isPublicMap(map.name) ? publicMaps : privateMaps).push(map);
  return { publicMaps, privateMaps };
}

/** Joins decoded domains back into one canonical write set. */
export function joinDomains(
  publicMaps: readonly MapWrites[],
  privateMaps: readonly MapWrites[],
): WriteSet {
  const maps = [...publicMaps, ...privateMaps].sort((a, b) => compareNames(a.name, b.name));
  return { maps };
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
