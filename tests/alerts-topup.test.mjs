// Low-balance alerts and auto top-up (issue 25, parts 2-3): the signed alert POST (verified
// here with our own HMAC), once per crossing, re-armed by a top-up, retried when the receiver
// fails; bad settings refused naming the field; a card saved through Checkout in setup mode; an
// off-session PaymentIntent on crossing, credited once by its webhook; the daily maximum; a
// declined card turning auto top-up off with an alert. Expected balances are computed here
// from list prices and the mock's usage, never read back from the gateway.
import { test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { useStack } from "./lib/stack-client.mjs";

const { stack, c } = await useStack();
const ok = "https://shop.example/done";
const back = "https://shop.example/cancel";
const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 16 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const mock = async (method, route, body) => {
  const r = await fetch(`${stack.mocksUrl}/__control/${route}`, { method, headers: body ? { "content-type": "application/json" } : {}, body: body && JSON.stringify(body) });
  assert.equal(r.status, 200, `${route}: ${await r.clone().text()}`);
  return r.json();
};
const receiverUrl = (name) => `${stack.mocksUrl}/alerts/${name}`;
const received = async (name) => (await mock("GET", `alerts/${name}`)).data;
/** Polls until `pred()` holds (the alert goes out after the response, in waitUntil). */
async function until(pred, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Verifies a `Broker-Signature` as a customer would: HMAC-SHA256 of "{t}.{body}". */
function verify(header, body, secret) {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=")));
  const want = crypto.createHmac("sha256", secret).update(`${parts.t}.${body}`).digest("hex");
  return crypto.timingSafeEqual(Buffer.from(want), Buffer.from(parts.v1));
}

async function chat(key) {
  let r;
  // wrangler dev's proxy now and then answers a request itself ("Your worker restarted
  // mid-request", cloudflare/workers-sdk#14641: the worker never saw it) or resets a pooled
  // connection: such a call is sent again (as tests/lib/stack-client.mjs burstHeld does).
  for (let i = 0; ; i++) {
    try {
      r = await c.api("/v1/chat/completions", { key, body: CHAT });
      if (i < 3 && r.status === 503 && (await r.clone().text()).startsWith("Your worker restarted mid-request")) continue;
      break;
    } catch (e) {
      if (i >= 3 || !["ECONNRESET", "UND_ERR_SOCKET", "EPIPE"].includes(e?.cause?.code)) throw e;
    }
  }
  assert.equal(r.status, 200, await r.clone().text());
  const rid = r.headers.get("x-request-id");
  await r.arrayBuffer();
  return rid;
}

test("an alert fires once when a call leaves the balance below the threshold, signed; a top-up re-arms it", async () => {
  const key = await c.createKey({ credits: 1 });
  const name = `a-${key.id}`;
  const put = await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body: { threshold: 1, url: receiverUrl(name) } });
  assert.equal(put.status, 200, await put.clone().text());
  const set = await put.json();
  assert.match(set.secret, /^whsec_[0-9a-f]{48}$/);
  assert.deepEqual([set.enabled, set.threshold, set.armed], [true, 1, true]);
  // A second PUT keeps the secret and does not show it again.
  const again = await (await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body: { threshold: 1, url: receiverUrl(name) } })).json();
  assert.equal(again.secret, undefined);
  // Any charged call leaves 1 credit below 1: five at once cross together, one alert goes out.
  const rids = await Promise.all(Array.from({ length: 5 }, () => chat(key.api_key)));
  const holds = [];
  for (const rid of rids) holds.push((await c.settled(key.id, rid)).find((e) => e.type === "call").hold);
  const [first] = await until(async () => (await received(name)).filter((d) => d.status === 200).length && received(name), "the alert");
  assert.ok(verify(first.headers["broker-signature"], first.body, set.secret), "the signature verifies with the secret shown once");
  assert.ok(!verify(first.headers["broker-signature"], first.body.replace("balance", "Balance"), set.secret), "a changed body does not");
  const ev = JSON.parse(first.body);
  assert.equal(ev.type, "balance.low");
  assert.equal(ev.key_id, key.id);
  assert.equal(ev.data.threshold_credits, 1);
  // The spendable balance the first settlement below the threshold left: under 1 credit, and at
  // least what is left with every call charged its whole hold (the others may still hold theirs).
  const evMc = Math.round(ev.data.balance_credits * 1000);
  const floor = 1000 - holds.reduce((a, h) => a + h, 0);
  assert.ok(evMc < 1000 && evMc >= floor, `${evMc} (floor ${floor})`);
  // Not again while below.
  const rid2 = await chat(key.api_key);
  await c.settled(key.id, rid2);
  await sleep(1500);
  assert.equal((await received(name)).length, 1, "once per crossing");
  assert.equal((await (await c.api("/v1/alerts", { key: key.api_key })).json()).armed, false);
  // A top-up (a signed Stripe purchase) re-arms it; the next call below fires again.
  const s = await (await c.api("/v1/checkout", { key: key.api_key, body: { credits: 100, success_url: ok, cancel_url: back } })).json();
  await mock("POST", "stripe/complete", { session: s.id, to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  assert.equal((await (await c.api("/v1/alerts", { key: key.api_key })).json()).armed, true, "re-armed by the top-up");
  // 101 credits now: above the threshold, the next call fires nothing.
  const rid3 = await chat(key.api_key);
  await c.settled(key.id, rid3);
  await sleep(1000);
  assert.equal((await received(name)).length, 1);
});

test("an admin grant re-arms a fired alert, as a top-up does; an adjustment does not", async () => {
  const key = await c.createKey({ credits: 1 });
  const name = `g-${key.id}`;
  assert.equal((await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body: { threshold: 1, url: receiverUrl(name) } })).status, 200);
  await c.settled(key.id, await chat(key.api_key));
  await until(async () => (await received(name)).length, "the alert");
  const armed = async () => (await (await c.api("/v1/alerts", { key: key.api_key })).json()).armed;
  assert.equal(await armed(), false);
  assert.equal((await c.admin(`/admin/keys/${key.id}/credits`, { credits: -0.001, reason: "adjust" })).status, 200);
  assert.equal(await armed(), false, "taking credits away arms nothing");
  assert.equal((await c.admin(`/admin/keys/${key.id}/credits`, { credits: 5, reason: "goodwill" })).status, 200);
  assert.equal(await armed(), true, "re-armed by the grant");
});

test("a receiver that fails first gets the same event again, with back-off", async () => {
  const key = await c.createKey({ credits: 1 });
  const name = `r-${key.id}`;
  await mock("POST", `alerts/${name}`, { fail_next: 2, status: 503 });
  const set = await (await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body: { threshold: 1, url: receiverUrl(name) } })).json();
  await chat(key.api_key);
  const got = await until(async () => { const d = await received(name); return d.some((x) => x.status === 200) && d; }, "a delivery after two failures");
  assert.deepEqual(got.map((d) => d.status), [503, 503, 200]);
  assert.equal(new Set(got.map((d) => JSON.parse(d.body).id)).size, 1, "the same event each time");
  assert.ok(got.every((d) => verify(d.headers["broker-signature"], d.body, set.secret)));
  // The log line follows the receiver's answer.
  const lines = await until(() => { const l = c.logLines().filter((x) => x.msg === "alert" && x.key_id === key.id); return l.some((x) => x.outcome === "delivered") && l; }, "the delivered line");
  assert.deepEqual(lines.map((l) => l.outcome), ["retrying", "retrying", "delivered"]);
  assert.ok(!JSON.stringify(lines).includes(set.secret), "the secret is not logged");
});

test("an alert no attempt delivered waits for the cron sweeper, which delivers it", async () => {
  const key = await c.createKey({ credits: 1 });
  const name = `q-${key.id}`;
  await mock("POST", `alerts/${name}`, { fail_next: 4, status: 500 });
  const set = await (await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body: { threshold: 1, url: receiverUrl(name) } })).json();
  await chat(key.api_key);
  // Four attempts (at once, then 1, 3 and 8 s later) all refused: queued.
  await until(() => c.logLines().some((l) => l.msg === "alert" && l.key_id === key.id && l.outcome === "failed"), "the last attempt", 30000);
  assert.deepEqual((await received(name)).map((d) => d.status), [500, 500, 500, 500]);
  const sweep = await fetch(`${stack.workerUrl}/__scheduled?cron=*/10+*+*+*+*`);
  assert.equal(sweep.status, 200);
  const got = await until(async () => { const d = await received(name); return d.length === 5 && d; }, "the sweeper's delivery");
  assert.equal(got[4].status, 200);
  assert.equal(JSON.parse(got[4].body).id, JSON.parse(got[0].body).id, "the same event");
  assert.ok(verify(got[4].headers["broker-signature"], got[4].body, set.secret));
  // Delivered: the queue is empty, a second run sends nothing.
  await fetch(`${stack.workerUrl}/__scheduled?cron=*/10+*+*+*+*`);
  await sleep(500);
  assert.equal((await received(name)).length, 5);
});

test("bad settings are 400 naming the field, and change nothing", async () => {
  const key = await c.createKey({ credits: 5 });
  for (const [body, field] of [
    [{ threshold: 1, url: "https://hooks.example.com/x", colour: "red" }, "colour"],
    [{ threshold: -1, url: "https://hooks.example.com/x" }, "threshold"],
    [{ threshold: 1, url: "http://hooks.example.com/x" }, "url"],
    [{ threshold: 1, url: "https://10.0.0.7/x" }, "url"],
    [{ threshold: 1, url: "https://169.254.169.254/latest" }, "url"],
  ]) {
    const r = await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body });
    assert.equal(r.status, 400, JSON.stringify(body));
    const e = (await r.json()).error;
    assert.equal(e.param, field, JSON.stringify(e));
    assert.match(e.message, new RegExp(`\`${field}\``));
  }
  for (const [body, field] of [
    [{ threshold: 1, amount: 1000, surprise: true }, "surprise"],
    [{ threshold: -5, amount: 1000 }, "threshold"],
    [{ threshold: 1, amount: 1 }, "amount"],
    [{ threshold: 1, amount: 1000, max_per_day: 0 }, "max_per_day"],
    [{ threshold: 1, amount: 1000 }, "card"],
  ]) {
    const r = await c.api("/v1/auto-topup", { key: key.api_key, method: "PUT", body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal((await r.json()).error.param, field, JSON.stringify(body));
  }
  assert.equal((await c.api("/v1/auto-topup/card", { key: key.api_key, body: { success_url: "http://shop.example/", cancel_url: back } })).status, 400);
  assert.deepEqual(await (await c.api("/v1/alerts", { key: key.api_key })).json(), { enabled: false });
  assert.equal((await (await c.api("/v1/auto-topup", { key: key.api_key })).json()).enabled, false);
  assert.deepEqual(await c.redis("HGETALL", `abk:lowbal:${key.id}`), [], "nothing stored");
  assert.equal(await c.balanceMc(key.api_key), 5000, "nothing charged");
  assert.equal((await c.api("/v1/alerts", { method: "PUT", body: { threshold: 1, url: "https://hooks.example.com/x" } })).status, 401);
  // A sub-key spends its account's balance: only the account key sets its alert and auto top-up.
  const sub = await (await c.api("/v1/keys", { key: key.api_key, body: { name: "ci" } })).json();
  for (const [path, method, body] of [["/v1/alerts", "PUT", { threshold: 1, url: "https://hooks.example.com/x" }], ["/v1/auto-topup", "GET"], ["/v1/auto-topup/card", "POST", { success_url: ok, cancel_url: back }]]) {
    assert.equal((await c.api(path, { key: sub.api_key, method, body })).status, 403, `${method} ${path} with a sub-key`);
  }
});

/** Saves a card for `key` through Checkout in setup mode; returns the mock's answer. */
async function saveCard(key, card = "") {
  const r = await c.api("/v1/auto-topup/card", { key: key.api_key, body: { success_url: ok, cancel_url: back } });
  assert.equal(r.status, 200, await r.clone().text());
  const s = await r.json();
  assert.equal(s.mode, "setup");
  assert.match(s.customer, /^cus_/);
  const done = await mock("POST", "stripe/complete", { session: s.id, card, to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  assert.deepEqual(done.deliveries.map((d) => [d.event.type, d.status]), [["checkout.session.completed", 200], ["setup_intent.succeeded", 200]]);
  assert.equal(done.deliveries[1].body.card_saved, true);
  return done;
}

const intentsOf = async (keyId) => (await mock("GET", "stripe/payment_intents")).data.filter((p) => p.metadata?.key_id === keyId);

test("auto top-up: a crossing creates one off-session PaymentIntent; its webhook credits once; the daily maximum holds", async () => {
  await mock("POST", "stripe/endpoint", { to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  const key = await c.createKey({ credits: 1 });
  const saved = await saveCard(key);
  const put = await c.api("/v1/auto-topup", { key: key.api_key, method: "PUT", body: { threshold: 1, amount: 1000, max_per_day: 1 } });
  assert.equal(put.status, 200, await put.clone().text());
  const setting = await put.json();
  assert.deepEqual([setting.enabled, setting.threshold, setting.amount, setting.amount_usd, setting.max_per_day, setting.card.saved], [true, 1, 1000, 10, 1, true]);
  // Three calls at once cross together: one PaymentIntent.
  const rids = await Promise.all(Array.from({ length: 3 }, () => chat(key.api_key)));
  const calls = [];
  for (const rid of rids) calls.push(...(await c.settled(key.id, rid)).filter((e) => e.type === "call"));
  const [pi] = await until(async () => { const l = await intentsOf(key.id); return l.length && l; }, "the PaymentIntent");
  // 1000 credits at USD_PER_CREDIT 0.01: $10.00.
  assert.deepEqual([pi.amount, pi.currency, pi.customer, pi.payment_method, pi.status], [1000, "usd", saved.customer, saved.payment_method, "succeeded"]);
  assert.match(pi.idempotency_key, new RegExp(`^auto-topup:${key.id}:\\d{4}-\\d{2}-\\d{2}:1$`), "keyed by key, day and the day's count");
  // The credits come with payment_intent.succeeded: 1 credit - the call + 1000 credits.
  const want = 1000 + 1_000_000 + calls.reduce((sum, e) => sum + e.amount, 0);
  await until(async () => (await c.balanceMc(key.api_key)) === want, `the balance ${want}`);
  const topups = (await c.ledger(key.id)).filter((e) => e.type === "topup");
  assert.equal(topups.length, 1);
  assert.equal(topups[0].amount_mc, 1_000_000);
  assert.equal((await intentsOf(key.id)).length, 1, "three crossings at once made one payment");
  // The same event again (Stripe retries) credits nothing.
  // The webhook's log line is written once its credit has landed: it may reach the log just after.
  const ev = await until(async () => (await c.logLines()).find((l) => l.msg === "webhook" && l.outcome === "credited" && l.key_id === key.id), "the credit's webhook line");
  const again = await mock("POST", "stripe/resend", { event: ev.event_id, to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  assert.equal(again.deliveries[0].body.duplicate, true);
  assert.equal(await c.balanceMc(key.api_key), want);
  // Spend below the threshold again: re-armed by the credit, but the day's maximum (1) is reached.
  await c.admin(`/admin/keys/${key.id}/credits`, { credits: -1000.5, reason: "spend it down" });
  const rid2 = await chat(key.api_key);
  await c.settled(key.id, rid2);
  await until(() => c.logLines().some((l) => l.msg === "auto_topup" && l.key_id === key.id && l.outcome === "daily maximum reached"), "the daily maximum");
  assert.equal((await intentsOf(key.id)).length, 1, "one PaymentIntent a day at most");
});

test("a declined card turns auto top-up off, alerts the customer and credits nothing", async () => {
  await mock("POST", "stripe/endpoint", { to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  const key = await c.createKey({ credits: 1 });
  const name = `d-${key.id}`;
  const set = await (await c.api("/v1/alerts", { key: key.api_key, method: "PUT", body: { threshold: 0, url: receiverUrl(name) } })).json();
  await saveCard(key, "declined");
  assert.equal((await c.api("/v1/auto-topup", { key: key.api_key, method: "PUT", body: { threshold: 1, amount: 500 } })).status, 200);
  const rid = await chat(key.api_key);
  const [call] = (await c.settled(key.id, rid)).filter((e) => e.type === "call");
  const [d] = await until(async () => { const l = await received(name); return l.length && l; }, "the failure alert");
  assert.ok(verify(d.headers["broker-signature"], d.body, set.secret));
  const ev = JSON.parse(d.body);
  assert.deepEqual([ev.type, ev.data.code, ev.data.auto_topup], ["auto_topup.failed", "card_declined", "off"]);
  const state = await (await c.api("/v1/auto-topup", { key: key.api_key })).json();
  assert.equal(state.enabled, false);
  assert.match(state.status, /declined/);
  const [pi] = await intentsOf(key.id);
  assert.equal(pi.status, "requires_payment_method");
  // The payment_failed webhook follows: still off, no second alert, no credit.
  await until(() => c.logLines().some((l) => l.msg === "webhook" && l.outcome === "auto_topup_failed" && l.key_id === key.id), "payment_intent.payment_failed");
  await sleep(500);
  assert.equal((await received(name)).length, 1);
  assert.equal(await c.balanceMc(key.api_key), 1000 + call.amount);
});

