// Money controls (issue 24): a call's bill by its request id, against the real worker, redis-server
// behind the Upstash front and the provider mocks. Expected charges are computed here from the
// list prices of shared/prices/REFERENCE.md and the mock's documented usage rule, never read
// back from the gateway. The rules: docs/money-controls.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useStack } from "./lib/stack-client.mjs";

const { c } = await useStack();
/** gpt-4o-mini list price, pico-USD per token (REFERENCE.md: $0.15 / $0.60 per 1M). */
const MINI = [150_000n, 600_000n];
/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once: pico-USD × 18 / 1e8. */
const expectedMc = (inTok, outTok) => Number(((BigInt(inTok) * MINI[0] + BigInt(outTok) * MINI[1]) * 18n + 99_999_999n) / 100_000_000n);
/** The mock's documented usage rule: 3 + Σ(ceil(chars/4) + 4); output min(max_tokens, 24). */
const mockInput = (text) => 3 + Math.ceil([...text].length / 4) + 4;
const bill = (key, rid) => c.api(`/v1/requests/${rid}`, { key: key.api_key, method: "GET" });
const chat = (key, content, extra = {}, signal) =>
  c.api("/v1/chat", { key: key.api_key, signal, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }], ...extra } });

async function waitFor(probe, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const settledBill = (key, rid) => waitFor(async () => {
  const b = await (await bill(key, rid)).json();
  return b.status !== "held" && b;
}, `the settlement of ${rid}`);

test("a call's bill: held while in flight, then settled at list price; another key and unknown ids get 404", async () => {
  const key = await c.createKey({ credits: 10 });
  const other = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "openai", gate: true }); // in flight until the release below
  const content = "what does this cost";
  const pending = chat(key, content);
  const rid = await waitFor(async () => (await c.redis("ZRANGE", "abk:open_holds", 0, -1))[0], "the open hold");
  const held = await bill(key, rid);
  assert.equal(held.status, 200);
  const h = await held.json();
  assert.equal(h.status, "held");
  assert.equal(h.model, "gpt-4o-mini");
  assert.equal(h.charged_mc, null);
  assert.ok(h.held_mc > 0 && Number.isInteger(h.admitted_ts));
  assert.equal(await c.balanceMc(key.api_key), 10_000 - h.held_mc, "the bill's hold is the one reserved");
  // Another key cannot see it, in flight or settled.
  assert.equal((await bill(other, rid)).status, 404);
  await c.mockRelease();
  const res = await pending;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-request-id"), rid);
  const b = await settledBill(key, rid);
  const want = expectedMc(mockInput(content), 24);
  assert.deepEqual([b.status, b.charged_mc, b.charged_credits, b.exact, b.held_mc, b.provider, b.product], ["settled", want, want / 1000, true, h.held_mc, "openai", "chat"]);
  assert.equal(b.admitted_ts, h.admitted_ts);
  assert.ok(b.settled_ts >= b.admitted_ts);
  assert.equal(b.units.usage.output, 24);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - want);
  const o = await bill(other, rid);
  assert.equal(o.status, 404);
  assert.equal((await o.json()).error.type, "not_found");
  assert.equal((await bill(key, "no-such-call")).status, 404);
  assert.equal((await bill(key, "bad%22id")).status, 404);
  assert.equal((await c.api(`/v1/requests/${rid}`, { key: "sk-nope", method: "GET" })).status, 401);
});

test("a call the provider refused is released: nothing charged", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "openai", status: 500 });
  const res = await chat(key, "fail");
  assert.equal(res.status, 502);
  const b = await settledBill(key, res.headers.get("x-request-id"));
  assert.deepEqual([b.status, b.charged_mc, b.charged_credits], ["released", 0, 0]);
  assert.match(b.note, /not served/);
  assert.equal(await c.balanceMc(key.api_key), 10_000);
});

test("an aborted stream's bill, once settled: the provider's full usage", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "openai", chunk_delay_ms: 30 });
  const ac = new AbortController();
  const content = "cut me off";
  const res = await chat(key, content, { stream: true }, ac.signal);
  assert.equal(res.status, 200);
  const rid = res.headers.get("x-request-id");
  await res.body.getReader().read();
  ac.abort();
  const b = await settledBill(key, rid);
  const want = expectedMc(mockInput(content), 24);
  assert.deepEqual([b.status, b.charged_mc, b.exact], ["settled", want, true]);
  assert.ok(b.held_mc >= want);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - want);
});

// ---- POST /v1/quote: equal to the hold admission then takes

const quote = async (key, route, body, balance) => {
  const res = await c.api("/v1/quote", { key: key.api_key, body: { route, body, ...(balance === undefined ? {} : { balance }) } });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
};
const holdOf = async (key, res) => (await c.settled(key.id, res.headers.get("x-request-id"))).find((e) => e.type === "call").hold;

test("a chat quote is the hold admission takes, with or without max_tokens, and charges nothing", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "quote me" }] };
  const q = await quote(key, "/v1/chat/completions", body);
  assert.equal(await c.balanceMc(key.api_key), 10_000, "a quote holds and charges nothing");
  assert.deepEqual([q.provider, q.model, q.admitted, q.balance_mc, q.balance_from, q.output_cap_chosen_by_admission], ["openai", "gpt-4o-mini", true, 10_000, "key", true]);
  // REFERENCE.md: $0.15 / $0.60 per 1M tokens × 1.8 / 0.01 = 27 / 108 credits per 1M.
  assert.deepEqual([q.prices.credits_per_million_tokens.input, q.prices.credits_per_million_tokens.output], [27, 108]);
  // Every output token allowed (16,384) at 108 credits per 1M fits in 10 credits with the prompt.
  assert.equal(q.output_cap, 16_384);
  const res = await c.api("/v1/chat/completions", { key: key.api_key, body });
  assert.equal(res.status, 200);
  assert.equal(await holdOf(key, res), q.hold_mc);
  // With max_tokens the cap is the call's: the hold is the prompt's bound + 24 output tokens.
  const capped = { ...body, max_tokens: 24 };
  const q24 = await quote(key, "/v1/chat/completions", capped);
  assert.deepEqual([q24.output_cap, q24.output_cap_chosen_by_admission, q24.hold_mc], [24, false, q24.max_hold_mc]);
  const bound = BigInt(Buffer.byteLength(JSON.stringify(capped)) + 1024);
  assert.equal(q24.hold_mc, Number(((bound * MINI[0] + 24n * MINI[1]) * 18n + 99_999_999n) / 100_000_000n));
  const res24 = await c.api("/v1/chat/completions", { key: key.api_key, body: capped });
  assert.equal(await holdOf(key, res24), q24.hold_mc);
});

test("a quote for a small balance gives the smaller output cap admission grants on that balance", async () => {
  const key = await c.createKey({ credits: 0.5 });
  const body = { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "user", content: "a little" }] };
  const forKey = await quote(key, "/v1/chat", body);
  const given = await quote(key, "/v1/chat", body, "0.5");
  assert.equal(given.balance_from, "request");
  assert.deepEqual([given.hold_mc, given.output_cap], [forKey.hold_mc, forKey.output_cap]);
  assert.ok(forKey.admitted && forKey.hold_mc <= 500 && forKey.output_cap < forKey.max_output_cap, JSON.stringify(forKey));
  const none = await quote(key, "/v1/chat", body, 0);
  assert.deepEqual([none.admitted, none.hold_mc, none.output_cap], [false, null, null]);
  const res = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(res.status, 200);
  assert.equal(await holdOf(key, res), forKey.hold_mc);
});

test("an image quote is its hold; bad quotes are 400s, a bad key 401", async () => {
  const key = await c.createKey({ credits: 100 });
  const body = { model: "gpt-image-2", prompt: "A lighthouse at dusk", size: "1024x1024", quality: "high" };
  const q = await quote(key, "/v1/images/generations", body);
  assert.deepEqual([q.provider, q.model, q.product, q.admitted], ["openai", "gpt-image-2", "image", true]);
  await c.mockScript({ provider: "openai-images", usage: { text_tokens: 20, output_tokens: 7024 } });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body });
  assert.equal(res.status, 200);
  assert.equal(await holdOf(key, res), q.hold_mc);
  const bad = async (b, status = 400) => {
    const r = await c.api("/v1/quote", { key: key.api_key, body: b });
    assert.equal(r.status, status, JSON.stringify(b));
    assert.ok((await r.json()).error.message);
  };
  await bad({ route: "/v1/balance", body: {} });
  await bad({ route: "/v1/chat/completions" });
  await bad({ route: "/v1/chat/completions", body: { model: "no-such-model", messages: [] } });
  await bad({ route: "/v1/chat/completions", body: { model: "gpt-4o-mini", messages: [] }, balance: -1 });
  assert.equal((await c.api("/v1/quote", { key: "sk-nope", body: { route: "/v1/chat", body: {} } })).status, 401);
});
