/**
 * The pages' calls, all to the console server (same origin): /api/<node|gov|app path> is passed
 * on to the network, /api/nodes/<id>/... to one node, /api/ledger/... read from ledger files.
 * Errors arrive as CCF's `{"error":{"code","message"}}`, from the network or from the console
 * itself (NetworkUnreachable, ...), and are thrown as ApiError with that code.
 */

export const GOV_API = "api-version=2024-07-01";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** GET (or POST with a COSE body) /api + path; ApiError for a non-2xx answer. */
export async function call(
  path: string,
  init: { body?: Uint8Array<ArrayBuffer>; signal?: AbortSignal } = {},
): Promise<ApiResponse> {
  let response: Response;
  try {
    response = await fetch(`/api${path}`, {
      method: init.body === undefined ? "GET" : "POST",
      ...(init.body === undefined
        ? {}
        : { body: init.body, headers: { "content-type": "application/cose" } }),
      ...(init.signal === undefined ? {} : { signal: init.signal }),
    });
  } catch (err: unknown) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "ConsoleUnreachable", "The console server does not answer.");
  }
  const text = await response.text();
  if (!response.ok) throw errorOf(response.status, text);
  return { status: response.status, headers: response.headers, text };
}

function errorOf(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    if (typeof code === "string" && typeof message === "string") {
      return new ApiError(status, code, `${code}: ${message}`);
    }
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  return new ApiError(status, "HttpError", `HTTP ${status}: ${text.slice(0, 200)}`);
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await call(path, signal === undefined ? {} : { signal });
  return JSON.parse(response.text) as T;
}

/** A /gov path with the api-version every gov call needs. */
export function gov(path: string): string {
  return `/gov${path}${path.includes("?") ? "&" : "?"}${GOV_API}`;
}
