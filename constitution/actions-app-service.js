// Consortia default constitution: app services (docs/adr/0005-app-services.md). Concatenated
// after actions.js, validate.js, resolve.js and apply.js (src/cli/constitution-files.ts), so it
// adds its actions to the `actions` map of actions.js and may use its helpers (fail, checkType,
// checkOptionalType, checkBounds, checkX509CertBundle, getJson, setJson). Every name defined
// here starts with "appService" so as not to collide with another action file.
//
// - set_app_service {package_id, address, ca_cert?, timeout_ms?}: nodes connect to the app
//   server at `address` (host:port) over mutual TLS, check that it serves `package_id` (the hex
//   SHA-256 of the bundle file) and route the bundle's endpoints to it. The server's certificate
//   must chain to `ca_cert` when given, else to the service certificate. `timeout_ms` (default
//   5000) bounds the time a node waits for a call's result.
// - remove_app_service {package_id}: nodes drop the connection and the routes.

const APP_SERVICE_TABLE = "public:ccf.gov.app_services";
const APP_SERVICE_ARGS = ["package_id", "address", "ca_cert", "timeout_ms"];
const APP_SERVICE_TIMEOUT_MS_MAX = 600000;

function appServiceCheckPackageId(value) {
  checkType(value, "string", "package_id");
  if (!/^[0-9a-f]{64}$/.test(value)) {
    fail("package_id must be the lower-case hex SHA-256 of the bundle (64 characters)");
  }
}

function appServiceCheckAddress(value) {
  checkType(value, "string", "address");
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    fail("address must be host:port with a port from 1 to 65535");
  }
}

actions.set(
  "set_app_service",
  new Action(
    (args) => {
      for (const key of Object.keys(args)) {
        if (!APP_SERVICE_ARGS.includes(key)) fail(`${key} is not an argument of this action`);
      }
      appServiceCheckPackageId(args.package_id);
      appServiceCheckAddress(args.address);
      if (args.ca_cert !== undefined) checkX509CertBundle(args.ca_cert, "ca_cert");
      if (args.timeout_ms !== undefined) {
        checkBounds(args.timeout_ms, 1, APP_SERVICE_TIMEOUT_MS_MAX, "timeout_ms");
      }
    },
    (args) => {
      const value = { address: args.address };
      if (args.ca_cert !== undefined) value.ca_cert = args.ca_cert;
      if (args.timeout_ms !== undefined) value.timeout_ms = args.timeout_ms;
      setJson(APP_SERVICE_TABLE, ccf.strToBuf(args.package_id), value);
    },
  ),
);

actions.set(
  "remove_app_service",
  new Action(
    (args) => appServiceCheckPackageId(args.package_id),
    (args) => {
      const key = ccf.strToBuf(args.package_id);
      if (!ccf.kv[APP_SERVICE_TABLE].has(key)) {
        fail(`no app service is set for package ${args.package_id}`);
      }
      ccf.kv[APP_SERVICE_TABLE].delete(key);
    },
  ),
);
