/**
 * End-to-end: `consortia app serve` as a real process, in service mode through the CHAINCODE_*
 * aliases, on port 0 with real TLS. It prints the package id and the address it listens on; a
 * client presenting a certificate issued by the --service-cert (as a node presents its
 * service-endorsed certificate) and trusting the server's CA gets, after `hello` with that
 * package id, the bundle file's bytes; a hello naming another package gets PackageMismatch; a
 * client without a certificate gets nothing; SIGTERM stops the server and the command exits 0.
 * Oracles: node:crypto's SHA-256 of the bundle file (the package id) and the file's bytes.
 * Bounded: every wait has a timeout and the process is killed in `finally`.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect, type ConnectionOptions } from "node:tls";
import { encodeFrame, FrameDecoder } from "../../src/base/frames.js";
import { ecPrivateKeyPem } from "../../src/crypto/identity.js";
import {
  decodeServerMessage,
  encodeAppMessage,
  type ServerMessage,
} from "../../src/appservice/messages.js";
import { CLI_ARGV } from "../helpers/cli.js";
import { makePki } from "../helpers/pki.js";

const WAIT_MS = 20_000;

/** Resolves with the first match of `pattern` in the child's stdout (or rejects on exit). */
function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in:\n${text}`)), WAIT_MS);
    child.stdout!.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const match = pattern.exec(text);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`app serve exited (${code}) before ${pattern}:\n${text}`));
    });
  });
}

/** Connects, sends hello for `packageId`, and returns the first message (or the close reason). */
function hello(
  options: ConnectionOptions,
  packageId: string,
): Promise<ServerMessage | { t: "closed"; why: string }> {
  return new Promise((resolve) => {
    const socket = connect(options);
    const decoder = new FrameDecoder();
    const timer = setTimeout(() => socket.destroy(new Error("timeout")), WAIT_MS);
    const done = (answer: ServerMessage | { t: "closed"; why: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.once("secureConnect", () =>
      socket.write(encodeFrame(encodeAppMessage({ t: "hello", package_id: packageId }))),
    );
    socket.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(new Uint8Array(chunk))) {
        if (event.kind === "frame") done(decodeServerMessage(event.payload));
      }
    });
    socket.once("error", (err) => done({ t: "closed", why: err.message }));
    socket.once("close", () => done({ t: "closed", why: "closed" }));
  });
}

test(
  "app serve: prints its package id and address, serves the bundle over mTLS, stops on SIGTERM",
  {
    timeout: 60_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "consortia-app-serve-e2e-"));
    let child: ChildProcess | undefined;
    try {
      const service = await makePki(); // the network: service cert, a node's endorsed cert
      const server = await makePki({ subject: "CN=Test app server CA" }); // the server's TLS
      const files = {
        bundle: join(dir, "bundle.json"),
        cert: join(dir, "server_cert.pem"),
        key: join(dir, "server_privk.pem"),
        service: join(dir, "service_cert.pem"),
      };
      const bundleText = JSON.stringify({
        metadata: { endpoints: {} },
        modules: [{ name: "m.js", module: "export function f() { return { body: 1 }; }" }],
      });
      writeFileSync(files.bundle, bundleText);
      writeFileSync(files.cert, server.nodeCertPem);
      writeFileSync(files.key, ecPrivateKeyPem(server.nodeKeys.privateKey));
      writeFileSync(files.service, service.serviceCertPem);
      const packageId = createHash("sha256").update(readFileSync(files.bundle)).digest("hex");

      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env["CONSORTIA_APP_PACKAGE_ID"];
      delete env["CONSORTIA_APP_SERVER_ADDRESS"];
      env["CHAINCODE_PKG_ID"] = packageId;
      env["CHAINCODE_SERVER_ADDRESS"] = "127.0.0.1:0";
      const args = ["app", "serve", "--bundle", files.bundle, "--tls-cert", files.cert];
      args.push("--tls-key", files.key, "--service-cert", files.service);
      child = spawn(process.execPath, [...CLI_ARGV, ...args], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout!.on("data", (c: Buffer) => (output += c.toString("utf8")));
      const serving = await waitForLine(
        child,
        /Serving package ([0-9a-f]{64}) at 127\.0\.0\.1:(\d+)/,
      );
      assert.equal(serving[1], packageId);
      const port = Number(serving[2]);
      assert.ok(port > 0);

      const asNode: ConnectionOptions = {
        host: "127.0.0.1",
        port,
        ca: server.serviceCertPem,
        cert: service.nodeCertPem,
        key: ecPrivateKeyPem(service.nodeKeys.privateKey),
      };
      const answer = await hello(asNode, packageId);
      assert.equal(answer.t, "bundle", JSON.stringify(answer));
      if (answer.t === "bundle") {
        assert.equal(answer.package_id, packageId);
        assert.equal(Buffer.from(answer.bundle).toString("utf8"), bundleText);
      }
      const wrong = await hello(asNode, "0".repeat(64));
      assert.equal(wrong.t, "error", JSON.stringify(wrong));
      if (wrong.t === "error") assert.equal(wrong.code, "PackageMismatch");

      // Without a client certificate (or with one the service did not issue): no bundle.
      const anonymous = await hello(
        { host: "127.0.0.1", port, ca: server.serviceCertPem },
        packageId,
      );
      assert.equal(anonymous.t, "closed", JSON.stringify(anonymous));
      const stranger = await hello(
        { ...asNode, cert: server.nodeCertPem, key: ecPrivateKeyPem(server.nodeKeys.privateKey) },
        packageId,
      );
      assert.equal(stranger.t, "closed", JSON.stringify(stranger));

      const exited = new Promise<number | null>((r) => child!.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
      assert.match(output, /SIGTERM received: stopping the app server\n.*App server stopped/);
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
