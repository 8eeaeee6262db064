// `consortia keygen` end to end: the files keygenerator.sh would write, checked with openssl
// (subject, signature digest, curve, validity, key checks, RSA key pair), private key modes,
// the printed id against `openssl x509 -outform DER | sha256`, and the user errors (bad curve,
// bad name, refusal to overwrite without --force).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../../helpers/cli.js";
import { openssl, sha256, tempDir } from "../../helpers/pki.js";

const DAY_MS = 86_400_000;

function opensslFile(args: readonly string[]): string {
  const r = openssl(args);
  assert.equal(r.status, 0, r.out);
  return r.out;
}

function printedId(stdout: string): string {
  const match = /^id: ([0-9a-f]{64})$/m.exec(stdout);
  assert.ok(match, stdout);
  return match[1]!;
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

test("keygen writes a secp384r1 identity and an RSA encryption key that openssl accepts", () => {
  const { dir, cleanup } = tempDir("keygen-");
  try {
    const out = join(dir, "nested", "common");
    const run = runCli(["keygen", "--name", "member0", "--gen-enc-key", "--out", out]);
    assert.equal(run.status, 0, run.stderr);
    const file = (suffix: string): string => join(out, `member0_${suffix}.pem`);
    for (const suffix of ["privk", "cert", "enc_privk", "enc_pubk"]) {
      assert.ok(existsSync(file(suffix)), suffix);
      assert.match(run.stdout, new RegExp(`: ${file(suffix).replace(/[.]/g, "\\.")}$`, "m"));
    }
    assert.equal(modeOf(file("privk")), 0o600);
    assert.equal(modeOf(file("enc_privk")), 0o600);

    const text = opensslFile([
      "x509",
      "-in",
      file("cert"),
      "-noout",
      "-subject",
      "-dates",
      "-text",
    ]);
    assert.match(text, /subject=CN = member0/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA384/);
    assert.match(text, /NIST CURVE: P-384/);
    const notBefore = Date.parse(/notBefore=(.*)/.exec(text)![1]!);
    const notAfter = Date.parse(/notAfter=(.*)/.exec(text)![1]!);
    assert.equal(notAfter - notBefore, 365 * DAY_MS);
    assert.ok(Math.abs(notBefore - Date.now()) < 10 * 60_000, "valid from about now");

    assert.match(opensslFile(["ec", "-in", file("privk"), "-check", "-noout"]), /EC Key valid/);
    assert.match(opensslFile(["rsa", "-in", file("enc_privk"), "-check", "-noout"]), /RSA key ok/);
    opensslFile(["rsa", "-in", file("enc_privk"), "-pubout", "-out", join(dir, "derived.pem")]);
    assert.equal(
      readFileSync(join(dir, "derived.pem"), "utf8"),
      readFileSync(file("enc_pubk"), "utf8"),
    );
    assert.match(
      opensslFile(["rsa", "-pubin", "-in", file("enc_pubk"), "-noout", "-text"]),
      /Public-Key: \(2048 bit\)/,
    );

    const der = spawnSync("openssl", ["x509", "-in", file("cert"), "-outform", "DER"]);
    assert.equal(der.status, 0);
    assert.equal(printedId(run.stdout), Buffer.from(sha256(der.stdout)).toString("hex"));
  } finally {
    cleanup();
  }
});

test("keygen --curve secp256r1 makes a P-256 key and SHA-256 cert, no encryption key", () => {
  const { dir, cleanup } = tempDir("keygen-");
  try {
    const run = runCli(["keygen", "--name", "user0", "--curve", "secp256r1", "--out", dir]);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ["user0_cert.pem", "user0_privk.pem"]);
    const text = opensslFile([
      "x509",
      "-in",
      join(dir, "user0_cert.pem"),
      "-noout",
      "-subject",
      "-text",
    ]);
    assert.match(text, /subject=CN = user0/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /NIST CURVE: P-256/);
    assert.match(
      opensslFile(["ec", "-in", join(dir, "user0_privk.pem"), "-check", "-noout"]),
      /EC Key valid/,
    );
  } finally {
    cleanup();
  }
});

test("keygen refuses to overwrite existing files unless --force is given", () => {
  const { dir, cleanup } = tempDir("keygen-");
  try {
    const cert = join(dir, "member1_cert.pem");
    writeFileSync(cert, "precious");
    const refused = runCli(["keygen", "--name", "member1", "--out", dir]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /refusing to overwrite existing .*member1_cert\.pem.*--force/);
    assert.equal(readFileSync(cert, "utf8"), "precious");
    assert.equal(existsSync(join(dir, "member1_privk.pem")), false, "nothing written on refusal");

    writeFileSync(join(dir, "member1_privk.pem"), "old key", { mode: 0o644 });
    const forced = runCli(["keygen", "--name", "member1", "--out", dir, "--force"]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(readFileSync(cert, "utf8"), /^-----BEGIN CERTIFICATE-----/);
    assert.equal(modeOf(join(dir, "member1_privk.pem")), 0o600, "a replaced key becomes private");
  } finally {
    cleanup();
  }
});

test("keygen rejects an unknown curve and a name outside [A-Za-z0-9_.-] with exit 1", () => {
  const { dir, cleanup } = tempDir("keygen-");
  try {
    const curve = runCli(["keygen", "--name", "m", "--curve", "secp256k1", "--out", dir]);
    assert.equal(curve.status, 1);
    assert.match(curve.stderr, /secp256k1.*invalid.*secp384r1, secp256r1/);
    for (const name of ["../escape", "a b", "x/y", ""]) {
      const bad = runCli(["keygen", "--name", name, "--out", dir]);
      assert.equal(bad.status, 1, name);
      assert.match(bad.stderr, /invalid --name/, name);
    }
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test("keygen writes to the current directory by default", () => {
  // runCli's `--import tsx` resolves tsx from the cwd, so run from a temp dir with tsx's path.
  const { dir, cleanup } = tempDir("keygen-");
  try {
    const entry = join(import.meta.dirname, "..", "..", "..", "src", "cli", "entry.ts");
    const run = spawnSync(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), entry, "keygen", "--name", "here"],
      { cwd: dir, encoding: "utf8" },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ["here_cert.pem", "here_privk.pem"]);
  } finally {
    cleanup();
  }
});

test("keygen --help describes the files it writes and the id it prints", () => {
  const help = runCli(["keygen", "--help"]);
  assert.equal(help.status, 0);
  for (const text of [
    "<name>_privk.pem",
    "<name>_cert.pem",
    "<name>_enc_privk.pem",
    "<name>_enc_pubk.pem",
    "--gen-enc-key",
    "--curve",
    "--out",
    "--force",
    "SHA-256 of the certificate",
  ]) {
    assert.ok(help.stdout.includes(text), text);
  }
});
