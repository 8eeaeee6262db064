/**
 * Worker thread of `consortia ledger verify` (ledger-digest-pool.ts): digests the ledger files
 * it is sent (ledger/io/file-digest.ts) and posts each result back with its packed arrays
 * transferred. A file that cannot be read or is badly framed comes back as a described error.
 */
import { parentPort, workerData } from "node:worker_threads";
import { SignatureChecker } from "../../ledger/signature-checker.js";
import { digestLedgerFile, type FileDigestRequest } from "../../ledger/io/file-digest.js";
import { describeDigestError, type DigestReply } from "./ledger-digest-pool.js";

const { serviceCertPem } = workerData as { serviceCertPem: string | undefined };
const checker = new SignatureChecker();
const port = parentPort!;

port.on("message", (message: { id: number; request: FileDigestRequest }) => {
  let reply: DigestReply;
  try {
    const file = digestLedgerFile(message.request, { checker, serviceCertPem });
    reply = { id: message.id, file };
    port.postMessage(reply, [
      file.offsets.buffer as ArrayBuffer,
      file.leaves.buffer as ArrayBuffer,
    ]);
  } catch (err: unknown) {
    reply = { id: message.id, error: describeDigestError(err) };
    port.postMessage(reply);
  }
});
