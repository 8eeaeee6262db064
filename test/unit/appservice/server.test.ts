// startAppServer's refusals (src/appservice/server.ts, ADR 0005): a package id that is not the
// bundle's SHA-256 (the oracle is node:crypto's digest of the same bytes), a bundle that is not
// CCF's {metadata, modules}, an unusable key and an address in use, each a typed AppServiceError
// with its code; and a hello naming another package is answered with a PackageMismatch error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect } from "node:tls";
import { utf8 } from "../../../src/base/bytes.js";
import { encodeFrame, FrameDecoder } from "../../../src/base/frames.js";
import { ecPrivateKeyPem } from "../../../src/crypto/identity.js";
import {
  AppServiceError,
  AppServiceErrorCode,
  decodeServerMessage,
  encodeAppMessage,
} from "../../../src/appservice/messages.js";
import { packageIdOf, startAppServer } from "../../../src/appservice/server.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";

const service = await createStartIdentities({ now: new Date() });
const server = await createStartIdentities({ now: new Date() });
const BUNDLE = utf8(
  JSON.stringify({
    metadata: { endpoints: {} },
    modules: [{ name: "app.js", module: "export function f() { return {}; }" }],
  }),
);

function options(over: Record<string, unknown> = {}) {
  return {
    bundle: BUNDLE,
    packageId: packageIdOf(BUNDLE),
    host: "127.0.0.1",
    port: 0,
    tlsCert: server.node.certPem,
    tlsKey: ecPrivateKeyPem(server.node.privateKey),
    serviceCert: service.serviceCertPem,
    ...over,
  };
}

async function refusedWith(promise: Promise<unknown>, code: AppServiceErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof AppServiceError, String(err));
    assert.equal(err.code, code);
    return true;
  });
}

test("the package id is the hex SHA-256 of the bundle file, and another one is refused", async () => {
  assert.equal(packageIdOf(BUNDLE), createHash("sha256").update(BUNDLE).digest("hex"));
  const other = "0".repeat(64);
  await refusedWith(
    startAppServer(options({ packageId: other })),
    AppServiceErrorCode.PackageMismatch,
  );
});

test("a bundle that is not {metadata, modules}, an unusable key, a taken port: typed refusals", async () => {
  const bad = utf8('{"modules": 1}');
  await refusedWith(
    startAppServer(options({ bundle: bad, packageId: packageIdOf(bad) })),
    AppServiceErrorCode.InvalidOptions,
  );
  await refusedWith(
    startAppServer(options({ tlsKey: "not a key" })),
    AppServiceErrorCode.InvalidOptions,
  );
  const first = await startAppServer(options());
  try {
    await refusedWith(
      startAppServer(options({ port: first.port })),
      AppServiceErrorCode.ListenFailed,
    );
  } finally {
    await first.close();
  }
});

test("a hello for another package gets a PackageMismatch error", async () => {
  const running = await startAppServer(options());
  try {
    const reply = await new Promise<unknown>((resolve, reject) => {
      const socket = connect({
        host: "127.0.0.1",
        port: running.port,
        cert: service.node.certPem,
        key: ecPrivateKeyPem(service.node.privateKey),
        ca: server.serviceCertPem,
        checkServerIdentity: () => undefined,
      });
      const decoder = new FrameDecoder();
      socket.on("secureConnect", () =>
        socket.write(encodeFrame(encodeAppMessage({ t: "hello", package_id: "1".repeat(64) }))),
      );
      socket.on("data", (chunk: Buffer) => {
        for (const event of decoder.push(new Uint8Array(chunk))) {
          if (event.kind === "frame") {
            resolve(decodeServerMessage(event.payload));
            socket.destroy();
          }
        }
      });
      socket.on("error", reject);
    });
    assert.deepEqual((reply as { t: string; code: string }).t, "error");
    assert.equal((reply as { code: string }).code, "PackageMismatch");
  } finally {
    await running.close();
  }
});
