// Operations: JSON logs and warnings (read from the captured `wrangler dev` output), analytics
// that agree with the ledger, security headers, CORS, and the original setup guide as written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import Stripe from "stripe";
import { useStack } from "./lib/stack-client.mjs";
import { ROOT } from "./lib/procs.mjs";

const run = promisify(execFile);
const { stack, c } = await useStack();

const linesOf = c.linesOf;

test("one JSON log line per request, and a settlement line, for a success, a 4xx, a 5xx and a stream", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "log me" }] };
  const ok = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(ok.status, 200);
  const okLines = await linesOf(ok.headers.get("x-request-id"), ["request", "settlement"]);
  const req = okLines.find((l) => l.msg === "request");
  const settled = okLines.find((l) => l.msg === "settlement");
  assert.deepEqual(
    [req.level, req.route, req.method, req.status, req.key_id, req.plan, req.provider, req.model],
    ["info", "/v1/chat", "POST", 200, key.id, "bulk", "openai", "gpt-4o-mini"],
  );
  for (const f of ["latency_ms", "upstream_ms", "credits_held", "credits_charged", "cost_usd", "usage"]) assert.ok(f in req, `request line has ${f}: ${JSON.stringify(req)}`);
  assert.equal(req.usage.usage.output, 5);
  assert.equal(settled.outcome, "settled");
  assert.equal(settled.charged_mc * 1, Math.round(req.credits_charged * 1000));
  assert.equal(settled.key_id, key.id);

  const bad = await c.api("/v1/chat", { key: key.api_key, body: { ...body, model: "gpt-9" } });
  const [badLine] = await linesOf(bad.headers.get("x-request-id"));
  assert.deepEqual([badLine.level, badLine.status, badLine.error_type], ["info", 400, "unknown_model"]);

  await c.mockScript({ provider: "openai", status: 500 });
  const failed = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(failed.status, 502);
  const lines = await linesOf(failed.headers.get("x-request-id"), ["request", "settlement"]);
  const failLine = lines.find((l) => l.msg === "request");
  assert.deepEqual([failLine.level, failLine.status, failLine.error_type, failLine.provider_status], ["error", 502, "upstream_error", 500]);

  const streamed = await c.api("/v1/chat", { key: key.api_key, body: { ...body, stream: true } });
  await streamed.text();
  const sl = await linesOf(streamed.headers.get("x-request-id"), ["request", "settlement"]);
  const streamReq = sl.find((l) => l.msg === "request");
  const streamSettled = sl.find((l) => l.msg === "settlement");
  assert.equal(streamReq.status, 200);
  assert.ok(!("credits_charged" in streamReq), "a stream's charge is known only at its end");
  assert.ok("credits_charged" in streamSettled && streamSettled.exact === true);
});

test("slow providers and costly calls log a warning with the figures", async () => {
  const key = await c.createKey({ credits: 100 });
  await c.mockScript({ provider: "openai", delay_ms: 1200 });
  const slow = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 3, messages: [{ role: "user", content: "slow" }] } });
  const [warn] = (await linesOf(slow.headers.get("x-request-id"), ["request", "slow_upstream"])).filter((l) => l.msg === "slow_upstream");
  assert.equal(warn.level, "warn");
  assert.ok(warn.upstream_ms >= 1200 && warn.threshold_ms === 1000, JSON.stringify(warn));
  // gpt-4o: 100k output tokens at $10/M = $1.00 > HIGH_COST_USD ($0.50).
  await c.mockScript({ provider: "openai", usage: { completion_tokens: 100_000 } });
  const costly = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o", max_tokens: 16_000, messages: [{ role: "user", content: "costly" }] } });
  assert.equal(costly.status, 200);
  const [high] = (await linesOf(costly.headers.get("x-request-id"), ["high_cost"])).filter((l) => l.msg === "high_cost");
  assert.equal(high.level, "warn");
  assert.ok(high.cost_usd >= 1 && high.threshold_usd === 0.5, JSON.stringify(high));
});

test("/admin/stats agrees with the ledger for a mix of calls, top-ups and refunds", async () => {
  const today = new Date().toISOString().slice(0, 10);
  const stats = async (q) => (await c.admin(`/admin/stats?from=${today}&to=${today}${q}`)).body;
  const before = await stats("");
  const key = await c.createKey({ credits: 20 });
  for (const [provider, model, stream] of [["openai", "gpt-4o-mini", false], ["anthropic", "claude-haiku-4-5", true], ["google", "gemini-3.5-flash", false]]) {
    const r = await c.api("/v1/chat", { key: key.api_key, body: { provider, model, stream, max_tokens: 10, messages: [{ role: "user", content: "stats" }] } });
    await r.text();
    await c.settled(key.id, r.headers.get("x-request-id"));
  }
  const stripe = new Stripe("sk_test_unused");
  const post = async (event) => {
    const payload = JSON.stringify(event);
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret: stack.stripeSecret });
    const r = await fetch(`${stack.workerUrl}/webhooks/stripe`, { method: "POST", headers: { "stripe-signature": header, "content-type": "application/json" }, body: payload });
    return r.json();
  };
  const pi = `pi_${Date.now()}`;
  assert.equal((await post({ id: `evt_s${Date.now()}`, type: "checkout.session.completed", data: { object: { id: `cs_${Date.now()}`, payment_status: "paid", amount_total: 500, currency: "usd", payment_intent: pi, metadata: { key_id: key.id } } } })).credited, true);
  assert.ok((await post({ id: `evt_r${Date.now()}`, type: "charge.refunded", data: { object: { id: "ch_1", payment_intent: pi, amount: 500, amount_captured: 500, amount_refunded: 100 } } })).credits_taken_back > 0);

  const mine = await stats(`&key_id=${key.id}`);
  const ledger = await c.ledger(key.id);
  const calls = ledger.filter((e) => e.type === "call" || e.type === "correction");
  assert.equal(mine.totals.charged_mc, -calls.reduce((s, e) => s + e.amount_mc, 0), "credits charged");
  assert.equal(mine.totals.cost_usd_micro, calls.reduce((s, e) => s + (e.cost_usd_micro ?? 0), 0), "provider cost");
  assert.equal(mine.totals.calls, 3);
  const units = calls.reduce((s, e) => s + Object.values(e.units.usage).reduce((a, b) => a + b, 0), 0);
  assert.equal(mine.totals.units, units);
  assert.equal(mine.totals.revenue_usd_micro, mine.totals.charged_mc * 10, "at $0.01 a credit");
  assert.deepEqual(mine.days[0].models.map((m) => m.model).sort(), ["anthropic/claude-haiku-4-5", "google/gemini-3.5-flash", "openai/gpt-4o-mini"]);
  // Payments are counted for all keys: this test's are the difference.
  const after = await stats("");
  const pay = (s, kind) => s.days[0]?.payments?.[kind]?.mc ?? 0;
  assert.equal(pay(after, "topup") - pay(before, "topup"), ledger.filter((e) => e.type === "topup").reduce((s, e) => s + e.amount_mc, 0));
  assert.equal(pay(after, "refund") - pay(before, "refund"), ledger.filter((e) => e.type === "refund").reduce((s, e) => s + e.amount_mc, 0));
  assert.equal(after.totals.charged_mc - before.totals.charged_mc, mine.totals.charged_mc);
  for (const q of ["?from=2026-02-30&to=2026-03-01", "?from=2026-03-02&to=2026-03-01", "?from=2020-01-01&to=2026-01-01", "?key_id=nope"]) {
    assert.equal((await c.admin(`/admin/stats${q}`)).status, 400, q);
  }
});

test("every response carries the security headers", async () => {
  const key = await c.createKey({ credits: 1 });
  for (const r of [await c.api("/health"), await c.api("/v1/models"), await c.api("/v1/nope"), await c.api("/v1/balance"), await c.api("/v1/balance", { key: key.api_key }),
    await c.api("/admin/keys/key_0000000000000000", { headers: { "x-admin-secret": "wrong" } })]) {
    assert.equal(r.headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains");
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    assert.equal(r.headers.get("x-frame-options"), "DENY");
    assert.equal(r.headers.get("referrer-policy"), "no-referrer");
    await r.arrayBuffer();
  }
});

test("CORS: an allowed origin gets its preflight and the exposed headers; another origin and /admin get none", async () => {
  const key = await c.createKey({ credits: 1 });
  const origin = "http://localhost:5173";
  const pre = await c.api("/v1/chat/completions", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, x-stainless-os" } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), origin);
  assert.match(pre.headers.get("access-control-allow-methods"), /POST/);
  assert.match(pre.headers.get("access-control-allow-headers"), /authorization/);
  assert.match(pre.headers.get("access-control-allow-headers"), /x-stainless-os/);
  const r = await c.api("/v1/chat", { key: key.api_key, headers: { origin }, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "cors" }] } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), origin);
  for (const h of ["X-Credits-Charged", "X-Request-Id", "RateLimit"]) assert.match(r.headers.get("access-control-expose-headers"), new RegExp(h));
  const other = await c.api("/v1/balance", { key: key.api_key, headers: { origin: "https://evil.example" } });
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const otherPre = await c.api("/v1/chat", { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
  assert.equal(otherPre.headers.get("access-control-allow-origin"), null);
  const admin = await c.api("/admin/keys/key_0000000000000000", { headers: { origin, "x-admin-secret": stack.adminSecret } });
  assert.equal(admin.headers.get("access-control-allow-origin"), null);
  const adminPre = await c.api("/admin/keys", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
  assert.equal(adminPre.headers.get("access-control-allow-origin"), null);
  const hook = await c.api("/webhooks/stripe", { method: "OPTIONS", headers: { origin } });
  assert.equal(hook.headers.get("access-control-allow-origin"), null);
});

/** Runs one of the original guide's curl lines; returns {status, json}. */
async function curl(...args) {
  const { stdout } = await run("curl", ["-s", "-w", "\n%{http_code}", ...args]);
  const i = stdout.lastIndexOf("\n");
  const text = stdout.slice(0, i);
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: Number(stdout.slice(i + 1)), json, text };
}

test("the original setup guide works as written: test key, balance, chat, balance, Stripe test call", async () => {
  const WORKER_URL = stack.workerUrl;
  const TEST_KEY = "test-key-123";
  // Step 2, option B (no reason, an unknown plaintext key).
  let r = await curl("-X", "POST", `${WORKER_URL}/admin/add-credits`, "-H", `X-Admin-Secret: ${stack.adminSecret}`, "-H", "Content-Type: application/json", "-d", '{"apiKey":"test-key-123","credits":10000}');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, true);
  assert.equal(r.json.plan, "free", "DEFAULT_PLAN");
  // Step 5: test your deployment.
  r = await curl("-H", `Authorization: Bearer ${TEST_KEY}`, `${WORKER_URL}/v1/balance`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credits, 10000);
  const keyId = r.json.key_id;
  r = await curl("-X", "POST", `${WORKER_URL}/v1/chat`, "-H", `Authorization: Bearer ${TEST_KEY}`, "-H", "Content-Type: application/json", "-d", '{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]}');
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.content.length > 0);
  const charged = r.json.credits_charged;
  assert.ok(charged > 0);
  await c.settled(keyId, r.json.request_id);
  r = await curl("-H", `Authorization: Bearer ${TEST_KEY}`, `${WORKER_URL}/v1/balance`);
  assert.equal(r.json.millicredits, 10_000_000 - Math.round(charged * 1000), "the balance is reduced by the charge");
  // The key is logged as ***, never as itself.
  assert.ok(!c.logLines().some((l) => JSON.stringify(l).includes(TEST_KEY)), "the test key is not in the log");
  // Testing credit purchases: the guide's unsigned call is refused, saying how to sign one.
  r = await curl("-X", "POST", `${WORKER_URL}/webhooks/stripe`, "-H", "Content-Type: application/json", "-H", "stripe-signature: test-sig", "-d",
    '{"type":"checkout.session.completed","data":{"object":{"metadata":{"apiKey":"test-key-123","credits":"5000"}}}}');
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /stripe trigger checkout\.session\.completed/);
  r = await curl("-H", `Authorization: Bearer ${TEST_KEY}`, `${WORKER_URL}/v1/balance`);
  assert.equal(r.json.millicredits, 10_000_000 - Math.round(charged * 1000), "and it changed nothing");
});

test("npm run import-keys imports the original product's balances once, however often it runs", async () => {
  await c.redis("SET", "user:legacy-key-0001:credits", "1500");
  await c.redis("SET", "user:legacy-key-0002:credits", "25");
  const env = { ...process.env, BROKER_URL: stack.workerUrl, ADMIN_SECRET: stack.adminSecret };
  const first = await run("npm", ["run", "--silent", "import-keys"], { cwd: ROOT, env });
  assert.match(first.stdout, /done: 2 imported/);
  const second = await run("npm", ["run", "--silent", "import-keys"], { cwd: ROOT, env });
  assert.match(second.stdout, /done: 0 imported, 2 skipped/);
  const balance = await (await c.api("/v1/balance", { key: "legacy-key-0001" })).json();
  assert.equal(balance.credits, 1500);
  const ledger = await c.ledger(balance.key_id);
  assert.deepEqual(ledger.map((e) => [e.type, e.amount_mc]), [["import", 1_500_000]]);
  assert.equal(await c.redis("GET", "user:legacy-key-0001:credits"), "1500", "the original data is left as it was");
});
