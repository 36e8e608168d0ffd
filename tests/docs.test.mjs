// The docs site in headless Chromium: the guide (/) fills its price table from the live
// /v1/models and shows an example for every documented operation; the reference (/docs/)
// renders /openapi.json with the vendored renderer; nothing is fetched from anywhere but
// 127.0.0.1; the portal's strict CSP is untouched.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { openBrowser } from "./lib/browser.mjs";

let stack, c, b;
before(async () => {
  stack = await getStack();
  c = client(stack);
  b = await openBrowser();
  // Every request is recorded; anything for another host is refused, so a leak cannot succeed
  // and still shows up in the list.
  await b.context.route("**/*", (route) => (new URL(route.request().url()).hostname === "127.0.0.1" ? route.continue() : route.abort()));
});
after(async () => {
  await b?.close();
  await releaseStack();
});

test("the guide shows the live prices of /v1/models and an example for every operation", async () => {
  const { page } = b;
  const res = await page.goto(`${stack.workerUrl}/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /script-src 'self'; style-src 'self';/);
  const models = await (await c.api("/v1/models")).json();
  // Every model of the API, with the API's price: chat per million tokens, media per unit.
  await page.waitForFunction((n) => document.querySelectorAll("#prices tbody tr, #media-prices tbody tr").length === n, models.data.length);
  const rows = await page.$$eval("#prices tbody tr, #media-prices tbody tr", (rs) => rs.map((r) => ({ id: r.dataset.model, price: JSON.parse(r.dataset.price) })));
  const want = models.data.map((m) => ({ id: m.id, price: m.product ? m.credits_per_unit : m.credits_per_million_tokens }));
  assert.deepEqual(rows.sort((a, b) => a.id.localeCompare(b.id)), want.sort((a, b) => a.id.localeCompare(b.id)));
  assert.ok(models.data.some((m) => m.product) && models.data.some((m) => !m.product), "both tables have rows");
  assert.equal(await page.textContent("#price-table-version"), models.price_table);
  // One example block per documented operation, each a curl line against this server.
  const spec = await (await c.api("/openapi.json")).json();
  const ops = Object.entries(spec.paths).flatMap(([p, item]) => Object.keys(item).filter((m) => m !== "parameters").map((m) => `${m.toUpperCase()} ${p}`));
  await page.waitForFunction((n) => document.querySelectorAll("#endpoints .endpoint").length === n, ops.length);
  const shown = await page.$$eval("#endpoints .endpoint", (es) => es.map((e) => e.dataset.operation));
  assert.deepEqual(shown.sort(), ops.sort());
  const curl = await page.$eval('[data-operation="POST /v1/chat"] [data-curl]', (e) => e.dataset.curl);
  assert.ok(curl.startsWith(`curl -s -X POST "${stack.workerUrl}/v1/chat"`), curl);
  // The Python and Node tabs switch the example.
  await page.click('[data-operation="GET /v1/balance"] button:text("Python")');
  assert.match(await page.textContent('[data-operation="GET /v1/balance"] pre'), /import os, requests/);
  assert.equal((await page.$$("#error-table tbody tr")).length >= 9, true);
  assert.deepEqual(b.errors, []);
});

test("the reference renders /openapi.json with the vendored renderer, and nothing leaves 127.0.0.1", async () => {
  const { page } = b;
  const res = await page.goto(`${stack.workerUrl}/docs/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /style-src 'self' 'unsafe-inline'/);
  assert.doesNotMatch(res.headers()["content-security-policy"], /script-src[^;]*unsafe/);
  // Scalar renders the document: its title, every tag, the first tag's operations.
  await page.waitForFunction(() => document.body.innerText.includes("OpenAI-compatible Chat Completions"), null, { timeout: 20000 });
  const spec = await (await c.api("/openapi.json")).json();
  const text = await page.innerText("body");
  for (const s of [spec.info.title, ...spec.tags.map((t) => t.name), "Anthropic-compatible Messages", "Chat in the gateway's own shape"]) {
    assert.ok(text.includes(s), s);
  }
  // No CSP violation or script error while rendering.
  assert.deepEqual(b.errors, []);
  // The portal keeps its strict policy.
  const portal = await page.goto(`${stack.workerUrl}/portal/`);
  assert.match(portal.headers()["content-security-policy"], /style-src 'self';/);
  const foreign = b.requests.filter((u) => !u.startsWith("http://127.0.0.1:") && !u.startsWith("data:"));
  assert.deepEqual(foreign, []);
});
