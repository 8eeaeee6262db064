import { getQuickJS } from "./src/js/quickjs.js";
import { newHostFunction } from "./src/js/host-function.js";
const q = await getQuickJS();
const rt = q.newRuntime(); const ctx = rt.newContext();
const f = ctx.newFunction("f", () => undefined); ctx.setProp(ctx.global, "f", f); f.dispose();
const g = newHostFunction(ctx, "g", () => undefined); ctx.setProp(ctx.global, "g", g); g.dispose();
const h = ctx.newFunction("h", (a) => ctx.newString(ctx.getString(a!))); ctx.setProp(ctx.global, "h", h); h.dispose();
for (const [name, code] of [["empty", "for (let i = 0; i < 10000; i++) {}"], ["f()", "for (let i = 0; i < 10000; i++) f()"], ["g()", "for (let i = 0; i < 10000; i++) g()"], ["h(s)", "for (let i = 0; i < 10000; i++) h('abc')"]]) {
  ctx.evalCode(code).dispose();
  const t = process.cpuUsage(); ctx.evalCode(code).dispose(); const u = process.cpuUsage(t);
  console.log(name, ((u.user + u.system) / 10000).toFixed(2), "µs/iter");
}
const nopFn = ctx.evalCode("(function (a, b, c) { return 'x'; })").unwrap();
function t(name: string, f: () => void) { for (let i = 0; i < 1000; i++) f(); const s = process.cpuUsage(); for (let i = 0; i < 10000; i++) f(); const u = process.cpuUsage(s); console.log(name, ((u.user + u.system) / 10000).toFixed(2), "µs"); }
t("newString+dispose", () => ctx.newString("hello world").dispose());
t("callFunction nop", () => { const r = ctx.callFunction(nopFn, ctx.undefined); r.unwrap().dispose(); });
t("callFunction 3 str", () => { const a = ctx.newString("a"), b = ctx.newString("b"), c = ctx.newString("c"); const r = ctx.callFunction(nopFn, ctx.undefined, a, b, c); a.dispose(); b.dispose(); c.dispose(); const v = r.unwrap(); ctx.getString(v); v.dispose(); });
t("typeof", () => ctx.typeof(nopFn));
t("getPromiseState", () => ctx.getPromiseState(nopFn));
t("setMemoryLimit", () => rt.setMemoryLimit(1e8));
t("setInterruptHandler", () => rt.setInterruptHandler(() => false));
t("getWasmMemory", () => q.getWasmMemory().buffer.byteLength);
