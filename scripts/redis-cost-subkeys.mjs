// Redis time (SLOWLOG, threshold 0) of admit_v6 / settle_v6 for a call of an account key and the
// same call of one of its sub-keys (three caps, a model list): what sub-keys add to the one
// blocking round trip (issue 25). Starts a stack of its own (redis on port 16398; needs redis-cli).
//   N=300 node scripts/redis-cost-subkeys.mjs
import { execFileSync } from "node:child_process";
import { startStack } from "./stack.mjs";
import { TEST_VARS, client, describeStack } from "../tests/lib/stack-client.mjs";

const N = Number(process.env.N ?? 200);
const redisPort = 16398;
const s = await startStack({ name: "subkeys-cost", vars: TEST_VARS, ports: { redis: redisPort } });
const c = client(describeStack(s));
const cli = (...a) => execFileSync("redis-cli", ["-p", String(redisPort), ...a], { encoding: "utf8" }).trim();
const slowlog = () => JSON.parse(execFileSync("redis-cli", ["-p", String(redisPort), "--json", "SLOWLOG", "GET", "1000000"], { encoding: "utf8", maxBuffer: 1 << 30 }));
const stat = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return { n: v.length, mean_us: +(v.reduce((a, b) => a + b, 0) / (v.length || 1)).toFixed(1), p50_us: v[Math.floor(v.length / 2)], p90_us: v[Math.floor(v.length * 0.9)], p99_us: v[Math.floor(v.length * 0.99)] };
};
try {
  const account = await c.createKey({ credits: 100000 });
  const made = await (await c.api("/v1/keys", { key: account.api_key, body: { name: "cost", daily_cap: 50000, monthly_cap: 90000, total_cap: 99000, models: ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"] } })).json();
  const body = (i) => ({ model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content: `cost ${i}` }] });
  const call = (key, b) => c.api("/v1/chat/completions", { key, body: b });
  for (let i = 0; i < 5; i++) { await (await call(account.api_key, body(i))).text(); await (await call(made.api_key, body(i))).text(); }
  await new Promise((r) => setTimeout(r, 500));
  cli("CONFIG", "SET", "slowlog-log-slower-than", "0");
  cli("CONFIG", "SET", "slowlog-max-len", "100000");
  const kinds = {};
  for (const [kind, key] of [["account key", account.api_key], ["sub-key (3 caps, 2 models)", made.api_key], ["account key, again", account.api_key], ["sub-key, again", made.api_key]]) {
    cli("SLOWLOG", "RESET");
    for (let i = 0; i < N; i++) await (await call(key, body(`${kind} ${i}`))).text();
    await new Promise((r) => setTimeout(r, 1000));
    const evals = slowlog().filter((e) => e[3][0] === "EVALSHA");
    // admit_v6: 15 ARGV (EVALSHA sha 0 + 15); settle_v6: 12 ARGV.
    kinds[kind] = { admit: stat(evals.filter((e) => e[3].length === 18).map((e) => e[2])), settle: stat(evals.filter((e) => e[3].length === 15).map((e) => e[2])) };
  }
  console.log(JSON.stringify(kinds, null, 2));
} finally {
  await s.stop();
}
