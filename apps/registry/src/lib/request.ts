/**
 * Decoding a registration request (registerEnclave's body) into what the checks need, refusing
 * anything malformed with 400 InvalidInput: the FPC cases "empty or garbled credentials",
 * "empty evidence", "invalid attested data" and "empty host params". No IO.
 */
import { fromBase64, fromUtf8 } from "./codec.js";
import { RegistryError, type AttestedData, type Evidence } from "./model.js";

/** The largest attested data accepted (keys and a few names fit in far less). */
export const ATTESTED_DATA_BYTES_MAX = 64 * 1024;

export interface DecodedRequest {
  /** attested_data as sent (base64). */
  readonly attestedBase64: string;
  readonly attestedBytes: Uint8Array;
  readonly attested: AttestedData;
  readonly evidence: Evidence;
  readonly quote: Uint8Array;
  readonly endorsements: Uint8Array;
}

function invalid(message: string): never {
  throw new RegistryError("InvalidInput", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function base64Field(value: unknown, what: string, allowEmpty: boolean): Uint8Array {
  if (typeof value !== "string") invalid(`${what} must be a base64 string`);
  if (value.length === 0 && !allowEmpty) invalid(`${what} is empty`);
  const bytes = fromBase64(value);
  if (bytes === null) invalid(`${what} is not valid base64`);
  return bytes;
}

function nonEmptyString(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0)
    invalid(`${what} must be a non-empty string`);
  return value;
}

function optionalString(value: unknown, what: string): void {
  if (value !== undefined) nonEmptyString(value, what);
}

function isPem(value: string, label: string): boolean {
  const re = new RegExp(
    `^-----BEGIN ${label}-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END ${label}-----\\s*$`,
  );
  return re.test(value);
}

/** Checks the attested data's shape (field by field, naming the bad one). */
function checkAttestedData(data: unknown): AttestedData {
  if (!isObject(data)) invalid("attested data must be a JSON object");
  nonEmptyString(data.chaincode_id, "attested data chaincode_id");
  nonEmptyString(data.version, "attested data version");
  const sequence = data.sequence;
  if (typeof sequence !== "number" || !Number.isSafeInteger(sequence) || sequence < 0) {
    invalid("attested data sequence must be an integer >= 0");
  }
  optionalString(data.channel_id, "attested data channel_id");
  const host = data.host_params;
  if (!isObject(host) || Object.keys(host).length === 0) invalid("host_params are empty");
  nonEmptyString(host.peer_endpoint, "host_params.peer_endpoint");
  optionalString(host.peer_msp_id, "host_params.peer_msp_id");
  const vk = nonEmptyString(data.enclave_vk, "attested data enclave_vk");
  if (!isPem(vk, "PUBLIC KEY")) invalid("enclave_vk must be a PEM public key");
  const ek = data.chaincode_ek;
  if (ek !== undefined && (typeof ek !== "string" || !isPem(ek, "PUBLIC KEY"))) {
    invalid("chaincode_ek must be a PEM public key");
  }
  return data as unknown as AttestedData;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err: unknown) {
    if (err instanceof SyntaxError) invalid(`${what} is not valid JSON`);
    throw err;
  }
}

/** The request `body` (raw bytes) decoded and shape-checked; throws 400 InvalidInput. */
export function decodeRegisterRequest(body: Uint8Array): DecodedRequest {
  if (body.length === 0) invalid("the request body is empty: credentials needed");
  const text = fromUtf8(body);
  if (text === null) invalid("the request body is not UTF-8");
  const request = parseJson(text, "the request body");
  if (!isObject(request)) invalid("the request body must be a JSON object");
  const attestedBytes = base64Field(request.attested_data, "attested_data", false);
  if (attestedBytes.length > ATTESTED_DATA_BYTES_MAX) {
    invalid(`attested_data is larger than ${ATTESTED_DATA_BYTES_MAX} bytes`);
  }
  const attestedText = fromUtf8(attestedBytes);
  if (attestedText === null) invalid("attested data is not UTF-8");
  const attested = checkAttestedData(parseJson(attestedText, "attested data"));
  const evidence = request.evidence;
  if (!isObject(evidence) || Object.keys(evidence).length === 0) invalid("evidence is empty");
  const format = nonEmptyString(evidence.format, "evidence.format");
  const quote = base64Field(evidence.quote, "evidence.quote", false);
  const endorsements = base64Field(evidence.endorsements ?? "", "evidence.endorsements", true);
  return {
    attestedBase64: request.attested_data as string,
    attestedBytes,
    attested,
    evidence: {
      format,
      quote: evidence.quote as string,
      endorsements: String(evidence.endorsements ?? ""),
    },
    quote,
    endorsements,
  };
}
