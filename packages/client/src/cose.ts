/**
 * COSE_Sign1 (RFC 9052 section 4.2) as CCF uses it, with cborg (browser-safe):
 * - signed governance requests: a tagged COSE_Sign1 whose protected header holds alg, kid (the
 *   member id as a byte string) and CCF's `ccf.gov.msg.type`, `ccf.gov.msg.created_at` and,
 *   for ballots and withdrawals, `ccf.gov.msg.proposal_id`; the payload is attached;
 * - decoding a received COSE_Sign1 (a COSE receipt), keeping the protected bytes as received
 *   because the signature covers them.
 *   Sig_structure = ["Signature1", protected, external_aad = h'', payload]
 */
import { Tagged, decode, encode } from "cborg";
import { ClientError, ClientErrorCode } from "./errors.js";
import type { CoseSigner } from "./signer.js";

export const COSE_SIGN1_TAG = 18;
export const HEADER_ALG = 1;
export const HEADER_KID = 4;
export const GOV_MSG_TYPE = "ccf.gov.msg.type";
export const GOV_MSG_CREATED_AT = "ccf.gov.msg.created_at";
export const GOV_MSG_PROPOSAL_ID = "ccf.gov.msg.proposal_id";

/** CCF's governance message types (the `ccf.gov.msg.type` header). */
export type GovMsgType =
  "proposal" | "ballot" | "withdrawal" | "state_digest" | "ack" | "recovery_share";

export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return encode(["Signature1", protectedBytes, new Uint8Array(0), payload]);
}

export interface GovHeaders {
  readonly type: GovMsgType;
  /** Seconds since the Unix epoch. */
  readonly createdAt: number;
  readonly proposalId?: string;
}

/** A tagged COSE_Sign1 of `payload` signed by `signer` with CCF's governance headers. */
export async function signGovRequest(
  signer: CoseSigner,
  headers: GovHeaders,
  payload: Uint8Array,
): Promise<Uint8Array> {
  const header = new Map<number | string, unknown>([
    [HEADER_ALG, signer.alg],
    [HEADER_KID, new TextEncoder().encode(signer.memberId)],
    [GOV_MSG_TYPE, headers.type],
    [GOV_MSG_CREATED_AT, headers.createdAt],
  ]);
  if (headers.proposalId !== undefined) header.set(GOV_MSG_PROPOSAL_ID, headers.proposalId);
  const protectedBytes = encode(header);
  const signature = await signer.sign(sigStructure(protectedBytes, payload));
  return encode(new Tagged(COSE_SIGN1_TAG, [protectedBytes, new Map(), payload, signature]));
}

/** A decoded COSE_Sign1; its signature is not checked here. */
export interface Sign1 {
  readonly protectedBytes: Uint8Array;
  readonly protectedHeader: ReadonlyMap<unknown, unknown>;
  readonly unprotectedHeader: ReadonlyMap<unknown, unknown>;
  /** null when detached. */
  readonly payload: Uint8Array | null;
  readonly signature: Uint8Array;
}

function malformed(message: string): never {
  throw new ClientError({ code: ClientErrorCode.ReceiptInvalid }, `malformed COSE: ${message}`);
}

const DECODE_OPTIONS = {
  useMaps: true,
  rejectDuplicateMapKeys: true,
  allowIndefinite: false,
  allowUndefined: false,
} as const;

/** One CBOR item decoded strictly (maps as Map); ClientError(ReceiptInvalid) otherwise. */
export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    const item: unknown = decode(bytes, {
      ...DECODE_OPTIONS,
      tags: Tagged.preserve(COSE_SIGN1_TAG),
    });
    if (!(item instanceof Tagged)) return item;
    if (item.tag !== COSE_SIGN1_TAG) return malformed(`${what} has CBOR tag ${item.tag}, not 18`);
    return item.value;
  } catch (err: unknown) {
    // cborg throws plain Errors for bytes that are not one well-formed CBOR item.
    if (err instanceof Error && !(err instanceof ClientError)) {
      return malformed(`${what} is not CBOR (${err.message})`);
    }
    throw err;
  }
}

/** Decodes a COSE_Sign1, tagged 18 or untagged. */
export function decodeSign1(bytes: Uint8Array): Sign1 {
  const item = decodeCbor(bytes, "the message");
  if (!Array.isArray(item) || item.length !== 4) malformed("not an array of 4 elements");
  const [protectedBytes, unprotected, payload, signature] = item as unknown[];
  if (!(protectedBytes instanceof Uint8Array)) return malformed("protected header is not bytes");
  const protectedHeader =
    protectedBytes.byteLength === 0 ? new Map() : decodeCbor(protectedBytes, "protected header");
  if (!(protectedHeader instanceof Map)) return malformed("protected header is not a map");
  if (!(unprotected instanceof Map)) return malformed("unprotected header is not a map");
  if (payload !== null && !(payload instanceof Uint8Array)) {
    return malformed("payload is neither bytes nor nil");
  }
  if (!(signature instanceof Uint8Array)) return malformed("signature is not bytes");
  return {
    protectedBytes,
    protectedHeader,
    unprotectedHeader: unprotected,
    payload,
    signature,
  };
}
