// What a test file needs from the running stack: the suite's shared stack (STACK_JSON, written
// by tests/run.mjs) or, when a file runs alone, a stack of its own.
import fs from "node:fs";
import { startStack } from "../../scripts/stack.mjs";

/** The worker variables every test stack runs with (a `bulk` plan for load tests, a short upstream timeout). */
export const TEST_VARS = {
  RATE_LIMITS: "free:ai=10/3600, pro:ai=100/3600, bulk:ai=100000/3600, free:media=10/3600, pro:media=100/3600, bulk:media=100000/3600, anonymous=5/900",
  UPSTREAM_TIMEOUT_MS: "6000",
  // The sweeper runs only when a test calls /__scheduled; nothing else is in flight then.
  HOLD_SWEEP_AFTER_SECS: "2",
  // A call whose client left is cut 1.5 s later (20 s in production).
  CLIENT_GONE_DEADLINE_MS: "1500",
  // As .dev.vars.example: local pages may call the customer routes.
  CORS_ORIGINS: "http://localhost:*,http://127.0.0.1:*",
  // As .dev.vars.example: one subscription plan (the mock prices `price_…_<cents>`), and a dearer
  // one to switch to in the Billing Portal.
  SUBSCRIPTION_PLANS: "pro-monthly:price_pro_monthly_2000:2000:pro, max-monthly:price_max_monthly_5000:5000:bulk",
  // As .dev.vars.example: the RapidAPI channel on, two RapidAPI subscriptions.
  RAPIDAPI_SECRET: "local-rapidapi-proxy-secret",
  RAPIDAPI_PLANS: "BASIC:free,PRO:pro",
};

let own = null;

export async function getStack() {
  if (process.env.STACK_JSON) return JSON.parse(fs.readFileSync(process.env.STACK_JSON, "utf8"));
  own = await startStack({ name: "file", vars: TEST_VARS });
  return describeStack(own);
}

export async function releaseStack() {
  if (own) await own.stop();
  own = null;
}

/** The JSON-able view of a started stack. */
export function describeStack(s) {
  return {
    workerUrl: s.workerUrl, upstashUrl: s.upstashUrl, upstashToken: s.upstashToken,
    adminSecret: s.adminSecret, stripeSecret: s.stripeSecret, mocksUrl: s.mocks.url, workerLog: s.workerLog, vars: s.vars, workerPid: s.worker.pid,
  };
}

export function client(stack) {
  const redis = async (...cmd) => {
    const r = await fetch(stack.upstashUrl, {
      method: "POST", headers: { authorization: `Bearer ${stack.upstashToken}` }, body: JSON.stringify(cmd),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(`redis ${cmd[0]}: ${JSON.stringify(body)}`);
    return body.result;
  };
  const front = async (method, route, body) => {
    const r = await fetch(`${stack.upstashUrl}${route}`, {
      method, headers: { authorization: `Bearer ${stack.upstashToken}` }, body: body && JSON.stringify(body),
    });
    return r.json();
  };
  const mock = async (method, route, body) => {
    const r = await fetch(`${stack.mocksUrl}/__control/${route}`, {
      method, headers: body ? { "content-type": "application/json" } : {}, body: body && JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`mock ${route}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const api = async (path, { key, body, method, headers = {}, signal } = {}) => {
    const h = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    if (body !== undefined) h["content-type"] = "application/json";
    return fetch(`${stack.workerUrl}${path}`, {
      method: method ?? (body === undefined ? "GET" : "POST"), headers: h,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body), signal,
    });
  };
  const admin = async (path, body, method) => {
    const r = await api(path, { body, method, headers: { "x-admin-secret": stack.adminSecret } });
    return { status: r.status, body: await r.json() };
  };
  /** The worker's JSON log lines (wrangler dev's output, decorations stripped). */
  const logLines = () => fs.readFileSync(stack.workerLog, "utf8").split("\n")
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, "")).map((l) => l.slice(l.indexOf("{"))).filter((l) => l.startsWith("{"))
    .flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });
  return {
    redis, api, admin, logLines,
    createKey: async ({ name = "test", plan = "bulk", credits = 100 } = {}) => {
      const r = await admin("/admin/keys", { name, plan, credits, reason: "test credits" });
      if (r.status !== 201) throw new Error(`create key: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    /** Balance in millicredits, through the customer API. */
    balanceMc: async (key) => (await (await api("/v1/balance", { key })).json()).millicredits,
    /** Every ledger entry of a key, newest first. */
    ledger: async (keyId) => {
      const out = [];
      for (let offset = 0; ;) {
        const r = await admin(`/admin/keys/${keyId}/ledger?limit=200&offset=${offset}`);
        out.push(...r.body.entries);
        if (r.body.next_offset === null) return out;
        offset = r.body.next_offset;
      }
    },
    /** Waits until the request's settlement (its one `call` entry) is in the ledger; settlement
     *  runs after the response. Returns the request's entries. */
    settled: async (keyId, requestId, timeoutMs = 10000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const entries = await redis("LRANGE", `abk:ledger:${keyId}`, 0, 20);
        const mine = entries.map((e) => JSON.parse(e)).filter((e) => e.ref === requestId);
        if (mine.some((e) => e.type === "call")) return mine;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`request ${requestId} was not settled within ${timeoutMs} ms`);
    },
    frontStats: () => front("GET", "/__stats"),
    frontReset: () => front("POST", "/__stats/reset", {}),
    frontDelay: (ms) => front("POST", "/__config", { delay_ms: ms }),
    /** The next `count` Upstash requests carrying `command` fail (status 500, or "drop"). */
    frontFail: (count, command, status = 500) => front("POST", "/__config", { fail_next: { count, command, status } }),
    mockScript: (obj) => mock("POST", "script", obj),
    mockRequests: (provider) => mock("GET", provider ? `requests?provider=${provider}` : "requests"),
    mockReset: () => mock("POST", "reset", {}),
    /** Forgets the per-IP counters of calls with unknown keys (tests share one address). */
    resetIpLimits: async () => {
      for (const k of await redis("KEYS", "abk:rl:ip:*")) await redis("DEL", k);
    },
  };
}
