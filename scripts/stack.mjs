// The local stack: redis-server, the Upstash-REST front, the provider mocks and the worker in
// workerd (wrangler dev), all on 127.0.0.1. Used by `npm run dev` (fixed ports, .dev.vars, a
// demo key) and by the integration tests (free ports, a private env file).
//
//   node scripts/stack.mjs dev            # foreground; Ctrl-C stops everything it started
//   import { startStack } from "./stack.mjs"
import fs from "node:fs";
import path from "node:path";
import { ROOT, TOOLS_DIR, freePort, startProcess, startRedis, waitFor, tcpOpen } from "../tests/lib/procs.mjs";
import { startMocks, MOCK_DEFAULTS } from "../tests/lib/mocks.mjs";

const WRANGLER = path.join(ROOT, "node_modules", ".bin", "wrangler");

/** Secrets and base URLs for a worker pointed at this stack. */
export function stackVars({ upstashPort, upstashToken, mockPort, adminSecret, stripeSecret }) {
  const mock = `http://127.0.0.1:${mockPort}`;
  return {
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${upstashPort}`,
    UPSTASH_REDIS_REST_TOKEN: upstashToken,
    OPENAI_API_KEY: MOCK_DEFAULTS.openaiKey,
    ANTHROPIC_API_KEY: MOCK_DEFAULTS.anthropicKey,
    GOOGLE_API_KEY: MOCK_DEFAULTS.googleKey,
    ELEVENLABS_API_KEY: MOCK_DEFAULTS.elevenlabsKey,
    STABILITY_API_KEY: MOCK_DEFAULTS.stabilityKey,
    STRIPE_SECRET_KEY: MOCK_DEFAULTS.stripeKey,
    STRIPE_BASE_URL: `${mock}/stripe`,
    STRIPE_WEBHOOK_SECRET: stripeSecret,
    PAYPAL_CLIENT_ID: MOCK_DEFAULTS.paypalClientId,
    PAYPAL_CLIENT_SECRET: MOCK_DEFAULTS.paypalClientSecret,
    PAYPAL_WEBHOOK_ID: MOCK_DEFAULTS.paypalWebhookId,
    ADMIN_SECRET: adminSecret,
    OPENAI_BASE_URL: `${mock}/openai`,
    ANTHROPIC_BASE_URL: `${mock}/anthropic`,
    GOOGLE_BASE_URL: `${mock}/gemini`,
    ELEVENLABS_BASE_URL: `${mock}/elevenlabs`,
    STABILITY_BASE_URL: `${mock}/stability`,
    PAYPAL_BASE_URL: `${mock}/paypal`,
  };
}

function writeVars(file, vars) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });
}

function requireTools() {
  for (const bin of ["upstash-front", "mock-providers"]) {
    if (!fs.existsSync(path.join(TOOLS_DIR, bin))) {
      throw new Error(`${bin} is not built: run scripts/setup (or cargo build --profile tools -p ${bin})`);
    }
  }
}

/**
 * Starts everything. Options: ports {redis, upstash, mocks, worker, inspector} (free ports by
 * default), `vars` extra worker variables (override [vars] and secrets), `envFile` (default: a
 * private file under .stack/), `name` for log prefixes.
 */
export async function startStack({ ports = {}, vars = {}, envFile, name = "test" } = {}) {
  requireTools();
  // Five distinct ports: the OS may hand out a just-released port twice, and a worker sharing the
  // mocks' port would have its requests answered by the mocks (seen once in the suite).
  const taken = new Set(Object.values(ports));
  const pick = async (given) => {
    if (given) return given;
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const p = {
    redis: await pick(ports.redis),
    upstash: await pick(ports.upstash),
    mocks: await pick(ports.mocks),
    worker: await pick(ports.worker),
    inspector: await pick(ports.inspector),
  };
  const upstashToken = vars.UPSTASH_REDIS_REST_TOKEN ?? `local-upstash-token-${name}`;
  const adminSecret = vars.ADMIN_SECRET ?? `local-admin-secret-${name}-0123456789abcdef`;
  const stripeSecret = vars.STRIPE_WEBHOOK_SECRET ?? "whsec_local_dev_secret";
  const started = [];
  const stop = async () => {
    for (const c of started.reverse()) await c.stop();
  };
  try {
    const redis = await startRedis({ port: p.redis });
    started.push(redis);
    const front = startProcess(path.join(TOOLS_DIR, "upstash-front"), [], {
      name: `${name}:upstash-front`,
      env: { UPSTASH_FRONT_PORT: String(p.upstash), UPSTASH_FRONT_TOKEN: upstashToken, REDIS_PORT: String(p.redis) },
    });
    started.push(front);
    await waitFor(() => tcpOpen(p.upstash), { what: "upstash-front", child: front });
    const mocks = await startMocks({ port: p.mocks });
    started.push(mocks.child);

    const allVars = {
      ...stackVars({ upstashPort: p.upstash, upstashToken, mockPort: p.mocks, adminSecret, stripeSecret }),
      ...vars,
    };
    const file = envFile ?? path.join(ROOT, ".stack", `${name}-${p.worker}.vars`);
    if (!envFile) writeVars(file, allVars);
    // Dev mode brings its own env file, so nothing above has made .stack/ on a fresh clone.
    fs.mkdirSync(path.join(ROOT, ".stack"), { recursive: true });
    const workerLog = path.join(ROOT, ".stack", `${name}-${p.worker}.worker.log`);
    fs.writeFileSync(workerLog, "");
    // A state directory per stack: stacks started side by side (the test lanes) on a fresh clone
    // would otherwise open the same .wrangler/state database at once and workerd dies on
    // SQLITE_BUSY. The worker keeps nothing there (its state is in Redis), so it goes at stop.
    const stateDir = path.join(ROOT, ".stack", "state", `${name}-${p.worker}`);
    fs.mkdirSync(stateDir, { recursive: true });
    started.push({ stop: async () => fs.rmSync(stateDir, { recursive: true, force: true }) });
    const worker = startProcess(
      WRANGLER,
      ["dev", "--ip", "127.0.0.1", "--port", String(p.worker), "--inspector-port", String(p.inspector),
        "--persist-to", stateDir, "--env-file", file, "--show-interactive-dev-session=false", "--test-scheduled", "--log-level", process.env.WRANGLER_LOG_LEVEL ?? "log"],
      { name: `${name}:worker`, env: { WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" }, logFile: workerLog },
    );
    started.push(worker);
    const workerUrl = `http://127.0.0.1:${p.worker}`;
    // A cold machine compiles the worker here (minutes); a warm one takes seconds.
    await waitFor(async () => (await fetch(`${workerUrl}/health`)).status > 0, {
      what: "wrangler dev", child: worker, timeoutMs: 20 * 60 * 1000,
    });
    const upstashUrl = `http://127.0.0.1:${p.upstash}`;
    return {
      ports: p, workerUrl, upstashUrl, upstashToken, adminSecret, stripeSecret, mocks, redis, front, worker, workerLog, envFile: file, stop,
      vars: allVars,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Creates a key through the admin API; returns {id, api_key, ...}. */
export async function createKey(stack, { name = "test", plan = "pro", credits = 100, reason = "test credits" } = {}) {
  const res = await fetch(`${stack.workerUrl}/admin/keys`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-admin-secret": stack.adminSecret },
    body: JSON.stringify({ name, plan, credits, reason }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`create key: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** The banner's example: a chat model the gateway serves today (models retire and prices are
 *  dated, so it comes from /v1/models, not from this file): the cheapest OpenAI one by output
 *  price, else the cheapest of any provider. */
export async function exampleModel(workerUrl) {
  const { data } = await (await fetch(`${workerUrl}/v1/models`)).json();
  const chat = data.filter((m) => m.credits_per_million_tokens && m.provider && m.model);
  const byPrice = (a, b) => Number(a.credits_per_million_tokens.output) - Number(b.credits_per_million_tokens.output) || a.model.localeCompare(b.model);
  const pick = chat.filter((m) => m.provider === "openai").sort(byPrice)[0] ?? chat.sort(byPrice)[0];
  if (!pick) throw new Error("/v1/models lists no chat model today");
  return { provider: pick.provider, model: pick.model };
}

function readDevVars(file) {
  const out = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

async function dev() {
  const ports = {
    redis: Number(process.env.REDIS_PORT ?? 6380),
    upstash: Number(process.env.UPSTASH_PORT ?? 8079),
    mocks: Number(process.env.MOCK_PORT ?? 8090),
    worker: Number(process.env.PORT ?? 8787),
    inspector: Number(process.env.INSPECTOR_PORT ?? 9229),
  };
  const devVars = path.join(ROOT, ".dev.vars");
  if (!fs.existsSync(devVars)) {
    // From the example, with the local stack's ports.
    const example = readDevVars(path.join(ROOT, ".dev.vars.example"));
    const local = stackVars({
      upstashPort: ports.upstash, upstashToken: example.UPSTASH_REDIS_REST_TOKEN, mockPort: ports.mocks,
      adminSecret: example.ADMIN_SECRET, stripeSecret: example.STRIPE_WEBHOOK_SECRET,
    });
    writeVars(devVars, { ...example, ...local });
    console.log(`[dev] wrote .dev.vars from .dev.vars.example`);
  }
  const v = readDevVars(devVars);
  console.log(`[dev] starting redis :${ports.redis}, upstash-front :${ports.upstash}, mocks :${ports.mocks}, worker :${ports.worker}`);
  const stack = await startStack({
    ports, name: "dev", envFile: devVars,
    vars: { UPSTASH_REDIS_REST_TOKEN: v.UPSTASH_REDIS_REST_TOKEN, ADMIN_SECRET: v.ADMIN_SECRET, STRIPE_WEBHOOK_SECRET: v.STRIPE_WEBHOOK_SECRET },
  });
  stack.worker.stdout.on("data", (d) => process.stdout.write(d));
  stack.worker.stderr.on("data", (d) => process.stderr.write(d));
  const key = await createKey(stack, { name: "demo", plan: "pro", credits: 1000, reason: "demo key of npm run dev" });
  const example = await exampleModel(stack.workerUrl);
  console.log(`
AI API Broker is running at ${stack.workerUrl}   (Ctrl-C stops everything)

Demo API key (1000 credits, plan pro; shown once): ${key.api_key}
Key id: ${key.id}     Admin secret (X-Admin-Secret): ${v.ADMIN_SECRET}

  curl -s ${stack.workerUrl}/v1/chat \\
    -H "Authorization: Bearer ${key.api_key}" -H "Content-Type: application/json" \\
    -d '{"provider":"${example.provider}","model":"${example.model}","messages":[{"role":"user","content":"Say hi"}]}'

  curl -s ${stack.workerUrl}/v1/balance -H "Authorization: Bearer ${key.api_key}"
`);
  const shutdown = async () => {
    console.log("\n[dev] stopping the stack");
    await stack.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  await new Promise(() => {});
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  if (process.argv[2] === "dev") {
    dev().catch((e) => {
      console.error(`[dev] ${e.message}`);
      process.exit(1);
    });
  } else {
    console.error("usage: node scripts/stack.mjs dev");
    process.exit(2);
  }
}
