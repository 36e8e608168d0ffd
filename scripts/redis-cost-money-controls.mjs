// Redis time (SLOWLOG, threshold 0) of admit_v6 / settle_v6 for each kind of call of issue 24
// (plain, Idempotency-Key first call and replay, X-Max-Credits), and admit_v4 (commit 9a5dc5f, before issue 24) on the same
// arguments as the baseline. Starts a stack of its own (redis on port 16399; needs redis-cli).
//   N=300 node scripts/redis-cost-money-controls.mjs
import { execFileSync } from "node:child_process";
import { startStack } from "./stack.mjs";
import { TEST_VARS, client, describeStack } from "../tests/lib/stack-client.mjs";

const N = Number(process.env.N ?? 200);
const redisPort = 16399;
const s = await startStack({ name: "idem-cost", vars: TEST_VARS, ports: { redis: redisPort } });
const c = client(describeStack(s));
const cli = (...a) => execFileSync("redis-cli", ["-p", String(redisPort), ...a], { encoding: "utf8" }).trim();
try {
  const key = await c.createKey({ credits: 100000 });
  const body = (i) => ({ model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content: `cost ${i}` }] });
  const call = (b, headers = {}) => c.api("/v1/chat/completions", { key: key.api_key, body: b, headers });
  // Warm up (scripts loaded).
  for (let i = 0; i < 5; i++) await (await call(body(i))).text();
  await new Promise((r) => setTimeout(r, 500));
  cli("CONFIG", "SET", "slowlog-log-slower-than", "0");
  cli("CONFIG", "SET", "slowlog-max-len", "100000");
  const kinds = {};
  const run = async (kind, f) => {
    cli("SLOWLOG", "RESET");
    for (let i = 0; i < N; i++) await (await f(i)).text();
    await new Promise((r) => setTimeout(r, 1000));
    const log = JSON.parse(execFileSync("redis-cli", ["-p", String(redisPort), "--json", "SLOWLOG", "GET", "1000000"], { encoding: "utf8", maxBuffer: 1 << 30 }));
    const evals = log.filter((e) => e[3][0] === "EVALSHA");
    // admit: 15 ARGV (args = EVALSHA sha 0 + 15); settle: 12 ARGV.
    const admit = evals.filter((e) => e[3].length === 18).map((e) => e[2]);
    const settle = evals.filter((e) => e[3].length === 15).map((e) => e[2]);
    const stat = (xs) => { const v = [...xs].sort((a, b) => a - b); return { n: v.length, mean_us: +(v.reduce((a, b) => a + b, 0) / (v.length || 1)).toFixed(1), p50_us: v[Math.floor(v.length / 2)], p99_us: v[Math.floor(v.length * 0.99)] }; };
    kinds[kind] = { admit: stat(admit), settle: stat(settle) };
  };
  await run("plain (no header)", (i) => call(body(`p${i}`)));
  await run("Idempotency-Key, first call (claim; settle keeps a ~1 KB answer)", (i) => call(body(`k${i}`), { "idempotency-key": `k-${i}` }));
  await run("Idempotency-Key, replay (answer ~1 KB)", (i) => call(body(`k${i}`), { "idempotency-key": `k-${i}` }));
  await run("X-Max-Credits (cap only)", (i) => call(body(`m${i}`), { "x-max-credits": "1" }));
  // Baseline: main's admit_v4 on the same data, with the plain call's arguments (a fresh rid each time).
  const v4 = execFileSync("git", ["show", "9a5dc5fa4620a5906e571a89d42f51aaecc056ed:core/lua/lib_v2.lua"], { encoding: "utf8" }) + execFileSync("git", ["show", "9a5dc5fa4620a5906e571a89d42f51aaecc056ed:core/lua/admit_v4.lua"], { encoding: "utf8" });
  cli("SLOWLOG", "RESET");
  await (await call(body("template"))).text();
  await new Promise((r) => setTimeout(r, 500));
  const tmpl = JSON.parse(execFileSync("redis-cli", ["-p", String(redisPort), "--json", "SLOWLOG", "GET", "1000"], { encoding: "utf8", maxBuffer: 1 << 30 })).find((e) => e[3][0] === "EVALSHA" && e[3].length === 18)[3];
  const sha = cli("SCRIPT", "LOAD", v4);
  cli("SLOWLOG", "RESET");
  for (let i = 0; i < N; i++) {
    const argv = tmpl.slice(3, 14); argv[2] = `req_v4_${i}`;
    cli("EVALSHA", sha, "0", ...argv);
  }
  const log = JSON.parse(execFileSync("redis-cli", ["-p", String(redisPort), "--json", "SLOWLOG", "GET", "1000000"], { encoding: "utf8", maxBuffer: 1 << 30 }));
  const v = log.filter((e) => e[3][0] === "EVALSHA").map((e) => e[2]).sort((a, b) => a - b);
  kinds["admit_v4 at 9a5dc5fa4620a5906e571a89d42f51aaecc056ed (baseline, same arguments)"] = { admit: { n: v.length, mean_us: +(v.reduce((a, b) => a + b, 0) / v.length).toFixed(1), p50_us: v[Math.floor(v.length / 2)], p99_us: v[Math.floor(v.length * 0.99)] } };
  console.log(JSON.stringify(kinds, null, 2));
} finally {
  await s.stop();
}
