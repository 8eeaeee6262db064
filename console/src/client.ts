/**
 * The SDK (@consortia/client) as the pages use it: one client over fetch against the console
 * server's /api (which pins the service certificate and passes the calls on), governance
 * through it, and the member identity the page signs with. The member's key is read from the
 * file the member opens, imported into WebCrypto as non-extractable by webCryptoSigner, and the
 * PEM text is dropped: the key never leaves the page and is forgotten on reload.
 */
import { connectFetch, webCryptoSigner, type CoseSigner } from "@consortia/client/browser";

export const client = connectFetch({ baseUrl: "/api", timeoutMs: 20_000, primaryWaitMs: 5_000 });

let signer: CoseSigner | null = null;
const listeners = new Set<() => void>();

/** The member the page signs as, or null. */
export function currentSigner(): CoseSigner | null {
  return signer;
}

/** Reads a member's certificate and key files and signs as that member from now on. */
export async function openIdentity(certFile: File, keyFile: File): Promise<CoseSigner> {
  const [certPem, keyPem] = await Promise.all([certFile.text(), keyFile.text()]);
  signer = await webCryptoSigner({ certPem, keyPem });
  for (const listener of listeners) listener();
  return signer;
}

export function forgetIdentity(): void {
  signer = null;
  for (const listener of listeners) listener();
}

/** Calls `listener` whenever the identity changes, until `signal` aborts. */
export function onIdentityChange(listener: () => void, signal: AbortSignal): void {
  listeners.add(listener);
  signal.addEventListener("abort", () => listeners.delete(listener));
}
