// Integration tests for payments (Stripe and PayPal webhooks), the admin API and the ledger,
// against the real stack: redis-server + the Upstash REST front + the provider/PayPal mocks +
// the worker in `wrangler dev`.
//
//   node --test tests/payments-admin.test.mjs
//   STACK_JSON=/path/stack.json node --test tests/payments-admin.test.mjs   # reuse a running stack
//
// STACK_JSON names a JSON file {workerUrl, upstashUrl, upstashToken, adminSecret, stripeSecret,
// mocksUrl}; without it the file starts (and stops) its own stack (tests/lib/stack-client.mjs). Every id used here is random,
// so the tests also pass against a stack that has served earlier runs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Stripe from "stripe";
import { ROOT } from "./lib/procs.mjs";
import { paypalSign, MOCK_DEFAULTS } from "./lib/mocks.mjs";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";

// ---------------------------------------------------------------------------------------------
// Stack

let stack; // {workerUrl, upstashUrl, upstashToken, adminSecret, stripeSecret, mocksUrl}
let redis; // one Redis command through the Upstash front
let mocks; // the stack's client: the mocks' control API (scripts, the gate)

before(async () => {
  stack = await getStack();
  mocks = client(stack);
  redis = mocks.redis;
  // A previous run (or another file) may have left failed admin attempts, or calls with unknown
  // keys (limited per client IP), behind.
  await clearAdminFailures();
  await clearAnonymousLimits();
}, { timeout: 25 * 60 * 1000 });

after(releaseStack);

// ---------------------------------------------------------------------------------------------
// HTTP helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rnd = (n = 8) => crypto.randomBytes(n).toString("hex");
/** Credits as the API prints them → millicredits (exact for up to 3 decimals). */
const mc = (credits) => Math.round(credits * 1000);

/** One request to the worker; returns {status, headers, text, json}. */
async function call(method, route, { key, admin, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== undefined) h.authorization = `Bearer ${key}`;
  if (admin !== undefined) h["x-admin-secret"] = admin;
  if (json !== undefined) {
    h["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  const res = await fetch(stack.workerUrl + route, { method, headers: h, body });
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, text, json: parsed };
}

const adminCall = (method, route, json) => call(method, route, { admin: stack.adminSecret, json });

async function clearAdminFailures() {
  const keys = await redis("KEYS", "abk:adminfail:*");
  if (keys.length) await redis("DEL", ...keys);
}

/** Calls with an unknown or revoked key count against the client IP (RATE_LIMITS anonymous=5/900):
 *  reruns against a reused stack would otherwise see 429 where these tests expect 401. */
async function clearAnonymousLimits() {
  const keys = await redis("KEYS", "abk:rl:ip:*");
  if (keys.length) await redis("DEL", ...keys);
}

async function newKey({ name = `pa-${rnd(4)}`, plan = "pro", credits = 100, reason = "payments-admin test" } = {}) {
  const r = await adminCall("POST", "/admin/keys", { name, plan, credits, reason });
  assert.equal(r.status, 201, `create key: ${r.text}`);
  assert.match(r.json.id, /^key_[0-9a-f]{16}$/);
  assert.equal(typeof r.json.api_key, "string");
  return r.json;
}

/** Balance in millicredits as the customer sees it (asserts 200). */
async function balanceMc(apiKey) {
  const r = await call("GET", "/v1/balance", { key: apiKey });
  assert.equal(r.status, 200, `balance: ${r.text}`);
  assert.equal(mc(r.json.credits), r.json.millicredits, "credits and millicredits agree");
  return r.json.millicredits;
}

/** Admin view of a key (asserts 200). */
async function adminKey(id) {
  const r = await adminCall("GET", `/admin/keys/${id}`);
  assert.equal(r.status, 200, `admin get key: ${r.text}`);
  return r.json;
}

/** Every ledger entry (newest first), paging with limit/offset until next_offset is null. */
async function fullLedger({ apiKey, id, limit = 50 }) {
  const entries = [];
  let offset = 0;
  let total = null;
  for (let pages = 0; pages < 1000; pages++) {
    const route = id ? `/admin/keys/${id}/ledger?limit=${limit}&offset=${offset}` : `/v1/usage?limit=${limit}&offset=${offset}`;
    const r = id ? await adminCall("GET", route) : await call("GET", route, { key: apiKey });
    assert.equal(r.status, 200, `ledger page: ${r.text}`);
    assert.ok(Array.isArray(r.json.entries));
    assert.ok(r.json.entries.length <= limit);
    total = r.json.total;
    entries.push(...r.json.entries);
    if (r.json.next_offset === null) break;
    assert.equal(r.json.next_offset, offset + r.json.entries.length, "next_offset follows the page");
    offset = r.json.next_offset;
  }
  assert.equal(entries.length, total, "paging returns exactly `total` entries");
  return entries;
}

/** Polls until `probe()` returns a truthy value (returned) or fails after timeoutMs. */
async function eventually(probe, { timeoutMs = 10000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// ---------------------------------------------------------------------------------------------
// Stripe

const stripe = new Stripe("sk_test_x");
const STRIPE_FIXTURE = JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/stripe/checkout.session.completed.json"), "utf8"));

/** A checkout event built on the recorded fixture, with fresh event/session ids. */
function stripeEvent({ id = `evt_${rnd(12)}`, type = "checkout.session.completed", session = {}, metadata } = {}) {
  const ev = structuredClone(STRIPE_FIXTURE);
  ev.id = id;
  ev.type = type;
  ev.created = Math.floor(Date.now() / 1000);
  const s = ev.data.object;
  s.id = `cs_test_${rnd(16)}`;
  s.payment_intent = `pi_${rnd(16)}`; // one payment per session, as Stripe does
  s.client_reference_id = null;
  s.metadata = metadata ?? {};
  Object.assign(s, session);
  return ev;
}

function stripeHeader(payload, { secret = stack.stripeSecret, timestamp = Math.floor(Date.now() / 1000) } = {}) {
  return stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

/** POSTs a Stripe delivery. `event` may be an object (serialized here) or the raw body text. */
async function postStripe(event, { header, sign = true, ...signOpts } = {}) {
  const payload = typeof event === "string" ? event : JSON.stringify(event);
  const headers = { "content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" };
  const h = header !== undefined ? header : sign ? stripeHeader(payload, signOpts) : undefined;
  if (h !== undefined && h !== null) headers["stripe-signature"] = h;
  return call("POST", "/webhooks/stripe", { body: payload, headers });
}

// ---------------------------------------------------------------------------------------------
// PayPal

const PAYPAL_FIXTURE = JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/paypal/payment.capture.completed.json"), "utf8"));

function paypalEvent({ keyId, id = `WH-${rnd(8).toUpperCase()}-${rnd(8).toUpperCase()}`, captureId = rnd(8).toUpperCase(), value = "20.00", currency = "USD", custom } = {}) {
  const ev = structuredClone(PAYPAL_FIXTURE);
  ev.id = id;
  ev.resource.id = captureId;
  ev.resource.custom_id = custom ?? `${keyId}:pack_2000`;
  ev.resource.amount = { value, currency_code: currency };
  return ev;
}

function paypalHeaders(rawEvent, { sig, omit } = {}) {
  const transmissionId = crypto.randomUUID();
  const transmissionTime = new Date().toISOString();
  const h = {
    "content-type": "application/json",
    "paypal-auth-algo": "SHA256withRSA",
    "paypal-cert-url": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270",
    "paypal-transmission-id": transmissionId,
    "paypal-transmission-time": transmissionTime,
    "paypal-transmission-sig": sig ?? paypalSign({ transmissionId, transmissionTime, webhookId: MOCK_DEFAULTS.paypalWebhookId, rawEvent }),
  };
  if (omit) delete h[omit];
  return h;
}

async function postPaypal(event, opts = {}) {
  const raw = typeof event === "string" ? event : JSON.stringify(event);
  return call("POST", "/webhooks/paypal", { body: raw, headers: paypalHeaders(raw, opts) });
}

const mockScript = (obj) => mocks.mockScript(obj);

// ---------------------------------------------------------------------------------------------
// Chat (to produce call entries)

async function chat(apiKey) {
  return call("POST", "/v1/chat", {
    key: apiKey,
    json: { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 10 },
  });
}

/** Waits until the ledger holds the settlement (the one `call` entry) of `requestId`. */
async function settled(apiKey, requestId) {
  return eventually(async () => {
    const entries = await fullLedger({ apiKey });
    const mine = entries.filter((e) => e.ref === requestId);
    return mine.some((e) => e.type === "call") ? mine : null;
  }, { what: `settlement of ${requestId}` });
}

// =============================================================================================
// 1. Stripe: a valid checkout.session.completed credits once

test("stripe: a signed, paid checkout.session.completed credits amount_total at $0.01/credit, with a topup ledger entry", async () => {
  const key = await newKey({ credits: 100 });
  const before = await balanceMc(key.api_key);
  assert.equal(before, mc(100));

  const ev = stripeEvent({ session: { amount_total: 2000, currency: "usd", payment_status: "paid" }, metadata: { key_id: key.id } });
  const r = await postStripe(ev);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.received, true);
  assert.equal(r.json.credited, true);
  assert.equal(r.json.key_id, key.id);
  assert.equal(r.json.credits_added, 2000);

  assert.equal(await balanceMc(key.api_key), before + mc(2000));
  const [top] = (await call("GET", "/v1/usage?limit=1", { key: key.api_key })).json.entries;
  assert.equal(top.type, "topup");
  assert.equal(top.source, "stripe");
  assert.equal(top.ref, ev.id);
  assert.equal(top.session, ev.data.object.id);
  assert.equal(top.amount_mc, mc(2000));
  assert.equal(top.credits, 2000);
  assert.equal(top.balance_mc, before + mc(2000));
  // The admin view agrees.
  const k = await adminKey(key.id);
  assert.equal(k.credits, 2100);
  assert.equal(k.ledger_entries, 2);
});

// 2. Replays

test("stripe: the same event replayed 20x (10 sequential, 10 concurrent) credits once; every replay answers 200", async () => {
  const key = await newKey({ credits: 0 });
  const ev = stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } });
  const payload = JSON.stringify(ev);
  const first = await postStripe(payload);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.credited, true);

  for (let i = 0; i < 10; i++) {
    const r = await postStripe(payload); // re-signed each time, like Stripe's retries
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.received, true);
    assert.equal(r.json.credited, false);
    assert.equal(r.json.duplicate, true);
  }
  const concurrent = await Promise.all(Array.from({ length: 10 }, () => postStripe(payload)));
  for (const r of concurrent) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credited, false);
  }
  assert.equal(await balanceMc(key.api_key), mc(2000));
  const topups = (await fullLedger({ apiKey: key.api_key })).filter((e) => e.type === "topup");
  assert.equal(topups.length, 1);
});

test("stripe: a fresh event delivered 20x concurrently credits exactly once", async () => {
  const key = await newKey({ credits: 0 });
  const payload = JSON.stringify(stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } }));
  const rs = await Promise.all(Array.from({ length: 20 }, () => postStripe(payload)));
  for (const r of rs) assert.equal(r.status, 200, r.text);
  assert.equal(rs.filter((r) => r.json.credited === true).length, 1, "exactly one delivery credits");
  assert.equal(await balanceMc(key.api_key), mc(2000));
  assert.equal((await fullLedger({ apiKey: key.api_key })).filter((e) => e.type === "topup").length, 1);
});

// 3. Same session, other event id

test("stripe: the same checkout session under a second event id (sequential and concurrent) credits once", async () => {
  const key = await newKey({ credits: 0 });
  const ev1 = stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } });
  assert.equal((await postStripe(ev1)).json.credited, true);
  // Same session, new event id (e.g. async_payment_succeeded after a paid completed).
  for (const type of ["checkout.session.completed", "checkout.session.async_payment_succeeded"]) {
    const ev2 = { ...structuredClone(ev1), id: `evt_${rnd(12)}`, type };
    const r = await postStripe(ev2);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credited, false, `second event of type ${type} must not credit`);
    assert.equal(r.json.duplicate, true);
  }
  assert.equal(await balanceMc(key.api_key), mc(2000));

  // Concurrently: five event ids for one new session.
  const base = stripeEvent({ session: { amount_total: 500 }, metadata: { key_id: key.id } });
  const rs = await Promise.all(Array.from({ length: 5 }, () => postStripe({ ...structuredClone(base), id: `evt_${rnd(12)}` })));
  for (const r of rs) assert.equal(r.status, 200, r.text);
  assert.equal(rs.filter((r) => r.json.credited).length, 1);
  assert.equal(await balanceMc(key.api_key), mc(2000 + 500));
  assert.equal((await fullLedger({ apiKey: key.api_key })).filter((e) => e.type === "topup").length, 2);
});

// 4. Signature refusals

test("stripe: tampered body, wrong secret, stale or future timestamp, missing or garbage header → 400, nothing changes", async () => {
  const key = await newKey({ credits: 10 });
  const ev = stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } });
  const payload = JSON.stringify(ev);
  const now = Math.floor(Date.now() / 1000);
  const good = stripeHeader(payload);
  const v1 = good.split(",").find((p) => p.startsWith("v1="));

  const tampered = payload.replace('"amount_total":2000', '"amount_total":200000');
  assert.notEqual(tampered, payload);
  const cases = [
    ["tampered body", () => postStripe(tampered, { header: good })],
    ["wrong secret", () => postStripe(payload, { secret: "whsec_not_the_right_one" })],
    ["secret without whsec_ prefix", () => postStripe(payload, { secret: stack.stripeSecret.replace(/^whsec_/, "") })],
    ["stale timestamp (now-400s)", () => postStripe(payload, { timestamp: now - 400 })],
    ["future timestamp (now+400s)", () => postStripe(payload, { timestamp: now + 400 })],
    ["missing header", () => postStripe(payload, { sign: false })],
    ["empty header", () => postStripe(payload, { header: "" })],
    ["garbage header", () => postStripe(payload, { header: "garbage" })],
    ["t without v1", () => postStripe(payload, { header: `t=${now}` })],
    ["v1 without t", () => postStripe(payload, { header: v1 })],
    ["non-numeric t", () => postStripe(payload, { header: `t=abc,${v1}` })],
    ["valid signature moved to another timestamp", () => postStripe(payload, { header: `t=${now - 1},${v1}` })],
    ["v0 only", () => postStripe(payload, { header: `t=${now},v0=${v1.slice(3)}` })],
  ];
  for (const [what, send] of cases) {
    const r = await send();
    assert.equal(r.status, 400, `${what}: expected 400, got ${r.status} ${r.text}`);
    assert.ok(r.json?.error, `${what}: JSON error body`);
    assert.equal(await balanceMc(key.api_key), mc(10), `${what}: balance unchanged`);
  }
  assert.equal((await fullLedger({ apiKey: key.api_key })).length, 1, "only the initial grant");

  // None of the refusals left a dedupe marker: the genuine delivery still credits, once.
  const ok = await postStripe(payload);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.credited, true);
  assert.equal(await balanceMc(key.api_key), mc(10 + 2000));
  // A header with several v1 entries (secret rotation) is accepted if any matches.
  const ev2 = stripeEvent({ session: { amount_total: 100 }, metadata: { key_id: key.id } });
  const p2 = JSON.stringify(ev2);
  const h2 = stripeHeader(p2);
  const [t2, v12] = h2.split(",");
  const multi = await postStripe(p2, { header: `${t2},v1=${"0".repeat(64)},${v12},v0=abc` });
  assert.equal(multi.status, 200, multi.text);
  assert.equal(multi.json.credited, true);
  assert.equal(await balanceMc(key.api_key), mc(10 + 2000 + 100)); // 100 cents = 100 credits
});

// 5. What credits and what does not

test("stripe: unpaid sessions and unhandled types are acknowledged without credit; async_payment_succeeded, metadata.apiKey, metadata.credits and client_reference_id credit", async () => {
  const key = await newKey({ credits: 0 });
  const bal = () => balanceMc(key.api_key);

  // Unpaid checkout (e.g. a bank debit still pending): 200, not credited.
  const unpaid = stripeEvent({ session: { amount_total: 2000, payment_status: "unpaid" }, metadata: { key_id: key.id } });
  let r = await postStripe(unpaid);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.received, true);
  assert.equal(r.json.credited, false);
  assert.equal(await bal(), 0);

  // Unhandled event types: 200, not credited.
  for (const type of ["invoice.paid", "checkout.session.async_payment_failed", "checkout.session.expired", "payment_intent.succeeded"]) {
    r = await postStripe(stripeEvent({ type, session: { amount_total: 2000 }, metadata: { key_id: key.id } }));
    assert.equal(r.status, 200, `${type}: ${r.text}`);
    assert.equal(r.json.credited, false, type);
  }
  assert.equal(await bal(), 0);

  // The unpaid session's money arrives later: async_payment_succeeded for that session credits.
  const later = structuredClone(unpaid);
  later.id = `evt_${rnd(12)}`;
  later.type = "checkout.session.async_payment_succeeded";
  later.data.object.payment_status = "paid";
  r = await postStripe(later);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credited, true);
  assert.equal(await bal(), mc(2000));

  // metadata.apiKey (plaintext) with an explicit metadata.credits amount (currency irrelevant).
  r = await postStripe(stripeEvent({ session: { amount_total: 999, currency: "eur" }, metadata: { apiKey: key.api_key, credits: "5000" } }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credited, true);
  assert.equal(r.json.credits_added, 5000);
  assert.equal(await bal(), mc(2000 + 5000));

  // metadata.credits with decimals wins over amount_total.
  r = await postStripe(stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id, credits: "12.345" } }));
  assert.equal(r.json.credited, true, r.text);
  assert.equal(await bal(), mc(2000 + 5000) + 12345);

  // client_reference_id = key id.
  r = await postStripe(stripeEvent({ session: { amount_total: 150, client_reference_id: key.id } }));
  assert.equal(r.json.credited, true, r.text);
  assert.equal(await bal(), mc(2000 + 5000 + 150) + 12345); // 150 cents = 150 credits
  const expected = await bal();

  // Sessions naming no known key: acknowledged, not credited.
  const nobody = [
    { metadata: { key_id: "key_0000000000000000" } },
    { metadata: { apiKey: "sk-broker-not-a-real-key" } },
    { session: { client_reference_id: "usr_7f3a9c21" } }, // the fixture's own: not a key id
    { metadata: {} },
    { metadata: { key_id: "key_not-hex" } },
  ];
  const unmatchedIds = [];
  for (const spec of nobody) {
    const ev = stripeEvent({ ...spec, session: { amount_total: 2000, ...(spec.session ?? {}) } });
    unmatchedIds.push(ev.id);
    r = await postStripe(ev);
    assert.equal(r.status, 200, `${JSON.stringify(spec)}: ${r.text}`);
    assert.equal(r.json.received, true);
    assert.equal(r.json.credited, false, JSON.stringify(spec));
    assert.equal(r.json.unmatched, true, JSON.stringify(spec));
  }
  // A non-USD session without metadata.credits has no conversion: not credited.
  const eur = stripeEvent({ session: { amount_total: 2000, currency: "eur" }, metadata: { key_id: key.id } });
  unmatchedIds.push(eur.id);
  r = await postStripe(eur);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credited, false);
  assert.equal(await bal(), expected);
  // Money received but credited to nobody is not lost: admins can list it (replays do not repeat it).
  await postStripe(eur);
  const listed = await call("GET", "/admin/unmatched-payments", { admin: stack.adminSecret });
  assert.equal(listed.status, 200, listed.text);
  const mine = listed.json.entries.filter((e) => unmatchedIds.includes(e.event_id));
  assert.equal(mine.length, unmatchedIds.length);
  assert.ok(mine.every((e) => e.source === "stripe" && e.amount_total_cents === 2000 && e.reason));

  const topups = (await fullLedger({ apiKey: key.api_key })).filter((e) => e.type === "topup");
  assert.equal(topups.length, 4);
  assert.ok(topups.every((e) => e.source === "stripe"));
});

test("stripe: charge.refunded takes back the refunded share once; spent credits become a debt", async () => {
  const key = await newKey({ credits: 0 });
  const bought = stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } });
  const pi = bought.data.object.payment_intent;
  assert.equal((await postStripe(bought)).json.credited, true);
  assert.equal(await balanceMc(key.api_key), mc(2000));
  const refundEvent = (refunded) => ({
    id: `evt_${rnd(12)}`, object: "event", type: "charge.refunded", created: Math.floor(Date.now() / 1000),
    data: { object: { id: `ch_${rnd(12)}`, object: "charge", payment_intent: pi, amount: 2000, amount_captured: 2000, amount_refunded: refunded, refunded: refunded === 2000 } },
  });
  // A partial refund of $5 of $20: a quarter of the credits goes back, once.
  const partial = refundEvent(500);
  let r = await postStripe(partial);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credits_taken_back, 500);
  for (let i = 0; i < 3; i++) assert.equal((await postStripe(partial)).json.duplicate, true);
  assert.equal(await balanceMc(key.api_key), mc(1500));
  // Spend some, then the rest is refunded (amount_refunded is cumulative): the whole remaining
  // share goes, though 1200 of it was spent: the key owes it.
  await call("POST", "/admin/add-credits", { admin: stack.adminSecret, json: { apiKey: key.id, credits: -1200, reason: "spent (simulated)" } });
  r = await postStripe(refundEvent(2000));
  assert.equal(r.json.credits_taken_back, 1500);
  assert.equal(r.json.credits_after, -1200);
  assert.equal(await balanceMc(key.api_key), mc(-1200));
  const balance = (await call("GET", "/v1/balance", { key: key.api_key })).json;
  assert.equal(balance.debt_credits, 1200);
  const [top] = (await call("GET", "/v1/usage?limit=1", { key: key.api_key })).json.entries;
  assert.equal(top.type, "refund");
  assert.equal(top.payment_intent, pi);
  assert.equal(top.amount_mc, mc(-1500));
  const listed = await call("GET", "/admin/unmatched-payments", { admin: stack.adminSecret });
  assert.ok(listed.json.entries.some((e) => e.source === "stripe-refund" && e.payment_intent === pi && e.debt_credits === 1200));
  // A key in debt cannot spend: admission refuses it, saying so.
  const refused = await chat(key.api_key);
  assert.equal(refused.status, 402, refused.text);
  assert.match(refused.json.error.message, /owes/);
  // A refund of a payment the gateway has not credited is remembered, not applied to anyone now.
  r = await postStripe({ ...refundEvent(100), data: { object: { ...refundEvent(100).data.object, payment_intent: "pi_unknown" } } });
  assert.equal(r.status, 200);
  assert.equal(r.json.credited, false);
  assert.equal(r.json.pending, true);
  assert.equal(await balanceMc(key.api_key), mc(-1200));
  // Balance == ledger sum still holds.
  const entries = await fullLedger({ apiKey: key.api_key });
  assert.equal(entries.reduce((a, e) => a + e.amount_mc, 0), await balanceMc(key.api_key));
});

test("stripe: a refund that arrives while a call holds the credits leaves nothing of them to spend", async () => {
  const key = await newKey({ credits: 0 });
  const bought = stripeEvent({ session: { amount_total: 1000 }, metadata: { key_id: key.id } });
  assert.equal((await postStripe(bought)).json.credited, true);
  // A call held at the mock's gate (no fixed delay a loaded machine could outrun) holds most of
  // the 1000 credits while the refund arrives; the gate opens only after the refund is in.
  await mockScript({ provider: "anthropic", gate: true });
  const pending = call("POST", "/v1/messages", { key: key.api_key, json: { model: "claude-haiku-4-5", max_tokens: 64000, messages: [{ role: "user", content: "hold" }] } });
  await eventually(async () => (await mocks.mockHeld()) === 1, { what: "the call at the provider's gate" });
  const held = (await adminKey(key.id)).held_millicredits;
  assert.ok(held > 0, "the call holds credits while the provider works");
  const refund = {
    id: `evt_${rnd(12)}`, object: "event", type: "charge.refunded", created: Math.floor(Date.now() / 1000),
    data: { object: { id: `ch_${rnd(12)}`, object: "charge", payment_intent: bought.data.object.payment_intent, amount: 1000, amount_captured: 1000, amount_refunded: 1000, refunded: true } },
  };
  let r;
  try {
    r = await postStripe(refund);
  } finally {
    await mocks.mockRelease();
  }
  assert.equal(r.json.credits_taken_back, 1000, r.text);
  assert.equal(r.json.credits_after * 1000, -held, "everything the refund bought is taken, the held part as a debt");
  const served = await pending;
  assert.equal(served.status, 200, served.text);
  await settled(key.api_key, served.headers.get("x-request-id"));
  const after = await balanceMc(key.api_key);
  assert.equal(after, -mc(served.json.x_broker.credits_charged), "only the call's own cost is left, owed");
  assert.equal((await chat(key.api_key)).status, 402, "a key in debt cannot spend");
  const entries = await fullLedger({ apiKey: key.api_key });
  assert.equal(entries.reduce((a, e) => a + e.amount_mc, 0), after);
});

test("stripe: a refund delivered before its purchase, then the purchase, nets to zero", async () => {
  const key = await newKey({ credits: 0 });
  const bought = stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } });
  const pi = bought.data.object.payment_intent;
  const refund = {
    id: `evt_${rnd(12)}`, object: "event", type: "charge.refunded", created: Math.floor(Date.now() / 1000),
    data: { object: { id: `ch_${rnd(12)}`, object: "charge", payment_intent: pi, amount: 2000, amount_captured: 2000, amount_refunded: 2000, refunded: true } },
  };
  let r = await postStripe(refund);
  assert.equal(r.json.pending, true, r.text);
  r = await postStripe(bought);
  assert.equal(r.json.credited, true);
  assert.equal(r.json.credits_taken_back, 2000);
  assert.equal(await balanceMc(key.api_key), 0);
  const types = (await fullLedger({ apiKey: key.api_key })).map((e) => [e.type, e.amount_mc]);
  assert.deepEqual(types, [["refund", -mc(2000)], ["topup", mc(2000)]]);
  // A replay of the refund changes nothing more.
  assert.equal((await postStripe(refund)).json.duplicate, true);
  assert.equal(await balanceMc(key.api_key), 0);
});

test("stripe: a refund naming no payment intent is listed for admins, not dropped", async () => {
  const ev = { id: `evt_${rnd(12)}`, object: "event", type: "charge.refunded", created: Math.floor(Date.now() / 1000), data: { object: { id: `ch_${rnd(12)}`, object: "charge", amount: 500, amount_refunded: 500 } } };
  const r = await postStripe(ev);
  assert.equal(r.status, 200);
  assert.equal(r.json.unmatched, true);
  const listed = await call("GET", "/admin/unmatched-payments", { admin: stack.adminSecret });
  assert.ok(listed.json.entries.some((e) => e.event_id === ev.id && e.source === "stripe-refund"));
});

// 6. PayPal

test("paypal: the OAuth token is fetched once and reused; a token PayPal refuses is replaced once", async () => {
  const key = await newKey({ credits: 0 });
  await redis("DEL", "abk:paypal:token");
  const tokenCalls = async () => (await (await fetch(`${stack.mocksUrl}/__control/requests?provider=paypal-token`)).json()).length;
  const before = await tokenCalls();
  for (let i = 0; i < 2; i++) {
    const r = await postPaypal(paypalEvent({ keyId: key.id }));
    assert.equal(r.json?.credited, true, r.text);
  }
  assert.equal(await tokenCalls(), before + 1, "two deliveries, one token request");
  // PayPal refuses the cached token (expired early): the gateway fetches a new one and retries.
  await mockScript({ provider: "paypal-verify", status: 401 });
  const r = await postPaypal(paypalEvent({ keyId: key.id }));
  assert.equal(r.json?.credited, true, r.text);
  assert.equal(await tokenCalls(), before + 2);
  assert.equal(await balanceMc(key.api_key), mc(3 * 2000));
});

test("paypal: a verified PAYMENT.CAPTURE.COMPLETED credits 2000 once; replays, forged or unverified deliveries and missing headers change nothing", async () => {
  const key = await newKey({ credits: 0 });
  const ev = paypalEvent({ keyId: key.id });
  const raw = JSON.stringify(ev, null, 2); // pretty-printed: the exact bytes must be verified

  let r = await postPaypal(raw);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.received, true);
  assert.equal(r.json.credited, true);
  assert.equal(r.json.credits_added, 2000);
  assert.equal(await balanceMc(key.api_key), mc(2000));
  const [top] = (await call("GET", "/v1/usage?limit=1", { key: key.api_key })).json.entries;
  assert.equal(top.type, "topup");
  assert.equal(top.source, "paypal");
  assert.equal(top.ref, ev.id);
  assert.equal(top.capture, ev.resource.id);
  assert.equal(top.amount_mc, mc(2000));

  // Replays (new transmissions of the same event): 200, nothing changes.
  for (let i = 0; i < 3; i++) {
    r = await postPaypal(raw);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credited, false);
    assert.equal(r.json.duplicate, true);
  }
  const conc = await Promise.all(Array.from({ length: 5 }, () => postPaypal(raw)));
  for (const c of conc) {
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.credited, false);
  }
  // The same capture under another event id: not credited again.
  r = await postPaypal({ ...structuredClone(ev), id: `WH-${rnd(8).toUpperCase()}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credited, false);
  assert.equal(await balanceMc(key.api_key), mc(2000));

  // PayPal's verification API is down: a 5xx (so PayPal retries), nothing credited.
  await mockScript({ provider: "paypal-verify", status: 500 });
  const down = await postPaypal(paypalEvent({ keyId: key.id, value: "1.00" }));
  assert.ok(down.status >= 500, `verify API down: expected 5xx, got ${down.status} ${down.text}`);
  assert.equal(await balanceMc(key.api_key), mc(2000));

  // Forged deliveries of a new event.
  const ev2 = paypalEvent({ keyId: key.id, value: "5.00" });
  const raw2 = JSON.stringify(ev2);
  r = await postPaypal(raw2, { sig: "0".repeat(64) });
  assert.equal(r.status, 400, `wrong signature: ${r.text}`);
  // Signed for other bytes (the body was altered after signing).
  {
    const h = paypalHeaders(raw2);
    const altered = raw2.replace('"5.00"', '"500.00"');
    r = await call("POST", "/webhooks/paypal", { body: altered, headers: h });
    assert.equal(r.status, 400, `altered body: ${r.text}`);
  }
  // Correct signature, but PayPal says FAILURE.
  await mockScript({ provider: "paypal-verify", verification_status: "FAILURE" });
  r = await postPaypal(raw2);
  assert.equal(r.status, 400, `scripted FAILURE: ${r.text}`);
  for (const h of ["paypal-auth-algo", "paypal-cert-url", "paypal-transmission-id", "paypal-transmission-sig", "paypal-transmission-time"]) {
    r = await postPaypal(raw2, { omit: h });
    assert.equal(r.status, 400, `missing ${h}: ${r.text}`);
  }
  r = await call("POST", "/webhooks/paypal", { body: raw2, headers: { "content-type": "application/json" } });
  assert.equal(r.status, 400, `no headers at all: ${r.text}`);
  assert.equal(await balanceMc(key.api_key), mc(2000), "refusals change nothing");

  // The refusals left no dedupe marker: the genuine delivery of ev2 credits $5 = 500 credits.
  r = await postPaypal(raw2);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.credited, true);
  assert.equal(await balanceMc(key.api_key), mc(2500));

  // Verified but not creditable: other event types, custom_id naming no key, non-USD.
  const others = [
    { ...paypalEvent({ keyId: key.id }), event_type: "PAYMENT.CAPTURE.REFUNDED" },
    paypalEvent({ custom: "usr_7f3a9c21:pack_2000" }),
    paypalEvent({ keyId: "key_0000000000000000" }),
    paypalEvent({ keyId: key.id, currency: "EUR" }),
  ];
  for (const o of others) {
    r = await postPaypal(o);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credited, false, JSON.stringify(o.resource.custom_id));
  }
  // custom_id = bare key id also works.
  r = await postPaypal(paypalEvent({ custom: key.id, value: "0.10" }));
  assert.equal(r.json.credited, true, r.text);
  assert.equal(await balanceMc(key.api_key), mc(2510));
  const topups = (await fullLedger({ apiKey: key.api_key })).filter((e) => e.type === "topup");
  assert.equal(topups.length, 3);
  assert.ok(topups.every((e) => e.source === "paypal"));
});

// 7. Admin

test("admin: create, inspect, grant, adjust, add-credits, rotate and revoke as a customer sees it", async () => {
  try {
    // Wrong or missing secret: 401 JSON, nothing disclosed.
    for (const admin of ["wrong-secret", undefined, stack.adminSecret + "x", ""]) {
      const r = await call("POST", "/admin/keys", { admin, json: { name: "x", plan: "pro", credits: 1000, reason: "x" } });
      assert.equal(r.status, 401, `secret ${JSON.stringify(admin)}: ${r.text}`);
      assert.ok(r.json?.error, "JSON error body");
      assert.ok(!("api_key" in (r.json ?? {})));
    }

    // Create → 201 with the plaintext once.
    const created = await adminCall("POST", "/admin/keys", { name: "Acme admin test", plan: "pro", credits: 50, reason: "welcome credits" });
    assert.equal(created.status, 201, created.text);
    const { id, api_key: key1 } = created.json;
    assert.match(id, /^key_[0-9a-f]{16}$/);
    assert.equal(created.json.credits, 50);

    // Inspect.
    let k = await adminKey(id);
    assert.equal(k.id, id);
    assert.equal(k.name, "Acme admin test");
    assert.equal(k.plan, "pro");
    assert.equal(k.status, "active");
    assert.equal(k.credits, 50);
    assert.ok(!JSON.stringify(k).includes(key1), "the plaintext is never shown again");
    assert.equal((await adminCall("GET", "/admin/keys/key_0000000000000000")).status, 404);
    const bad = await call("GET", `/admin/keys/${id}`, { admin: "nope" });
    assert.equal(bad.status, 401);
    assert.equal(await balanceMc(key1), mc(50));
    const bal = await call("GET", "/v1/balance", { key: key1 });
    assert.equal(bal.json.key_id, id);
    assert.equal(bal.json.plan, "pro");

    // Create validation.
    assert.equal((await adminCall("POST", "/admin/keys", { plan: "pro", credits: 1, reason: "r" })).status, 400, "name required");
    assert.equal((await adminCall("POST", "/admin/keys", { name: "n", plan: "platinum", credits: 1, reason: "r" })).status, 400, "unknown plan");
    assert.equal((await adminCall("POST", "/admin/keys", { name: "n", plan: "pro", credits: -5, reason: "r" })).status, 400, "negative credits");

    // Grants need a reason.
    for (const body of [{ credits: 25 }, { credits: 25, reason: "" }, { credits: 25, reason: "   " }, { credits: 25, reason: 7 }]) {
      const r = await adminCall("POST", `/admin/keys/${id}/credits`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    }
    assert.equal((await adminCall("POST", `/admin/keys/${id}/credits`, { reason: "no amount" })).status, 400);
    assert.equal((await adminCall("POST", `/admin/keys/${id}/credits`, { credits: 0, reason: "zero" })).status, 400);
    assert.equal((await adminCall("POST", `/admin/keys/${id}/credits`, { credits: 1.2345, reason: "4 decimals" })).status, 400);
    // (add-credits takes a default reason, as the original guide calls it without one: tests/original-guide.)
    assert.equal(await balanceMc(key1), mc(50), "refused grants change nothing");
    let r;

    // Grant with a reason.
    r = await adminCall("POST", `/admin/keys/${id}/credits`, { credits: 25.5, reason: "support goodwill" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credits, 75.5);
    assert.equal(await balanceMc(key1), mc(75.5));

    // Negative adjustment within the balance, then one that would go below zero.
    r = await adminCall("POST", `/admin/keys/${id}/credits`, { credits: -10, reason: "refund clawback" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credits, 65.5);
    r = await adminCall("POST", `/admin/keys/${id}/credits`, { credits: -65.501, reason: "too much" });
    assert.equal(r.status, 400, `adjustment below zero: ${r.text}`);
    assert.equal(await balanceMc(key1), mc(65.5));
    r = await adminCall("POST", "/admin/add-credits", { apiKey: id, credits: -1000, reason: "too much" });
    assert.equal(r.status, 400, r.text);
    assert.equal(await balanceMc(key1), mc(65.5));

    // add-credits by plaintext key and by key id; unknown key → 404.
    r = await adminCall("POST", "/admin/add-credits", { apiKey: key1, credits: 1, reason: "by plaintext" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.key_id, id);
    r = await adminCall("POST", "/admin/add-credits", { apiKey: id, credits: 2, reason: "by key id" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.credits, 68.5);
    // An unknown plaintext key is created only with credits to hold; too short a key never.
    assert.equal((await adminCall("POST", "/admin/add-credits", { apiKey: "sk-broker-unknown", credits: -1, reason: "x" })).status, 404);
    assert.equal((await adminCall("POST", "/admin/add-credits", { apiKey: "short", credits: 1, reason: "x" })).status, 400);
    assert.equal((await adminCall("POST", "/admin/add-credits", { apiKey: "key_0000000000000000", credits: 1, reason: "x" })).status, 404);
    assert.equal((await adminCall("POST", "/admin/add-credits", { credits: 1, reason: "x" })).status, 400);
    assert.equal(await balanceMc(key1), mc(68.5));

    // Ledger: customer and admin views agree, with types and reasons.
    const ledger1 = await fullLedger({ apiKey: key1 });
    assert.deepEqual(ledger1.map((e) => [e.type, e.amount_mc]), [
      ["grant", mc(2)], ["grant", mc(1)], ["adjustment", mc(-10)], ["grant", mc(25.5)], ["grant", mc(50)],
    ]);
    assert.deepEqual(ledger1.map((e) => e.reason), ["by key id", "by plaintext", "refund clawback", "support goodwill", "welcome credits"]);
    assert.deepEqual(await fullLedger({ id, limit: 2 }), ledger1);

    // Rotate: new plaintext; the old one stops at once; balance and ledger kept.
    await clearAnonymousLimits();
    r = await adminCall("POST", `/admin/keys/${id}/rotate`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, id);
    const key2 = r.json.api_key;
    assert.equal(typeof key2, "string");
    assert.notEqual(key2, key1);
    r = await call("GET", "/v1/balance", { key: key1 });
    assert.equal(r.status, 401, `old key after rotate: ${r.text}`);
    assert.equal((await call("GET", "/v1/usage", { key: key1 })).status, 401);
    assert.equal((await chat(key1)).status, 401, "old key cannot call /v1/chat");
    assert.equal(await balanceMc(key2), mc(68.5));
    assert.deepEqual(await fullLedger({ apiKey: key2 }), ledger1);
    // add-credits by the old plaintext no longer finds the key.
    assert.equal((await adminCall("POST", "/admin/add-credits", { apiKey: key1, credits: 1, reason: "old key" })).status, 404);
    k = await adminKey(id);
    assert.equal(k.status, "active");
    assert.ok(k.rotated_ms, "rotated_ms recorded");
    assert.equal(k.credits, 68.5);

    // The new key works for chat.
    r = await chat(key2);
    assert.equal(r.status, 200, `chat with rotated key: ${r.text}`);
    await settled(key2, r.json.request_id);

    // Revoke: 401 at once on balance, usage and chat; admin still sees the record.
    // (The old key's 401s above counted against this address's unknown-key window.)
    await clearAnonymousLimits();
    const balBeforeRevoke = await balanceMc(key2);
    r = await adminCall("POST", `/admin/keys/${id}/revoke`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, "revoked");
    r = await call("GET", "/v1/balance", { key: key2 });
    assert.equal(r.status, 401, `revoked key on /v1/balance: ${r.text}`);
    assert.ok(r.json?.error);
    assert.equal((await call("GET", "/v1/usage", { key: key2 })).status, 401);
    r = await chat(key2);
    assert.equal(r.status, 401, `revoked key on /v1/chat: ${r.text}`);
    k = await adminKey(id);
    assert.equal(k.status, "revoked");
    assert.ok(k.revoked_ms);
    assert.equal(k.millicredits, balBeforeRevoke, "revoking keeps the balance");
    r = await adminCall("POST", `/admin/keys/${id}/rotate`);
    assert.equal(r.status, 400, `rotating a revoked key: ${r.text}`);
    assert.equal((await call("GET", "/v1/balance", { key: key2 })).status, 401, "still revoked");
    assert.equal((await adminCall("POST", "/admin/keys/key_0000000000000000/revoke")).status, 404);
    assert.equal((await adminCall("POST", "/admin/keys/key_0000000000000000/rotate")).status, 404);
  } finally {
    // The wrong-secret calls above count towards the brute-force limit.
    await clearAdminFailures();
  }
});

// 8. Ledger invariant

test("ledger: after grants, stripe and paypal top-ups, adjustments and settled chat calls, balance == sum of all amount_mc", async () => {
  const key = await newKey({ credits: 10.5 });
  const steps = [];
  const grant = async (credits, reason) => {
    const r = await adminCall("POST", `/admin/keys/${key.id}/credits`, { credits, reason });
    assert.equal(r.status, 200, r.text);
  };
  await grant(100, "invariant grant");
  let r = await postStripe(stripeEvent({ session: { amount_total: 2000 }, metadata: { key_id: key.id } }));
  assert.equal(r.json?.credited, true, r.text);
  r = await postPaypal(paypalEvent({ keyId: key.id, value: "7.77" }));
  assert.equal(r.json?.credited, true, r.text);
  await grant(-33.333, "invariant adjustment");
  const requestIds = [];
  for (let i = 0; i < 3; i++) {
    r = await chat(key.api_key);
    assert.equal(r.status, 200, r.text);
    requestIds.push(r.json.request_id);
    steps.push(r.json.credits_charged);
  }
  r = await adminCall("POST", "/admin/add-credits", { apiKey: key.api_key, credits: 0.001, reason: "one millicredit" });
  assert.equal(r.status, 200, r.text);
  for (const rid of requestIds) await settled(key.api_key, rid);
  // A $1 top-up (100 credits) and its replay, which changes nothing.
  const ev = stripeEvent({ session: { amount_total: 100 }, metadata: { key_id: key.id } });
  assert.equal((await postStripe(ev)).json?.credited, true);
  assert.equal((await postStripe(ev)).json?.credited, false);

  const balance = await balanceMc(key.api_key);
  const entries = await fullLedger({ apiKey: key.api_key, limit: 3 });
  const sum = entries.reduce((s, e) => s + e.amount_mc, 0);
  assert.equal(balance, sum, `balance ${balance} mc == sum of ${entries.length} ledger entries`);
  assert.equal(entries.length, 3 + 1 + 3 + 3, "3 grants, 1 adjustment, 3 top-ups, one entry per call");
  for (let i = 1; i < entries.length; i++) assert.ok(entries[i - 1].ts >= entries[i].ts, "newest first");
  // Paging edges.
  for (const q of ["limit=0", "limit=201", "limit=-1", "offset=abc", "offset=-2", "offset=18446744073709551615"]) {
    const bad = await call("GET", `/v1/usage?${q}`, { key: key.api_key });
    assert.equal(bad.status, 400, `${q}: ${bad.text}`);
  }
  const busted = await call("GET", `/v1/usage?limit=1&_=cachebuster`, { key: key.api_key });
  assert.equal(busted.status, 200, `unknown parameters are ignored: ${busted.text}`);
  const past = await call("GET", `/v1/usage?limit=5&offset=${entries.length}`, { key: key.api_key });
  assert.equal(past.status, 200, past.text);
  assert.deepEqual(past.json.entries, []);
  assert.equal(past.json.next_offset, null);
  assert.equal(past.json.total, entries.length);
  // The admin view (other page size) sees the same entries.
  assert.deepEqual(await fullLedger({ id: key.id, limit: 200 }), entries);
  // Each entry's balance_mc is the running sum (oldest → newest).
  let running = 0;
  for (const e of [...entries].reverse()) {
    running += e.amount_mc;
    assert.equal(e.balance_mc, running, `running balance at ${e.type} ${e.ref ?? ""}`);
    assert.equal(mc(e.credits), e.amount_mc);
  }
  const types = new Set(entries.map((e) => e.type));
  for (const t of ["grant", "topup", "adjustment", "call"]) assert.ok(types.has(t), `ledger has a ${t}`);
  // Every call: one entry, naming the hold it had, charging what the response said.
  for (const [i, rid] of requestIds.entries()) {
    const mine = entries.filter((e) => e.ref === rid);
    assert.equal(mine.length, 1);
    assert.equal(mine[0].type, "call");
    assert.ok(mine[0].hold >= -mine[0].amount_mc && mine[0].amount_mc < 0);
    assert.equal(-mine[0].amount_mc, mc(steps[i]), "charge == credits_charged of the response");
  }
  const expected = mc(10.5 + 100 + 2000 + 777 - 33.333 + 0.001 + 100) - requestIds.reduce((s, _, i) => s + mc(steps[i]), 0);
  assert.equal(balance, expected);
  assert.equal((await adminKey(key.id)).millicredits, balance);
});

test("ledger: concurrent adjustments never overdraw, and concurrent grants and top-ups all land, keeping the invariant", async () => {
  const key = await newKey({ credits: 50 });
  // Ten concurrent -10 adjustments against 50 credits: exactly five succeed, the rest are 400.
  const adj = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    adminCall("POST", `/admin/keys/${key.id}/credits`, { credits: -10, reason: `concurrent adjustment ${i}` })));
  assert.equal(adj.filter((r) => r.status === 200).length, 5, adj.map((r) => r.status).join(","));
  assert.equal(adj.filter((r) => r.status === 400).length, 5);
  assert.equal(await balanceMc(key.api_key), 0);
  // Concurrent grants, Stripe and PayPal top-ups.
  const mixed = await Promise.all([
    ...Array.from({ length: 5 }, (_, i) => adminCall("POST", "/admin/add-credits", { apiKey: key.id, credits: 1.111, reason: `grant ${i}` })),
    ...Array.from({ length: 3 }, () => postStripe(stripeEvent({ session: { amount_total: 1000 }, metadata: { key_id: key.id } }))),
    ...Array.from({ length: 2 }, () => postPaypal(paypalEvent({ keyId: key.id, value: "3.00" }))),
  ]);
  for (const r of mixed) assert.equal(r.status, 200, r.text);
  const expected = 5 * 1111 + mc(3 * 1000 + 2 * 300);
  assert.equal(await balanceMc(key.api_key), expected);
  const entries = await fullLedger({ apiKey: key.api_key, limit: 7 });
  assert.equal(entries.length, 1 + 5 + 5 + 3 + 2);
  assert.equal(entries.reduce((s, e) => s + e.amount_mc, 0), expected);
  assert.ok(entries.every((e) => e.balance_mc >= 0), "no entry shows a negative balance");
});

// 9. Admin brute force (last: it locks the admin API for this address until cleared)

test("admin: 10 wrong secrets from one address, then even the right secret gets 429 until the window is cleared", async () => {
  await clearAdminFailures();
  try {
    for (let i = 0; i < 10; i++) {
      const r = await call("GET", "/admin/keys/key_0000000000000000", { admin: `wrong-${i}` });
      assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
    }
    const locked = await call("GET", "/admin/keys/key_0000000000000000", { admin: stack.adminSecret });
    assert.equal(locked.status, 429, `11th attempt with the right secret: ${locked.text}`);
    assert.ok(locked.json?.error);
    assert.ok(Number(locked.headers.get("retry-after")) > 0, "Retry-After is set");
    const create = await call("POST", "/admin/keys", { admin: stack.adminSecret, json: { name: "x", plan: "pro", credits: 1, reason: "x" } });
    assert.equal(create.status, 429, "every admin route is locked");
    assert.equal((await call("GET", "/admin/keys/key_0000000000000000", { admin: "wrong-again" })).status, 429);

    const keys = await redis("KEYS", "abk:adminfail:*");
    assert.equal(keys.length, 1, `one failure record: ${JSON.stringify(keys)}`);
  } finally {
    await clearAdminFailures();
  }
  // Parallel guesses cannot slip in under the limit: each attempt counts before the compare.
  try {
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => call("GET", "/admin/keys/key_0000000000000000", { admin: `burst-${i}` })));
    const compared = burst.filter((r) => r.status === 401).length;
    assert.ok(compared <= 10, `${compared} of 30 parallel guesses were compared`);
    assert.equal(burst.filter((r) => r.status === 429).length, 30 - compared);
  } finally {
    await clearAdminFailures();
  }
  const ok = await call("GET", "/admin/keys/key_0000000000000000", { admin: stack.adminSecret });
  assert.equal(ok.status, 404, `after clearing, the admin API answers again: ${ok.text}`);
  await newKey({ credits: 1 });
});
