// Holds that are bounds (issue 21), against the real worker, redis-server behind the Upstash front
// and the provider mocks told to report the usage of each case. Every expected figure is computed
// here by hand from the list prices of shared/prices/REFERENCE.md (credits = usd × 1.8 / 0.01),
// never read back from the gateway. The rules: docs/billing.md.
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
  await c.mockReset();
  await c.resetIpLimits();
});

/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once: pico-USD × 18 / 1e8. */
const mcOf = (pico) => Number((BigInt(pico) * 18n + 99_999_999n) / 100_000_000n);
/** USD per 1M tokens (= pico-USD per token), REFERENCE.md §1–§2. */
const GPT_IMAGE_2 = { text: 5_000_000n, imageIn: 8_000_000n, out: 30_000_000n };
/** §3: one ElevenLabs credit at the default ELEVENLABS_USD_PER_CREDIT ($0.0003). */
const EL_PICO_PER_CREDIT = 300_000_000n;
/** The chat hold's input bound: every request byte + 1,024 tokens of overhead. */
const chatPromptBound = (body) => BigInt(Buffer.byteLength(JSON.stringify(body)) + 1024);
const PREMADE_VOICE = "JBFqnCBsd6RMkjVDRZzb"; // ElevenLabs' "George": 1×
const LIBRARY_VOICE = "8kQ2vRz5LmN1pXc7TsWd"; // not a premade voice: may be multiplied

async function waitFor(probe, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function callEntry(key, res) {
  const [entry] = (await c.settled(key.id, res.headers.get("x-request-id"))).filter((e) => e.type === "call");
  return entry;
}

/** balance == Σ ledger amounts (no call is open, nothing was carried). */
async function assertLedgerSums(key) {
  const entries = (await c.redis("LRANGE", `abk:ledger:${key.id}`, 0, -1)).map((e) => JSON.parse(e));
  const sum = entries.reduce((s, e) => s + e.amount, 0);
  assert.equal(await c.balanceMc(key.api_key), sum, "the ledger sums to the balance");
}

const logLine = (res, msg) => waitFor(() => c.logLines().find((l) => l.request_id === res.headers.get("x-request-id") && l.msg === msg), `the ${msg} log line`);

// ---- The table: exact usage at list price, charged in full

test("gpt-image-2, 1024×1024 high, 7,024 output tokens: 37.948 credits, within its hold", async () => {
  const key = await c.createKey({ credits: 100 });
  await c.mockScript({ provider: "openai-images", usage: { text_tokens: 20, output_tokens: 7024 } });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "A lighthouse at dusk", size: "1024x1024", quality: "high" } });
  assert.equal(res.status, 200);
  // 20 × $5/M + 7,024 × $30/M = $0.2108200 → × 180 = 37.9476 credits → 37.948.
  const want = mcOf(20n * GPT_IMAGE_2.text + 7024n * GPT_IMAGE_2.out);
  assert.equal(want, 37_948);
  assert.equal(res.headers.get("x-credits-charged"), "37.948");
  const entry = await callEntry(key, res);
  assert.equal(entry.amount, -want);
  // The hold: 20 prompt bytes + 64 at the dearer input class ($8/M) + OpenAI's 7,024 tokens.
  assert.equal(entry.hold, mcOf((20n + 64n) * GPT_IMAGE_2.imageIn + 7024n * GPT_IMAGE_2.out));
  assert.equal(entry.hold_exceeded, undefined, "OpenAI's own count bounds the hold");
  assert.equal(await c.balanceMc(key.api_key), 100_000 - want);
});

test("gpt-image-2, n = 10, 70,240 output tokens: 379.314 credits", async () => {
  const key = await c.createKey({ credits: 500 });
  await c.mockScript({ provider: "openai-images", usage: { text_tokens: 20, output_tokens: 70_240 } });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "A lighthouse at dusk", n: 10, size: "1024x1024", quality: "high" } });
  assert.equal(res.status, 200);
  const want = mcOf(20n * GPT_IMAGE_2.text + 70_240n * GPT_IMAGE_2.out);
  assert.equal(want, 379_314);
  const entry = await callEntry(key, res);
  assert.equal(entry.amount, -want);
  assert.ok(entry.hold >= want);
  assert.equal(await c.balanceMc(key.api_key), 500_000 - want);
});

test("ElevenLabs multilingual v2, 1,000 characters, a 2× voice (character-cost 2000): 108 credits, held at 3×", async () => {
  const key = await c.createKey({ credits: 200 });
  await c.mockScript({ provider: "elevenlabs", usage: { character_cost: 2000 } });
  const res = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: LIBRARY_VOICE, text: "a".repeat(1000), model_id: "eleven_multilingual_v2" } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  // 2,000 credits × $0.0003 = $0.60 → 108 credits; the hold: 1,000 × 1 credit × 3 → $0.90 → 162.
  const want = mcOf(2000n * EL_PICO_PER_CREDIT);
  assert.equal(want, 108_000);
  assert.equal(res.headers.get("x-credits-charged"), "108");
  const entry = await callEntry(key, res);
  assert.deepEqual([entry.amount, entry.hold], [-108_000, mcOf(3000n * EL_PICO_PER_CREDIT)]);
  assert.equal(entry.hold, 162_000);
  assert.equal(await c.balanceMc(key.api_key), 200_000 - 108_000);
});

// ---- Rule 1: exact usage above the hold is charged in full; the debt refuses admission

test("a premade voice billed 2×: charged in full above its hold, into debt; logged, in the ledger and in /admin/stats", async () => {
  const key = await c.createKey({ credits: 60 });
  await c.mockScript({ provider: "elevenlabs", usage: { character_cost: 2000 } });
  const res = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: PREMADE_VOICE, text: "a".repeat(1000), model_id: "eleven_multilingual_v2" } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  // Held 1,000 credits × $0.0003 = 54 credits (a premade voice is 1×); billed 2,000 → 108.
  const hold = mcOf(1000n * EL_PICO_PER_CREDIT);
  const want = mcOf(2000n * EL_PICO_PER_CREDIT);
  const entry = await callEntry(key, res);
  assert.deepEqual([entry.amount, entry.hold], [-want, hold]);
  assert.deepEqual(entry.hold_exceeded, { hold_mc: 54_000, charged_mc: 108_000, over_mc: 54_000 });
  assert.match(entry.note, /usage came to 108 credits, 54 more than the hold of 54: charged in full/);
  assert.equal(await c.balanceMc(key.api_key), 60_000 - 108_000, "a debt of 48 credits");
  const line = await logLine(res, "hold_exceeded");
  assert.deepEqual([line.level, line.model, line.provider, line.hold_mc, line.charged_mc], ["warn", "eleven_multilingual_v2", "elevenlabs", 54_000, 108_000]);
  // The debt is not spendable.
  const next = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: PREMADE_VOICE, text: "hi" } });
  assert.equal(next.status, 402);
  assert.match((await next.json()).error.message, /owes credits/);
  const today = new Date().toISOString().slice(0, 10);
  const stats = (await c.admin(`/admin/stats?from=${today}&to=${today}&key_id=${key.id}`)).body;
  const row = stats.days.at(-1).models.find((m) => m.model === "elevenlabs/eleven_multilingual_v2");
  assert.deepEqual(row.hold_exceeded, { calls: 1, held_mc: 54_000, charged_mc: 108_000 });
  await assertLedgerSums(key);
});

// ---- Rule 2: sent but never answered is charged the hold; nothing answered at all is released

test("an image whose head does not come within HEAD_TIMEOUT_IMAGE_MS: 504, charged its hold", async () => {
  const key = await c.createKey({ credits: 20 });
  await c.mockScript({ provider: "openai-images", delay_ms: 8000 });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "stall", size: "1024x1024", quality: "low" } });
  assert.equal(res.status, 504);
  const err = (await res.json()).error;
  // (5 prompt bytes + 64) × $8/M + 196 × $30/M = $0.006432 → 1.15776 credits → 1.158.
  const hold = mcOf((5n + 64n) * GPT_IMAGE_2.imageIn + 196n * GPT_IMAGE_2.out);
  assert.equal(hold, 1158);
  assert.equal(err.credits_charged, 1.158);
  assert.match(err.message, /did not answer within 6000 ms; charged 1.158 credits, the hold/);
  const entry = await callEntry(key, res);
  assert.deepEqual([entry.amount, entry.hold, entry.exact], [-hold, hold, false]);
  assert.equal(await c.balanceMc(key.api_key), 20_000 - hold);
  assert.equal((await logLine(res, "head_timeout")).head_timeout_ms, 6000);
});

test("a music clip whose head does not come within HEAD_TIMEOUT_MUSIC_MS: 504, charged its 20 Stability credits", async () => {
  const key = await c.createKey({ credits: 50 });
  await c.mockScript({ provider: "stability", delay_ms: 8000 });
  const res = await c.api("/v1/music", { key: key.api_key, body: { prompt: "a slow loop", model: "stable-audio-2.5" } });
  assert.equal(res.status, 504);
  await res.arrayBuffer();
  // 20 credits × $0.01 = $0.20 → 36 credits.
  const entry = await callEntry(key, res);
  assert.deepEqual([entry.amount, entry.exact], [-36_000, false]);
  assert.equal(await c.balanceMc(key.api_key), 50_000 - 36_000);
});

test("a connection the provider drops without any answer: 502, the hold released", async () => {
  const key = await c.createKey({ credits: 20 });
  await c.mockScript({ provider: "openai-images", drop_connection: true });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "drop", size: "1024x1024", quality: "low" } });
  assert.equal(res.status, 502);
  await res.arrayBuffer();
  const entry = await callEntry(key, res);
  assert.equal(entry.amount, 0);
  assert.match(entry.note, /not served/);
  assert.equal(await c.balanceMc(key.api_key), 20_000);
});

// ---- Rule 3: bounds from the providers' own numbers

test("stable-audio-2 is priced up to 50 steps (23 Stability credits); more steps are a 400", async () => {
  const key = await c.createKey({ credits: 50 });
  const over = await c.api("/v1/music", { key: key.api_key, body: { prompt: "a slow loop", model: "stable-audio-2", steps: 51 } });
  assert.equal(over.status, 400);
  assert.match((await over.json()).error.message, /`steps` 51 is not offered for stable-audio-2: its price is known up to 50 steps/);
  const ok = await c.api("/v1/music", { key: key.api_key, body: { prompt: "a slow loop", model: "stable-audio-2", steps: 50 } });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  // 23 credits × $0.01 = $0.23 → 41.4 credits.
  assert.equal((await callEntry(key, ok)).amount, -41_400);
  assert.equal(await c.balanceMc(key.api_key), 50_000 - 41_400);
});

test("Anthropic cache writes the answer does not split are billed at the 1h rate", async () => {
  const key = await c.createKey({ credits: 20 });
  await c.mockScript({ provider: "anthropic", usage: { input_tokens: 10, cache_creation_input_tokens: 1000, cache_creation: null, output_tokens: 5 } });
  const body = { provider: "anthropic", model: "claude-haiku-4-5", max_tokens: 5, messages: [{ role: "user", content: "cache me ".repeat(300) }] };
  const res = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(res.status, 200, await res.clone().text());
  // claude-haiku-4-5: 10 × $1 + 1,000 × $2 (1h write; 5m is $1.25) + 5 × $5 per M = $0.002035 → 0.3663 → 0.367.
  const want = mcOf(10n * 1_000_000n + 1000n * 2_000_000n + 5n * 5_000_000n);
  assert.equal(want, 367);
  const entry = await callEntry(key, res);
  assert.equal(entry.amount, -want);
  assert.deepEqual([entry.units.usage.cache_write_1h, entry.units.usage.cache_write_5m], [1000, 0]);
  const [sent] = await c.mockRequests("anthropic");
  assert.equal(sent.body.service_tier, "standard_only", "the standard tier is asked for");
});

test("an answer served at another service tier: charged the hold, with a warning; the standard tier is asked for", async () => {
  const key = await c.createKey({ credits: 20 });
  await c.mockScript({ provider: "openai", service_tier: "priority" });
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 10, messages: [{ role: "user", content: "tier" }] };
  const res = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(res.status, 200);
  // gpt-4o-mini: every request byte + 1,024 at $0.15/M + 10 output tokens at $0.60/M.
  const hold = mcOf(chatPromptBound(body) * 150_000n + 10n * 600_000n);
  const entry = await callEntry(key, res);
  assert.deepEqual([entry.amount, entry.hold, entry.exact], [-hold, hold, false]);
  assert.match(entry.note, /`priority` tier, not the standard one/);
  assert.match((await logLine(res, "metering_warning")).warning, /`priority` service tier/);
  const [sent] = await c.mockRequests("openai");
  assert.equal(sent.body.service_tier, "default");
  // Anthropic's Priority Tier, the same.
  await c.mockScript({ provider: "anthropic", service_tier: "priority" });
  const abody = { provider: "anthropic", model: "claude-haiku-4-5", max_tokens: 10, messages: [{ role: "user", content: "tier" }] };
  const ares = await c.api("/v1/chat", { key: key.api_key, body: abody });
  assert.equal(ares.status, 200);
  // claude-haiku-4-5: the dearest input class, the 1h write ($2/M), + 10 × $5/M.
  const ahold = mcOf(chatPromptBound(abody) * 2_000_000n + 10n * 5_000_000n);
  assert.deepEqual([(await callEntry(key, ares)).amount], [-ahold]);
  await assertLedgerSums(key);
});

// ---- Rule 4: Gemini billed by the model that served the call

test("Gemini served by another model (modelVersion) is billed at that model's list price; an unlisted one is charged the hold", async () => {
  const key = await c.createKey({ credits: 20 });
  const body = { provider: "google", model: "gemini-3.5-flash", max_tokens: 5, messages: [{ role: "user", content: "which model are you? ".repeat(20) }] };
  await c.mockScript({ provider: "gemini", model_version: "gemini-3.1-pro-preview", usage: { promptTokenCount: 100, candidatesTokenCount: 5, thoughtsTokenCount: 0 } });
  const res = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(res.status, 200);
  // gemini-3.1-pro-preview: 100 × $2 + 5 × $12 per M = $0.00026 → 0.0468 → 0.047 credits
  // (gemini-3.5-flash's own $1.50 / $9 would be 0.0351 → 0.036).
  const want = mcOf(100n * 2_000_000n + 5n * 12_000_000n);
  assert.equal(want, 47);
  const entry = await callEntry(key, res);
  assert.equal(entry.amount, -want);
  assert.match(entry.note, /requested gemini-3.5-flash, served by gemini-3.1-pro-preview/);
  await c.mockScript({ provider: "gemini", model_version: "gemini-9-ultra", usage: { promptTokenCount: 100, candidatesTokenCount: 5, thoughtsTokenCount: 0 } });
  const unknown = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(unknown.status, 200);
  const hold = mcOf(chatPromptBound(body) * 1_500_000n + 5n * 9_000_000n);
  const u = await callEntry(key, unknown);
  assert.deepEqual([u.amount, u.hold, u.exact], [-hold, hold, false]);
  assert.match((await logLine(unknown, "metering_warning")).warning, /gemini-9-ultra/);
  // A name Google may serve as several models is not offered at all.
  const alias = await c.api("/v1/chat", { key: key.api_key, body: { ...body, model: "gemini-flash-latest" } });
  assert.equal(alias.status, 400);
  await assertLedgerSums(key);
});
