/**
 * The browser entry of @consortia/client bundles for the web console: esbuild with platform
 * "browser" must resolve every import without Node built-ins (no `node:` module, no `require`
 * of one), and the bundle itself, loaded as a plain ES module, must sign governance requests
 * with WebCrypto that the node's own parser accepts (src/gov/cose-request.ts, the oracle) and
 * talk through a fetch Transport. A node: import slipping into the core fails this test.
 */
import assert from "node:assert/strict";
import { builtinModules } from "node:module";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { build } from "esbuild";
import { generateIdentity, memberIdFromCert } from "../../../src/crypto/identity.js";
import { checkGovCoseSignature, parseGovCoseRequest } from "../../../src/gov/cose-request.js";

const ENTRY = join(
  import.meta.dirname,
  "..",
  "..",
  "..",
  "packages",
  "client",
  "src",
  "browser.ts",
);
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

async function bundleBrowserEntry() {
  return build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
}

test("the browser entry bundles for platform browser with no Node built-in imported", async () => {
  const result = await bundleBrowserEntry();
  assert.deepEqual(result.errors, []);
  const imported = Object.values(result.metafile.inputs).flatMap((input) =>
    input.imports.map((i) => i.path),
  );
  const builtins = imported.filter((path) => BUILTINS.has(path) || path.startsWith("node:"));
  assert.deepEqual(builtins, [], "Node built-ins reached from the browser entry");
  const text = result.outputFiles[0]!.text;
  assert.doesNotMatch(text, /from\s*["']node:/);
  assert.doesNotMatch(text, /require\(\s*["'](node:)?(crypto|https|http|net|tls|fs)["']\s*\)/);
});

test("the bundle signs with WebCrypto and calls through fetch, as a page would", async () => {
  const result = await bundleBrowserEntry();
  const dir = mkdtempSync(join(tmpdir(), "sdk-bundle-"));
  try {
    const file = join(dir, "client.mjs");
    writeFileSync(file, result.outputFiles[0]!.text);
    const sdk = (await import(
      pathToFileURL(file).href
    )) as typeof import("@consortia/client/browser");
    const member = await generateIdentity({ name: "member0", now: new Date() });
    const signer = await sdk.webCryptoSigner({
      certPem: member.certPem,
      keyPem: member.privateKeyPem,
    });
    assert.equal(signer.memberId, memberIdFromCert(member.certPem));
    const sent: { url: string; init: RequestInit | undefined }[] = [];
    const fakeFetch = async (url: string | URL | Request, init?: RequestInit) => {
      sent.push({ url: String(url), init });
      const body = JSON.stringify({
        proposalId: "p1",
        proposerId: signer.memberId,
        proposalState: "Open",
        ballotCount: 0,
      });
      return new Response(body, { status: 200, headers: { "x-ms-ccf-transaction-id": "2.9" } });
    };
    const client = sdk.connectFetch({
      baseUrl: "http://127.0.0.1:7000/api/",
      fetch: fakeFetch,
      signer,
    });
    const created = await client.gov.propose([{ name: "trigger_snapshot", args: {} }]);
    assert.equal(created.txId, "2.9");
    assert.equal(
      sent[0]!.url,
      "http://127.0.0.1:7000/api/gov/members/proposals:create?api-version=2024-07-01",
    );
    const request = parseGovCoseRequest(new Uint8Array(sent[0]!.init!.body as Uint8Array));
    assert.equal(request.msgType, "proposal");
    assert.deepEqual(checkGovCoseSignature(request, member.certPem), { kind: "valid" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
