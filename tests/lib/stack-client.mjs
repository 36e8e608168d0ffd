// What a test file needs from the running stack: the suite's shared stack (STACK_JSON, written
// by tests/run.mjs) or, when a file runs alone, a stack of its own.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, beforeEach } from "node:test";
import { startStack } from "../../scripts/stack.mjs";

/** The day the test stacks price by (the worker's test-only TEST_PRICE_DATE, see core/src/clock.rs),
 *  so no test breaks when a model retires or a dated price starts: every model the tests name is
 *  sold on it (the per-image GPT image models until 2026-12-01, gpt-4o-mini until 2027-01-14,
 *  tts-1 until 2027-01-06, Gemini 3.8 Flash at its first price). Tests that expect a dated price
 *  compute it for this day, not for the calendar's. */
export const PRICE_DATE = "2026-11-16";

/** The worker variables every test stack runs with (a `bulk` plan for load tests, a short upstream timeout). */
export const TEST_VARS = {
  TEST_PRICE_DATE: PRICE_DATE,
  RATE_LIMITS: "free:ai=10/3600, pro:ai=100/3600, bulk:ai=100000/3600, free:media=10/3600, pro:media=100/3600, bulk:media=100000/3600, anonymous=5/900",
  UPSTREAM_TIMEOUT_MS: "6000",
  // Minutes in production for images and music; a stalled head is charged its hold after 6 s here.
  HEAD_TIMEOUT_CHAT_MS: "6000", HEAD_TIMEOUT_IMAGE_MS: "6000", HEAD_TIMEOUT_SPEECH_MS: "6000", HEAD_TIMEOUT_MUSIC_MS: "6000",
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

/**
 * The set-up every integration file shares, in one line at the top of the file:
 *
 *   const { stack, c } = await useStack();
 *
 * The suite's stack (or one of the file's own when it runs alone) and a client for it; released
 * after the file; before each test the mocks' scripts and the per-address limits are reset
 * (`reset: false` leaves them). The old `getStack`/`releaseStack`/`client` still work.
 */
export async function useStack({ reset = true } = {}) {
  const stack = await getStack();
  const c = client(stack);
  after(releaseStack);
  if (reset) {
    beforeEach(async () => {
      await c.mockReset();
      await c.resetIpLimits();
    });
  }
  return { stack, c };
}

/** The JSON-able view of a started stack. */
/**
 * The concurrency check of a `burstHeld` run whose balance (or cap) covers `n` holds: at most
 * `n` calls admitted at once (in flight together at the gate); when the gate held them all until
 * every call was answered, at most `n` served in all (a loaded machine's gate may open early,
 * and later calls then meet what the first ones' settlements left). At least one is served.
 * Returns how many were.
 */
export function assertServedAtMost(results, n) {
  const served = results.filter((r) => r.status === 200).length;
  assert.ok(results.heldAtRelease <= n, `${results.heldAtRelease} in flight at once`);
  if (!results.letGoEarly) assert.ok(served <= n, `served ${served} > ${n}`);
  assert.ok(served >= 1, "none served");
  return served;
}

/** A `fetch` for an SDK client (its `fetch` option) that remembers the `X-Request-Id` of the last
 *  answer's head, streams included: `ids.fetch`, then `ids.last`. */
export function requestIds() {
  const ids = {
    last: null,
    fetch: async (...args) => {
      const r = await fetch(...args);
      ids.last = r.headers.get("x-request-id");
      return r;
    },
  };
  return ids;
}

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
  /** The log lines of one request, once every message in `wanted` is among them (a line is
   *  written when its step ends: a settlement after the response, a delayed one later still). */
  const linesOf = async (requestId, wanted = ["request"]) => {
    for (let i = 0; i < 200; i++) {
      const mine = logLines().filter((l) => l.request_id === requestId);
      if (wanted.every((m) => mine.some((l) => l.msg === m))) return mine;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`log lines ${wanted} of ${requestId} not found`);
  };
  return {
    redis, api, admin, logLines, linesOf,
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
    /** Responses of `gate: true` scripts waiting at the mock's gate, and its opening. */
    mockHeld: async () => (await mock("GET", "held")).held,
    mockRelease: () => mock("POST", "release", {}),
    /**
     * `n` calls at once (`call()` returns a fetch promise) while the provider holds every call it
     * receives (script `provider` with `gate: true`), released once every call is either answered
     * or held: all the admitted calls are in flight together, with no fixed wait (at most until
     * 1.5 s before the gateway's upstream timeout). Then the mock is reset (the script's unused
     * turns). Returns [{status, body}], with `heldAtRelease` (the calls in flight together at the
     * gate: what admission let through at once) and `letGoEarly` (the machine was so loaded that
     * the gate opened before every call was answered or held: later calls may then be admitted
     * on what the first ones' settlements left, so only `heldAtRelease` bounds concurrency).
     */
    burstHeld: async (provider, n, call) => {
      await mock("POST", "script", { provider, times: n, gate: true });
      let answered = 0;
      // Every call settles to {status, body}: one odd answer fails the test's own assertions
      // with its text instead of leaving the held calls behind. wrangler dev's proxy sometimes
      // loses a pooled connection to the worker and answers a POST with its own 503 "Your worker
      // restarted mid-request" (cloudflare/workers-sdk#14641; the worker never saw the request,
      // and every gateway error is JSON): that one call is sent again, up to 3 times. A call the
      // worker did see is never resent, so the ledger checks still count every served call.
      const once = async () => {
        const r = await call();
        const text = await r.text();
        try { return { status: r.status, body: JSON.parse(text) }; } catch { return { status: r.status, body: text }; }
      };
      const proxyLost = (r) => r.status === 503 && typeof r.body === "string" && r.body.startsWith("Your worker restarted mid-request");
      // The same proxy also resets a pooled connection now and then ("fetch failed", cause
      // ECONNRESET / UND_ERR_SOCKET): sent again too. Had the worker served it, the resend's
      // 402 and the ledger's extra charge would fail the caller's ledger checks, never pass them.
      const connectionLost = (e) => ["ECONNRESET", "UND_ERR_SOCKET", "EPIPE"].includes(e?.cause?.code);
      const attempt = async () => {
        for (let i = 0; ; i++) {
          try {
            return await once();
          } catch (e) {
            if (i >= 3 || !connectionLost(e)) throw e;
          }
        }
      };
      const all = Promise.all(Array.from({ length: n }, async () => {
        try {
          let r = await attempt();
          for (let i = 0; i < 3 && proxyLost(r); i++) r = await attempt();
          return r;
        } catch (e) {
          return { status: 0, body: `${e} (${e?.cause?.code ?? e?.cause ?? "no cause"})` };
        } finally {
          answered++;
        }
      }));
      // The gateway gives up on a provider after UPSTREAM_TIMEOUT_MS (6 s in tests): on a machine
      // so loaded that the refusals take longer than that, the held calls are let go at half of
      // it (a loaded workerd may see a held answer's head seconds late) rather than turned into
      // 504s. Calls admitted later are not held (see keepOpen): the at-most-N check still holds.
      const letGoAfter = Date.now() + Number(stack.vars?.UPSTREAM_TIMEOUT_MS ?? 6000) / 2;
      let heldAtRelease = 0;
      try {
        while ((heldAtRelease = (await mock("GET", "held")).held) + answered < n && Date.now() < letGoAfter) {
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await mock("POST", "release", {});
      }
      const letGoEarly = heldAtRelease + answered < n;
      // A call the loaded gateway admits only after the release would wait at the gate for the
      // next one and time out: keep the gate opening until every call is answered.
      let done = false;
      const keepOpen = (async () => {
        while (!done) {
          await new Promise((r) => setTimeout(r, 50));
          if (!done) await mock("POST", "release", {});
        }
      })();
      const results = await all.finally(() => { done = true; });
      await keepOpen;
      await mock("POST", "reset", {});
      return Object.assign(results, { heldAtRelease, letGoEarly });
    },
    /** Forgets the per-IP counters of calls with unknown keys (tests share one address). */
    resetIpLimits: async () => {
      for (const k of await redis("KEYS", "abk:rl:ip:*")) await redis("DEL", k);
    },
  };
}
