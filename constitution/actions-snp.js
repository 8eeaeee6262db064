// Consortia default constitution: the AMD SEV-SNP join policy actions (ccf-compatibility.md §4.3),
// with CCF 6's names, arguments and table encodings. Concatenated after actions.js (see
// src/cli/constitution-files.ts), so it adds to the `actions` map defined there and may use its
// helpers (fail, checkType, setJson, getJson, invalidateOtherOpenProposals).
//
// Tables, keys and values as CCF stores them:
//   nodes.snp.measurements     key: hex measurement        value: "AllowedToJoin"
//   nodes.snp.host_data        key: hex host data          value: the security policy ("" if none)
//   nodes.snp.uvm_endorsements key: DID                    value: {feed: {svn}}
//   nodes.snp.tcb_versions     key: hex CPUID (8 chars)    value: {fmc?, boot_loader, tee, snp,
//                                                                  microcode, hexstring?}
// Validation is stricter than CCF's where a value CCF accepts could never match a report
// (measurement and host data must be lowercase hex of the right length, TCB fields are bytes,
// the CPUID must be a known SEV-SNP product, Turin needs an fmc and Milan/Genoa have none).

const SNP_TABLES = {
  measurements: "public:ccf.gov.nodes.snp.measurements",
  hostData: "public:ccf.gov.nodes.snp.host_data",
  uvmEndorsements: "public:ccf.gov.nodes.snp.uvm_endorsements",
  tcbVersions: "public:ccf.gov.nodes.snp.tcb_versions",
};

const SNP_TCB_FIELDS = ["boot_loader", "tee", "snp", "microcode"];

function checkLowerHex(value, chars, field) {
  checkType(value, "string", field);
  const re = new RegExp(`^[a-f0-9]{${chars}}$`);
  if (!re.test(value)) fail(`${field} must be ${chars} lowercase hex chars`);
}

function checkNonEmptyString(value, field) {
  checkType(value, "string", field);
  if (value.length === 0) fail(`${field} must not be empty`);
}

function snpBufToHex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The SEV-SNP product of a CPUID key (CCF's hex form of CPUID Fn0000_0001_EAX), by AMD's model
 * ranges as the verifier (src/attestation) names them; undefined for any other CPU.
 */
function snpProductOfCpuid(cpuid) {
  const eax = parseInt(cpuid, 16);
  const family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
  const model = (((eax >> 16) & 0xf) << 4) | ((eax >> 4) & 0xf);
  if (family === 0x19 && model <= 0x0f) return "Milan";
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)))
    return "Genoa";
  if (family === 0x1a && model <= 0x11) return "Turin";
  return undefined;
}

function checkCpuid(value, field) {
  checkLowerHex(value, 8, field);
  if (snpProductOfCpuid(value) === undefined) {
    fail(`${field} ${value} is not the CPUID of a known SEV-SNP product (Milan, Genoa, Turin)`);
  }
}

function checkTcbByte(value, field) {
  if (!Number.isInteger(value) || value < 0 || value > 255) {
    fail(`${field} must be an integer between 0 and 255`);
  }
}

function checkTcbVersion(cpuid, tcb) {
  checkType(tcb, "object", "tcb_version");
  for (const key of Object.keys(tcb)) {
    if (key !== "fmc" && !SNP_TCB_FIELDS.includes(key)) fail(`tcb_version.${key} is not a field`);
  }
  for (const key of SNP_TCB_FIELDS) checkTcbByte(tcb[key], `tcb_version.${key}`);
  const turin = snpProductOfCpuid(cpuid) === "Turin";
  if (turin) checkTcbByte(tcb.fmc, "tcb_version.fmc");
  else if (tcb.fmc !== undefined) fail("tcb_version.fmc is only for Turin CPUIDs");
}

/** CCF's tcbHexToPolicy: the hex is the 8 TCB bytes reversed; the layout depends on product. */
function snpTcbHexToPolicy(cpuid, hex) {
  const raw = [];
  for (let i = hex.length - 2; i >= 0; i -= 2) raw.push(parseInt(hex.slice(i, i + 2), 16));
  if (snpProductOfCpuid(cpuid) === "Turin") {
    const [fmc, boot_loader, tee, snp, , , , microcode] = raw;
    return { fmc, boot_loader, tee, snp, microcode, hexstring: hex };
  }
  const [boot_loader, tee, , , , , snp, microcode] = raw;
  return { boot_loader, tee, snp, microcode, hexstring: hex };
}

function checkSecurityPolicy(args) {
  if (args.security_policy === undefined || args.security_policy === "") return;
  checkType(args.security_policy, "string", "security_policy");
  const digest = snpBufToHex(ccf.crypto.digest("SHA-256", ccf.strToBuf(args.security_policy)));
  if (digest !== args.host_data) {
    fail(`security_policy's SHA-256 ${digest} is not host_data ${args.host_data}`);
  }
}

function uvmFeeds(did) {
  return getJson(SNP_TABLES.uvmEndorsements, ccf.strToBuf(did)) ?? {};
}

actions.set(
  "add_snp_measurement",
  new Action(
    (args) => checkLowerHex(args.measurement, 96, "measurement"),
    (args, proposalId) => {
      setJson(SNP_TABLES.measurements, ccf.strToBuf(args.measurement), "AllowedToJoin");
      invalidateOtherOpenProposals(proposalId);
    },
  ),
);

actions.set(
  "remove_snp_measurement",
  new Action(
    (args) => checkType(args.measurement, "string", "measurement"),
    (args) => ccf.kv[SNP_TABLES.measurements].delete(ccf.strToBuf(args.measurement)),
  ),
);

actions.set(
  "add_snp_host_data",
  new Action(
    (args) => {
      checkLowerHex(args.host_data, 64, "host_data");
      checkSecurityPolicy(args);
    },
    (args, proposalId) => {
      const policy = args.security_policy ?? "";
      setJson(SNP_TABLES.hostData, ccf.strToBuf(args.host_data), policy);
      invalidateOtherOpenProposals(proposalId);
    },
  ),
);

actions.set(
  "remove_snp_host_data",
  new Action(
    (args) => checkType(args.host_data, "string", "host_data"),
    (args) => ccf.kv[SNP_TABLES.hostData].delete(ccf.strToBuf(args.host_data)),
  ),
);

actions.set(
  "add_snp_uvm_endorsement",
  new Action(
    (args) => {
      checkNonEmptyString(args.did, "did");
      checkNonEmptyString(args.feed, "feed");
      checkType(args.svn, "string", "svn");
      if (!/^\d+$/.test(args.svn)) fail("svn must be a string of decimal digits");
    },
    (args, proposalId) => {
      const feeds = uvmFeeds(args.did);
      feeds[args.feed] = { svn: args.svn };
      setJson(SNP_TABLES.uvmEndorsements, ccf.strToBuf(args.did), feeds);
      invalidateOtherOpenProposals(proposalId);
    },
  ),
);

actions.set(
  "remove_snp_uvm_endorsement",
  new Action(
    (args) => {
      checkType(args.did, "string", "did");
      checkType(args.feed, "string", "feed");
    },
    (args) => {
      const feeds = uvmFeeds(args.did);
      delete feeds[args.feed];
      const key = ccf.strToBuf(args.did);
      if (Object.keys(feeds).length === 0) ccf.kv[SNP_TABLES.uvmEndorsements].delete(key);
      else setJson(SNP_TABLES.uvmEndorsements, key, feeds);
    },
  ),
);

actions.set(
  "set_snp_minimum_tcb_version",
  new Action(
    (args) => {
      checkCpuid(args.cpuid, "cpuid");
      checkTcbVersion(args.cpuid, args.tcb_version);
    },
    (args, proposalId) => {
      setJson(SNP_TABLES.tcbVersions, ccf.strToBuf(args.cpuid), args.tcb_version);
      invalidateOtherOpenProposals(proposalId);
    },
  ),
);

actions.set(
  "set_snp_minimum_tcb_version_hex",
  new Action(
    (args) => {
      checkCpuid(args.cpuid, "cpuid");
      checkLowerHex(args.tcb_version, 16, "tcb_version");
    },
    (args, proposalId) => {
      const policy = snpTcbHexToPolicy(args.cpuid, args.tcb_version);
      setJson(SNP_TABLES.tcbVersions, ccf.strToBuf(args.cpuid), policy);
      invalidateOtherOpenProposals(proposalId);
    },
  ),
);

actions.set(
  "remove_snp_minimum_tcb_version",
  new Action(
    (args) => checkLowerHex(args.cpuid, 8, "cpuid"),
    (args) => {
      const key = ccf.strToBuf(args.cpuid);
      if (!ccf.kv[SNP_TABLES.tcbVersions].has(key)) fail(`CPUID ${args.cpuid} not found`);
      ccf.kv[SNP_TABLES.tcbVersions].delete(key);
    },
  ),
);
