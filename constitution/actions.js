// Consortia default constitution: actions. Loaded with validate.js, resolve.js and apply.js as one
// module (the files are concatenated, as CCF does), evaluated in the QuickJS sandbox with the
// `ccf` global. Each action pairs a pure `validate(args)` (throws with the offending argument) with
// an `apply(args, proposalId)` that first runs all checks, then does all writes.
// Argument names follow CCF's default constitution (ccf-compatibility.md §4.3).

const TABLES = {
  memberCerts: "public:ccf.gov.members.certs",
  memberEncryptionKeys: "public:ccf.gov.members.encryption_public_keys",
  memberInfo: "public:ccf.gov.members.info",
  memberAcks: "public:ccf.gov.members.acks",
  userCerts: "public:ccf.gov.users.certs",
  userInfo: "public:ccf.gov.users.info",
  nodeInfo: "public:ccf.gov.nodes.info",
  nodeEndorsedCerts: "public:ccf.gov.nodes.endorsed_certificates",
  virtualMeasurements: "public:ccf.gov.nodes.virtual.measurements",
  virtualHostData: "public:ccf.gov.nodes.virtual.host_data",
  serviceInfo: "public:ccf.gov.service.info",
  serviceConfig: "public:ccf.gov.service.config",
  constitution: "public:ccf.gov.constitution",
  signatures: "public:ccf.internal.signatures",
  coseHistory: "public:ccf.gov.cose_history",
  proposalsInfo: "public:ccf.gov.proposals_info",
  modules: "public:ccf.gov.modules",
  modulesQuickjsBytecode: "public:ccf.gov.modules_quickjs_bytecode",
  modulesQuickjsVersion: "public:ccf.gov.modules_quickjs_version",
  interpreterFlush: "public:ccf.gov.interpreter.flush",
  endpoints: "public:ccf.gov.endpoints",
  jsRuntimeOptions: "public:ccf.gov.js_runtime_options",
};

const RECOVERY_ROLES = ["NonParticipant", "Participant", "Owner"];
const RECONFIGURATION_TYPES = ["OneTransaction", "TwoTransaction"];

function singletonKey() {
  return new ArrayBuffer(8);
}

function fail(what) {
  throw new Error(what);
}

function checkType(value, type, field) {
  const ok = type === "array" ? Array.isArray(value) : typeof value === type && value !== null;
  if (!ok)
    fail(`${field} must be of type ${type} but is ${value === null ? "null" : typeof value}`);
}

function checkOptionalType(value, type, field) {
  if (value !== undefined) checkType(value, type, field);
}

function checkEnum(value, allowed, field) {
  if (!allowed.includes(value)) fail(`${field} must be one of ${allowed.join(", ")}`);
}

function checkBounds(value, low, high, field) {
  if (!Number.isInteger(value)) fail(`${field} must be an integer`);
  if (value < low || value > high) fail(`${field} must be between ${low} and ${high}`);
}

function checkEntityId(value, field) {
  checkType(value, "string", field);
  if (!/^[a-f0-9]{64}$/.test(value)) fail(`${field} must be a 64-character lowercase hex id`);
}

function checkX509CertBundle(value, field) {
  checkType(value, "string", field);
  if (!ccf.crypto.isValidX509CertBundle(value)) fail(`${field} must be a valid X509 cert bundle`);
}

function checkPemPublicKey(value, field) {
  checkType(value, "string", field);
  if (!/^-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*$/.test(value)) {
    fail(`${field} must be a PEM public key`);
  }
}

function checkNone(args) {
  if (args !== null && args !== undefined && Object.keys(args).length > 0) {
    fail("this action takes no arguments");
  }
}

function checkAsn1Time(value, field) {
  checkType(value, "string", field);
  if (!/^\d{12}Z$|^\d{14}Z$/.test(value)) fail(`${field} must be an ASN.1 time (YYMMDDhhmmssZ)`);
}

function getJson(table, key) {
  const value = ccf.kv[table].get(key);
  return value === undefined ? undefined : ccf.bufToJsonCompatible(value);
}

function setJson(table, key, value) {
  ccf.kv[table].set(key, ccf.jsonCompatibleToBuf(value));
}

function serviceInfo() {
  return getJson(TABLES.serviceInfo, singletonKey());
}

function serviceConfig() {
  return getJson(TABLES.serviceConfig, singletonKey());
}

function memberInfo(memberId) {
  return getJson(TABLES.memberInfo, ccf.strToBuf(memberId));
}

function isRecoveryMember(info, memberId) {
  const hasKey = ccf.kv[TABLES.memberEncryptionKeys].has(ccf.strToBuf(memberId));
  return hasKey && info.recovery_role !== "NonParticipant";
}

/** Active members holding recovery shares (CCF: Participant or Owner with an encryption key). */
function activeRecoveryMemberCount() {
  let count = 0;
  ccf.kv[TABLES.memberInfo].forEach((value, key) => {
    const info = ccf.bufToJsonCompatible(value);
    if (info.status === "Active" && isRecoveryMember(info, ccf.bufToStr(key))) count++;
  });
  return count;
}

/** The Merkle root of the last signature: what a new member acks as its state digest. */
function latestStateDigest() {
  const sig = getJson(TABLES.signatures, singletonKey());
  return sig === undefined ? "" : sig.root;
}

function updateServiceConfig(changes) {
  const config = serviceConfig();
  // First run all checks...
  if (changes.recovery_threshold !== undefined) {
    const info = serviceInfo();
    if (info.status === "Open" && changes.recovery_threshold > activeRecoveryMemberCount()) {
      fail(
        `recovery threshold ${changes.recovery_threshold} exceeds the number of active recovery ` +
          `members (${activeRecoveryMemberCount()})`,
      );
    }
  }
  // ...then all updates.
  const next = { ...config };
  for (const [key, value] of Object.entries(changes)) if (value !== undefined) next[key] = value;
  setJson(TABLES.serviceConfig, singletonKey(), next);
  if (changes.recovery_threshold !== undefined) ccf.node.triggerRecoverySharesRefresh();
}

/** Marks every other Open proposal Dropped: set_constitution changes the rules they were under. */
function invalidateOtherOpenProposals(proposalId) {
  const infos = ccf.kv[TABLES.proposalsInfo];
  const dropped = [];
  infos.forEach((value, key) => {
    const id = ccf.bufToStr(key);
    const info = ccf.bufToJsonCompatible(value);
    if (id !== proposalId && info.state === "Open") dropped.push([key, info]);
  });
  for (const [key, info] of dropped) {
    info.state = "Dropped";
    infos.set(key, ccf.jsonCompatibleToBuf(info));
  }
}

class Action {
  constructor(validate, apply) {
    this.validate = validate;
    this.apply = apply;
  }
}

const actions = new Map([
  [
    "set_constitution",
    new Action(
      (args) => {
        checkType(args.constitution, "string", "constitution");
        ccf.gov.validateConstitution(args.constitution);
      },
      (args, proposalId) => {
        ccf.kv[TABLES.constitution].set(singletonKey(), ccf.jsonCompatibleToBuf(args.constitution));
        invalidateOtherOpenProposals(proposalId);
      },
    ),
  ],
  [
    "set_member",
    new Action(
      (args) => {
        checkX509CertBundle(args.cert, "cert");
        if (args.encryption_pub_key !== undefined) {
          checkPemPublicKey(args.encryption_pub_key, "encryption_pub_key");
        }
        if (args.recovery_role !== undefined) {
          checkEnum(args.recovery_role, RECOVERY_ROLES, "recovery_role");
          if (args.recovery_role !== "NonParticipant" && args.encryption_pub_key === undefined) {
            fail("recovery_role requires encryption_pub_key");
          }
        }
      },
      (args) => {
        const id = ccf.pemToId(args.cert);
        const key = ccf.strToBuf(id);
        const role =
          args.recovery_role ??
          (args.encryption_pub_key === undefined ? "NonParticipant" : "Participant");
        ccf.kv[TABLES.memberCerts].set(key, ccf.strToBuf(args.cert));
        if (args.encryption_pub_key !== undefined) {
          ccf.kv[TABLES.memberEncryptionKeys].set(key, ccf.strToBuf(args.encryption_pub_key));
        }
        const info = { status: "Accepted", recovery_role: role };
        if (args.member_data !== undefined) info.member_data = args.member_data;
        setJson(TABLES.memberInfo, key, info);
        setJson(TABLES.memberAcks, key, { state_digest: latestStateDigest() });
      },
    ),
  ],
  [
    "remove_member",
    new Action(
      (args) => checkEntityId(args.member_id, "member_id"),
      (args) => {
        const key = ccf.strToBuf(args.member_id);
        const info = memberInfo(args.member_id);
        if (info === undefined) return; // idempotent, as CCF
        // Read before the deletes below: they remove the encryption key it looks at.
        const wasRecoveryMember = isRecoveryMember(info, args.member_id);
        const service = serviceInfo();
        if (service.status === "Open" && info.status === "Active" && wasRecoveryMember) {
          const threshold = serviceConfig().recovery_threshold;
          if (activeRecoveryMemberCount() - 1 < threshold) {
            fail(
              `removing member ${args.member_id} would leave fewer active recovery members than ` +
                `the recovery threshold (${threshold})`,
            );
          }
        }
        for (const table of [
          TABLES.memberCerts,
          TABLES.memberEncryptionKeys,
          TABLES.memberInfo,
          TABLES.memberAcks,
          TABLES.coseHistory,
        ]) {
          ccf.kv[table].delete(key);
        }
        if (wasRecoveryMember) ccf.node.triggerRecoverySharesRefresh();
      },
    ),
  ],
  [
    "set_member_data",
    new Action(
      (args) => {
        checkEntityId(args.member_id, "member_id");
        checkType(args.member_data, "object", "member_data");
      },
      (args) => {
        const key = ccf.strToBuf(args.member_id);
        const info = getJson(TABLES.memberInfo, key);
        if (info === undefined) fail(`member ${args.member_id} does not exist`);
        info.member_data = args.member_data;
        setJson(TABLES.memberInfo, key, info);
      },
    ),
  ],
  [
    "set_user",
    new Action(
      (args) => checkX509CertBundle(args.cert, "cert"),
      (args) => {
        const key = ccf.strToBuf(ccf.pemToId(args.cert));
        ccf.kv[TABLES.userCerts].set(key, ccf.strToBuf(args.cert));
        if (args.user_data !== undefined)
          setJson(TABLES.userInfo, key, { user_data: args.user_data });
        else ccf.kv[TABLES.userInfo].delete(key);
      },
    ),
  ],
  [
    "remove_user",
    new Action(
      (args) => checkEntityId(args.user_id, "user_id"),
      (args) => {
        const key = ccf.strToBuf(args.user_id);
        ccf.kv[TABLES.userCerts].delete(key);
        ccf.kv[TABLES.userInfo].delete(key);
      },
    ),
  ],
  [
    "set_user_data",
    new Action(
      (args) => {
        checkEntityId(args.user_id, "user_id");
        checkOptionalType(args.user_data, "object", "user_data");
      },
      (args) => {
        const key = ccf.strToBuf(args.user_id);
        if (!ccf.kv[TABLES.userCerts].has(key)) fail(`user ${args.user_id} does not exist`);
        if (args.user_data !== undefined)
          setJson(TABLES.userInfo, key, { user_data: args.user_data });
        else ccf.kv[TABLES.userInfo].delete(key);
      },
    ),
  ],
  [
    "set_recovery_threshold",
    new Action(
      (args) => checkBounds(args.recovery_threshold, 1, 254, "recovery_threshold"),
      (args) => updateServiceConfig({ recovery_threshold: args.recovery_threshold }),
    ),
  ],
  [
    "set_service_configuration",
    new Action(
      (args) => {
        for (const key of Object.keys(args)) {
          const known = [
            "reconfiguration_type",
            "recovery_threshold",
            "recent_cose_proposals_window_size",
          ];
          if (!known.includes(key)) fail(`unknown service configuration key ${key}`);
        }
        if (args.reconfiguration_type !== undefined) {
          checkEnum(args.reconfiguration_type, RECONFIGURATION_TYPES, "reconfiguration_type");
        }
        if (args.recovery_threshold !== undefined) {
          checkBounds(args.recovery_threshold, 1, 254, "recovery_threshold");
        }
        if (args.recent_cose_proposals_window_size !== undefined) {
          checkBounds(
            args.recent_cose_proposals_window_size,
            1,
            10000,
            "recent_cose_proposals_window_size",
          );
        }
      },
      (args) => updateServiceConfig(args),
    ),
  ],
  [
    "transition_service_to_open",
    new Action(
      (args) => {
        checkX509CertBundle(args.next_service_identity, "next_service_identity");
        if (args.previous_service_identity !== undefined) {
          checkX509CertBundle(args.previous_service_identity, "previous_service_identity");
        }
      },
      (args) => {
        const info = serviceInfo();
        if (info.status === "Recovering") {
          if (args.previous_service_identity === undefined) {
            fail("previous_service_identity is required to open a recovered service");
          }
        } else if (args.previous_service_identity !== undefined) {
          fail("previous_service_identity is only for a recovered service");
        }
        if (info.status !== "Opening" && info.status !== "Recovering") {
          fail(`service can only be opened from Opening or Recovering, not ${info.status}`);
        }
        const threshold = serviceConfig().recovery_threshold;
        if (activeRecoveryMemberCount() < threshold) {
          fail(
            `${activeRecoveryMemberCount()} active recovery members is fewer than the recovery ` +
              `threshold (${threshold})`,
          );
        }
        const previous =
          args.previous_service_identity === undefined
            ? undefined
            : ccf.strToBuf(args.previous_service_identity);
        ccf.node.transitionServiceToOpen(previous, ccf.strToBuf(args.next_service_identity));
      },
    ),
  ],
  [
    "transition_node_to_trusted",
    new Action(
      (args) => {
        checkEntityId(args.node_id, "node_id");
        checkAsn1Time(args.valid_from, "valid_from");
        if (args.validity_period_days !== undefined) {
          checkBounds(args.validity_period_days, 1, 36500, "validity_period_days");
        }
      },
      (args) => {
        const key = ccf.strToBuf(args.node_id);
        const node = getJson(TABLES.nodeInfo, key);
        if (node === undefined) fail(`node ${args.node_id} does not exist`);
        if (node.status === "Retired") fail(`node ${args.node_id} is retired`);
        const days =
          args.validity_period_days ??
          serviceConfig().maximum_node_certificate_validity_days ??
          365;
        const maxDays = serviceConfig().maximum_node_certificate_validity_days ?? 365;
        if (days > maxDays) fail(`validity_period_days ${days} exceeds the maximum ${maxDays}`);
        if (node.status === "Trusted") return;
        node.status = "Trusted";
        node.ledger_secret_seqno = ccf.network.getLatestLedgerSecretSeqno();
        setJson(TABLES.nodeInfo, key, node);
        if (node.certificate_signing_request !== undefined) {
          const cert = ccf.network.generateEndorsedCertificate(
            node.certificate_signing_request,
            args.valid_from,
            days,
          );
          ccf.kv[TABLES.nodeEndorsedCerts].set(key, ccf.strToBuf(cert));
        }
      },
    ),
  ],
  [
    "remove_node",
    new Action(
      (args) => checkEntityId(args.node_id, "node_id"),
      (args) => {
        const key = ccf.strToBuf(args.node_id);
        const node = getJson(TABLES.nodeInfo, key);
        if (node === undefined) return;
        if (node.status === "Pending") {
          ccf.kv[TABLES.nodeInfo].delete(key);
          ccf.kv[TABLES.nodeEndorsedCerts].delete(key);
        } else {
          node.status = "Retired";
          setJson(TABLES.nodeInfo, key, node);
        }
      },
    ),
  ],
  [
    "set_node_data",
    new Action(
      (args) => checkEntityId(args.node_id, "node_id"),
      (args) => {
        const key = ccf.strToBuf(args.node_id);
        const node = getJson(TABLES.nodeInfo, key);
        if (node === undefined) fail(`node ${args.node_id} does not exist`);
        node.node_data = args.node_data;
        setJson(TABLES.nodeInfo, key, node);
      },
    ),
  ],
  ["trigger_ledger_chunk", new Action(checkNone, () => ccf.node.triggerLedgerChunk())],
  ["trigger_snapshot", new Action(checkNone, () => ccf.node.triggerSnapshot())],
  ["trigger_ledger_rekey", new Action(checkNone, () => ccf.node.triggerLedgerRekey())],
  [
    "add_virtual_measurement",
    new Action(
      (args) => checkType(args.measurement, "string", "measurement"),
      (args) => {
        setJson(TABLES.virtualMeasurements, ccf.strToBuf(args.measurement), "AllowedToJoin");
      },
    ),
  ],
  [
    "remove_virtual_measurement",
    new Action(
      (args) => checkType(args.measurement, "string", "measurement"),
      (args) => ccf.kv[TABLES.virtualMeasurements].delete(ccf.strToBuf(args.measurement)),
    ),
  ],
  [
    "add_virtual_host_data",
    new Action(
      (args) => {
        checkType(args.host_data, "string", "host_data");
        if (!/^[a-f0-9]{64}$/.test(args.host_data))
          fail("host_data must be 64 lowercase hex chars");
      },
      (args) => setJson(TABLES.virtualHostData, ccf.strToBuf(args.host_data), ""),
    ),
  ],
  [
    "remove_virtual_host_data",
    new Action(
      (args) => checkType(args.host_data, "string", "host_data"),
      (args) => ccf.kv[TABLES.virtualHostData].delete(ccf.strToBuf(args.host_data)),
    ),
  ],
  [
    "set_js_app",
    new Action(
      (args) => {
        checkType(args.bundle, "object", "bundle");
        checkOptionalType(args.disable_bytecode_cache, "boolean", "disable_bytecode_cache");
        // Shape, policies, modes, modules that compile and export each endpoint's function.
        ccf.gov.validateJsApp(args.bundle);
      },
      (args) => {
        const modules = ccf.kv[TABLES.modules];
        const endpoints = ccf.kv[TABLES.endpoints];
        modules.clear();
        endpoints.clear();
        for (const module of args.bundle.modules) {
          modules.set(ccf.strToBuf("/" + module.name), ccf.strToBuf(module.module));
        }
        if (args.disable_bytecode_cache) {
          ccf.kv[TABLES.modulesQuickjsBytecode].clear();
          ccf.kv[TABLES.modulesQuickjsVersion].clear();
        } else {
          ccf.refreshAppBytecodeCache();
        }
        ccf.kv[TABLES.interpreterFlush].set(singletonKey(), ccf.jsonCompatibleToBuf(true));
        for (const [url, operations] of Object.entries(args.bundle.metadata.endpoints)) {
          for (const [method, info] of Object.entries(operations)) {
            const stored = { ...info, js_module: "/" + info.js_module };
            const key = ccf.strToBuf(`${method.toUpperCase()} ${url}`);
            endpoints.set(key, ccf.jsonCompatibleToBuf(stored));
          }
        }
      },
    ),
  ],
  [
    "remove_js_app",
    new Action(checkNone, () => {
      for (const table of [
        TABLES.modules,
        TABLES.modulesQuickjsBytecode,
        TABLES.modulesQuickjsVersion,
        TABLES.interpreterFlush,
        TABLES.endpoints,
      ]) {
        ccf.kv[table].clear();
      }
    }),
  ],
  [
    "set_js_runtime_options",
    new Action(
      (args) => {
        for (const field of ["max_heap_bytes", "max_stack_bytes", "max_execution_time_ms"]) {
          checkBounds(args[field], 1, Number.MAX_SAFE_INTEGER, field);
        }
        checkOptionalType(args.log_exception_details, "boolean", "log_exception_details");
        checkOptionalType(args.return_exception_details, "boolean", "return_exception_details");
        if (args.max_cached_interpreters !== undefined) {
          checkBounds(
            args.max_cached_interpreters,
            0,
            Number.MAX_SAFE_INTEGER,
            "max_cached_interpreters",
          );
        }
      },
      (args) => {
        ccf.kv[TABLES.jsRuntimeOptions].set(singletonKey(), ccf.jsonCompatibleToBuf(args));
      },
    ),
  ],
  ["refresh_js_app_bytecode_cache", new Action(checkNone, () => ccf.refreshAppBytecodeCache())],
]);
