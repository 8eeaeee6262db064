// The node config loader (src/node/config/config.ts) against the fixtures in test/fixtures/config:
// the minimal Start config of ccf-compatibility.md §1.4 and a full one parse to exactly the
// expected NodeConfig (CCF's defaults, parsed sizes, times and addresses, absolute paths, data
// files read); every kind of operator mistake (unknown key at any depth, wrong type, missing key,
// bad enum, size, time or address, missing or invalid file) is a ConfigError with the right code
// and the dotted key of the culprit; and Join/Recover parse but are refused for now. Each case runs
// in a fresh temporary directory holding the config and the files it names.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  ConfigError,
  ConfigErrorCode,
  describeConfigError,
  IGNORED_KEYS,
  loadNodeConfig,
  parseNodeConfig,
  type NodeConfig,
} from "../../../../src/node/config/config.js";

const FIXTURES = join(import.meta.dirname, "../../../fixtures/config");

/** Input files each fixture names (relative to the config, or under `abs/` for absolute ones). */
const INPUTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "start-minimal": Object.fromEntries(
    [
      "member0_cert.pem",
      "member0_enc_pubk.pem",
      "validate.js",
      "apply.js",
      "resolve.js",
      "actions.js",
    ].map((f) => [f, "placeholder\n"]),
  ),
  "start-full": {
    "constitution/actions.js": "",
    "constitution/apply.js": "",
    "members/member0_cert.pem": "",
    "members/member0_enc_pubk.pem": "",
    "members/member0_data.json": '{"name": "member 0", "role": ["owner"]}',
    "members/member1_cert.pem": "",
    "abs/member2_cert.pem": "",
    "members/member2_enc_pubk.pem": "",
    "node_data.json": '{"rack": 7}',
    "service_data.json": '"a string is JSON too"',
  },
};

/** Fixture JSON, loosely typed so that tests can break it in arbitrary ways. */
type Json = Record<string, any>;

/**
 * Copies fixture `name` into a fresh directory as node.json (the placeholder "/ABSOLUTE" becomes
 * `<dir>/abs`), applies `mutate` to its JSON, writes the input files it names, returns its path.
 */
function setUp(t: TestContext, name: string, mutate?: (doc: Json) => void): string {
  const dir = mkdtempSync(join(tmpdir(), "consortia-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const text = readFileSync(join(FIXTURES, `${name}.json`), "utf8").replaceAll(
    "/ABSOLUTE",
    join(dir, "abs"),
  );
  const doc = JSON.parse(text) as Json;
  mutate?.(doc);
  for (const [file, content] of Object.entries(INPUTS[name] ?? INPUTS["start-minimal"]!)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), content);
  }
  const configPath = join(dir, "node.json");
  writeFileSync(configPath, JSON.stringify(doc));
  return configPath;
}

function expectError(load: () => unknown, code: ConfigErrorCode, key: string): ConfigError {
  let caught: unknown;
  try {
    load();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.key, key, caught.message);
  if (key !== "")
    assert.ok(caught.message.includes(key), `message names the key: ${caught.message}`);
  return caught;
}

const local = (port: number) => ({ host: "127.0.0.1", port });
const defaultHttp = {
  maxBodySizeBytes: 1024 * 1024,
  maxHeaderSizeBytes: 16384,
  maxHeadersCount: 256,
};

test("the minimal Start config (ccf-compatibility.md §1.4) loads with every CCF default filled in", (t) => {
  const path = setUp(t, "start-minimal");
  const d = dirname(path);
  const expected: NodeConfig = {
    configFile: path,
    network: {
      nodeToNodeInterface: { bindAddress: local(8081), publishedAddress: local(8081) },
      rpcInterfaces: {
        primary_rpc_interface: {
          bindAddress: local(8080),
          publishedAddress: local(8080),
          protocol: "tcp",
          appProtocol: "HTTP1",
          maxOpenSessionsSoft: 1000,
          maxOpenSessionsHard: 1010,
          http: defaultHttp,
        },
      },
    },
    nodeCertificate: {
      subjectName: "CN=CCF Node",
      subjectAltNames: ["iPAddress:127.0.0.1"],
      curveId: "Secp384R1",
      initialValidityDays: 1,
    },
    command: {
      type: "Start",
      serviceCertificateFile: join(d, "service_cert.pem"),
      start: {
        constitutionFiles: ["validate.js", "apply.js", "resolve.js", "actions.js"].map((f) =>
          join(d, f),
        ),
        members: [
          {
            certificateFile: join(d, "member0_cert.pem"),
            encryptionPublicKeyFile: join(d, "member0_enc_pubk.pem"),
            recoveryRole: "Participant",
          },
        ],
        serviceConfiguration: {
          recoveryThreshold: 1,
          maximumNodeCertificateValidityDays: 365,
          maximumServiceCertificateValidityDays: 365,
          recentCoseProposalsWindowSize: 100,
          reconfigurationType: "OneTransaction",
        },
        initialServiceCertificateValidityDays: 1,
        serviceSubjectName: "CN=CCF Service",
      },
    },
    ledger: {
      directory: join(d, "0.ledger"),
      readOnlyDirectories: [],
      chunkSizeBytes: 5 * 1024 * 1024,
    },
    snapshots: { directory: join(d, "0.snapshots"), txCount: 10000 },
    workerThreads: 0,
    idleConnectionTimeoutMs: 60_000,
    consensus: { messageTimeoutMs: 100, electionTimeoutMs: 5000, maxUncommittedTxCount: 10000 },
    ledgerSignatures: { txCount: 5000, delayMs: 1000 },
    outputFiles: { nodeCertificateFile: join(d, "0.pem"), pidFile: join(d, "node.pid") },
    ignoredKeys: [],
  };
  assert.deepEqual(loadNodeConfig(path), expected);
});

test("the full Start config loads every modelled key, reads data files and lists ignored keys", (t) => {
  const path = setUp(t, "start-full");
  const d = dirname(path);
  const at = (p: string) => join(d, p);
  const node0 = (port: number) => ({ host: "node0.example.com", port });
  const config = loadNodeConfig(path);
  const expected: NodeConfig = {
    configFile: path,
    network: {
      nodeToNodeInterface: {
        bindAddress: { host: "::1", port: 8091 },
        publishedAddress: node0(18091),
      },
      rpcInterfaces: {
        primary_rpc_interface: {
          bindAddress: { host: "0.0.0.0", port: 8090 },
          publishedAddress: node0(443),
          protocol: "tcp",
          appProtocol: "HTTP1",
          maxOpenSessionsSoft: 50,
          maxOpenSessionsHard: 60,
          http: {
            maxBodySizeBytes: 2 * 1024 * 1024,
            maxHeaderSizeBytes: 32768,
            maxHeadersCount: 64,
          },
        },
        operator_interface: {
          bindAddress: local(0),
          publishedAddress: local(0),
          protocol: "tcp",
          appProtocol: "HTTP1",
          maxOpenSessionsSoft: 1000,
          maxOpenSessionsHard: 1010,
          http: defaultHttp,
        },
      },
    },
    nodeCertificate: {
      subjectName: "CN=Consortia Node 0",
      subjectAltNames: ["iPAddress:::1", "dNSName:node0.example.com"],
      curveId: "Secp256R1",
      initialValidityDays: 7,
    },
    command: {
      type: "Start",
      serviceCertificateFile: at("out/service_cert.pem"),
      start: {
        constitutionFiles: [at("constitution/actions.js"), at("constitution/apply.js")],
        members: [
          {
            certificateFile: at("members/member0_cert.pem"),
            encryptionPublicKeyFile: at("members/member0_enc_pubk.pem"),
            dataJsonFile: at("members/member0_data.json"),
            data: { name: "member 0", role: ["owner"] },
            recoveryRole: "Owner",
          },
          { certificateFile: at("members/member1_cert.pem"), recoveryRole: "NonParticipant" },
          {
            certificateFile: at("abs/member2_cert.pem"),
            encryptionPublicKeyFile: at("members/member2_enc_pubk.pem"),
            recoveryRole: "NonParticipant",
          },
        ],
        serviceConfiguration: {
          recoveryThreshold: 0,
          maximumNodeCertificateValidityDays: 30,
          maximumServiceCertificateValidityDays: 60,
          recentCoseProposalsWindowSize: 20,
          reconfigurationType: "TwoTransaction",
        },
        initialServiceCertificateValidityDays: 3,
        serviceSubjectName: "CN=Consortia Test Service",
        coseSignatures: { issuer: "service.example.com" },
      },
    },
    nodeDataJsonFile: at("node_data.json"),
    nodeData: { rack: 7 },
    serviceDataJsonFile: at("service_data.json"),
    serviceData: "a string is JSON too",
    ledger: {
      directory: at("data/ledger"),
      readOnlyDirectories: [at("ro/ledger1"), at("ro/ledger2")],
      chunkSizeBytes: 1024,
    },
    snapshots: { directory: at("data/snapshots"), txCount: 100, readOnlyDirectory: at("ro/snaps") },
    workerThreads: 0,
    idleConnectionTimeoutMs: 60_000,
    consensus: { messageTimeoutMs: 10, electionTimeoutMs: 2000, maxUncommittedTxCount: 0 },
    ledgerSignatures: { txCount: 10, delayMs: 0.5 },
    outputFiles: {
      nodeCertificateFile: at("out/nodecert.pem"),
      pidFile: at("out/node.pid"),
      nodeToNodeAddressFile: at("out/n2n.txt"),
      rpcAddressesFile: at("out/rpc.json"),
    },
    ignoredKeys: [
      "logging",
      "network.rpc_interfaces.primary_rpc_interface.forwarding_timeout_ms",
      "network.rpc_interfaces.primary_rpc_interface.http_configuration.max_frame_size",
      "tick_interval",
    ],
  };
  assert.deepEqual(config, expected);
});

test("without SANs the node certificate names the published RPC hosts, as CCF's do", (t) => {
  const path = setUp(t, "start-minimal", (doc) => delete doc["node_certificate"]);
  assert.deepEqual(loadNodeConfig(path).nodeCertificate.subjectAltNames, ["iPAddress:127.0.0.1"]);
  const several = setUp(t, "start-minimal", (doc) => {
    doc["node_certificate"].subject_alt_names = [];
    doc["network"].rpc_interfaces = {
      a: { bind_address: "0.0.0.0:8080", published_address: "node0.example.com:443" },
      b: { bind_address: "[::]:8090", published_address: "[2001:db8::7]:8090" },
      c: { bind_address: "0.0.0.0:8091", published_address: "node0.example.com:8091" },
      d: { bind_address: "10.0.0.5:8092" },
    };
  });
  assert.deepEqual(loadNodeConfig(several).nodeCertificate.subjectAltNames, [
    "dNSName:node0.example.com",
    "iPAddress:2001:db8::7",
    "iPAddress:10.0.0.5",
  ]);
});

test("an explicit max_open_sessions_soft moves the default hard limit 10 above it", (t) => {
  const path = setUp(t, "start-minimal", (doc) => {
    doc["network"].rpc_interfaces.primary_rpc_interface.max_open_sessions_soft = 2000;
  });
  const rpc = loadNodeConfig(path).network.rpcInterfaces["primary_rpc_interface"];
  assert.equal(rpc?.maxOpenSessionsHard, 2010);
});

test("Join and Recover configs parse", (t) => {
  for (const name of ["join", "recover"] as const) {
    const path = setUp(t, name);
    const parsed = parseNodeConfig(JSON.parse(readFileSync(path, "utf8")), path);
    if (parsed.command.type === "Join") {
      assert.deepEqual(parsed.command.join, {
        targetRpcAddress: local(8080),
        retryTimeoutMs: 1000,
        followRedirect: true,
        fetchRecentSnapshot: true,
        fetchSnapshotMaxAttempts: 3,
        fetchSnapshotRetryIntervalMs: 1000,
      });
      continue;
    }
    assert.equal(parsed.command.type, "Recover");
    assert.equal(
      parsed.command.recover.previousServiceIdentityFile,
      join(dirname(path), "previous_service_cert.pem"),
    );
    assert.equal(parsed.command.recover.initialServiceCertificateValidityDays, 1);
  }
});

test("each bad fixture fails with the code and dotted key of its mistake", (t) => {
  const cases: Array<[string, ConfigErrorCode, string]> = [
    [
      "bad-unknown-key-deep",
      ConfigErrorCode.UnknownKey,
      "network.rpc_interfaces.primary_rpc_interface.http_configuration.max_bodysize",
    ],
    ["bad-missing-members", ConfigErrorCode.MissingRequired, "command.start.members"],
    ["bad-size", ConfigErrorCode.BadSize, "ledger.chunk_size"],
    ["bad-time", ConfigErrorCode.BadTime, "ledger_signatures.delay"],
    [
      "bad-address",
      ConfigErrorCode.BadAddress,
      "network.rpc_interfaces.primary_rpc_interface.bind_address",
    ],
  ];
  for (const [name, code, key] of cases) {
    const err = expectError(() => loadNodeConfig(setUp(t, name)), code, key);
    if (code === ConfigErrorCode.UnknownKey) assert.match(err.message, /^unknown key /);
  }
});

type Mutation = [string, (doc: Json) => void, ConfigErrorCode, string];
const rpc0 = (doc: Json): Json => doc["network"].rpc_interfaces.primary_rpc_interface;
const start = (doc: Json): Json => doc["command"].start;
const C = ConfigErrorCode;

const MUTATIONS: Mutation[] = [
  ["unknown top-level key", (d) => (d["ledgr"] = {}), C.UnknownKey, "ledgr"],
  ["unmodelled CCF key (acme)", (d) => (d["network"].acme = {}), C.UnknownKey, "network.acme"],
  [
    "misspelt key wins over the missing key it hides",
    (d) => (start(d).members[0] = { certificate: "member0_cert.pem" }),
    C.UnknownKey,
    "command.start.members[0].certificate",
  ],
  ["unknown key in enclave", (d) => (d["enclave"].file = "app.so"), C.UnknownKey, "enclave.file"],
  [
    "string where a number belongs",
    (d) => (start(d).service_configuration.recovery_threshold = "1"),
    C.WrongType,
    "command.start.service_configuration.recovery_threshold",
  ],
  [
    "array where an object belongs",
    (d) => (d["network"].rpc_interfaces = []),
    C.WrongType,
    "network.rpc_interfaces",
  ],
  ["boolean as a size", (d) => (d["ledger"].chunk_size = true), C.WrongType, "ledger.chunk_size"],
  [
    "document that is not an object",
    (d) => Object.assign(d, { network: 5 }),
    C.WrongType,
    "network",
  ],
  ["missing network", (d) => delete d["network"], C.MissingRequired, "network"],
  [
    "missing command.start for Start",
    (d) => delete d["command"].start,
    C.MissingRequired,
    "command.start",
  ],
  [
    "missing recovery_threshold",
    (d) => delete start(d).service_configuration.recovery_threshold,
    C.MissingRequired,
    "command.start.service_configuration.recovery_threshold",
  ],
  ["empty members", (d) => (start(d).members = []), C.BadValue, "command.start.members"],
  [
    "no rpc interface",
    (d) => (d["network"].rpc_interfaces = {}),
    C.BadValue,
    "network.rpc_interfaces",
  ],
  ["empty path", (d) => (d["ledger"].directory = ""), C.BadValue, "ledger.directory"],
  ["fractional count", (d) => (d["snapshots"].tx_count = 1.5), C.BadValue, "snapshots.tx_count"],
  ["zero chunk size", (d) => (d["ledger"].chunk_size = "0MB"), C.BadSize, "ledger.chunk_size"],
  ["lower-case command type", (d) => (d["command"].type = "start"), C.BadEnum, "command.type"],
  [
    "unknown curve",
    (d) => (d["node_certificate"].curve_id = "Secp256K1"),
    C.BadEnum,
    "node_certificate.curve_id",
  ],
  ["SNP platform", (d) => (d["enclave"].platform = "SNP"), C.BadEnum, "enclave.platform"],
  [
    "enclave without platform",
    (d) => delete d["enclave"].platform,
    C.MissingRequired,
    "enclave.platform",
  ],
  [
    "HTTP2",
    (d) => (rpc0(d).app_protocol = "HTTP2"),
    C.BadEnum,
    "network.rpc_interfaces.primary_rpc_interface.app_protocol",
  ],
  [
    "bad recovery role",
    (d) => (start(d).members[0].recovery_role = "Admin"),
    C.BadEnum,
    "command.start.members[0].recovery_role",
  ],
  [
    "recovery role without encryption key",
    (d) => (start(d).members[0] = { certificate_file: "member0_cert.pem", recovery_role: "Owner" }),
    C.BadValue,
    "command.start.members[0].recovery_role",
  ],
  [
    "bad SAN",
    (d) => (d["node_certificate"].subject_alt_names = ["dNSName:ok", "ip:1.2.3.4"]),
    C.BadValue,
    "node_certificate.subject_alt_names[1]",
  ],
  [
    "port out of range",
    (d) => (d["network"].node_to_node_interface.bind_address = "127.0.0.1:65536"),
    C.BadAddress,
    "network.node_to_node_interface.bind_address",
  ],
  [
    "bad published address",
    (d) => (rpc0(d).published_address = "example.com"),
    C.BadAddress,
    "network.rpc_interfaces.primary_rpc_interface.published_address",
  ],
  [
    "interface name that is not an identifier",
    (d) => (d["network"].rpc_interfaces = { "a.b": { bind_address: "nope" } }),
    C.BadAddress,
    'network.rpc_interfaces["a.b"].bind_address',
  ],
  [
    "hard session limit below soft",
    (d) => Object.assign(rpc0(d), { max_open_sessions_soft: 10, max_open_sessions_hard: 5 }),
    C.BadValue,
    "network.rpc_interfaces.primary_rpc_interface.max_open_sessions_hard",
  ],
  [
    "bad time unit",
    (d) => (d["consensus"] = { message_timeout: "100 millis" }),
    C.BadTime,
    "consensus.message_timeout",
  ],
  [
    "zero delay",
    (d) => (d["ledger_signatures"] = { delay: "0ms" }),
    C.BadTime,
    "ledger_signatures.delay",
  ],
  [
    "election timeout not above heartbeat",
    (d) => (d["consensus"] = { message_timeout: "1s", election_timeout: "1000ms" }),
    C.BadTime,
    "consensus.election_timeout",
  ],
];

test("each inline mutation of the minimal config fails with the right code and key", (t) => {
  for (const [what, mutate, code, key] of MUTATIONS) {
    const path = setUp(t, "start-minimal", mutate);
    t.diagnostic(what);
    const err = expectError(() => loadNodeConfig(path), code, key);
    if (what.startsWith("zero")) assert.match(err.message, /must be greater than zero/);
  }
});

test("keys in IGNORED_KEYS are accepted and reported, and the caller's object is untouched", () => {
  const doc = JSON.parse(readFileSync(join(FIXTURES, "start-minimal.json"), "utf8")) as Json;
  doc["logging"] = { host_level: "Trace" };
  doc["memory"] = { circuit_size: "16MB" };
  const config = parseNodeConfig(doc, "/somewhere/node.json");
  assert.deepEqual(config.ignoredKeys, ["logging", "memory"]);
  assert.deepEqual(doc["logging"], { host_level: "Trace" });
  assert.equal(config.command.serviceCertificateFile, "/somewhere/service_cert.pem");
  assert.ok(IGNORED_KEYS.includes("logging"));
  assert.ok(!IGNORED_KEYS.includes("enclave"), "enclave is modelled, not ignored");
});

test("a missing or non-file input names the key that points at it", (t) => {
  const cases: Array<[string, string, string]> = [
    ["member0_cert.pem", "start-minimal", "command.start.members[0].certificate_file"],
    [
      "member0_enc_pubk.pem",
      "start-minimal",
      "command.start.members[0].encryption_public_key_file",
    ],
    ["resolve.js", "start-minimal", "command.start.constitution_files[2]"],
    ["members/member0_data.json", "start-full", "command.start.members[0].data_json_file"],
    ["abs/member2_cert.pem", "start-full", "command.start.members[2].certificate_file"],
    ["node_data.json", "start-full", "node_data_json_file"],
    ["service_data.json", "start-full", "service_data_json_file"],
  ];
  for (const [file, fixture, key] of cases) {
    const path = setUp(t, fixture);
    unlinkSync(join(dirname(path), file));
    const err = expectError(() => loadNodeConfig(path), C.MissingFile, key);
    assert.ok(err.message.includes(join(dirname(path), file)), err.message);
  }
  const path = setUp(t, "start-minimal");
  unlinkSync(join(dirname(path), "apply.js"));
  mkdirSync(join(dirname(path), "apply.js"));
  expectError(() => loadNodeConfig(path), C.MissingFile, "command.start.constitution_files[1]");
});

test("a data file that is not JSON is an error naming its key", (t) => {
  for (const [file, key] of [
    ["members/member0_data.json", "command.start.members[0].data_json_file"],
    ["node_data.json", "node_data_json_file"],
    ["service_data.json", "service_data_json_file"],
  ] as const) {
    const path = setUp(t, "start-full");
    writeFileSync(join(dirname(path), file), "{not json");
    const err = expectError(() => loadNodeConfig(path), C.InvalidDataJson, key);
    assert.match(err.message, /is not valid JSON/);
  }
});

test("a config file that is missing or not JSON is reported against the file itself", (t) => {
  const path = setUp(t, "start-minimal");
  expectError(() => loadNodeConfig(join(dirname(path), "nope.json")), C.MissingFile, "");
  writeFileSync(path, '{"network": ');
  const err = expectError(() => loadNodeConfig(path), C.InvalidJson, "");
  assert.ok(err.message.includes(path));
});

test("describeConfigError gives one line naming the file and the key", (t) => {
  const path = setUp(t, "start-minimal", (d) => (d["ledger"].chunk_size = "5 MB"));
  let line = "";
  try {
    loadNodeConfig(path);
  } catch (err) {
    line = describeConfigError(err);
  }
  assert.ok(
    line.startsWith(`invalid node configuration ${path}: ledger.chunk_size: bad size`),
    line,
  );
  assert.ok(!line.includes("\n"));
  assert.equal(
    describeConfigError(new Error("boom\nagain")),
    "invalid node configuration: boom again",
  );
});

test("idle_connection_timeout: CCF's 60s by default, a duration, or null for never", (t) => {
  const parse = (value: unknown): number | null =>
    loadNodeConfig(setUp(t, "start-minimal", (doc) => (doc["idle_connection_timeout"] = value)))
      .idleConnectionTimeoutMs;
  assert.equal(loadNodeConfig(setUp(t, "start-minimal")).idleConnectionTimeoutMs, 60_000);
  assert.equal(parse("5s"), 5000);
  assert.equal(parse(null), null);
  for (const bad of ["soon", "0s", true]) {
    const path = setUp(t, "start-minimal", (doc) => (doc["idle_connection_timeout"] = bad));
    const err = expectError(
      () => loadNodeConfig(path),
      bad === true ? ConfigErrorCode.WrongType : ConfigErrorCode.BadTime,
      "idle_connection_timeout",
    );
    t.diagnostic(err.message);
  }
});
