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
  await c.mockScript({ provider: "openai", delay_ms: 1500 });
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
