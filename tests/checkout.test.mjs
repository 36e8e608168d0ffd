// Buying inside the product: Stripe Checkout for credit packs and subscriptions (against the
// Stripe API mock), the signed webhooks that credit them, the Billing Portal, self-service key
// rotation and the key's daily usage.
import { test } from "node:test";
import assert from "node:assert/strict";
import Stripe from "stripe";
import { useStack } from "./lib/stack-client.mjs";

const { stack, c } = await useStack();
const stripe = new Stripe("sk_test_unused_for_signing");

const ok = "https://shop.example/done";
const back = "https://shop.example/cancel";

/** A Stripe event, signed as Stripe signs deliveries, posted to the webhook. */
async function deliver(type, object) {
  const payload = JSON.stringify({ id: `evt_${type.replace(/\W/g, "_")}_${Math.random().toString(36).slice(2)}`, object: "event", type, created: Math.floor(Date.now() / 1000), data: { object } });
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret: stack.stripeSecret });
  const r = await fetch(`${stack.workerUrl}/webhooks/stripe`, { method: "POST", headers: { "stripe-signature": header, "content-type": "application/json" }, body: payload });
  return { status: r.status, json: await r.json(), payload };
}

/** The form the gateway sent to Stripe's API, as key → value. */
async function sentForm() {
  const [req] = (await c.mockRequests("stripe")).slice(-1);
  return { headers: req.headers, form: Object.fromEntries(new URLSearchParams(typeof req.body === "string" ? req.body : "")) };
}

test("a credit pack: checkout names the key and the amount; the signed completion credits it once", async () => {
  const key = await c.createKey({ credits: 0 });
  const r = await c.api("/v1/checkout", { key: key.api_key, body: { credits: 2500, success_url: ok, cancel_url: back } });
  assert.equal(r.status, 200, await r.clone().text());
  const session = await r.json();
  assert.match(session.id, /^cs_test_/);
  assert.match(session.url, /^http:\/\/127\.0\.0\.1:\d+\/stripe\/checkout\/cs_test_/);
  assert.deepEqual([session.mode, session.credits, session.amount_usd], ["payment", 2500, 25]);
  const { headers, form } = await sentForm();
  assert.equal(headers.authorization, "Bearer sk_test_local_stripe");
  assert.ok(headers["idempotency-key"].startsWith(`${key.id}:`));
  assert.equal(form.mode, "payment");
  assert.equal(form["line_items[0][price_data][unit_amount]"], "2500");
  assert.equal(form["line_items[0][price_data][currency]"], "usd");
  assert.equal(form.client_reference_id, key.id);
  assert.equal(form["metadata[key_id]"], key.id);
  assert.equal(form["metadata[credits]"], "2500");
  assert.equal(form.success_url, ok);
  // Stripe completes the session and tells the gateway.
  const paid = { id: session.id, object: "checkout.session", mode: "payment", payment_status: "paid", amount_total: 2500, currency: "usd", client_reference_id: key.id, metadata: { key_id: key.id, credits: "2500" }, payment_intent: `pi_${session.id}` };
  const first = await deliver("checkout.session.completed", paid);
  assert.equal(first.json.credited, true, JSON.stringify(first.json));
  assert.equal((await deliver("checkout.session.completed", paid)).json.duplicate, true, "the same session credits once");
  assert.equal(await c.balanceMc(key.api_key), 2_500_000);
});

test("checkout: an Idempotency-Key retried returns the same session; bad amounts, URLs and plans are 400", async () => {
  const key = await c.createKey({ credits: 0 });
  const body = { amount_usd: "12.50", success_url: ok, cancel_url: back };
  const a = await (await c.api("/v1/checkout", { key: key.api_key, body, headers: { "idempotency-key": "order-7" } })).json();
  const b = await (await c.api("/v1/checkout", { key: key.api_key, body, headers: { "idempotency-key": "order-7" } })).json();
  assert.equal(a.id, b.id);
  assert.equal(a.credits, 1250);
  await c.frontReset();
  for (const bad of [
    { credits: 10, success_url: ok, cancel_url: back }, // under $1
    { amount_usd: "5000", success_url: ok, cancel_url: back }, // over $1000
    { credits: 100, success_url: "http://shop.example/", cancel_url: back },
    { credits: 100, plan: "pro-monthly", success_url: ok, cancel_url: back },
    { plan: "gold", success_url: ok, cancel_url: back },
  ]) {
    const r = await c.api("/v1/checkout", { key: key.api_key, body: bad });
    assert.equal(r.status, 400, JSON.stringify(bad));
  }
  assert.equal((await c.api("/v1/checkout", { body: { credits: 100, success_url: ok, cancel_url: back } })).status, 401);
  const sentToStripe = (await c.mockRequests("stripe")).length;
  assert.equal(sentToStripe, 2, "refused checkouts never reach Stripe");
});

test("a subscription: each invoice credits its allowance once and moves the key to the plan; deletion returns it", async () => {
  const key = await c.createKey({ plan: "free", credits: 0 });
  const r = await c.api("/v1/checkout", { key: key.api_key, body: { plan: "pro-monthly", success_url: ok, cancel_url: back } });
  const session = await r.json();
  assert.deepEqual([r.status, session.mode, session.plan, session.monthly_credits], [200, "subscription", "pro-monthly", 2000]);
  const { form } = await sentForm();
  assert.equal(form.mode, "subscription");
  assert.equal(form["line_items[0][price]"], "price_pro_monthly_2000");
  assert.equal(form["subscription_data[metadata][key_id]"], key.id);
  // Checkout completes: nothing is credited by the session itself (the invoice does it).
  const sub = `sub_${Date.now()}`;
  const started = await deliver("checkout.session.completed", { id: session.id, object: "checkout.session", mode: "subscription", payment_status: "paid", amount_total: 2000, currency: "usd", customer: "cus_42", subscription: sub, client_reference_id: key.id, metadata: { key_id: key.id, plan: "pro-monthly" } });
  assert.equal(started.json.credited, false);
  const line = { amount: 2000, quantity: 1, pricing: { type: "price_details", price_details: { price: "price_pro_monthly_2000" } }, parent: { type: "subscription_item_details", subscription_item_details: { proration: false, subscription: sub } } };
  const invoice = (n) => ({ id: `in_${sub}_${n}`, object: "invoice", currency: "usd", amount_paid: 2000, total: 2000, total_taxes: [], billing_reason: n === 1 ? "subscription_create" : "subscription_cycle",
    lines: { object: "list", data: [line] }, parent: { type: "subscription_details", subscription_details: { subscription: sub, metadata: { key_id: key.id, plan: "pro-monthly", credits: "2000" } } } });
  assert.equal((await deliver("invoice.paid", invoice(1))).json.credited, true);
  let k = (await c.admin(`/admin/keys/${key.id}`)).body;
  assert.deepEqual([k.plan, k.credits], ["pro", 2000]);
  // The next month, under the older payload shape; and a replay of it.
  const second = { ...invoice(2), parent: undefined, subscription: sub, subscription_details: { metadata: { key_id: key.id, plan: "pro-monthly" } },
    lines: { object: "list", data: [{ amount: 2000, quantity: 1, price: { id: "price_pro_monthly_2000" }, proration: false, type: "subscription" }] } };
  const paid2 = await deliver("invoice.paid", second);
  assert.equal(paid2.json.credited, true, JSON.stringify(paid2.json));
  assert.equal((await deliver("invoice.paid", second)).json.duplicate, true, "one invoice credits once");
  assert.equal(await c.balanceMc(key.api_key), 4_000_000);
  // A failed payment changes nothing.
  assert.equal((await deliver("invoice.payment_failed", { ...invoice(3), amount_paid: 0 })).json.credited, false);
  assert.equal(await c.balanceMc(key.api_key), 4_000_000);
  // The Billing Portal for the key's Stripe customer.
  const portal = await c.api("/v1/billing-portal", { key: key.api_key, body: { return_url: ok } });
  assert.equal(portal.status, 200);
  assert.match((await portal.json()).url, /\/stripe\/billing\/bps_test_/);
  assert.equal((await sentForm()).form.customer, "cus_42");
  // An old subscription's deletion changes nothing; this one's returns the key to DEFAULT_PLAN.
  await deliver("customer.subscription.deleted", { id: "sub_older", object: "subscription", metadata: { key_id: key.id } });
  assert.equal((await c.admin(`/admin/keys/${key.id}`)).body.plan, "pro");
  await deliver("customer.subscription.deleted", { id: sub, object: "subscription", metadata: { key_id: key.id } });
  k = (await c.admin(`/admin/keys/${key.id}`)).body;
  assert.deepEqual([k.plan, k.credits], ["free", 4000], "credits already bought stay");
});

test("a key rotates itself; its daily usage shows its calls, not the gateway's costs", async () => {
  const key = await c.createKey({ credits: 5 });
  const call = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 4, messages: [{ role: "user", content: "daily" }] } });
  await c.settled(key.id, call.headers.get("x-request-id"));
  const daily = await (await c.api("/v1/usage/daily", { key: key.api_key })).json();
  const today = daily.days.at(-1);
  assert.equal(today.models[0].model, "openai/gpt-4o-mini");
  assert.equal(today.models[0].calls, 1);
  assert.ok(!JSON.stringify(daily).match(/cost|margin|revenue/), JSON.stringify(daily));
  const r = await c.api("/v1/keys/rotate", { key: key.api_key, method: "POST" });
  assert.equal(r.status, 200);
  const { api_key: fresh } = await r.json();
  assert.equal((await c.api("/v1/balance", { key: key.api_key })).status, 401, "the old key stops at once");
  assert.equal(await c.balanceMc(fresh), 5000 - Math.round((await call.json()).credits_charged * 1000));
});
