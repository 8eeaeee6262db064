// Consortia default constitution: the enclave registry's governance (docs/registry.md).
// Concatenated after actions.js, validate.js, resolve.js and apply.js (src/cli/
// constitution-files.ts), so it adds its actions to the `actions` map of actions.js and may use
// its helpers (fail, checkType, checkOptionalType, checkBounds, getJson, setJson). Every name
// defined here starts with "registry" so as not to collide with another action file.
//
// - set_registry_chaincode: writes a chaincode's policy; on an existing chaincode it re-checks
//   every Active registration against the new policy (platform, measurement == version,
//   sequence, channel, host_data, TCB: the rules of apps/registry/src/lib/policy.ts, copied
//   here because a constitution cannot import the app) and marks those that fail Revoked, with
//   the failure as reason and revoked_by "policy", in the same transaction.
// - remove_registry_chaincode: removes the policy; its enclaves become Revoked ("chaincode
//   removed", revoked_by "governance").
// - revoke_registry_enclave: one enclave becomes Revoked (revoked_by "governance").

const REGISTRY_MAPS = {
  chaincodes: "public:registry.chaincodes",
  enclaves: "public:registry.enclaves",
  enclaveStatus: "public:registry.enclave_status",
};
const REGISTRY_PLATFORMS = ["Insecure_Virtual", "AMD_SEV_SNP_v1"];
const REGISTRY_PRODUCTS = ["milan", "genoa", "turin"];
const REGISTRY_TCB_FIELDS = ["boot_loader", "tee", "snp", "microcode", "fmc"];
const REGISTRY_POLICY_ARGS = [
  "chaincode_id",
  "version",
  "sequence",
  "channel_id",
  "platforms",
  "host_data",
  "min_tcb",
  "registrars",
  "max_enclaves",
];

function registryCheckChaincodeId(value) {
  checkType(value, "string", "chaincode_id");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(value)) {
    fail("chaincode_id must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
  }
}

function registryCheckNonEmptyString(value, field) {
  checkType(value, "string", field);
  if (value.length === 0) fail(`${field} must not be empty`);
}

function registryCheckStringList(value, field, pattern, what) {
  checkType(value, "array", field);
  value.forEach((item, i) => {
    checkType(item, "string", `${field}[${i}]`);
    if (!pattern.test(item)) fail(`${field}[${i}] must be ${what}`);
  });
  if (new Set(value).size !== value.length) fail(`${field} must not repeat a value`);
}

function registryCheckMinTcb(value) {
  checkType(value, "object", "min_tcb");
  if (Array.isArray(value)) fail("min_tcb must be an object");
  for (const [key, tcb] of Object.entries(value)) {
    const where = `min_tcb[${JSON.stringify(key)}]`;
    if (!/^[0-9a-fA-F]{8}$/.test(key) && !REGISTRY_PRODUCTS.includes(key.toLowerCase())) {
      fail(`${where}: a key must be a CPUID (8 hex digits) or Milan, Genoa or Turin`);
    }
    checkType(tcb, "object", where);
    for (const field of Object.keys(tcb)) {
      if (!REGISTRY_TCB_FIELDS.includes(field)) fail(`${where}.${field} is not a TCB field`);
    }
    for (const field of REGISTRY_TCB_FIELDS) {
      if (field === "fmc" && tcb.fmc === undefined) continue;
      checkBounds(tcb[field], 0, 255, `${where}.${field}`);
    }
  }
}

function registryValidatePolicy(args) {
  for (const key of Object.keys(args)) {
    if (!REGISTRY_POLICY_ARGS.includes(key)) fail(`${key} is not an argument of this action`);
  }
  registryCheckChaincodeId(args.chaincode_id);
  registryCheckNonEmptyString(args.version, "version");
  checkBounds(args.sequence, 0, Number.MAX_SAFE_INTEGER, "sequence");
  if (args.channel_id !== undefined) registryCheckNonEmptyString(args.channel_id, "channel_id");
  registryCheckStringList(
    args.platforms,
    "platforms",
    /^(Insecure_Virtual|AMD_SEV_SNP_v1)$/,
    `one of ${REGISTRY_PLATFORMS.join(", ")}`,
  );
  if (args.platforms.length === 0) fail("platforms must name at least one platform");
  if (args.host_data !== undefined) {
    registryCheckStringList(args.host_data, "host_data", /^([0-9a-fA-F]{2})+$/, "hex");
  }
  if (args.min_tcb !== undefined) registryCheckMinTcb(args.min_tcb);
  if (args.registrars !== undefined) {
    registryCheckStringList(args.registrars, "registrars", /^[a-f0-9]{64}$/, "a user id");
  }
  if (args.max_enclaves !== undefined) {
    checkBounds(args.max_enclaves, 1, Number.MAX_SAFE_INTEGER, "max_enclaves");
  }
}

function registryCheckEnclaveId(value) {
  checkType(value, "string", "enclave_id");
  if (!/^[0-9A-Fa-f]{64}$/.test(value)) fail("enclave_id must be 64 hex digits");
}

const REGISTRY_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Bytes of base64 `text` that the registry app already checked. */
function registryFromBase64(text) {
  const clean = text.replace(/=+$/, "");
  const out = new Uint8Array(Math.floor((clean.length * 6) / 8));
  let value = 0;
  let bits = 0;
  let at = 0;
  for (const ch of clean) {
    value = ((value << 6) | REGISTRY_B64.indexOf(ch)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  return out.buffer;
}

function registryIsHex(text) {
  return text.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(text);
}

function registrySame(a, b) {
  return a === b || (registryIsHex(a) && registryIsHex(b) && a.toLowerCase() === b.toLowerCase());
}

function registryTcbFailure(policy, verified) {
  const min = policy.min_tcb;
  if (min === undefined || Object.keys(min).length === 0) return null;
  if (verified.format !== "AMD_SEV_SNP_v1") return null;
  const cpuid = verified.cpuid || "";
  const product = (verified.product || "").toLowerCase();
  const entry = Object.entries(min).find(
    ([k]) => k.toLowerCase() === cpuid || k.toLowerCase() === product,
  );
  if (entry === undefined) return `TcbTooLow: no minimum TCB for cpuid ${cpuid} (${product})`;
  const reported = verified.reported_tcb || {};
  for (const field of REGISTRY_TCB_FIELDS) {
    const want = entry[1][field];
    if (want === undefined) continue;
    const got = reported[field] === undefined ? -1 : reported[field];
    if (got < want) return `TcbTooLow: reported TCB ${field} ${got} is below ${want}`;
  }
  return null;
}

/** Why registration `r` (R parsed) breaks `policy` ("Code: message"), or null. */
function registryPolicyFailure(policy, r) {
  const verified = r.verified;
  const attested = JSON.parse(ccf.bufToStr(registryFromBase64(r.attested_data)));
  if (!policy.platforms.includes(verified.format)) {
    return `PlatformNotAllowed: platform ${verified.format} is no longer allowed`;
  }
  if (!registrySame(verified.measurement, policy.version)) {
    return `MeasurementMismatch: measurement ${verified.measurement} is not version ${policy.version}`;
  }
  if (!registrySame(attested.version, policy.version)) {
    return `MeasurementMismatch: attested version ${attested.version} is not version ${policy.version}`;
  }
  if (attested.sequence !== policy.sequence) {
    return `SequenceMismatch: sequence ${attested.sequence} is not sequence ${policy.sequence}`;
  }
  if (policy.channel_id !== undefined && attested.channel_id !== policy.channel_id) {
    return `ChannelMismatch: channel ${attested.channel_id} is not channel ${policy.channel_id}`;
  }
  const hostData = policy.host_data;
  if (hostData !== undefined && hostData.length > 0) {
    if (!hostData.some((h) => registrySame(h, verified.host_data))) {
      return `HostDataNotAllowed: host_data ${verified.host_data} is no longer allowed`;
    }
  }
  return registryTcbFailure(policy, verified);
}

/** [key, R] of every registration of `chaincodeId`. */
function registryEnclavesOf(chaincodeId) {
  const prefix = `${chaincodeId}/`;
  const found = [];
  ccf.kv[REGISTRY_MAPS.enclaves].forEach((value, key) => {
    const name = ccf.bufToStr(key);
    if (name.startsWith(prefix)) found.push([name, JSON.parse(ccf.bufToStr(value))]);
  });
  return found;
}

function registryIsActive(key) {
  const status = getJson(REGISTRY_MAPS.enclaveStatus, ccf.strToBuf(key));
  return status === undefined || status.status === "Active";
}

function registryRevoke(key, reason, revokedBy) {
  const status = { status: "Revoked", reason, revoked_by: revokedBy };
  setJson(REGISTRY_MAPS.enclaveStatus, ccf.strToBuf(key), status);
}

actions.set(
  "set_registry_chaincode",
  new Action(registryValidatePolicy, (args) => {
    const policy = {};
    for (const key of REGISTRY_POLICY_ARGS) if (args[key] !== undefined) policy[key] = args[key];
    // First decide every revocation against the new policy, then write.
    const revoked = [];
    for (const [key, r] of registryEnclavesOf(policy.chaincode_id)) {
      if (!registryIsActive(key)) continue;
      const failure = registryPolicyFailure(policy, r);
      if (failure !== null) revoked.push([key, failure]);
    }
    setJson(REGISTRY_MAPS.chaincodes, ccf.strToBuf(policy.chaincode_id), policy);
    for (const [key, reason] of revoked) registryRevoke(key, reason, "policy");
  }),
);

actions.set(
  "remove_registry_chaincode",
  new Action(
    (args) => registryCheckChaincodeId(args.chaincode_id),
    (args) => {
      const key = ccf.strToBuf(args.chaincode_id);
      if (!ccf.kv[REGISTRY_MAPS.chaincodes].has(key)) {
        fail(`chaincode ${args.chaincode_id} is not in the registry`);
      }
      const active = registryEnclavesOf(args.chaincode_id).filter(([k]) => registryIsActive(k));
      ccf.kv[REGISTRY_MAPS.chaincodes].delete(key);
      for (const [k] of active) registryRevoke(k, "chaincode removed", "governance");
    },
  ),
);

actions.set(
  "revoke_registry_enclave",
  new Action(
    (args) => {
      registryCheckChaincodeId(args.chaincode_id);
      registryCheckEnclaveId(args.enclave_id);
    },
    (args) => {
      const key = `${args.chaincode_id}/${args.enclave_id.toUpperCase()}`;
      if (!ccf.kv[REGISTRY_MAPS.enclaves].has(ccf.strToBuf(key))) {
        fail(`enclave ${args.enclave_id} is not registered for chaincode ${args.chaincode_id}`);
      }
      registryRevoke(key, "revoked by governance", "governance");
    },
  ),
);
