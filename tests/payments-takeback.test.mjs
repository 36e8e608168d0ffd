// Money that payments take back is taken back: PayPal refunds and reversals, Stripe disputes
// (frozen, then won or lost), in any order with the purchase and delivered more than once; a
// subscription switched in the Billing Portal credits what was paid for; the PayPal webhook is
// rate-limited per address before the worker calls PayPal.
//
// The events come from the mocks (tools/mock-providers: stripe_events.rs, paypal_events.rs), in
// the services' documented shapes, signed and delivered to the worker as the services do.
// Expected balances are computed here: $1 buys 100 credits (USD_PER_CREDIT 0.01).
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";

let stack, c;
before(async () => {
  stack = await getStack();
  c = client(stack);
});
after(releaseStack);
beforeEach(async () => {
  await c.resetIpLimits();
  await clearWebhookLimits();
});

const ok = "https://shop.example/done";
const back = "https://shop.example/cancel";
/** Millicredits that `cents` buy at $0.01 a credit. */
const mcFor = (cents) => cents * 1000;

async function clearWebhookLimits() {
  for (const k of await c.redis("KEYS", "abk:rl:webhook:*")) await c.redis("DEL", k);
}

/** Asks a mock service to act; its events are delivered to the worker (unless deliver: false). */
async function act(service, action, body) {
  const to = `${stack.workerUrl}/webhooks/${service}`;
  const r = await fetch(`${stack.mocksUrl}/__control/${service}/${action}`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ to, secret: stack.stripeSecret, ...body }),
  });
  const json = await r.json();
  assert.equal(r.status, 200, JSON.stringify(json));
  for (const d of json.deliveries) if (d.delivered) assert.equal(d.status, 200, JSON.stringify(d.body));
  return json;
}
const stripe = (action, body) => act("stripe", action, body);
const paypal = (action, body) => act("paypal", action, body);

/** The worker's answer to the one delivery of an action. */
const answer = (r) => r.deliveries.at(-1).body;

/** balance + held == Σ ledger entries, and nothing is held (no call is open here). */
async function assertLedger(key) {
  const bal = await (await c.api("/v1/balance", { key: key.api_key })).json();
  const entries = await c.ledger(key.id);
  const sum = entries.reduce((s, e) => s + e.amount_mc, 0);
  assert.equal(bal.millicredits + bal.held_millicredits, sum, "the ledger sums to the balance");
  return { balance: bal.millicredits, entries };
}

/** A chat call's status (402 when nothing is spendable). */
async function chatStatus(key) {
  const r = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 3, messages: [{ role: "user", content: "x" }] } });
  await r.arrayBuffer();
  return r.status;
}

/** A credit pack bought through the gateway's Checkout; the mock's session id. */
async function checkout(key, credits) {
  const r = await c.api("/v1/checkout", { key: key.api_key, body: { credits, success_url: ok, cancel_url: back } });
  assert.equal(r.status, 200);
  return (await r.json()).id;
}

test("paypal: a refund and a reversal take back what was refunded, once each, into debt if it was spent", async () => {
  const key = await c.createKey({ credits: 0 });
  const cap = await paypal("capture", { custom_id: `${key.id}:pack`, value: "20.00" });
  assert.equal(answer(cap).credited, true);
  assert.equal(await c.balanceMc(key.api_key), mcFor(2000));
  // $5.00 refunded.
  const r1 = await paypal("refund", { capture: cap.capture, value: "5.00" });
  assert.equal(answer(r1).credits_taken_back, 500);
  assert.equal(await c.balanceMc(key.api_key), mcFor(2000 - 500));
  // PayPal delivers it again: nothing more.
  const again = await paypal("resend", { event: r1.deliveries[0].event.id });
  assert.equal(answer(again).duplicate, true);
  assert.equal(await c.balanceMc(key.api_key), mcFor(1500));
  // 1,300 credits are spent elsewhere (an admin adjustment here); then the rest is reversed.
  const spent = await c.admin(`/admin/keys/${key.id}/credits`, { credits: -1300, reason: "spent" });
  assert.equal(spent.status, 200, JSON.stringify(spent.body));
  const rev = await paypal("reverse", { capture: cap.capture });
  assert.equal(rev.refunded_cents, 2000);
  assert.equal(answer(rev).credits_taken_back, 1500);
  const want = mcFor(2000) - mcFor(1300) - mcFor(2000);
  assert.equal(await c.balanceMc(key.api_key), want, "a debt of 1,300 credits");
  assert.equal(await chatStatus(key), 402, "a debt spends nothing");
  const { entries } = await assertLedger(key);
  assert.deepEqual(entries.filter((e) => e.source === "paypal").map((e) => [e.type, e.amount_mc]), [["refund", -mcFor(1500)], ["refund", -mcFor(500)], ["topup", mcFor(2000)]]);
  // The debt is on the admins' list.
  const unmatched = (await c.admin("/admin/unmatched-payments")).body;
  assert.ok(JSON.stringify(unmatched).includes(rev.deliveries[0].event.id), "the debt is noted for an admin");
});

test("paypal: a refund that comes before its capture is remembered and taken when the capture is credited", async () => {
  const key = await c.createKey({ credits: 0 });
  const cap = await paypal("capture", { custom_id: key.id, value: "20.00", deliver: false });
  const early = await paypal("refund", { capture: cap.capture, value: "7.00" });
  assert.equal(answer(early).pending, true);
  assert.equal(await c.balanceMc(key.api_key), 0);
  const late = await paypal("resend", { event: cap.deliveries[0].event.id });
  assert.deepEqual([answer(late).credits_added, answer(late).credits_taken_back], [2000, 700]);
  assert.equal((await paypal("resend", { event: cap.deliveries[0].event.id })).deliveries[0].body.duplicate, true);
  assert.equal((await paypal("resend", { event: early.deliveries[0].event.id })).deliveries[0].body.duplicate, true);
  const { balance } = await assertLedger(key);
  assert.equal(balance, mcFor(2000 - 700));
});

test("stripe: a dispute freezes the disputed credits; won, they come back; replays change nothing", async () => {
  const key = await c.createKey({ credits: 0 });
  const done = await stripe("complete", { session: await checkout(key, 2000) });
  assert.equal(answer(done).credited, true);
  const pi = done.payment_intent;
  const created = await stripe("dispute", { payment_intent: pi, type: "created" });
  assert.deepEqual([answer(created).dispute, answer(created).credits_moved], ["frozen", -2000]);
  assert.equal(await c.balanceMc(key.api_key), 0);
  assert.equal(await chatStatus(key), 402, "frozen credits cannot be spent");
  assert.equal(answer(await stripe("dispute", { payment_intent: pi, type: "funds_withdrawn" })).duplicate, true);
  assert.equal(answer(await stripe("resend", { event: created.deliveries[0].event.id })).duplicate, true);
  const won = await stripe("dispute", { payment_intent: pi, type: "closed", status: "won" });
  assert.deepEqual([answer(won).dispute, answer(won).credits_moved], ["released", 2000]);
  assert.equal(answer(await stripe("dispute", { payment_intent: pi, type: "funds_reinstated" })).duplicate, true);
  const { balance, entries } = await assertLedger(key);
  assert.equal(balance, mcFor(2000));
  assert.deepEqual(entries.slice(0, 3).map((e) => [e.type, e.amount_mc]), [["dispute_won", mcFor(2000)], ["dispute", -mcFor(2000)], ["topup", mcFor(2000)]]);
});

test("stripe: a lost dispute keeps the disputed share; a dispute before its purchase applies when the purchase is credited", async () => {
  // $10.00 paid, $4.00 of it disputed and lost: 400 of the 1,000 credits.
  const key = await c.createKey({ credits: 0 });
  const done = await stripe("complete", { session: await checkout(key, 1000) });
  await stripe("dispute", { payment_intent: done.payment_intent, type: "created", amount: 400 });
  assert.equal(await c.balanceMc(key.api_key), mcFor(1000 - 400));
  const lost = await stripe("dispute", { payment_intent: done.payment_intent, type: "closed", status: "lost", amount: 400 });
  assert.deepEqual([answer(lost).dispute, answer(lost).credits_moved], ["lost", 0]);
  assert.equal(answer(await stripe("dispute", { payment_intent: done.payment_intent, type: "closed", status: "won", amount: 400 })).duplicate, true, "lost is final");
  assert.equal((await assertLedger(key)).balance, mcFor(600));

  // The dispute (and its loss) arrive before the purchase event; then the purchase, twice.
  const key2 = await c.createKey({ credits: 0 });
  const held = await stripe("complete", { session: await checkout(key2, 2000), deliver: false });
  assert.equal(answer(await stripe("dispute", { payment_intent: held.payment_intent, type: "created" })).pending, true);
  assert.equal(answer(await stripe("dispute", { payment_intent: held.payment_intent, type: "closed", status: "lost" })).pending, true);
  const purchase = held.deliveries[0].event.id;
  assert.equal(answer(await stripe("resend", { event: purchase })).credited, true);
  assert.equal(answer(await stripe("resend", { event: purchase })).duplicate, true);
  const { balance, entries } = await assertLedger(key2);
  assert.equal(balance, 0, "2,000 credits bought, 2,000 lost to the dispute");
  assert.deepEqual(entries.slice(0, 2).map((e) => [e.type, e.amount_mc]), [["dispute_lost", -mcFor(2000)], ["topup", mcFor(2000)]]);
});

test("subscriptions: a plan switch in the Billing Portal credits no proration; each period credits the plan paid for", async () => {
  const key = await c.createKey({ plan: "free", credits: 0 });
  const r = await c.api("/v1/checkout", { key: key.api_key, body: { plan: "pro-monthly", success_url: ok, cancel_url: back } });
  const started = await stripe("complete", { session: (await r.json()).id });
  assert.deepEqual(started.deliveries.map((d) => d.event.type), ["checkout.session.completed", "invoice.paid"]);
  assert.equal(started.deliveries[1].body.credits_added, 2000);
  const plan = async () => (await c.admin(`/admin/keys/${key.id}`)).body.plan;
  assert.equal(await plan(), "pro");
  // The customer opens the Billing Portal and upgrades to max-monthly half-way through the month.
  const portal = await (await c.api("/v1/billing-portal", { key: key.api_key, body: { return_url: ok } })).json();
  const bps = portal.url.split("/").at(-1);
  const up = await stripe("portal_switch", { portal_session: bps, price: "price_max_monthly_5000" });
  const proration = up.deliveries[1].event.data.object;
  assert.deepEqual([proration.billing_reason, proration.amount_paid], ["subscription_update", 1500], "half of $50 less half of $20");
  assert.equal(up.deliveries[1].body.credited, false);
  assert.equal(await plan(), "bulk", "the new plan's limits at once");
  assert.equal(await c.balanceMc(key.api_key), mcFor(2000));
  // The next month bills max-monthly: its 5,000 credits, once.
  const cycle = await stripe("cycle", { subscription: started.subscription });
  assert.equal(answer(cycle).credits_added, 5000);
  assert.equal(answer(await stripe("resend", { event: cycle.deliveries[0].event.id })).duplicate, true);
  // Downgrade: the proration is a credit on the customer's Stripe balance (nothing paid, nothing credited).
  const down = await stripe("portal_switch", { portal_session: bps, price: "price_pro_monthly_2000" });
  assert.deepEqual([down.deliveries[1].event.data.object.amount_paid, down.deliveries[1].body.credited], [0, false]);
  assert.equal(await plan(), "pro");
  // The next month bills pro-monthly ($20, $15 of it from that balance): 2,000 credits, not 5,000.
  const cycle2 = await stripe("cycle", { subscription: started.subscription });
  assert.deepEqual([cycle2.deliveries[0].event.data.object.amount_paid, answer(cycle2).credits_added], [500, 2000]);
  const { balance } = await assertLedger(key);
  assert.equal(balance, mcFor(2000 + 5000 + 2000));
});

test("paypal webhook: deliveries past the per-address limit get 429 + Retry-After before any call to PayPal", async () => {
  const key = await c.createKey({ credits: 0 });
  // Unsigned posts with the five headers: each one the worker verifies costs a call to PayPal.
  const event = JSON.stringify({ id: "WH-FORGED", event_type: "PAYMENT.CAPTURE.COMPLETED", resource: { id: "X", custom_id: key.id, amount: { value: "1.00", currency_code: "USD" } } });
  const headers = { "content-type": "application/json", "paypal-auth-algo": "SHA256withRSA", "paypal-cert-url": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
    "paypal-transmission-id": "t", "paypal-transmission-sig": "00", "paypal-transmission-time": "2026-01-01T00:00:00Z" };
  const verifyCalls = async () => (await c.mockRequests("paypal-verify")).length;
  const limit = 60; // PAYPAL_WEBHOOK_LIMIT's default: 60 a minute
  const before = await verifyCalls();
  const statuses = [];
  for (let i = 0; i < limit; i++) {
    const r = await fetch(`${stack.workerUrl}/webhooks/paypal`, { method: "POST", headers, body: event });
    statuses.push(r.status);
    await r.arrayBuffer();
  }
  assert.ok(statuses.every((s) => s === 400), `forged deliveries are refused: ${[...new Set(statuses)]}`);
  assert.equal(await verifyCalls() - before, limit, "each one under the limit was verified by PayPal");
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${stack.workerUrl}/webhooks/paypal`, { method: "POST", headers, body: event });
    const body = await r.json();
    assert.equal(r.status, 429);
    assert.ok(body.error, JSON.stringify(body));
    const wait = Number(r.headers.get("retry-after"));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
  }
  assert.equal(await verifyCalls() - before, limit, "no call to PayPal past the limit");
  assert.equal(await c.balanceMc(key.api_key), 0);
  await clearWebhookLimits();
});
