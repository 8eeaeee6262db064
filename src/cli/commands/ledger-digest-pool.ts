/**
 * Where `consortia ledger verify` digests ledger files (ledger/io/file-digest.ts): on worker
 * threads for a large ledger, so that reading, decoding, hashing and node-signature checks run
 * on every core while the main thread chains the roots; inline for a small one, where starting
 * workers would cost more than it saves. Either way the results come back in file order, and a
 * file's error is rethrown as the reader would have thrown it.
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { isNodeError } from "../../base/errors.js";
import { LedgerError, type LedgerErrorType } from "../../ledger/io/ledger-reader.js";
import {
  digestLedgerFile,
  type DigestedFile,
  type FileDigestRequest,
} from "../../ledger/io/file-digest.js";
import { SignatureChecker } from "../../ledger/signature-checker.js";
import { startWorker } from "../../platform/workers.js";
import { CliError } from "../cli-error.js";

export interface Digester {
  /** Files are digested in the order they are asked for; results may be awaited in any order. */
  digest(request: FileDigestRequest): Promise<DigestedFile>;
  close(): Promise<void>;
}

/** A worker's failure to digest a file, as plain data. */
export type DigestError =
  | { readonly kind: "ledger"; readonly type: LedgerErrorType; readonly message: string }
  | { readonly kind: "file-system"; readonly message: string }
  | { readonly kind: "bug"; readonly message: string; readonly stack: string | undefined };

export type DigestReply =
  | { readonly id: number; readonly file: DigestedFile }
  | { readonly id: number; readonly error: DigestError };

export function describeDigestError(err: unknown): DigestError {
  if (err instanceof LedgerError) return { kind: "ledger", type: err.type, message: err.message };
  if (isNodeError(err)) return { kind: "file-system", message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: "bug", message, stack: err instanceof Error ? err.stack : undefined };
}

/** The error a described failure stands for: what digesting the file inline would throw. */
function rethrown(error: DigestError): Error {
  switch (error.kind) {
    case "ledger":
      return new LedgerError(error.type, error.message);
    case "file-system":
      return new CliError(`cannot read the ledger: ${error.message}`);
    case "bug": {
      const bug = new Error(`ledger digest worker: ${error.message}`);
      if (error.stack !== undefined) bug.stack = error.stack;
      return bug;
    }
  }
}

/** Digests on this thread. */
export function inlineDigester(serviceCertPem: string | undefined): Digester {
  const checker = new SignatureChecker();
  return {
    digest: (request) =>
      new Promise((resolve) => resolve(digestLedgerFile(request, { checker, serviceCertPem }))),
    close: async () => {},
  };
}

/** Workers to use: one per core, at least two (the main thread mostly waits on them). */
export function digestWorkerCount(): number {
  return Math.max(2, availableParallelism());
}

/** Digests on `count` worker threads, files dealt out in turn. */
export function workerDigester(count: number, serviceCertPem: string | undefined): Digester {
  const entry = new URL("./ledger-digest-worker.ts", import.meta.url);
  const waiting = new Map<
    number,
    { resolve: (f: DigestedFile) => void; reject: (e: Error) => void }
  >();
  const workers: Worker[] = [];
  let nextId = 0;
  for (let i = 0; i < count; i++) {
    const worker = startWorker(entry, { serviceCertPem });
    worker.on("message", (reply: DigestReply) => {
      const pending = waiting.get(reply.id);
      if (pending === undefined) return;
      waiting.delete(reply.id);
      if ("file" in reply) pending.resolve(reply.file);
      else pending.reject(rethrown(reply.error));
    });
    worker.on("error", (err) => {
      for (const pending of waiting.values()) pending.reject(err);
      waiting.clear();
    });
    workers.push(worker);
  }
  return {
    digest: (request) => {
      const id = nextId++;
      const result = new Promise<DigestedFile>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
      });
      workers[id % count]!.postMessage({ id, request });
      return result;
    },
    close: async () => {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
