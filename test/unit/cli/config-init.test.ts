// `consortia config init` (src/cli/commands/config-init.ts): the config it writes for a Start and
// a Join node on a host loads with the node's own loader (loadNodeConfig, which also checks the
// member and constitution files) and says what the operator asked: published host on both
// interfaces, bind address, ports, SANs, peer; IPv6 hosts are bracketed; bad options are refused
// with one line naming the option and a non-zero exit, and nothing is written. The directory it
// writes holds copies of the files the node reads, named relative to it, so it still passes
// `consortia node --check` once moved and with the originals gone. The CLI runs as a real
// process; the oracle is the node's config loader (and `node --check`) and the JSON written.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  nodeConfigForHost,
  parseHostOption,
  parsePeerOption,
} from "../../../src/cli/commands/config-init.js";
import { CliError } from "../../../src/cli/cli-error.js";
import { loadNodeConfig, parseNodeConfig } from "../../../src/node/config/config.js";
import { runCli } from "../../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "consortia-config-init-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "m0_cert.pem"), "placeholder\n");
writeFileSync(join(dir, "m0_enc_pubk.pem"), "placeholder\n");

test("config init --start writes a config the node loads, publishing the host it names", () => {
  const out = join(dir, "node0");
  const member = `${join(dir, "m0_cert.pem")},${join(dir, "m0_enc_pubk.pem")}`;
  const run = runCli([
    ...["config", "init", "--start", "--name", "node0", "--host", "node0.example.com"],
    ...["--member", member, "--san", "iPAddress:10.1.2.3", "--dir", out, "--rpc-port", "9443"],
  ]);
  assert.equal(run.status, 0, run.stderr);
  const file = join(out, "config.json");
  assert.match(run.stdout, new RegExp(`wrote ${file}.*https://node0\\.example\\.com:9443`));
  assert.match(run.stdout, /consortia node --config /);
  const config = loadNodeConfig(file);
  const rpc = config.network.rpcInterfaces["primary_rpc_interface"];
  assert.deepEqual(rpc?.bindAddress, { host: "0.0.0.0", port: 9443 });
  assert.deepEqual(rpc?.publishedAddress, { host: "node0.example.com", port: 9443 });
  assert.deepEqual(config.network.nodeToNodeInterface, {
    bindAddress: { host: "0.0.0.0", port: 8001 },
    publishedAddress: { host: "node0.example.com", port: 8001 },
  });
  assert.deepEqual(config.nodeCertificate.subjectAltNames, [
    "dNSName:node0.example.com",
    "iPAddress:10.1.2.3",
  ]);
  assert.equal(config.nodeCertificate.subjectName, "CN=node0");
  assert.equal(config.command.type, "Start");
  if (config.command.type !== "Start") return;
  assert.equal(config.command.start.members[0]?.recoveryRole, "Participant");
  assert.ok(config.command.start.constitutionFiles.some((f) => f.endsWith("actions.js")));
  assert.equal(config.ledger.directory, join(out, "ledger"));

  // A second run does not overwrite it.
  const again = runCli(["config", "init", "--start", "--name", "n", "--host", "h", "--dir", out]);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /--member|exists/);
});

test("a Join node on IPv6 binds :: and publishes its bracketed address", () => {
  const document = nodeConfigForHost({
    command: "Join",
    name: "node1",
    host: parseHostOption("--host", "[::1]"),
    rpcPort: 8000,
    nodePort: 8001,
    sans: [],
    peer: parsePeerOption("https://[fd00::2]:8000"),
    members: [],
    constitutionFiles: [],
    serviceCertificateFile: "service_cert.pem",
    recoveryThreshold: 1,
  });
  const config = parseNodeConfig(document, join(dir, "node1", "config.json"));
  assert.deepEqual(config.network.nodeToNodeInterface.bindAddress, { host: "::", port: 8001 });
  assert.deepEqual(config.network.nodeToNodeInterface.publishedAddress, {
    host: "::1",
    port: 8001,
  });
  assert.deepEqual(config.nodeCertificate.subjectAltNames, ["iPAddress:::1"]);
  assert.equal(config.command.type, "Join");
  if (config.command.type !== "Join") return;
  assert.deepEqual(config.command.join.targetRpcAddress, { host: "fd00::2", port: 8000 });
  assert.equal(
    (document["network"] as any).rpc_interfaces.primary_rpc_interface.bind_address,
    "[::]:8000",
  );
});

test("--peer takes https URLs (port 443 by default) and host:port", () => {
  assert.deepEqual(parsePeerOption("https://node0.example.com"), {
    host: "node0.example.com",
    port: 443,
  });
  assert.deepEqual(parsePeerOption("10.0.0.1:8000"), { host: "10.0.0.1", port: 8000 });
  for (const bad of ["http://n:8000", "https://n:8000/path", "n", "::1:8000", "n:0", "a b:1"]) {
    assert.throws(() => parsePeerOption(bad), CliError, bad);
  }
});

test("config init --recover writes a Recover config over the ledger it names", () => {
  const out = join(dir, "rec0");
  const previous = join(dir, "m0_cert.pem");
  const run = runCli([
    ...["config", "init", "--recover", "--name", "rec0", "--host", "rec0.example.com"],
    ...["--previous-service-cert", previous, "--ledger-dir", join(dir, "backup", "ledger")],
    ...["--snapshots-dir", join(dir, "backup", "snaps"), "--dir", out],
  ]);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /Recover: clients reach https:\/\/rec0\.example\.com:8000/);
  const config = loadNodeConfig(join(out, "config.json"));
  assert.equal(config.command.type, "Recover");
  assert.equal(
    config.command.type === "Recover" && config.command.recover.previousServiceIdentityFile,
    join(out, "previous_service_cert.pem"),
  );
  assert.equal(config.command.serviceCertificateFile, join(out, "service_cert.pem"));
  assert.equal(config.ledger.directory, join(dir, "backup", "ledger"));
  assert.equal(config.snapshots.directory, join(dir, "backup", "snaps"));
  const rpc = config.network.rpcInterfaces["primary_rpc_interface"];
  assert.deepEqual(rpc?.publishedAddress, { host: "rec0.example.com", port: 8000 });
});

test("bad options are refused with one line naming the option, and nothing is written", () => {
  const out = join(dir, "refused");
  const cases: [string[], RegExp][] = [
    [["--join", "--host", "bad host", "--peer", "n:1"], /--host "bad host"/],
    [["--join", "--host", "1.2.3", "--peer", "n:1"], /--host "1.2.3"/],
    [["--join", "--host", "h", "--peer", "ftp://n:1"], /--peer .*https/],
    [["--join", "--host", "h"], /--join needs --peer/],
    [["--start", "--join", "--host", "h"], /exactly one of --start, --join and --recover/],
    [["--host", "h"], /exactly one of --start, --join and --recover/],
    [["--recover", "--host", "h"], /--recover needs --previous-service-cert/],
    [
      ["--recover", "--host", "h", "--previous-service-cert", join(dir, "missing.pem")],
      /--previous-service-cert: .*missing\.pem: file not found/,
    ],
    [
      [
        "--join",
        "--host",
        "h",
        "--peer",
        "n:1",
        "--previous-service-cert",
        join(dir, "m0_cert.pem"),
      ],
      /--previous-service-cert is for --recover/,
    ],
    [["--recover", "--host", "h", "--peer", "n:1"], /--peer is for --join/],
    [["--start", "--host", "h"], /--start needs at least one --member/],
    [["--start", "--host", "h", "--member", join(dir, "missing.pem")], /file not found/],
    [["--join", "--host", "h", "--peer", "n:1", "--rpc-port", "0"], /--rpc-port "0"/],
    [["--join", "--host", "h", "--peer", "n:1", "--san", "ip:1"], /subject_alt_names\[1\]/],
    [
      ["--join", "--host", "h", "--peer", "n:1", "--service-cert", join(dir, "missing.pem")],
      /--service-cert: .*missing\.pem: file not found/,
    ],
  ];
  for (const [args, message] of cases) {
    const run = runCli(["config", "init", "--name", "n", "--dir", out, ...args]);
    assert.equal(run.status, 1, args.join(" "));
    assert.match(run.stderr, message);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
  }
  assert.equal(existsSync(out), false);
  assert.equal(readFileSync(join(dir, "m0_cert.pem"), "utf8"), "placeholder\n");
});

/** Writes placeholder files (the loader checks that inputs exist; it does not parse them). */
function placeholders(...files: string[]): void {
  for (const file of files) {
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, `placeholder ${file}\n`);
  }
}

test("the node directory holds its inputs: moved, with the originals gone, it still loads", () => {
  const inputs = join(dir, "inputs");
  const [cert, enc, service, previous] = ["m_cert.pem", "m_enc_pubk.pem", "sc.pem", "old.pem"].map(
    (f) => join(inputs, f),
  );
  const constitution = join(inputs, "constitution");
  placeholders(cert!, enc!, service!, previous!, join(constitution, "actions.js"));
  placeholders(join(constitution, "apply.js"), join(constitution, "extra.js"));
  const nodes: [string, string[]][] = [
    ["s0", ["--start", "--member", `${cert},${enc}`, "--constitution-dir", constitution]],
    ["j1", ["--join", "--peer", "https://s0.example.com:8000", "--service-cert", service!]],
    ["r2", ["--recover", "--previous-service-cert", previous!]],
  ];
  for (const [name, args] of nodes) {
    const run = runCli([
      ...["config", "init", "--name", name, "--host", `${name}.example.com`],
      ...["--dir", join(inputs, name), ...args],
    ]);
    assert.equal(run.status, 0, run.stderr);
  }
  const moved = join(dir, "elsewhere");
  mkdirSync(moved);
  for (const [name] of nodes) renameSync(join(inputs, name), join(moved, name));
  rmSync(inputs, { recursive: true });

  for (const [name] of nodes) {
    const check = runCli(["node", "--config", join(moved, name, "config.json"), "--check"]);
    assert.equal(check.status, 0, `${name}: ${check.stderr}`);
    assert.match(check.stdout, /is valid/);
  }

  const read = (name: string) => JSON.parse(readFileSync(join(moved, name, "config.json"), "utf8"));
  assert.deepEqual(read("s0").command.start.constitution_files, [
    "constitution/actions.js",
    "constitution/apply.js",
    "constitution/extra.js",
  ]);
  assert.deepEqual(read("s0").command.start.members, [
    {
      certificate_file: "members/m_cert.pem",
      encryption_public_key_file: "members/m_enc_pubk.pem",
    },
  ]);
  assert.equal(read("j1").command.service_certificate_file, "service_cert.pem");
  assert.equal(
    read("r2").command.recover.previous_service_identity_file,
    "previous_service_cert.pem",
  );
  assert.equal(
    readFileSync(join(moved, "s0", "members", "m_cert.pem"), "utf8"),
    `placeholder ${cert}\n`,
  );
});

test("--force over an earlier directory drops copies that no input names any more", () => {
  const inputs = join(dir, "force-inputs");
  const [m0, m1] = ["m0_cert.pem", "m1_cert.pem"].map((f) => join(inputs, f));
  placeholders(m0!, m1!);
  const node = join(inputs, "n0");
  const init = (members: string[], force: boolean) =>
    runCli([
      ...["config", "init", "--start", "--name", "n0", "--host", "n0.example.com"],
      ...members.flatMap((m) => ["--member", m]),
      ...["--dir", node, ...(force ? ["--force"] : [])],
    ]);
  assert.equal(init([m0!, m1!], false).status, 0);
  // A file the operator keeps in a subfolder of members/ is not config init's to remove.
  placeholders(join(node, "members", "keep", "notes.txt"));
  assert.equal(init([m0!], false).status, 1, "no overwrite without --force");
  const forced = init([m0!], true);
  assert.equal(forced.status, 0, forced.stderr);
  assert.deepEqual(readdirSync(join(node, "members")).sort(), ["keep", "m0_cert.pem"]);
  const config = JSON.parse(readFileSync(join(node, "config.json"), "utf8"));
  assert.deepEqual(config.command.start.members, [{ certificate_file: "members/m0_cert.pem" }]);
  const check = runCli(["node", "--config", join(node, "config.json"), "--check"]);
  assert.equal(check.status, 0, check.stderr);
});

test("config init refuses, in one line, what would fail later or elsewhere", () => {
  const out = join(dir, "refused-later");
  const [a, b] = [join(dir, "a", "cert.pem"), join(dir, "b", "cert.pem")];
  placeholders(a, b);
  const cases: [string[], RegExp][] = [
    [["--start", "--host", "h", "--member", a], /^consortia: config init needs --name <name>$/],
    [
      ["--name", "n", "--start", "--host", "fe80::1%eth0", "--member", a],
      /--host "fe80::1%eth0": a zone id \(%eth0\) means nothing to other hosts/,
    ],
    [
      ["--name", "n", "--join", "--host", "h", "--peer", "n:1", "--san", "iPAddress:fe80::1%1"],
      /--san "iPAddress:fe80::1%1": a certificate cannot name a zone id/,
    ],
    [
      ["--name", "n", "--start", "--host", "h", "--member", a, "--rpc-port", "8000"],
      /--rpc-port and --node-port are both 8000: .*different ports/,
    ],
    [
      ["--name", "n", "--join", "--host", "h", "--peer", "https://2001:db8::5:8000"],
      /--peer .*: an IPv6 host must be in brackets, e.g. https:\/\/\[2001:db8::5\]:8000$/,
    ],
    [
      ["--name", "n", "--start", "--host", "h", "--member", a, "--member", b],
      /--member: .*a\/cert\.pem and .*b\/cert\.pem would both be copied to members\/cert\.pem/,
    ],
  ];
  for (const [args, message] of cases) {
    const extra = args.includes("--rpc-port") ? ["--node-port", "8000"] : [];
    const run = runCli(["config", "init", "--dir", out, ...args, ...extra]);
    assert.equal(run.status, 1, `${args.join(" ")}: ${run.stdout}`);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr.trim(), message);
  }
  assert.equal(existsSync(out), false);
});
