// The docs site in headless Chromium: the guide (/) fills its price table from the live
// /v1/models and shows an example for every documented operation; the reference (/docs/)
// renders /openapi.json with the vendored renderer; at 1280×900 (and the reference at
// 1920×1000) no heading or paragraph is squeezed narrower than a few words; nothing is fetched
// from anywhere but 127.0.0.1; the portal's strict CSP is untouched. Screenshots of both pages
// are saved under .stack/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { openBrowser } from "./lib/browser.mjs";
import { FEW_WORDS_PX, screenshot, textBoxes } from "./lib/layout.mjs";

let stack, c, b;
before(async () => {
  stack = await getStack();
  c = client(stack);
  b = await openBrowser();
  await b.page.setViewportSize({ width: 1280, height: 900 });
  // Every request is recorded; anything for another host is refused, so a leak cannot succeed
  // and still shows up in the list.
  await b.context.route("**/*", (route) => (new URL(route.request().url()).hostname === "127.0.0.1" ? route.continue() : route.abort()));
});
after(async () => {
  await b?.close();
  await releaseStack();
});

test("the guide shows the live prices of /v1/models and an example for every operation", async (t) => {
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
  // What a person sees at 1280×900: every heading and paragraph wider than a few words.
  const boxes = await textBoxes(page);
  assert.ok(boxes.checked >= 10, `only ${boxes.checked} headings and paragraphs were measured`);
  assert.deepEqual(boxes.squeezed, [], `narrower than ${FEW_WORDS_PX} px`);
  await page.evaluate(() => window.scrollTo(0, 0));
  t.diagnostic(`screenshot: ${await screenshot(page, "guide")}`);
  assert.deepEqual(b.errors, []);
});

test("the reference renders /openapi.json with the vendored renderer, laid out for a reader, and nothing leaves 127.0.0.1", async (t) => {
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
  // Laid out for a reader, at 1280×900 and at 1920×1000: the title, the introduction and every
  // tag's heading and description are wider than a few words (they were once one letter wide),
  // and the title sits on one line.
  for (const [width, height, name] of [[1280, 900, "docs"], [1920, 1000, "docs-1920"]]) {
    await page.setViewportSize({ width, height });
    const boxes = await textBoxes(page);
    assert.ok(boxes.checked >= spec.tags.length + 2, `${width}×${height}: only ${boxes.checked} headings and paragraphs were measured`);
    assert.deepEqual(boxes.squeezed, [], `${width}×${height}: narrower than ${FEW_WORDS_PX} px`);
    const title = await page.$$eval("#reference h1", (hs, t) => hs.filter((h) => h.textContent.trim() === t).map((h) => {
      const r = h.getBoundingClientRect();
      return { width: r.width, height: r.height, line: parseFloat(getComputedStyle(h).lineHeight) || parseFloat(getComputedStyle(h).fontSize) * 1.5 };
    }), spec.info.title);
    assert.equal(title.length, 1, `${width}×${height}: the reference shows its title once`);
    assert.ok(title[0].height < 2 * title[0].line, `${width}×${height}: the title takes ${title[0].height} px, more than one line`);
    t.diagnostic(`screenshot: ${await screenshot(page, name)}`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  // No CSP violation or script error while rendering.
  assert.deepEqual(b.errors, []);
  // The portal keeps its strict policy.
  const portal = await page.goto(`${stack.workerUrl}/portal/`);
  assert.match(portal.headers()["content-security-policy"], /style-src 'self';/);
  const foreign = b.requests.filter((u) => !u.startsWith("http://127.0.0.1:") && !u.startsWith("data:"));
  assert.deepEqual(foreign, []);
});
