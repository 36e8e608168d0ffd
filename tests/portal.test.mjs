// The customer portal (/portal/) in headless Chromium at 1280×900: sign in with a key, the
// balance matches the API, the usage chart shows one bar per day of the last 30 with usage,
// stacked by model in distinct colours, with the day's credits on hover; the ledger pages, a
// checkout starts, the key rotates; no heading or paragraph is squeezed. Nothing is loaded from
// anywhere but the gateway's own origin. A screenshot is saved under .stack/screenshots/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useBrowserPage } from "./lib/browser.mjs";
import { FEW_WORDS_PX, screenshot, textBoxes } from "./lib/layout.mjs";

let stack, c, b;
useBrowserPage((s) => ({ stack, c, b } = s));

/** `YYYY-MM-DD` as the chart's axis writes it ("Dec 4"), in UTC. */
const axisLabel = (day) => new Date(`${day}T00:00:00Z`).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
const credits = (n) => n.toLocaleString("en-US", { maximumFractionDigits: 3 });
/** `#rrggbb` → the `rgb(r, g, b)` a computed style reports. */
const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(", ")})`;

test("the portal signs in with a key and shows what the API says, pages the ledger, starts a checkout, rotates the key", async (t) => {
  const key = await c.createKey({ credits: 100 });
  // Three chat models served today, one per provider (the cheapest of each, from /v1/models):
  // prices far apart, so the cheapest model's share of the bar is thin.
  const served = (await (await c.api("/v1/models")).json()).data.filter((m) => !m.product);
  const models = ["openai", "anthropic", "google"].map((provider) => served
    .filter((m) => m.id.startsWith(`${provider}/`))
    .sort((x, y) => x.credits_per_million_tokens.output - y.credits_per_million_tokens.output)[0].id);
  // 25 calls on the three models: a ledger of more than one page, a bar in three colours.
  for (let i = 0; i < 25; i++) {
    const [provider, model] = models[i % 3].split("/");
    const r = await c.api("/v1/chat", { key: key.api_key, body: { provider, model, max_tokens: 3, messages: [{ role: "user", content: `portal ${i}` }] } });
    assert.equal(r.status, 200);
    await c.settled(key.id, r.headers.get("x-request-id"));
  }
  const { page } = b;
  const res = await page.goto(`${stack.workerUrl}/portal/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /default-src 'none'; script-src 'self'/);
  assert.equal(res.headers()["x-frame-options"], "DENY");
  const signIn = await textBoxes(page);
  assert.deepEqual(signIn.squeezed, [], `sign-in page: narrower than ${FEW_WORDS_PX} px`);
  await page.fill("#key", key.api_key);
  await page.click("#signin-form button");
  await page.waitForSelector("#account:not([hidden])");
  // The balance matches the API.
  const api = await (await c.api("/v1/balance", { key: key.api_key })).json();
  await page.waitForFunction((v) => document.getElementById("credits").textContent === v, api.credits.toLocaleString("en-US", { maximumFractionDigits: 3 }));
  assert.equal(await page.textContent("#key-id"), key.id);
  assert.equal(await page.textContent("#plan"), "bulk");
  // The chart: the 30 days ending at the server's today (the `to` of /v1/usage/daily, so the
  // test does not depend on the machine's date), one bar per day with usage.
  await page.waitForSelector("#chart svg rect.segment");
  const daily = await (await c.api("/v1/usage/daily", { key: key.api_key })).json();
  const last = Date.parse(`${daily.to}T00:00:00Z`);
  const window30 = Array.from({ length: 30 }, (_, i) => new Date(last - (29 - i) * 86_400_000).toISOString().slice(0, 10));
  const used = daily.days.filter((d) => d.models.length && window30.includes(d.day));
  assert.equal(used.length, 1, "all 25 calls were made today");
  const chart = await page.$eval("#chart svg", (svg) => {
    const box = svg.getBoundingClientRect();
    const days = [...svg.querySelectorAll("g.day")].map((g) => {
      const segments = [...g.querySelectorAll("rect.segment")].map((r) => {
        const rb = r.getBoundingClientRect();
        const hit = document.elementFromPoint(rb.left + rb.width / 2, rb.top + rb.height / 2);
        return { model: r.dataset.model, mc: Number(r.dataset.charged), fill: r.getAttribute("fill"), width: rb.width, height: rb.height, left: rb.left, visible: hit === r };
      });
      return { day: g.dataset.day, segments };
    });
    return { width: box.width, days, dates: [...svg.querySelectorAll("text.date")].map((t) => t.textContent) };
  });
  assert.deepEqual(chart.days.map((d) => d.day), window30, "one slot per day, oldest first");
  assert.deepEqual(chart.days.filter((d) => d.segments.length).map((d) => d.day), used.map((d) => d.day), "a bar on each day with usage, none elsewhere");
  assert.equal(chart.dates.at(-1), axisLabel(daily.to), "the date axis ends today");
  assert.ok(chart.dates.length >= 5, `a date axis (${chart.dates})`);
  // Each bar is one day wide (a thirtieth of the chart at most), not a block across the chart.
  const bar = chart.days.find((d) => d.segments.length).segments;
  for (const sgm of bar) {
    assert.ok(sgm.width > 3 && sgm.width <= chart.width / 30, `${sgm.model}: a bar ${sgm.width} px wide in a chart of ${chart.width}`);
    assert.equal(sgm.left, bar[0].left, "the models of a day are stacked in one bar");
  }
  // Stacked by model, each model's share equal to the API's, each one visible in its own colour.
  const want = used.flatMap((d) => d.models.map((m) => ({ model: m.model, mc: m.charged_mc })));
  assert.deepEqual(bar.map(({ model, mc }) => ({ model, mc })).sort((x, y) => x.model.localeCompare(y.model)), want.sort((x, y) => x.model.localeCompare(y.model)));
  assert.deepEqual(bar.map((x) => x.model).sort(), [...models].sort(), "the three models of the calls");
  assert.equal(new Set(bar.map((x) => x.fill)).size, 3, `three distinct colours: ${bar.map((x) => x.fill)}`);
  for (const sgm of bar) assert.ok(sgm.height >= 2 && sgm.visible, `${sgm.model}: ${sgm.height} px tall, visible ${sgm.visible}`);
  // The legend names each model in its bar's colour.
  const legend = await page.$$eval("#legend li", (lis) => lis.map((li) => ({ model: li.textContent, color: getComputedStyle(li.querySelector("span")).backgroundColor })));
  assert.deepEqual(legend.map((l) => l.model).sort(), [...models].sort());
  for (const l of legend) assert.equal(l.color, rgb(bar.find((x) => x.model === l.model).fill), l.model);
  // Hovering the day's bar shows the day's credits: the API's total, which is also the sum of
  // the key's call entries in its ledger (all made today).
  const today = used[0];
  const ledgerCalls = (await c.ledger(key.id)).filter((e) => e.type === "call");
  assert.equal(ledgerCalls.length, 25);
  assert.equal(today.totals.charged_mc, -ledgerCalls.reduce((sum, e) => sum + e.amount_mc, 0));
  assert.equal(today.totals.charged_mc, today.models.reduce((sum, m) => sum + m.charged_mc, 0));
  await page.hover(`#chart g.day[data-day="${today.day}"] rect.segment`);
  await page.waitForSelector("#chart-tip:not([hidden])");
  const tip = await page.textContent("#chart-tip");
  assert.ok(tip.startsWith(`${axisLabel(today.day)}: ${credits(today.totals.charged_mc / 1000)} credits, 25 calls`), tip);
  for (const m of today.models) assert.ok(tip.includes(`${m.model}: ${credits(m.charged_mc / 1000)} credits (${m.calls} calls)`), tip);
  // The account page as a person sees it, tooltip included.
  const boxes = await textBoxes(page);
  assert.ok(boxes.checked >= 5, `only ${boxes.checked} headings and paragraphs were measured`);
  assert.deepEqual(boxes.squeezed, [], `narrower than ${FEW_WORDS_PX} px`);
  t.diagnostic(`screenshot: ${await screenshot(page, "portal", { fullPage: true })}`);
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
