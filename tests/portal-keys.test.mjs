// The portal's Sub-keys section (issue 25) in headless Chromium at 1280×900, as a person uses it:
// sign in with the account key, create a sub-key (its key shown once), see it listed with its
// caps, make a call with it, see its spend (list price × the mock's usage) and the ledger line
// naming it, rotate it, revoke it. Signed in with a sub-key, the section is not there.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useBrowserPage } from "./lib/browser.mjs";
import { FEW_WORDS_PX, screenshot, textBoxes } from "./lib/layout.mjs";

let stack, c, b;
useBrowserPage((s) => ({ stack, c, b } = s));

// gpt-4o-mini's list price (micro-USD per 1M tokens) and the mock's usage rule, restated.
const PRICE = [150_000n, 600_000n];
const expectedMc = (inTok, outTok) => Number(((BigInt(inTok) * PRICE[0] + BigInt(outTok) * PRICE[1]) * 18n + 99_999_999n) / 100_000_000n);
const mockUsage = (text, maxTokens) => ({ input: 3 + Math.ceil([...text].length / 4) + 4, output: Math.min(maxTokens, 24) });
const credits = (n) => n.toLocaleString("en-US", { maximumFractionDigits: 3 });

async function signIn(page, key) {
  await page.goto(`${stack.workerUrl}/portal/`);
  await page.fill("#key", key);
  await page.click("#signin-form button");
  await page.waitForSelector("#account:not([hidden])");
}

test("the portal creates a sub-key, shows its spend after a call, rotates and revokes it", async (t) => {
  const account = await c.createKey({ credits: 100 });
  const { page } = b;
  await signIn(page, account.api_key);
  await page.waitForSelector("#subkeys-card:not([hidden])");
  assert.equal(await page.isVisible("#subkeys-empty"), true, "no sub-keys yet");
  // Create one: a name, a daily cap, a total cap, one model.
  await page.fill("#subkey-name", "ci runner");
  await page.fill("#subkey-daily", "5");
  await page.fill("#subkey-total", "20");
  await page.fill("#subkey-models", "openai/gpt-4o-mini");
  await page.click("#subkey-form button");
  await page.waitForSelector("#subkey-new:not([hidden])");
  const subKey = (await page.textContent("#subkey-new-value")).trim();
  assert.match(subKey, /^sk-broker-[0-9a-f]{64}$/);
  await page.waitForSelector("#subkeys tr");
  const [listed] = (await (await c.api("/v1/keys", { key: account.api_key })).json()).keys;
  const row = `#subkeys tr[data-key-id="${listed.id}"]`;
  assert.equal(await page.textContent(`${row} .name`), "ci runner");
  assert.equal(await page.textContent(`${row} .caps`), "5 / none / 20");
  assert.equal(await page.textContent(`${row} .models`), "openai/gpt-4o-mini");
  assert.equal(await page.textContent(`${row} .total`), "0");
  // A call with the sub-key, charged to the account's balance.
  const content = "a call from the portal's sub-key";
  const r = await c.api("/v1/chat", { key: subKey, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }] } });
  assert.equal(r.status, 200);
  await c.settled(account.id, r.headers.get("x-request-id"));
  const u = mockUsage(content, 24);
  const charge = expectedMc(u.input, u.output);
  // The person reloads and signs in again: the sub-key's spend, and the ledger line naming it.
  await signIn(page, account.api_key);
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent !== "0", `${row} .total`);
  assert.equal(await page.textContent(`${row} .today`), credits(charge / 1000));
  assert.equal(await page.textContent(`${row} .total`), credits(charge / 1000));
  await page.waitForFunction(() => [...document.querySelectorAll("#ledger td")].some((td) => td.textContent === "call · ci runner"));
  await page.waitForFunction((v) => document.getElementById("credits").textContent === v, credits((100_000 - charge) / 1000));
  const boxes = await textBoxes(page);
  assert.deepEqual(boxes.squeezed, [], `narrower than ${FEW_WORDS_PX} px`);
  t.diagnostic(`screenshot: ${await screenshot(page, "portal-keys", { fullPage: true })}`);
  // Rotate: a new key shown once; the old one stops; the spend stays.
  page.once("dialog", (d) => d.accept());
  await page.click(`${row} button.rotate`);
  await page.waitForFunction((old) => { const v = document.getElementById("subkey-new-value").textContent.trim(); return v !== old && v.startsWith("sk-broker-"); }, subKey);
  const rotated = (await page.textContent("#subkey-new-value")).trim();
  assert.equal((await c.api("/v1/balance", { key: subKey })).status, 401);
  const bal = await (await c.api("/v1/balance", { key: rotated })).json();
  assert.equal(bal.sub_key.spend_mc.total, charge);
  // Revoke: the row goes, the key stops, the account goes on.
  page.once("dialog", (d) => d.accept());
  await page.click(`${row} button.revoke`);
  await page.waitForSelector(row, { state: "detached" });
  assert.equal(await page.isVisible("#subkeys-empty"), true);
  assert.equal((await c.api("/v1/balance", { key: rotated })).status, 401);
  assert.equal((await c.api("/v1/balance", { key: account.api_key })).status, 200);
  // Signed in with a sub-key, there is no Sub-keys section.
  const other = await (await c.api("/v1/keys", { key: account.api_key, body: { name: "teammate" } })).json();
  await signIn(page, other.api_key);
  await page.waitForFunction(() => document.getElementById("credits").textContent !== "–");
  assert.equal(await page.isVisible("#subkeys-card"), false);
  // Keys never reached a URL; nothing was fetched from elsewhere; no page errors but the 403s
  // the console logs for the sub-key's refused calls.
  assert.ok(!b.requests.some((u) => [account.api_key, subKey, rotated, other.api_key].some((k) => u.includes(k))));
  assert.deepEqual(b.requests.filter((u) => !u.startsWith("http://127.0.0.1:")), []);
  assert.deepEqual(b.errors.filter((e) => !/status of 403/.test(e)), []);
});
