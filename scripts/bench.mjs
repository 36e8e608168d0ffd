// Benchmark of the gateway on the local stack (everything on 127.0.0.1). Speed is measured, not
// asserted: every figure is printed, as a ratio against a baseline measured in the same run, and
// no timing ever fails the run (only a broken call does). Every loop is bounded in count and time.
//
//   node scripts/bench.mjs            # full run
//   node scripts/bench.mjs --quick    # reduced run (<= ~30 s once the stack is up)
//
// Scenarios
//   1. gateway overhead: the mock provider called directly (baseline) vs through the gateway,
//      sequential, plain and streaming (time to first body byte and total)
//   2. Upstash round trips per call: requests/commands per call from the front's /__stats, and
//      how many completed before the client had the response head (blocking) vs after (settle)
//   3. distance: the same with a 50 ms delay on every Upstash request; the extra latency / 50 ms
//      is the number of blocking round trips
//   4. concurrency: bursts of concurrent calls, gateway vs the mock directly (req/s)
//   5. bundle size: `wrangler deploy --dry-run --outdir`, raw and gzip -9 vs the free plan's 3 MB
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { performance } from "node:perf_hooks";
import { startStack, createKey } from "./stack.mjs";
import { ROOT } from "../tests/lib/procs.mjs";

const QUICK = process.argv.includes("--quick");
const CFG = QUICK
  ? { warmup: 5, n: 40, seqMs: 5000, rtCalls: 5, distDelay: 50, distN: 12, distMs: 5000, conc: 100, rounds: 2, concMs: 8000 }
  : { warmup: 20, n: 200, seqMs: 60000, rtCalls: 20, distDelay: 50, distN: 60, distMs: 60000, conc: 200, rounds: 5, concMs: 60000 };
const FREE_PLAN_LIMIT = 3 * 1024 * 1024; // Workers Free: 3 MB after compression

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 16 };
const BODY_PLAIN = JSON.stringify(CHAT);
const BODY_STREAM = JSON.stringify({ ...CHAT, stream: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (x, d = 2) => (x === undefined || x === null || Number.isNaN(x) ? "-" : x.toFixed(d));
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;

// ---------------------------------------------------------------- measuring

/** One call; times are ms from the start: head (response headers), first (first body byte), total. */
async function call(target, { stream = false } = {}) {
  const startEpoch = Date.now();
  const t0 = performance.now();
  const get = target.method === "GET";
  const res = await fetch(target.url, get ? {} : {
    method: "POST",
    headers: { authorization: `Bearer ${target.key}`, "content-type": "application/json" },
    body: stream ? BODY_STREAM : BODY_PLAIN,
  });
  const headEpoch = Date.now();
  const head = performance.now() - t0;
  let first = null;
  let bytes = 0;
  const chunks = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (first === null && value.length) first = performance.now() - t0;
    bytes += value.length;
    if (res.status !== 200) chunks.push(Buffer.from(value));
  }
  const total = performance.now() - t0;
  if (res.status !== 200) {
    throw new Error(`${target.name}: ${res.status} ${Buffer.concat(chunks).toString("utf8").slice(0, 400)}`);
  }
  if (!bytes) throw new Error(`${target.name}: empty body`);
  return { startEpoch, headEpoch, head, first: first ?? total, total };
}

/** Sequential calls, at most `n` and at most `maxMs`, after `warmup` unmeasured ones. */
async function sequential(target, { n, maxMs, warmup = 0, stream = false, gapMs = 0 }) {
  for (let i = 0; i < warmup; i++) await call(target, { stream });
  const out = [];
  const t0 = performance.now();
  while (out.length < n && performance.now() - t0 < maxMs) {
    out.push(await call(target, { stream }));
    if (gapMs) await sleep(gapMs);
  }
  return out;
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const q = (p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  const mean = v.reduce((s, x) => s + x, 0) / (v.length || 1);
  return { n: v.length, p50: q(0.5), p95: q(0.95), mean, min: v[0], max: v[v.length - 1] };
}

/** A table of latency rows; `base` rows (by label) give the ratios. */
function table(title, rows) {
  console.log(`\n${title}`);
  const head = ["", "n", "p50 ms", "p95 ms", "mean ms", "p50 ×base", "mean ×base", "Δp50 ms"];
  const lines = rows.map(({ label, s, base }) => [
    label,
    String(s.n),
    fmt(s.p50),
    fmt(s.p95),
    fmt(s.mean),
    base ? fmt(s.p50 / base.p50) : "(base)",
    base ? fmt(s.mean / base.mean) : "(base)",
    base ? (s.p50 - base.p50 >= 0 ? "+" : "") + fmt(s.p50 - base.p50) : "",
  ]);
  printGrid(head, lines);
}

function printGrid(head, lines) {
  const all = [head, ...lines];
  const w = head.map((_, i) => Math.max(...all.map((l) => String(l[i]).length)));
  const line = (l) => "  " + l.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  console.log(line(head));
  for (const l of lines) console.log(line(l));
}

// ---------------------------------------------------------------- the Upstash front

function upstash(stack) {
  const req = async (method, route, body) => {
    const res = await fetch(`${stack.upstashUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${stack.upstashToken}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`upstash-front ${method} ${route}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  return {
    stats: () => req("GET", "/__stats"),
    reset: () => req("POST", "/__stats/reset"),
    delay: (ms) => req("POST", "/__config", { delay_ms: ms }),
    /** Waits until no Upstash request completes for `quietMs` (settles in wait_until), at most `maxMs`. */
    async drain({ quietMs = 150, maxMs = 10000 } = {}) {
      const t0 = Date.now();
      let last = -1;
      let since = Date.now();
      while (Date.now() - t0 < maxMs) {
        const { requests } = await req("GET", "/__stats");
        if (requests !== last) {
          last = requests;
          since = Date.now();
        } else if (Date.now() - since >= quietMs) return requests;
        await sleep(25);
      }
      return last;
    },
  };
}

/**
 * Sequential gateway calls with a pause after each one long enough for its settle to land, then
 * every Upstash log entry is attributed to the call in whose window it was received and classed
 * against the moment the client had the response head (all clocks: the same host, whole ms):
 *   done before head   completed_ms < head: it certainly completed before the client had the head
 *   in flight at head  received before the head, completed_ms at or after it; the front stamps
 *                      completed_ms after writing its answer, so a loaded host can stamp it late
 *   after head         received at or after the head: certainly not on the client's path
 * With a delay D > 0 a request received at least D/2 ms before the head was on the client's path
 * (a settle only starts once the worker has answered, a few ms before the client has the head).
 */
async function roundTrips(stack, gw, { calls, stream, delayMs }) {
  const up = upstash(stack);
  await up.drain();
  await up.reset();
  const gapMs = 2 * delayMs + 60;
  const results = [];
  for (let i = 0; i < calls; i++) {
    results.push(await call(gw, { stream }));
    await sleep(gapMs);
  }
  await up.drain({ quietMs: Math.max(150, gapMs) });
  const st = await up.stats();
  const perCall = results.map(() => ({ before: 0, after: 0, flight: 0, early: 0, entries: [] }));
  let unattributed = 0;
  for (const e of st.log) {
    let i = results.length - 1;
    while (i >= 0 && e.received_ms < results[i].startEpoch) i--;
    if (i < 0) {
      unattributed++;
      continue;
    }
    const c = perCall[i];
    c.entries.push(e);
    const h = results[i].headEpoch;
    if (e.completed_ms < h) c.before++;
    else if (e.received_ms < h) c.flight++;
    else c.after++;
    if (delayMs > 0 && e.received_ms <= h - delayMs / 2) c.early++;
  }
  const names = {};
  for (const e of st.log) for (const n of e.commands) names[n] = (names[n] ?? 0) + 1;
  const routes = {};
  for (const e of st.log) routes[e.route] = (routes[e.route] ?? 0) + 1;
  const sum = (k) => perCall.reduce((s, c) => s + c[k], 0);
  const hist = {};
  for (const c of perCall) {
    const k = delayMs > 0 ? c.early : c.before;
    hist[k] = (hist[k] ?? 0) + 1;
  }
  // How long after the response head each non-blocking request completed.
  const lag = [];
  perCall.forEach((c, i) => {
    for (const e of c.entries) if (e.completed_ms > results[i].headEpoch) lag.push(e.completed_ms - results[i].headEpoch);
  });
  if (process.env.BENCH_DEBUG) {
    perCall.forEach((c, i) => {
      const r = results[i];
      console.log(`  [debug] ${stream ? "stream" : "plain"}@${delayMs} call ${i}: start ${r.startEpoch} head ${r.headEpoch} (+${r.headEpoch - r.startEpoch}) end +${fmt(r.total, 1)}`);
      for (const e of c.entries) console.log(`  [debug]    ${e.route} ${e.commands.join(",")} received +${e.received_ms - r.startEpoch} completed +${e.completed_ms - r.startEpoch}`);
    });
  }
  const bad = st.log.filter((e) => e.status !== 200).length;
  return {
    calls, stream, delayMs, requests: st.requests, commands: st.commands, names, routes, unattributed, bad,
    before: sum("before"), after: sum("after"), flight: sum("flight"), early: sum("early"), hist, lag: lag.length ? stats(lag) : null,
  };
}

function printRoundTrips(title, rows) {
  console.log(`\n${title}`);
  const D = rows[0].delayMs;
  const head = ["", "calls", "req/call", "cmd/call", "done before head", "in flight at head", "after head",
    ...(D > 0 ? [`started ≥${D / 2}ms before head`] : []), D > 0 ? "calls by #started early" : "calls by #done before", "commands", "done after head p50 ms"];
  const lines = rows.map((r) => [
    `${r.stream ? "stream" : "plain"} @${r.delayMs}ms`,
    String(r.calls),
    fmt(r.requests / r.calls),
    fmt(r.commands / r.calls),
    fmt(r.before / r.calls),
    fmt(r.flight / r.calls),
    fmt(r.after / r.calls),
    ...(D > 0 ? [fmt(r.early / r.calls)] : []),
    Object.entries(r.hist).map(([k, v]) => `${k}:${v}`).join(" "),
    Object.entries(r.names).map(([k, v]) => `${k}×${fmt(v / r.calls)}`).join(" "),
    r.lag ? fmt(r.lag.p50, 0) : "-",
  ]);
  printGrid(head, lines);
  for (const r of rows) {
    if (r.unattributed) console.log(`  note: ${r.unattributed} Upstash request(s) could not be attributed to a call`);
    if (r.bad) console.log(`  note: ${r.bad} Upstash request(s) answered non-200`);
  }
}

// ---------------------------------------------------------------- concurrency

async function burst(target, c) {
  const t0 = performance.now();
  const settled = await Promise.allSettled(Array.from({ length: c }, () => call(target)));
  const wall = performance.now() - t0;
  const ok = settled.filter((s) => s.status === "fulfilled").map((s) => s.value.total);
  const errors = settled.filter((s) => s.status === "rejected").map((s) => s.reason?.message ?? String(s.reason));
  return { wall, ok, errors };
}

async function concurrency(target, { c, rounds, maxMs, between }) {
  await burst(target, c); // warm-up: opens the connections, not measured
  if (between) await between();
  const out = { rps: [], lat: [], errors: [] };
  const t0 = performance.now();
  for (let r = 0; r < rounds && performance.now() - t0 < maxMs; r++) {
    const b = await burst(target, c);
    out.rps.push((b.ok.length / b.wall) * 1000);
    out.lat.push(...b.ok);
    out.errors.push(...b.errors);
    if (between) await between();
  }
  return out;
}

// ---------------------------------------------------------------- bundle size

function run(cmd, args, { env = {}, timeoutMs = 15 * 60 * 1000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code ?? sig}:\n${output.slice(-3000)}`));
    });
  });
}

async function bundle() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-bench-bundle-"));
  try {
    const t0 = performance.now();
    const output = await run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", dir], {
      env: { WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" },
    });
    const secs = (performance.now() - t0) / 1000;
    const files = fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
    const rows = files.map((f) => {
      const data = fs.readFileSync(path.join(dir, f));
      const gz = zlib.gzipSync(data, { level: 9 }).length;
      return { f, raw: data.length, gz, module: /\.(wasm|m?js)$/.test(f) };
    });
    const mods = rows.filter((r) => r.module);
    const raw = mods.reduce((s, r) => s + r.raw, 0);
    const gz = mods.reduce((s, r) => s + r.gz, 0);
    const wranglerLine = (output.match(/Total Upload:[^\n]*/) ?? [""])[0].trim();
    return { rows, raw, gz, wranglerLine, secs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function printBundle(b) {
  console.log(`\n5. Bundle size (wrangler deploy --dry-run, ${fmt(b.secs, 1)} s incl. build; gzip -9 per file)`);
  printGrid(
    ["file", "raw", "gzip -9", "counted"],
    b.rows.map((r) => [r.f.replace(/^[0-9a-f]{40}-/, "<sha1>-"), kib(r.raw), kib(r.gz), r.module ? "yes" : "no (not uploaded)"]),
  );
  console.log(`  wasm + js: raw ${kib(b.raw)}, gzip ${kib(b.gz)} = ${fmt((b.gz / FREE_PLAN_LIMIT) * 100, 1)}% of the free plan's 3 MB (${kib(FREE_PLAN_LIMIT)}) compressed limit`);
  if (b.wranglerLine) console.log(`  wrangler says: ${b.wranglerLine}`);
}

// ---------------------------------------------------------------- main

async function main() {
  const began = performance.now();
  console.log(`AI API Broker benchmark${QUICK ? " (--quick)" : ""}: node ${process.version}, ${os.cpus().length} cores, all on 127.0.0.1`);
  console.log("starting the stack (redis-server, upstash-front, mock-providers, wrangler dev)...");
  const stack = await startStack({
    name: "bench",
    vars: { RATE_LIMITS: "free:ai=10/3600, pro:ai=100/3600, bench:ai=1000000/3600, anonymous=5/900" },
  });
  const onSignal = async () => {
    console.error("\ninterrupted: stopping the stack");
    await stack.stop();
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const summary = [];
  let b;
  try {
    const key = await createKey(stack, { name: "bench", plan: "bench", credits: 1000000, reason: "benchmark credits" });
    const direct = { name: "direct mock", url: `${stack.mocks.url}/openai/v1/chat/completions`, key: "sk-mock-openai" };
    const gw = { name: "gateway", url: `${stack.workerUrl}/v1/chat/completions`, key: key.api_key };
    // The floor of any worker call on this stack: wrangler dev's proxy + workerd, no Redis, no upstream.
    const floor = { name: "gateway GET /v1/models", url: `${stack.workerUrl}/v1/models`, method: "GET" };
    const up = upstash(stack);
    await up.delay(0);
    const upAt = performance.now();
    console.log(`stack up in ${fmt((upAt - began) / 1000, 1)} s; config: ${JSON.stringify(CFG)}`);

    // 1. Gateway overhead
    const seq = { n: CFG.n, maxMs: CFG.seqMs, warmup: CFG.warmup };
    const dPlain = await sequential(direct, seq);
    const gFloor = await sequential(floor, seq);
    const gPlain = await sequential(gw, seq);
    const dStream = await sequential(direct, { ...seq, stream: true });
    const gStream = await sequential(gw, { ...seq, stream: true });
    const s = {
      dPlain: stats(dPlain.map((r) => r.total)),
      gPlain: stats(gPlain.map((r) => r.total)),
      gFloor: stats(gFloor.map((r) => r.total)),
      dFirst: stats(dStream.map((r) => r.first)),
      gFirst: stats(gStream.map((r) => r.first)),
      dStreamTotal: stats(dStream.map((r) => r.total)),
      gStreamTotal: stats(gStream.map((r) => r.total)),
    };
    table("1. Gateway overhead (sequential, keep-alive; baseline = the mock provider called directly)", [
      { label: "plain  direct", s: s.dPlain },
      { label: "plain  gateway", s: s.gPlain, base: s.dPlain },
      { label: "GET /v1/models (worker floor)", s: s.gFloor, base: s.dPlain },
      { label: "stream direct  first byte", s: s.dFirst },
      { label: "stream gateway first byte", s: s.gFirst, base: s.dFirst },
      { label: "stream direct  total", s: s.dStreamTotal },
      { label: "stream gateway total", s: s.gStreamTotal, base: s.dStreamTotal },
    ]);
    console.log("  (GET /v1/models touches neither Redis nor a provider: it is what wrangler dev + workerd cost on this host)");
    summary.push(`gateway overhead, plain:   p50 ${fmt(s.gPlain.p50)} ms vs ${fmt(s.dPlain.p50)} ms direct (×${fmt(s.gPlain.p50 / s.dPlain.p50)}, +${fmt(s.gPlain.p50 - s.dPlain.p50)} ms); worker floor (GET /v1/models) ${fmt(s.gFloor.p50)} ms`);
    summary.push(`gateway overhead, stream:  first byte p50 ×${fmt(s.gFirst.p50 / s.dFirst.p50)} (+${fmt(s.gFirst.p50 - s.dFirst.p50)} ms), total p50 ×${fmt(s.gStreamTotal.p50 / s.dStreamTotal.p50)}`);

    // 2. Redis round trips per call
    const rt0 = [
      await roundTrips(stack, gw, { calls: CFG.rtCalls, stream: false, delayMs: 0 }),
      await roundTrips(stack, gw, { calls: CFG.rtCalls, stream: true, delayMs: 0 }),
    ];
    printRoundTrips("2. Upstash requests per gateway call (sequential; completion vs the client's response head; target: 1 before, the settle after)", rt0);
    if (rt0.some((r) => r.before + r.flight > r.calls)) {
      console.log("  note: at 0 ms a local Redis round trip is shorter than the response's way out (workerd -> wrangler dev's proxy");
      console.log("  -> client), so the settle started in wait_until can finish before the client has the head; 3. tells them apart.");
    }
    for (const r of rt0) {
      summary.push(`upstash per ${r.stream ? "stream" : "plain"} call @0ms: ${fmt(r.requests / r.calls)} req, ${fmt(r.commands / r.calls)} cmd; done before the head ${fmt(r.before / r.calls)}, in flight ${fmt(r.flight / r.calls)}, after ${fmt(r.after / r.calls)}`);
    }

    // 3. Distance
    const D = CFG.distDelay;
    await up.drain();
    await up.delay(D);
    let dist;
    try {
      const dseq = { n: CFG.distN, maxMs: CFG.distMs, warmup: 2 };
      const far = await sequential(gw, dseq);
      const farStream = await sequential(gw, { ...dseq, stream: true });
      const rtFar = [
        await roundTrips(stack, gw, { calls: Math.min(CFG.rtCalls, 10), stream: false, delayMs: D }),
        await roundTrips(stack, gw, { calls: Math.min(CFG.rtCalls, 10), stream: true, delayMs: D }),
      ];
      dist = {
        plain: stats(far.map((r) => r.total)),
        first: stats(farStream.map((r) => r.first)),
        total: stats(farStream.map((r) => r.total)),
        rtFar,
      };
    } finally {
      await up.drain({ quietMs: 2 * D + 100 });
      await up.delay(0);
    }
    table(`3. Distance: every Upstash request delayed ${D} ms (baseline = the same gateway call at 0 ms, from 1.)`, [
      { label: `plain  gateway @${D}ms`, s: dist.plain, base: s.gPlain },
      { label: `stream gateway @${D}ms first byte`, s: dist.first, base: s.gFirst },
      { label: `stream gateway @${D}ms total`, s: dist.total, base: s.gStreamTotal },
    ]);
    const rts = (a, b0) => [(a.p50 - b0.p50) / D, (a.mean - b0.mean) / D];
    const [pp, pm] = rts(dist.plain, s.gPlain);
    const [fp, fm] = rts(dist.first, s.gFirst);
    const [tp, tm] = rts(dist.total, s.gStreamTotal);
    console.log(`  blocking round trips ≈ (latency@${D} − latency@0) / ${D} ms:`);
    console.log(`    plain total: p50 ${fmt(pp)}  mean ${fmt(pm)}   stream first byte: p50 ${fmt(fp)}  mean ${fmt(fm)}   stream total: p50 ${fmt(tp)}  mean ${fmt(tm)}`);
    printRoundTrips(`  the same classification at ${D} ms (a round trip now takes ≥ ${D} ms; "started ≥${D / 2}ms before head" = on the client's path)`, dist.rtFar);
    summary.push(`blocking round trips from a ${D} ms Redis: plain ${fmt(pp)} (p50) / ${fmt(pm)} (mean), stream first byte ${fmt(fp)} / ${fmt(fm)}, stream total ${fmt(tp)} / ${fmt(tm)}`);
    for (const r of dist.rtFar) {
      summary.push(`upstash per ${r.stream ? "stream" : "plain"} call @${D}ms: ${fmt(r.early / r.calls)} on the client's path (done before head ${fmt(r.before / r.calls)}, in flight ${fmt(r.flight / r.calls)}), ${fmt(r.after / r.calls)} after, of ${fmt(r.requests / r.calls)}`);
    }

    // 4. Concurrency
    const conc = { c: CFG.conc, rounds: CFG.rounds, maxMs: CFG.concMs };
    const cd = await concurrency(direct, conc);
    await up.drain();
    await up.reset();
    // Between bursts the settles (wait_until) are left to land, so each burst starts from quiet.
    const cg = await concurrency(gw, { ...conc, between: () => up.drain({ quietMs: 200 }) });
    const after = await up.stats();
    const totalGwCalls = (cg.rps.length + 1) * CFG.conc; // the warm-up burst included
    console.log(`\n4. Concurrency: bursts of ${CFG.conc} concurrent calls (plain), ${cg.rps.length} measured round(s) after a warm-up burst`);
    const rpsD = stats(cd.rps);
    const rpsG = stats(cg.rps);
    printGrid(
      ["", "rounds", "req/s median", "req/s best", "latency p50 ms", "latency p95 ms", "errors", "×base (req/s)"],
      [
        ["direct mock", String(cd.rps.length), fmt(rpsD.p50, 0), fmt(rpsD.max, 0), fmt(stats(cd.lat).p50), fmt(stats(cd.lat).p95), String(cd.errors.length), "(base)"],
        ["gateway", String(cg.rps.length), fmt(rpsG.p50, 0), fmt(rpsG.max, 0), fmt(stats(cg.lat).p50), fmt(stats(cg.lat).p95), String(cg.errors.length), fmt(rpsG.p50 / rpsD.p50, 3)],
      ],
    );
    console.log(`  Upstash under concurrency: ${fmt(after.requests / totalGwCalls)} requests/call, ${after.log.filter((e) => e.status !== 200).length} non-200`);
    for (const e of [...new Set([...cd.errors, ...cg.errors])].slice(0, 3)) console.log(`  error: ${e}`);
    summary.push(`throughput @${CFG.conc} concurrent: gateway ${fmt(rpsG.p50, 0)} req/s vs ${fmt(rpsD.p50, 0)} req/s direct (×${fmt(rpsG.p50 / rpsD.p50, 3)}); errors ${cg.errors.length}/${cd.errors.length}`);
    console.log(`\nscenarios 1-4 took ${fmt((performance.now() - upAt) / 1000, 1)} s after the stack was up`);
  } finally {
    console.log("stopping the stack");
    await stack.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  // 5. Bundle size (after the stack: the dry run rebuilds build/, which wrangler dev watches)
  b = await bundle();
  printBundle(b);
  summary.push(`bundle: wasm+js ${kib(b.raw)} raw, ${kib(b.gz)} gzip -9 = ${fmt((b.gz / FREE_PLAN_LIMIT) * 100, 1)}% of the free plan's 3 MB`);

  console.log(`\n== summary${QUICK ? " (--quick)" : ""} ==`);
  for (const l of summary) console.log(`  ${l}`);
  console.log(`  (total ${fmt((performance.now() - began) / 1000, 1)} s; figures are ratios from this run on this machine, not pass/fail)`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`\nbench failed: ${e?.stack ?? e}`);
    process.exit(1);
  },
);
