// The customer portal (/portal/) in headless Chromium: sign in with a key, the balance and the
// usage chart match the API, the ledger pages, a checkout starts, the key rotates. Nothing is
// loaded from anywhere but the gateway's own origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { openBrowser } from "./lib/browser.mjs";

let stack, c, b;
before(async () => {
  stack = await getStack();
  c = client(stack);
  b = await openBrowser();
});
after(async () => {
  await b?.close();
  await releaseStack();
});

test("the portal signs in with a key and shows what the API says, pages the ledger, starts a checkout, rotates the key", async () => {
  const key = await c.createKey({ credits: 100 });
  // 25 calls on two models: a chart with two colours and a ledger of more than one page.
  for (let i = 0; i < 25; i++) {
    const [provider, model] = i % 2 ? ["openai", "gpt-4o-mini"] : ["google", "gemini-3.5-flash"];
    const r = await c.api("/v1/chat", { key: key.api_key, body: { provider, model, max_tokens: 3, messages: [{ role: "user", content: `portal ${i}` }] } });
    assert.equal(r.status, 200);
    await c.settled(key.id, r.headers.get("x-request-id"));
  }
  const { page } = b;
  const res = await page.goto(`${stack.workerUrl}/portal/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /default-src 'none'; script-src 'self'/);
  assert.equal(res.headers()["x-frame-options"], "DENY");
  await page.fill("#key", key.api_key);
  await page.click("#signin-form button");
  await page.waitForSelector("#account:not([hidden])");
  // The balance matches the API.
  const api = await (await c.api("/v1/balance", { key: key.api_key })).json();
  await page.waitForFunction((v) => document.getElementById("credits").textContent === v, api.credits.toLocaleString("en-US", { maximumFractionDigits: 3 }));
  assert.equal(await page.textContent("#key-id"), key.id);
  assert.equal(await page.textContent("#plan"), "bulk");
  // The chart's bars match /v1/usage/daily, model by model.
  await page.waitForSelector("#chart svg rect");
  const bars = await page.$$eval("#chart svg rect", (rs) => rs.map((r) => ({ model: r.dataset.model, mc: Number(r.dataset.charged) })));
  const daily = await (await c.api("/v1/usage/daily", { key: key.api_key })).json();
  const want = daily.days.flatMap((d) => d.models.map((m) => ({ model: m.model, mc: m.charged_mc })));
  assert.deepEqual(bars.sort((x, y) => x.model.localeCompare(y.model)), want.sort((x, y) => x.model.localeCompare(y.model)));
  assert.equal((await page.$$("#legend li")).length, 2);
  // The ledger pages: 26 entries (the grant and 25 calls), 20 a page.
  await page.waitForFunction(() => document.querySelectorAll("#ledger tr").length === 20);
  assert.equal(await page.textContent("#page-info"), "1–20 of 26");
  await page.click("#older");
  await page.waitForFunction(() => document.getElementById("page-info").textContent === "21–26 of 26");
  assert.equal((await page.$$("#ledger tr")).length, 6);
  assert.equal(await page.$eval("#older", (el) => el.disabled), true);
  // Buying starts a Stripe Checkout session for this key, and the browser goes there.
  await page.fill("#buy-credits", "1500");
  await Promise.all([page.waitForURL(/\/stripe\/checkout\/cs_test_/), page.click("#buy-form button")]);
  const [sent] = (await c.mockRequests("stripe")).filter((r) => r.method === "POST" && r.path.endsWith("/checkout/sessions")).slice(-1);
  const form = new URLSearchParams(sent.body);
  assert.equal(form.get("client_reference_id"), key.id);
  assert.equal(form.get("line_items[0][price_data][unit_amount]"), "1500");
  // Back in the portal (signed out: the key was only in the page's memory), rotate the key.
  await page.goto(`${stack.workerUrl}/portal/`);
  assert.equal(await page.isVisible("#signin"), true, "a new page knows no key");
  await page.fill("#key", key.api_key);
  await page.click("#signin-form button");
  await page.waitForSelector("#account:not([hidden])");
  page.once("dialog", (d) => d.accept());
  await page.click("#rotate");
  await page.waitForSelector("#new-key:not([hidden])");
  const fresh = (await page.textContent("#new-key-value")).trim();
  assert.match(fresh, /^sk-broker-[0-9a-f]{64}$/);
  assert.equal((await c.api("/v1/balance", { key: key.api_key })).status, 401, "the old key stops");
  assert.equal((await c.api("/v1/balance", { key: fresh })).status, 200);
  // The key never reached a URL or the page's storage.
  assert.ok(!b.requests.some((u) => u.includes(key.api_key) || u.includes(fresh)));
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length), 0);
  // Nothing was fetched from anywhere but 127.0.0.1.
  const foreign = b.requests.filter((u) => !u.startsWith("http://127.0.0.1:"));
  assert.deepEqual(foreign, []);
  assert.deepEqual(b.errors, []);
});
