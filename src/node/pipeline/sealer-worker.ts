/**
 * Sealer worker thread (sealer.ts): seals batches with the ledger secrets it was given and
 * posts the results back on its port, then bumps the shared counter the node may sleep on.
 */
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import type { Seqno } from "../../base/ids.js";
import { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import { sealBatch } from "../../ledger/seal-batch.js";

interface SealerWorkerData {
  readonly secrets: { fromSeqno: number; key: Uint8Array }[];
  readonly port: MessagePort;
  readonly counter: Int32Array;
}

type SealerMessage =
  | { readonly kind: "batch"; readonly bytes: ArrayBuffer }
  | { readonly kind: "secret"; readonly fromSeqno: number; readonly key: Uint8Array }
  | { readonly kind: "retract-secrets"; readonly afterSeqno: number };

const data = workerData as SealerWorkerData;
const secrets = LedgerSecrets.fromList(data.secrets);

parentPort!.on("message", (message: SealerMessage) => {
  if (message.kind === "secret") {
    secrets.add(message.fromSeqno as Seqno, message.key);
    return;
  }
  if (message.kind === "retract-secrets") {
    secrets.retractAfter(message.afterSeqno as Seqno);
    return;
  }
  try {
    const results = sealBatch(new Uint8Array(message.bytes), secrets);
    data.port.postMessage(results.buffer, [results.buffer as ArrayBuffer]);
  } catch (err: unknown) {
    // The node thread may be blocked waiting for this batch: hand it the failure to rethrow.
    data.port.postMessage({
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
  }
  Atomics.add(data.counter, 0, 1);
  Atomics.notify(data.counter, 0);
  // The batch-done notice (sealer.ts onSealed): results wait on the port for receiveMessageOnPort.
  parentPort!.postMessage(0);
});
