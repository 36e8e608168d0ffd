// A CPU profile of the gateway under one bench case: the worker (built with its function names,
// STRIP_NAMES=0) in Miniflare with its inspector open, the local stack around it, wrk on the
// case, V8's sampling profiler over the run. Writes the .cpuprofile (open it in Chrome DevTools'
// Performance panel, or speedscope) and prints the functions with the most self time.
//
//   node scripts/profile.mjs [--case "chat stream 2000 tokens"] [--seconds 5] [--out .stack/gateway.cpuprofile]
//
// Cases: chat|messages  plain|stream  short|2000 tokens (as `npm run bench` names them).
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import WebSocket from "ws";
import { ROOT, TOOLS_DIR, freePort, startProcess, startRedis, tcpOpen, waitFor } from "../tests/lib/procs.mjs";
import { startMocks } from "../tests/lib/mocks.mjs";
import { stackVars } from "./stack.mjs";

const run = promisify(execFile);
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const CASE = arg("case", "chat stream 2000 tokens");
const SECONDS = Number(arg("seconds", "5"));
const OUT = path.resolve(ROOT, arg("out", ".stack/gateway.cpuprofile"));
const [api, mode, size] = CASE.split(" ");
const tokens = size === "short" ? 24 : Number(size);
const stream = mode === "stream";
const base = api === "messages"
  ? { path: "/v1/messages", provider: "anthropic", body: { model: "claude-haiku-4-5", messages: [{ role: "user", content: "Say hi in a few words." }] } }
  : { path: "/v1/chat/completions", provider: "openai", body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi in a few words." }] } };
const body = { ...base.body, max_tokens: tokens === 24 ? 16 : tokens + 100, ...(stream ? { stream: true } : {}), ...(stream && api === "chat" ? { stream_options: { include_usage: true } } : {}) };

const stops = [];
try {
  execFileSync("bash", ["scripts/build-worker"], { cwd: ROOT, stdio: "ignore", env: { ...process.env, STRIP_NAMES: "0" } });
  const redis = await startRedis();
  stops.push(() => redis.stop());
  const frontPort = await freePort();
  const token = "profile-upstash-token";
  const front = startProcess(path.join(TOOLS_DIR, "upstash-front"), [], { name: "upstash-front", env: { UPSTASH_FRONT_PORT: String(frontPort), UPSTASH_FRONT_TOKEN: token, REDIS_PORT: String(redis.port) } });
  stops.push(() => front.stop());
  await waitFor(() => tcpOpen(frontPort), { what: "upstash-front", child: front });
  const mocks = await startMocks();
  stops.push(() => mocks.stop());
  const admin = "profile-admin-secret-0123456789abcdef";
  const vars = { ...stackVars({ upstashPort: frontPort, upstashToken: token, mockPort: mocks.port, adminSecret: admin, stripeSecret: "whsec_profile" }), RATE_LIMITS: "bulk:ai=10000000/3600, anonymous=5/900", DEFAULT_PLAN: "bulk" };
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const mf = new Miniflare({
    scriptPath: path.join(ROOT, "build/index.js"), modules: true, modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }], bindings: vars,
    compatibilityDate: "2026-04-01", host: "127.0.0.1", port, inspectorPort, handleRuntimeStdio: (o, e) => { o.resume(); e.resume(); },
  });
  stops.push(() => mf.dispose());
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const key = await (await fetch(`${url}/admin/keys`, { method: "POST", headers: { "x-admin-secret": admin, "content-type": "application/json" }, body: JSON.stringify({ name: "profile", plan: "bulk", credits: 100_000_000, reason: "profile" }) })).json();
  if (tokens !== 24) await mocks.script({ provider: base.provider, times: 1_000_000_000, output_tokens: tokens });

  const script = path.join(os.tmpdir(), `profile-${process.pid}.lua`);
  const headers = { authorization: `Bearer ${key.api_key}`, "content-type": "application/json", "anthropic-version": "2023-06-01" };
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(JSON.stringify(body))}\n${Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join("\n")}\n`);
  const load = (s) => run("wrk", ["-t1", "-c10", `-d${s}s`, "--timeout", "60s", "-s", script, `${url}${base.path}`]);
  await load(1); // warm: the isolate compiles the module

  // The worker's inspector target, then V8's profiler over one wrk run.
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const target = targets.find((t) => !t.title?.includes("core:") || t.title?.includes("user")) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
  let id = 0;
  const pending = new Map();
  ws.on("message", (m) => {
    const msg = JSON.parse(m);
    if (pending.has(msg.id)) pending.get(msg.id)(msg);
  });
  const send = (method, params = {}) => new Promise((r) => { pending.set(++id, r); ws.send(JSON.stringify({ id, method, params })); });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  const { stdout } = await load(SECONDS);
  const { result } = await send("Profiler.stop");
  ws.close();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(result.profile));

  // Self time per function, as DevTools' bottom-up view sums it.
  const { nodes, samples, timeDeltas } = result.profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  samples.forEach((s, i) => {
    const n = byId.get(s);
    const name = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url ? path.basename(n.callFrame.url) : ""}`.trim();
    self.set(name, (self.get(name) ?? 0) + (timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const busy = total - (self.get("(idle)") ?? 0);
  console.log(`${CASE}: ${stdout.match(/(\d+) requests in/)?.[1]} requests in ${SECONDS} s; ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms sampled; profile: ${path.relative(ROOT, OUT)}`);
  console.log("self time (% of busy)  function");
  for (const [name, us] of [...self].filter(([n]) => n !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${((us / busy) * 100).toFixed(1).padStart(6)} %  ${name}`);
  }
} finally {
  for (const stop of stops.reverse()) {
    try { await stop(); } catch {}
  }
}
process.exit(0);
