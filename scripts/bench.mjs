// `npm run bench`: the gateway against a pass-through floor and against its peers, on this
// machine, in one run, every figure beside a baseline measured in the same run. A benchmark,
// never a pass/fail timing test: it prints, it does not judge (only a broken target is reported).
//
// Targets, all calling the same mock (`tools/mock-providers`, release build) with the same body:
//   mock      the mock directly (the provider's own cost)
//   floor     a pass-through proxy worker (JS) served by Miniflare/workerd: the least any worker adds
//   gateway   this gateway in Miniflare/workerd, with real admission and settlement through the
//             Upstash front and redis-server
//   portkey   @portkey-ai/gateway 1.15.2 (Node), bound to 127.0.0.1
//   litellm   litellm[proxy] 1.106.2 (Python), a model list pointing at the mock
// Peers are installed on first use into ~/.cache/ai-api-broker-bench and skipped, with a message,
// when they cannot be. Load: wrk, POST /v1/chat/completions (gpt-4o-mini), concurrency 1 and 10,
// plain and streaming. CPU per call: utime+stime of the serving process(es) from /proc over each
// run. Stream time to first byte: sequential calls from Node.
//
// Per format (issue 22): chat completions (gpt-4o-mini) and messages (claude-haiku-4-5, Anthropic's
// own format), plain and streamed, short and LONG_TOKENS tokens, CPU per call at c10 for the
// floor, the gateway and Portkey; the CPU per provider chunk; the gateway's wasm linear memory
// over --memory-calls calls (0 skips it).
//
//   node scripts/bench.mjs [--seconds 3] [--no-peers] [--memory-calls 100000] [--cases-only]
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { ROOT, TOOLS_DIR, cpuMs, freePort, startProcess, startRedis, tcpOpen, waitFor } from "../tests/lib/procs.mjs";
import { startMocks, MOCK_DEFAULTS } from "../tests/lib/mocks.mjs";
import { stackVars } from "./stack.mjs";

const run = promisify(execFile);
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SECONDS = Number(arg("seconds", "3"));
const PEERS = !process.argv.includes("--no-peers");
const CASES_ONLY = process.argv.includes("--cases-only");
const CACHE = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "ai-api-broker-bench");
const t0 = Date.now();
const say = (s) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}\n`);

const CHAT = { model: "gpt-4o-mini", max_tokens: 16, messages: [{ role: "user", content: "Say hi in a few words." }] };
const BODIES = { plain: JSON.stringify(CHAT), stream: JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }) };
// The per-format rows (issue 22): each API in its own format, plain and streamed, short (the
// mock's 24 tokens) and long (LONG_TOKENS, one provider chunk per token, as providers stream).
const LONG_TOKENS = 2000;
const MEMORY_CALLS = Number(arg("memory-calls", "100000"));
const MESSAGES = { model: "claude-haiku-4-5", max_tokens: 16, messages: [{ role: "user", content: "Say hi in a few words." }] };
const CASES = [];
for (const [api, path, base, provider] of [["chat", "/v1/chat/completions", CHAT, "openai"], ["messages", "/v1/messages", MESSAGES, "anthropic"]]) {
  for (const tokens of [24, LONG_TOKENS]) {
    for (const stream of [false, true]) {
      const body = { ...base, max_tokens: tokens === 24 ? 16 : tokens + 100, ...(stream ? { stream: true } : {}), ...(stream && api === "chat" ? { stream_options: { include_usage: true } } : {}) };
      CASES.push({ name: `${api} ${stream ? "stream" : "plain"} ${tokens === 24 ? "short" : `${tokens} tokens`}`, api, path, provider, tokens, stream, body: JSON.stringify(body) });
    }
  }
}

// ------------------------------------------------------------------------------ processes

function children(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}
function descendants(pid) {
  const out = [];
  for (const q = [pid]; q.length;) {
    const p = q.shift();
    out.push(p);
    q.push(...children(p));
  }
  return out;
}
const comm = (pid) => { try { return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim(); } catch { return ""; } };
const workerds = () => descendants(process.pid).filter((p) => comm(p) === "workerd");

// ------------------------------------------------------------------------------ load

/** wrk for `seconds` at `conns`; returns {rps, p50, p99, requests, errors}. */
async function wrk(target, mode, conns, seconds = SECONDS, { body = BODIES[mode], url = target.url, headers: extra = {} } = {}) {
  const script = path.join(os.tmpdir(), `bench-${process.pid}-${target.name}-${mode}.lua`);
  const headers = Object.entries({ ...target.headers, ...extra }).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join("\n");
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\n${headers}\n`);
  // A long answer through a slow target may take seconds: wrk's 2 s default would count it failed.
  const { stdout } = await run("wrk", ["-t1", `-c${conns}`, `-d${seconds}s`, "--timeout", "60s", "--latency", "-s", script, url], { maxBuffer: 1 << 20 });
  const ms = (re) => {
    const m = stdout.match(re);
    if (!m) return null;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const requests = Number(stdout.match(/(\d+) requests in/)?.[1] ?? 0);
  const errors = Number(stdout.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0) + Number(stdout.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0);
  return { rps: Number(stdout.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0), p50: ms(/50%\s+([\d.]+)(us|ms|s)/), p99: ms(/99%\s+([\d.]+)(us|ms|s)/), requests, errors };
}

/** Time to the first body byte of sequential streaming calls: p50 in ms. */
async function ttfb(target, n = 60) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const res = await fetch(target.url, { method: "POST", headers: target.headers, body: BODIES.stream });
    const reader = res.body.getReader();
    await reader.read();
    times.push(performance.now() - start);
    while (!(await reader.read()).done);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The full battery for one target; CPU per call from its processes over each run. */
async function measure(target) {
  const out = {};
  await wrk(target, "plain", 4, 1); // warm
  for (const [mode, conns] of [["plain", 1], ["plain", 10], ["stream", 1], ["stream", 10]]) {
    const before = cpuMs(target.pids());
    const r = await wrk(target, mode, conns);
    r.cpuPerCall = r.requests ? (cpuMs(target.pids()) - before) / r.requests : null;
    if (target.extraPids) {
      const before2 = cpuMs(target.extraPids());
      // The stack's share is measured on its own run, so both counters see the same calls.
      const r2 = await wrk(target, mode, conns);
      r.stackCpuPerCall = r2.requests ? (cpuMs(target.extraPids()) - before2) / r2.requests : null;
    }
    out[`${mode}${conns}`] = r;
    if (r.errors) say(`${target.name} ${mode} c${conns}: ${r.errors} errors of ${r.requests}`);
    // Figures of a run that failed are no figures.
    if (r.errors > r.requests / 2) Object.assign(r, { failed: true, rps: null, p50: null, p99: null, cpuPerCall: null });
  }
  out.ttfb = out.stream1.failed ? null : await ttfb(target);
  return out;
}

/** The per-format rows for one target: CPU per call at c10, and throughput. A long case scripts
 *  the mock's answers to LONG_TOKENS tokens for its run (and resets the script after). */
async function measureCases(target, mocks) {
  const out = {};
  for (const c of CASES) {
    const t = target.cases?.[c.api];
    if (!t) continue;
    if (c.tokens !== 24) await mocks.script({ provider: c.provider, times: 1_000_000_000, output_tokens: c.tokens });
    try {
      await wrk(target, "case", 4, 1, { body: c.body, ...t });
      const before = cpuMs(target.pids());
      const r = await wrk(target, "case", 10, SECONDS, { body: c.body, ...t });
      r.cpuPerCall = r.requests ? (cpuMs(target.pids()) - before) / r.requests : null;
      if (r.errors) say(`${target.name} ${c.name}: ${r.errors} errors of ${r.requests}`);
      if (r.errors > r.requests / 2) Object.assign(r, { failed: true, rps: null, cpuPerCall: null });
      out[c.name] = r;
    } finally {
      // Calls wrk gave up on may still run (a gateway meters an abandoned call to its end): the
      // next case starts once the target is idle.
      await idle(target);
      if (c.tokens !== 24) await mocks.reset();
    }
  }
  return out;
}

/** Waits (at most 60 s) until the target's processes use under 5 % of a core. */
async function idle(target) {
  for (let i = 0; i < 240; i++) {
    const before = cpuMs(target.pids());
    await new Promise((r) => setTimeout(r, 250));
    if (cpuMs(target.pids()) - before < 12.5) return;
  }
}

// ------------------------------------------------------------------------------ targets

const FLOOR_WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/v1/messages") {
      return fetch(env.UPSTREAM + "/anthropic/v1/messages", {
        method: request.method,
        headers: { "x-api-key": env.ANTHROPIC_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: request.body,
      });
    }
    return fetch(env.UPSTREAM + url.pathname.replace(/^\\/v1\\//, "/openai/v1/"), {
      method: request.method,
      headers: { authorization: "Bearer " + env.KEY, "content-type": "application/json" },
      body: request.body,
    });
  },
};`;

async function miniflare(opts, onLine) {
  const before = new Set(workerds());
  const port = await freePort();
  // The worker's log lines are drained, not printed (their cost stays in the measurement);
  // `onLine` sees the lines that carry a figure it wants.
  const drain = (stdout, stderr) => {
    if (!onLine) return void (stdout.resume(), stderr.resume());
    let rest = "";
    stdout.setEncoding("utf8").on("data", (d) => {
      const lines = (rest + d).split("\n");
      rest = lines.pop();
      for (const l of lines) onLine(l);
    });
    stderr.resume();
  };
  const mf = new Miniflare({ ...opts, compatibilityDate: "2026-04-01", host: "127.0.0.1", port, handleRuntimeStdio: drain });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const pid = workerds().find((p) => !before.has(p));
  return { mf, url, pid };
}

/** Installs a peer into the cache once; returns false (after saying why) when it cannot. */
async function ensure(name, marker, install) {
  if (fs.existsSync(marker)) return true;
  say(`installing ${name} into ${CACHE} (first use)`);
  try {
    fs.mkdirSync(CACHE, { recursive: true });
    await install();
    return fs.existsSync(marker);
  } catch (e) {
    say(`${name} skipped: it could not be installed (${e.message.split("\n")[0]})`);
    return false;
  }
}

async function portkey(mockUrl) {
  const dir = path.join(CACHE, "portkey");
  const entry = path.join(dir, "node_modules/@portkey-ai/gateway/build/start-server.js");
  if (!(await ensure("Portkey 1.15.2", entry, () => run("npm", ["install", "--prefix", dir, "--no-audit", "--no-fund", "@portkey-ai/gateway@1.15.2"], { timeout: 300_000 })))) return null;
  // Its CLI has no host option: bind its server to 127.0.0.1 from a preload.
  const preload = path.join(CACHE, "bind-loopback.mjs");
  fs.writeFileSync(preload, `import http from "node:http";
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === "number") return listen.call(this, port, "127.0.0.1", ...rest.filter((a) => typeof a === "function"));
  return listen.call(this, port, ...rest);
};\n`);
  const port = await freePort();
  const child = startProcess(process.execPath, ["--import", preload, entry, `--port=${port}`, "--headless"], { name: "portkey" });
  await waitFor(() => tcpOpen(port), { what: "portkey", child, timeoutMs: 30_000 });
  return {
    name: "portkey", child, url: `http://127.0.0.1:${port}/v1/chat/completions`,
    headers: { authorization: `Bearer ${MOCK_DEFAULTS.openaiKey}`, "content-type": "application/json", "x-portkey-provider": "openai", "x-portkey-custom-host": `${mockUrl}/openai/v1` },
    pids: () => descendants(child.pid),
    // Portkey takes the provider key from `authorization` too (it would send the OpenAI one).
    cases: { chat: {}, messages: { url: `http://127.0.0.1:${port}/v1/messages`, headers: { authorization: `Bearer ${MOCK_DEFAULTS.anthropicKey}`, "x-api-key": MOCK_DEFAULTS.anthropicKey, "anthropic-version": "2023-06-01", "x-portkey-provider": "anthropic", "x-portkey-custom-host": `${mockUrl}/anthropic/v1` } } },
  };
}

async function litellm(mockUrl) {
  const dir = path.join(CACHE, "litellm");
  const marker = path.join(dir, "litellm", "__init__.py");
  const pip = () => run("python3", ["-m", "pip", "install", "--quiet", "--target", dir, "litellm[proxy]==1.106.2"], { timeout: 900_000 });
  if (!(await ensure("LiteLLM 1.106.2", marker, pip))) return null;
  const config = path.join(CACHE, "litellm.yaml");
  fs.writeFileSync(config, `model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: ${mockUrl}/openai/v1\n      api_key: ${MOCK_DEFAULTS.openaiKey}\n`);
  const port = await freePort();
  const master = "sk-bench-litellm-master-0123456789";
  const child = startProcess("python3", ["-m", "litellm.proxy.proxy_cli", "--config", config, "--host", "127.0.0.1", "--port", String(port), "--num_workers", "1"], {
    name: "litellm",
    // No internet: its bundled price map, no telemetry.
    env: { PYTHONPATH: dir, LITELLM_MASTER_KEY: master, LITELLM_LOCAL_MODEL_COST_MAP: "True", LITELLM_LOG: "ERROR", LITELLM_TELEMETRY: "False", DISABLE_SCHEMA_UPDATE: "true" },
  });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health/liveliness`)).ok, { what: "litellm", child, timeoutMs: 120_000 });
  } catch (e) {
    say(`litellm skipped: it did not start (${e.message.split("\n")[0]})`);
    await child.stop();
    return null;
  }
  return {
    name: "litellm", child, url: `http://127.0.0.1:${port}/v1/chat/completions`,
    headers: { authorization: `Bearer ${master}`, "content-type": "application/json" },
    pids: () => descendants(child.pid),
  };
}

// ------------------------------------------------------------------------------ gateway extras

/** Upstash requests of `n` calls with the front 30 ms away: those the client's answer waited
 *  for (received at least 15 ms before its head arrived), and those after it (the settlement). */
async function roundTrips(front, call, n = 8) {
  await fetch(`${front.url}/__config`, { method: "POST", headers: front.auth, body: JSON.stringify({ delay_ms: 30 }) });
  let before = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    await fetch(`${front.url}/__stats/reset`, { method: "POST", headers: front.auth });
    const res = await call();
    const head = Date.now();
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 120)); // the settlement, after the response
    const { log } = await (await fetch(`${front.url}/__stats`, { headers: front.auth })).json();
    before += log.filter((e) => e.received_ms <= head - 15).length;
    total += log.length;
  }
  await fetch(`${front.url}/__config`, { method: "POST", headers: front.auth, body: JSON.stringify({ delay_ms: 0 }) });
  return { blocking: before / n, after: (total - before) / n };
}

function bundleGzip() {
  const out = path.join(ROOT, ".stack", "bench-dist");
  fs.rmSync(out, { recursive: true, force: true });
  execFileSync(path.join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", out], { cwd: ROOT, stdio: "ignore", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  const files = fs.readdirSync(out, { recursive: true }).map((f) => path.join(out, f)).filter((f) => fs.statSync(f).isFile() && !f.endsWith(".map"));
  return zlib.gzipSync(Buffer.concat(files.map((f) => fs.readFileSync(f))), { level: 9 }).length;
}

/** The per-format table: CPU per call (c10) against the floor and Portkey measured in the same run. */
function printCases(caseResults) {
  const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "failed" : x.toFixed(d));
  const ratio = (x, base) => (x && base ? `${(x / base).toFixed(2)}×` : "-");
  // Per-format rows: CPU per call (c10) against the floor and Portkey measured in the same run.
  const cr = (t, c) => caseResults[t]?.[c.name];
  const rows2 = [["c10, CPU ms/call", "floor", "gateway", "vs floor", "Portkey", "gateway req/s", "floor req/s", "Portkey req/s"]];
  for (const c of CASES) {
    const [fl, gwc, pkc] = [cr("floor", c), cr("gateway", c), cr("portkey", c)];
    rows2.push([c.name, f(fl?.cpuPerCall, 3), f(gwc?.cpuPerCall, 3), ratio(gwc?.cpuPerCall, fl?.cpuPerCall), pkc ? `${f(pkc.cpuPerCall, 3)} (${ratio(gwc?.cpuPerCall, pkc.cpuPerCall)})` : "-", f(gwc?.rps, 0), f(fl?.rps, 0), pkc ? f(pkc.rps, 0) : "-"]);
  }
  const w2 = rows2[0].map((_, i) => Math.max(...rows2.map((r) => r[i].length)));
  const line2 = (r) => `| ${r.map((c, i) => c.padEnd(w2[i])).join(" | ")} |`;
  console.log(`\nPer format (the gateway's ratio to Portkey in brackets): ${LONG_TOKENS}-token answers come as ${LONG_TOKENS} provider chunks when streamed\n`);
  console.log(line2(rows2[0]));
  console.log(`|${w2.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows2.slice(1)) console.log(line2(r));
  const perChunk = (t, api) => {
    const long = CASES.find((c) => c.api === api && c.stream && c.tokens === LONG_TOKENS);
    const short = CASES.find((c) => c.api === api && c.stream && c.tokens === 24);
    const [a, b] = [cr(t, long)?.cpuPerCall, cr(t, short)?.cpuPerCall];
    return a && b ? ((a - b) / (LONG_TOKENS - 24)) * 1000 : null;
  };
  console.log(`CPU per provider chunk (streamed, long minus short): chat ${f(perChunk("gateway", "chat"), 1)} µs (floor ${f(perChunk("floor", "chat"), 1)}, Portkey ${f(perChunk("portkey", "chat"), 1)}); messages ${f(perChunk("gateway", "messages"), 1)} µs (floor ${f(perChunk("floor", "messages"), 1)}, Portkey ${f(perChunk("portkey", "messages"), 1)})`);
}

// ------------------------------------------------------------------------------ main

// wrk drives every load; without it nothing can be measured.
try {
  execFileSync("wrk", ["-v"], { stdio: "ignore" });
} catch (e) {
  if (e.code === "ENOENT") {
    say("wrk is not installed: apt-get install wrk");
    process.exit(1);
  }
}

const stopAll = [];
try {
  say("building the worker (scripts/build-worker)");
  execFileSync("bash", ["scripts/build-worker"], { cwd: ROOT, stdio: "ignore" });
  const redis = await startRedis();
  stopAll.push(() => redis.stop());
  const frontPort = await freePort();
  const token = "bench-upstash-token";
  const frontProc = startProcess(path.join(TOOLS_DIR, "upstash-front"), [], { name: "upstash-front", env: { UPSTASH_FRONT_PORT: String(frontPort), UPSTASH_FRONT_TOKEN: token, REDIS_PORT: String(redis.port) } });
  stopAll.push(() => frontProc.stop());
  await waitFor(() => tcpOpen(frontPort), { what: "upstash-front", child: frontProc });
  const front = { url: `http://127.0.0.1:${frontPort}`, auth: { authorization: `Bearer ${token}` } };
  const mocks = await startMocks();
  stopAll.push(() => mocks.stop());

  const targets = [{ name: "mock", url: `${mocks.url}/openai/v1/chat/completions`, headers: { authorization: `Bearer ${MOCK_DEFAULTS.openaiKey}`, "content-type": "application/json" }, pids: () => descendants(mocks.child.pid) }];
  const floor = await miniflare({ modules: true, script: FLOOR_WORKER, bindings: { UPSTREAM: mocks.url, KEY: MOCK_DEFAULTS.openaiKey, ANTHROPIC_KEY: MOCK_DEFAULTS.anthropicKey } });
  stopAll.push(() => floor.mf.dispose());
  targets.push({ name: "floor", url: `${floor.url}/v1/chat/completions`, headers: { "content-type": "application/json" }, pids: () => [floor.pid], cases: { chat: {}, messages: { url: `${floor.url}/v1/messages` } } });

  const admin = "bench-admin-secret-0123456789abcdef";
  const vars = { ...stackVars({ upstashPort: frontPort, upstashToken: token, mockPort: mocks.port, adminSecret: admin, stripeSecret: "whsec_bench" }), RATE_LIMITS: "bulk:ai=10000000/3600, anonymous=5/900", DEFAULT_PLAN: "bulk" };
  // The isolate's wasm linear memory, from the settlement log lines (`wasm_memory_mib`).
  let wasmMiB = null;
  const gw = await miniflare({ scriptPath: path.join(ROOT, "build/index.js"), modules: true, modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }], bindings: vars }, (l) => {
    const m = l.match(/"wasm_memory_mib":(\d+)/);
    if (m) wasmMiB = Number(m[1]);
  });
  stopAll.push(() => gw.mf.dispose());
  const key = await (await fetch(`${gw.url}/admin/keys`, { method: "POST", headers: { "x-admin-secret": admin, "content-type": "application/json" }, body: JSON.stringify({ name: "bench", plan: "bulk", credits: 100_000_000, reason: "bench" }) })).json();
  const stackPids = () => [...descendants(frontProc.pid), redis.pid];
  targets.push({ name: "gateway", url: `${gw.url}/v1/chat/completions`, headers: { authorization: `Bearer ${key.api_key}`, "content-type": "application/json" }, pids: () => [gw.pid], extraPids: stackPids, cases: { chat: {}, messages: { url: `${gw.url}/v1/messages`, headers: { "anthropic-version": "2023-06-01" } } } });

  if (PEERS) {
    for (const start of [portkey, litellm]) {
      try {
        const t = await start(mocks.url);
        if (t) {
          stopAll.push(() => t.child.stop());
          targets.push(t);
        }
      } catch (e) {
        say(`${start.name} skipped: ${e.message.split("\n")[0]}`);
      }
    }
  }

  const results = {};
  for (const t of CASES_ONLY ? [] : targets) {
    say(`measuring ${t.name}`);
    results[t.name] = await measure(t);
  }
  const caseResults = {};
  for (const t of targets.filter((t) => t.cases)) {
    say(`measuring ${t.name}: chat completions and messages, plain and streamed, short and ${LONG_TOKENS} tokens`);
    caseResults[t.name] = await measureCases(t, mocks);
  }
  // The wasm instance's linear memory over MEMORY_CALLS calls, the short cases in turn.
  const memory = [];
  if (MEMORY_CALLS > 0 && !CASES_ONLY) {
    say(`gateway: wasm memory over ${MEMORY_CALLS} calls`);
    const gwt = targets.find((t) => t.name === "gateway");
    const shorts = CASES.filter((c) => c.tokens === 24);
    memory.push({ calls: 0, mib: wasmMiB });
    let calls = 0;
    for (let i = 0; calls < MEMORY_CALLS; i++) {
      const c = shorts[i % shorts.length];
      const r = await wrk(gwt, "memory", 10, 5, { body: c.body, ...gwt.cases[c.api] });
      if (!r.requests) break;
      calls += r.requests;
      memory.push({ calls, mib: wasmMiB });
    }
  }

  if (CASES_ONLY) {
    printCases(caseResults);
    process.exit(0);
  }
  say("gateway: round trips, distance, a route with no I/O, the bundle");
  const gwCall = (stream = false) => fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: targets[2].headers, body: stream ? BODIES.stream : BODIES.plain });
  const chatTrips = await roundTrips(front, () => gwCall());
  const streamTrips = await roundTrips(front, () => gwCall(true));
  const balanceTrips = await roundTrips(front, () => fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key.api_key}` } }));
  await fetch(`${front.url}/__config`, { method: "POST", headers: front.auth, body: JSON.stringify({ delay_ms: 20 }) });
  const far = await wrk(targets[2], "plain", 1);
  await fetch(`${front.url}/__config`, { method: "POST", headers: front.auth, body: JSON.stringify({ delay_ms: 0 }) });
  // One local Upstash round trip, as a client next to it sees it.
  const pings = [];
  for (let i = 0; i < 100; i++) {
    const s0 = performance.now();
    await (await fetch(front.url, { method: "POST", headers: front.auth, body: '["PING"]' })).text();
    pings.push(performance.now() - s0);
  }
  const upstashRtMs = pings.sort((a, b) => a - b)[50];
  const noIo = { ...targets[2], url: `${gw.url}/v1/models` };
  const before = cpuMs([gw.pid]);
  const { stdout } = await run("wrk", ["-t1", "-c4", `-d${SECONDS}s`, noIo.url]);
  const noIoCpu = (cpuMs([gw.pid]) - before) / Number(stdout.match(/(\d+) requests in/)?.[1] ?? 1);
  const gzip = bundleGzip();

  // ---------------------------------------------------------------- the table
  const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "failed" : x.toFixed(d));
  const ratio = (x, base) => (x && base ? `${(x / base).toFixed(2)}×` : "-");
  const floorR = results.floor;
  const rows = [["target", "c1 req/s", "c1 p50 ms", "c1 p99 ms", "c10 req/s", "c10 p50 ms", "c10 p99 ms", "stream c10 req/s", "stream TTFB ms", "CPU ms/call"]];
  for (const t of targets) {
    const r = results[t.name];
    const cpu = r.plain10.cpuPerCall;
    rows.push([
      t.name,
      `${f(r.plain1.rps, 0)} (${ratio(r.plain1.rps, floorR.plain1.rps)})`,
      `${f(r.plain1.p50)} (${ratio(r.plain1.p50, floorR.plain1.p50)})`,
      f(r.plain1.p99),
      `${f(r.plain10.rps, 0)} (${ratio(r.plain10.rps, floorR.plain10.rps)})`,
      f(r.plain10.p50),
      f(r.plain10.p99),
      `${f(r.stream10.rps, 0)} (${ratio(r.stream10.rps, floorR.stream10.rps)})`,
      `${f(r.ttfb)} (${ratio(r.ttfb, floorR.ttfb)})`,
      `${f(cpu, 3)} (${ratio(cpu, floorR.plain10.cpuPerCall)})`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(`\nAI API Broker bench, ${new Date().toISOString()}, ${os.cpus().length} cores, wrk ${SECONDS} s per run; ratios against the floor (a JS pass-through worker in the same runtime)\n`);
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  printCases(caseResults);
  if (memory.length) console.log(`wasm linear memory (MiB) after N calls: ${memory.map((m) => `${m.calls}: ${m.mib ?? "?"}`).join(", ")}`);
  const g = results.gateway;
  const pk = results.portkey;
  const stackCpu = g.plain10.stackCpuPerCall ?? 0;
  const addedP50 = g.plain1.p50 - floorR.plain1.p50;
  const upstashRt = (far.p50 - g.plain1.p50) / 20;
  console.log(`
gateway, plain c10: worker CPU ${f(g.plain10.cpuPerCall, 3)} ms/call; the Upstash front + redis-server ${f(stackCpu, 3)} ms/call; whole stack ${f(g.plain10.cpuPerCall + stackCpu, 3)} ms/call${pk ? ` (Portkey: ${f(pk.plain10.cpuPerCall, 3)}, ${ratio(g.plain10.cpuPerCall + stackCpu, pk.plain10.cpuPerCall)})` : ""}
gateway, stream c10: worker CPU ${f(g.stream10.cpuPerCall, 3)} ms/call; a route with no I/O (/v1/models): ${f(noIoCpu, 3)} ms/call
added p50 over the floor at c1: ${f(addedP50)} ms (plain); stream TTFB over the floor: ${f(g.ttfb - floorR.ttfb)} ms
Upstash requests per call: chat ${f(chatTrips.blocking, 1)} blocking + ${f(chatTrips.after, 1)} after the response; stream ${f(streamTrips.blocking, 1)} + ${f(streamTrips.after, 1)}; /v1/balance ${f(balanceTrips.blocking, 1)} + ${f(balanceTrips.after, 1)}
with the Upstash front 20 ms away: c1 p50 ${f(far.p50)} ms vs ${f(g.plain1.p50)} ms: ${f(upstashRt)} blocking round trips of 20 ms
bundle: ${(gzip / 1024).toFixed(1)} KiB gzip (target ≤ 400 KiB; free plan limit 3072 KiB)

targets (issue 10):
  worker CPU per metered call ≤ 0.55 ms:         ${f(g.plain10.cpuPerCall, 3)} ms  ${g.plain10.cpuPerCall <= 0.55 ? "met" : "not met"}
  whole stack CPU below Portkey's:                ${pk ? `${f(g.plain10.cpuPerCall + stackCpu, 3)} vs ${f(pk.plain10.cpuPerCall, 3)} ms  ${g.plain10.cpuPerCall + stackCpu < pk.plain10.cpuPerCall ? "met" : "not met"}` : "Portkey not measured"}
  c10 throughput ≥ Portkey's:                     ${pk ? `${f(g.plain10.rps, 0)} vs ${f(pk.plain10.rps, 0)} req/s  ${g.plain10.rps >= pk.plain10.rps ? "met" : "not met"}` : "Portkey not measured"}
  added p50 ≤ one Upstash round trip + 0.5 ms:    ${f(addedP50)} ms vs ${f(upstashRtMs + 0.5)} ms (a local round trip: ${f(upstashRtMs)} ms)  ${addedP50 <= upstashRtMs + 0.5 ? "met" : "not met"}
  stream TTFB over the floor ≤ 0.6 ms:            ${f(g.ttfb - floorR.ttfb)} ms  ${g.ttfb - floorR.ttfb <= 0.6 ? "met" : "not met"}
  one blocking Upstash round trip per call:       ${f(chatTrips.blocking, 1)} (chat), ${f(balanceTrips.blocking, 1)} (/v1/balance)
  bundle ≤ 400 KiB gzip:                          ${(gzip / 1024).toFixed(1)} KiB  ${gzip <= 400 * 1024 ? "met" : "not met"}
(${((Date.now() - t0) / 1000).toFixed(0)} s in all)`);
} finally {
  for (const stop of stopAll.reverse()) {
    try { await stop(); } catch {}
  }
}
process.exit(0);
