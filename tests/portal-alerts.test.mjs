// The portal's "Low balance" card in headless Chromium: a person sets an alert and sees its
// signing secret once, sees a refused URL's reason, saves a card through Stripe Checkout (setup
// mode, the Stripe mock), turns auto top-up on and, after the card is declined on a crossing,
// sees that auto top-up is off and why. Nothing is loaded from anywhere but 127.0.0.1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useBrowserPage } from "./lib/browser.mjs";
import { FEW_WORDS_PX, screenshot, textBoxes } from "./lib/layout.mjs";

let stack, c, b;
useBrowserPage((s) => ({ stack, c, b } = s));

const control = async (route, body) => {
  const r = await fetch(`${stack.mocksUrl}/__control/${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
};

async function signIn(page, apiKey) {
  await page.goto(`${stack.workerUrl}/portal/`);
  await page.fill("#key", apiKey);
  await page.click("#signin-form button");
  await page.waitForSelector("#account:not([hidden])");
  await page.waitForFunction(() => document.getElementById("card-state").textContent !== "");
}

test("the portal sets the alert, saves a card, turns auto top-up on and shows it off after a decline", async (t) => {
  await control("stripe/endpoint", { to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  const key = await c.createKey({ credits: 1 });
  const { page } = b;
  await signIn(page, key.api_key);
  assert.equal(await page.textContent("#alert-state"), "No alert set.");
  assert.equal(await page.textContent("#card-state"), "No card saved yet.");
  assert.equal(await page.isVisible("#topup-form"), false, "no auto top-up without a card");

  // A plain-http URL: the API's reason, naming the field, in the page; nothing set.
  await page.fill("#alert-threshold", "0.5");
  await page.fill("#alert-url", "http://hooks.example.com/x");
  await page.click("#alert-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("lowbal-error").textContent !== "");
  assert.match(await page.textContent("#lowbal-error"), /`url`: must be an https URL/);
  assert.equal(await page.textContent("#alert-state"), "No alert set.");

  // The mock's receiver (http to loopback is allowed on the local stack only).
  const url = `${stack.mocksUrl}/alerts/portal-${key.id}`;
  await page.fill("#alert-url", url);
  await page.click("#alert-form button[type=submit]");
  await page.waitForSelector("#alert-secret:not([hidden])");
  assert.match((await page.textContent("#alert-secret-value")).trim(), /^whsec_[0-9a-f]{48}$/);
  assert.equal(await page.textContent("#alert-state"), `Alert on: below 0.5 credits, POST to ${url}.`);
  assert.equal(await page.textContent("#lowbal-error"), "");

  // Save a card: the browser goes to Stripe's hosted page; the buyer completes it with a card
  // that will be declined (the mock's pm_card_chargeDeclined).
  await Promise.all([page.waitForURL(/\/stripe\/checkout\/cs_test_/), page.click("#save-card")]);
  const session = page.url().split("/").pop();
  const done = await control("stripe/complete", { session, card: "declined", to: `${stack.workerUrl}/webhooks/stripe`, secret: stack.stripeSecret });
  assert.equal(done.deliveries[1].body.card_saved, true);
  await signIn(page, key.api_key);
  assert.equal(await page.textContent("#card-state"), "A card is saved for auto top-up.");
  assert.equal(await page.textContent("#alert-state"), `Alert on: below 0.5 credits, POST to ${url}.`, "the alert is remembered");
  assert.equal(await page.isVisible("#alert-secret"), false, "the secret is not shown again");

  await page.fill("#topup-threshold", "1");
  await page.fill("#topup-amount", "500");
  await page.fill("#topup-max", "2");
  await page.click("#topup-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("topup-state").textContent.startsWith("Auto top-up on"));
  assert.equal(await page.textContent("#topup-state"), "Auto top-up on: below 1 credits, buy 500 credits ($5.00), at most 2 a day.");

  // A call leaves the balance below 1 credit: the card is declined, auto top-up turns off.
  const r = await c.api("/v1/chat/completions", { key: key.api_key, body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 16 } });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  const deadline = Date.now() + 20000;
  while ((await (await c.api("/v1/auto-topup", { key: key.api_key })).json()).enabled && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
  await signIn(page, key.api_key);
  const state = await page.textContent("#topup-state");
  assert.match(state, /^Auto top-up is off: the card was declined \(Your card was declined\)\. Save another card/);
  assert.equal(await page.$eval("#topup-state", (el) => getComputedStyle(el).color), "rgb(179, 38, 30)", "shown as an error");
  assert.equal(await page.isVisible("#topup-off"), false);

  const boxes = await textBoxes(page);
  assert.deepEqual(boxes.squeezed, [], `narrower than ${FEW_WORDS_PX} px`);
  t.diagnostic(`screenshot: ${await screenshot(page, "portal-alerts", { fullPage: true })}`);
  assert.deepEqual(b.requests.filter((u) => !u.startsWith("http://127.0.0.1:")), []);
  assert.ok(!b.requests.some((u) => u.includes(key.api_key)));
  // The one refused PUT (the plain-http URL) is the only failed request the console reports.
  assert.deepEqual(b.errors, ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
});
