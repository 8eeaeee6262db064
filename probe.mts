import { readFileSync } from "node:fs";
import { Store } from "./src/kv/store.js";
import { getQuickJS } from "./src/js/quickjs.js";
import { DEFAULT_JS_RUNTIME_OPTIONS, JsAppRuntime } from "./src/js/app-runtime.js";
import { installAppCrypto } from "./src/js/app-crypto-globals.js";
import { utf8 } from "./src/base/bytes.js";
const mods = new Map([["/logging.js", readFileSync("bench/js-logging-app/src/logging.js", "utf8") + "\nexport function nop() { return {}; }\nexport function bodyOnly(r) { r.body.json(); return {}; }\nexport function setOnly(r) { records.set(ccf.strToBuf('1'), ccf.strToBuf('x')); return {}; }"]]);
const rt = new JsAppRuntime(await getQuickJS(), mods, { runtimeOptions: DEFAULT_JS_RUNTIME_OPTIONS, installers: [(c) => installAppCrypto(c)], version: "v" });
const svc = { lastCommittedTxId: () => ({ view: 1, seqno: 1 }), statusForTxId: () => "Committed", viewForSeqno: () => 1 };
const store = new Store();
const base = { method: "POST", url: "/app/log/private", path: "/app/log/private", route: "/app/log/private", query: "", hostname: "127.0.0.1:8700", headers: { "content-type": "application/json", host: "127.0.0.1:8700", "content-length": "120" }, params: {}, body: utf8(JSON.stringify({ id: 1, msg: "x".repeat(100) })) };
const caller = { policy: "user_cert", id: "a".repeat(64), data: null, cert: "-----BEGIN CERTIFICATE-----\n" + "A".repeat(600) + "\n-----END CERTIFICATE-----\n" };
function time(name: string, handler: string, req: any) {
  const ep = { module: "/logging.js", handler, interpreterReuse: "logging" };
  for (let i = 0; i < 300; i++) rt.call(ep, req, { tx: store.begin(), access: { mode: "read-write" } }, svc);
  const t = process.cpuUsage();
  for (let i = 0; i < 2000; i++) rt.call(ep, req, { tx: store.begin(), access: { mode: "read-write" } }, svc);
  const u = process.cpuUsage(t);
  console.log(name, ((u.user + u.system) / 2000).toFixed(1), "µs cpu");
}
time("warm", "nop", base);
time("nop", "nop", base);
time("nop+caller", "nop", { ...base, caller });
time("body", "bodyOnly", base);
time("set", "setOnly", base);
time("post", "postPrivate", { ...base, caller });
