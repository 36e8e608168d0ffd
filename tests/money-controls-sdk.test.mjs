// Money controls (issue 24) through the official SDKs: `Idempotency-Key` and the per-call spending
// cap (`X-Max-Credits`, `max_credits`), sent with the SDKs' per-request headers option. Against the
// real worker, redis-server behind the Upstash front and the provider mocks. Expected charges and
// holds are computed here from the list prices (shared/prices/REFERENCE.md) and the mock's
// documented usage rule, never read back from the gateway. The rules: docs/money-controls.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { useStack } from "./lib/stack-client.mjs";
import { waitFor } from "./lib/procs.mjs";

const { stack, c } = await useStack();

/** gpt-4o-mini list price, pico-USD per token (REFERENCE.md: $0.15 / $0.60 per 1M). */
const MINI = [150_000n, 600_000n];
/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once: pico-USD × 18 / 1e8. */
const mcOfPico = (pico) => Number((pico * 18n + 99_999_999n) / 100_000_000n);
const expectedMc = (inTok, outTok) => mcOfPico(BigInt(inTok) * MINI[0] + BigInt(outTok) * MINI[1]);
/** The mock's documented usage rule: 3 + Σ(ceil(chars/4) + 4); output min(max_tokens, 24). */
const mockInput = (text) => 3 + Math.ceil([...text].length / 4) + 4;
/** The prompt's bound admission holds (docs/billing.md): body bytes + 1,024 tokens at the input price. */
const promptBoundMc = (body) => mcOfPico(BigInt(Buffer.byteLength(JSON.stringify(body)) + 1024) * MINI[0]);
/** Output tokens at 0.108 mc each (108,000 micro-mc), rounded up. */
const outputMc = (tokens) => Math.ceil((tokens * 108_000) / 1_000_000);

const openai = (key) => new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0 });
const anthropic = (key) => new Anthropic({ baseURL: stack.workerUrl, apiKey: key.api_key, maxRetries: 0 });
const withKey = (k, extra = {}) => ({ headers: { "Idempotency-Key": k, ...extra } });
const chatBody = (content, extra = {}) => ({ model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }], ...extra });
const calls = async (key) => (await c.ledger(key.id)).filter((e) => e.type === "call");
/** The SDK's error for a call that must fail. */
const failure = async (p) => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail("the call succeeded");
};
const held = async () => (await (await fetch(`${stack.mocksUrl}/__control/held`)).json()).held;
const release = () => fetch(`${stack.mocksUrl}/__control/release`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });

// ---- Idempotency-Key

test("a retried call with the same Idempotency-Key is charged once and gets the first answer back", async () => {
  const key = await c.createKey({ credits: 10 });
  const ai = openai(key);
  const content = "charge me once";
  const first = await ai.chat.completions.create(chatBody(content), withKey("order-1")).withResponse();
  const rid = first.response.headers.get("x-request-id");
  await c.settled(key.id, rid);
  const again = await ai.chat.completions.create(chatBody(content), withKey("order-1")).withResponse();
  assert.equal(again.response.status, 200);
  assert.equal(again.response.headers.get("idempotent-replayed"), "true");
  assert.equal(again.response.headers.get("x-request-id"), rid, "the first call's request id");
  assert.equal(again.response.headers.get("content-type"), first.response.headers.get("content-type"));
  assert.equal(again.response.headers.get("x-credits-charged"), first.response.headers.get("x-credits-charged"));
  assert.deepEqual(again.data, first.data, "the same answer, byte for byte once parsed");
  assert.equal(first.response.headers.get("idempotent-replayed"), null);
  const want = expectedMc(mockInput(content), 24);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - want, "one charge");
  const entries = await calls(key);
  assert.deepEqual(entries.map((e) => [e.ref, e.amount_mc]), [[rid, -want]], "one ledger entry");
  assert.equal((await c.mockRequests("openai")).length, 1, "the provider saw one call");
  // The same key on another API key is another key: it runs.
  const other = await c.createKey({ credits: 10 });
  const theirs = await openai(other).chat.completions.create(chatBody(content), withKey("order-1")).withResponse();
  assert.notEqual(theirs.response.headers.get("x-request-id"), rid);
  assert.equal(theirs.response.headers.get("idempotent-replayed"), null);
});

test("the Anthropic SDK's retry is a replay too", async () => {
  const key = await c.createKey({ credits: 10 });
  const claude = anthropic(key);
  const body = { model: "claude-haiku-4-5", max_tokens: 24, messages: [{ role: "user", content: "once" }] };
  const first = await claude.messages.create(body, withKey("msg-1")).withResponse();
  const rid = first.response.headers.get("x-request-id");
  await c.settled(key.id, rid);
  const after = await c.balanceMc(key.api_key);
  const again = await claude.messages.create(body, withKey("msg-1")).withResponse();
  assert.deepEqual([again.response.headers.get("idempotent-replayed"), again.response.headers.get("x-request-id")], ["true", rid]);
  assert.deepEqual(again.data, first.data);
  assert.equal(await c.balanceMc(key.api_key), after, "the replay charged nothing");
  assert.equal((await calls(key)).length, 1);
});

test("a retry while the first call is in flight gets 409 with Retry-After, and the replay once it is done", async () => {
  const key = await c.createKey({ credits: 10 });
  const ai = openai(key);
  const content = "hold on";
  await c.mockScript({ provider: "openai", gate: true });
  const first = ai.chat.completions.create(chatBody(content), withKey("flight-1")).withResponse();
  await waitFor(async () => (await held()) === 1, { what: "the first call at the provider" });
  const rid = (await c.redis("ZRANGE", "abk:open_holds", 0, -1))[0];
  const e = await failure(ai.chat.completions.create(chatBody(content), withKey("flight-1")));
  assert.equal(e.status, 409);
  assert.equal(e.code, "idempotency_in_flight");
  assert.equal(e.headers.get("retry-after"), "1");
  assert.equal(e.error.idempotent_request_id, rid);
  assert.match(e.message, new RegExp(rid));
  await release();
  const done = await first;
  assert.equal(done.response.headers.get("x-request-id"), rid);
  await c.settled(key.id, rid);
  const replay = await ai.chat.completions.create(chatBody(content), withKey("flight-1")).withResponse();
  assert.equal(replay.response.headers.get("idempotent-replayed"), "true");
  const want = expectedMc(mockInput(content), 24);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - want, "one charge: the 409 and the replay charged nothing");
  assert.equal((await calls(key)).length, 1);
});

test("the same key with another body is a 422, and runs nothing", async () => {
  const key = await c.createKey({ credits: 10 });
  const ai = openai(key);
  const first = await ai.chat.completions.create(chatBody("first body"), withKey("reuse-1")).withResponse();
  const rid = first.response.headers.get("x-request-id");
  await c.settled(key.id, rid);
  const before = await c.balanceMc(key.api_key);
  const e = await failure(ai.chat.completions.create(chatBody("another body"), withKey("reuse-1")));
  assert.equal(e.status, 422);
  assert.equal(e.code, "idempotency_key_reused");
  assert.equal(e.error.idempotent_request_id, rid);
  assert.equal(await c.balanceMc(key.api_key), before);
  assert.equal((await c.mockRequests("openai")).length, 1);
  // Another route with the same body is another request too.
  const r = await c.api("/v1/chat", { key: key.api_key, headers: { "idempotency-key": "reuse-1" }, body: { provider: "openai", ...chatBody("first body") } });
  assert.equal(r.status, 422);
  assert.equal((await r.json()).error.type, "idempotency_key_reused");
});

test("a first call refused before the provider (402, 400) or by it leaves the key usable", async () => {
  const key = await c.createKey({ credits: 0.001 });
  const ai = openai(key);
  const content = "try again later";
  const e = await failure(ai.chat.completions.create(chatBody(content), withKey("later-1")));
  assert.equal(e.status, 402);
  assert.equal(e.code, "insufficient_credits");
  assert.equal((await c.admin("/admin/add-credits", { apiKey: key.id, credits: 10, reason: "top-up for the retry" })).status, 200);
  const ok = await ai.chat.completions.create(chatBody(content), withKey("later-1")).withResponse();
  assert.equal(ok.response.headers.get("idempotent-replayed"), null, "it ran");
  // A 400 (an unknown model) claims nothing either: the key then runs another body, not a 422.
  const bad = await failure(ai.chat.completions.create(chatBody(content, { model: "no-such-model" }), withKey("typo-1")));
  assert.equal(bad.status, 400);
  await ai.chat.completions.create(chatBody(content), withKey("typo-1"));
  // The provider refused (a 500 → 502, nothing charged): once the release has landed, a retry runs.
  await c.mockScript({ provider: "openai", status: 500 });
  const refused = await failure(ai.chat.completions.create(chatBody(content), withKey("flaky-1")));
  assert.equal(refused.status, 502);
  const [released] = await c.settled(key.id, refused.headers.get("x-request-id"));
  assert.equal(released.amount, 0);
  const retried = await ai.chat.completions.create(chatBody(content), withKey("flaky-1")).withResponse();
  assert.equal(retried.response.status, 200);
  assert.equal(retried.response.headers.get("idempotent-replayed"), null);
  // A bad key value is a 400 naming the header.
  const r = await c.api("/v1/chat/completions", { key: key.api_key, headers: { "idempotency-key": "has spaces" }, body: chatBody(content) });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /Idempotency-Key/);
});

test("a streamed first call: the retry gets 409 naming its request id and its charge", async () => {
  const key = await c.createKey({ credits: 10 });
  const ai = openai(key);
  const content = "stream me";
  const body = chatBody(content, { stream: true, stream_options: { include_usage: true } });
  const { data: stream, response } = await ai.chat.completions.create(body, withKey("stream-1")).withResponse();
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  assert.ok(text.length > 0);
  const rid = response.headers.get("x-request-id");
  await c.settled(key.id, rid);
  const want = expectedMc(mockInput(content), 24);
  const e = await failure(ai.chat.completions.create(body, withKey("stream-1")));
  assert.equal(e.status, 409);
  assert.equal(e.code, "idempotency_key_used");
  assert.equal(e.error.idempotent_request_id, rid);
  assert.equal(e.error.credits_charged, want / 1000);
  assert.match(e.message, new RegExp(`${rid}.*charged ${want / 1000} credits`));
  // The bill it names is the call's.
  const b = await (await c.api(`/v1/requests/${rid}`, { key: key.api_key })).json();
  assert.deepEqual([b.status, b.charged_mc], ["settled", want]);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - want);
});

// ---- The spending cap

test("a cap on a call without max_tokens: the output cap is reduced to fit, hold and charge under the cap", async () => {
  const key = await c.createKey({ credits: 10 });
  const ai = openai(key);
  const content = "keep it cheap";
  const body = { model: "gpt-4o-mini", messages: [{ role: "user", content }] };
  // One millicredit above the prompt's bound leaves room for ⌊1 mc ÷ 0.108 mc⌋ = 9 output tokens.
  const capMc = promptBoundMc(body) + 1;
  const res = await ai.chat.completions.create(body, { headers: { "X-Max-Credits": String(capMc / 1000) } }).withResponse();
  const [sent] = (await c.mockRequests("openai")).slice(-1);
  assert.equal(sent.body.max_completion_tokens ?? sent.body.max_tokens, 9, "the forwarded output cap");
  assert.equal(res.data.usage.completion_tokens, 9);
  const [entry] = await c.settled(key.id, res.response.headers.get("x-request-id"));
  assert.equal(entry.hold, promptBoundMc(body) + outputMc(9));
  assert.ok(entry.hold <= capMc);
  assert.equal(-entry.amount, expectedMc(mockInput(content), 9));
  assert.ok(-entry.amount <= capMc);
  // As a body field (taken out before the provider sees it): the same narrowing.
  await ai.chat.completions.create({ ...body, max_credits: capMc / 1000 });
  const [sent2] = (await c.mockRequests("openai")).slice(-1);
  assert.equal(sent2.body.max_credits, undefined, "never forwarded");
  assert.ok((sent2.body.max_completion_tokens ?? sent2.body.max_tokens) <= 9 + 1);
});

test("a usage above the bound is charged at most the cap", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = chatBody("lie about usage");
  const capMc = promptBoundMc(body) + outputMc(24) + 5;
  // The provider reports 100,000 output tokens for a call capped at 24: far above the hold.
  await c.mockScript({ provider: "openai", usage: { completion_tokens: 100_000 } });
  const res = await openai(key).chat.completions.create(body, { headers: { "X-Max-Credits": String(capMc / 1000) } }).withResponse();
  const [entry] = await c.settled(key.id, res.response.headers.get("x-request-id"));
  assert.equal(-entry.amount, capMc, "the cap, not the 10.8 credits the usage came to");
  assert.deepEqual(entry.max_credits, { max_mc: capMc, usage_mc: expectedMc(mockInput("lie about usage"), 100_000) });
  assert.equal(await c.balanceMc(key.api_key), 10_000 - capMc);
});

test("a cap below a call's fixed hold (max_tokens given) is a 402 over_max_credits, nothing held", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = chatBody("too dear", { max_tokens: 1000 });
  const need = mcOfPico(BigInt(Buffer.byteLength(JSON.stringify(body)) + 1024) * MINI[0] + 1000n * MINI[1]);
  const e = await failure(openai(key).chat.completions.create(body, { headers: { "X-Max-Credits": "0.01" } }));
  assert.equal(e.status, 402);
  assert.equal(e.code, "over_max_credits");
  assert.equal(e.error.credits_required, need / 1000);
  assert.equal(e.error.max_credits, 0.01);
  assert.equal(await c.balanceMc(key.api_key), 10_000);
  assert.equal((await c.mockRequests()).length, 0, "nothing reached a provider");
  // The Anthropic SDK gets the same refusal in its shape; a bad cap is a 400 naming it.
  const a = await failure(anthropic(key).messages.create({ model: "claude-haiku-4-5", max_tokens: 4096, messages: [{ role: "user", content: "x" }] }, { headers: { "X-Max-Credits": "0.001" } }));
  assert.equal(a.status, 402);
  assert.match(a.message, /above its cap of 0.001 credits/);
  const bad = await failure(openai(key).chat.completions.create(body, { headers: { "X-Max-Credits": "-1" } }));
  assert.equal(bad.status, 400);
  assert.match(bad.message, /X-Max-Credits/);
  assert.equal(await c.balanceMc(key.api_key), 10_000);
});

test("a quote with a cap is the hold admission then takes", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "quote under a cap" }] };
  const capMc = promptBoundMc(body) + 50;
  const quote = async (headers, extra = {}) => {
    const r = await c.api("/v1/quote", { key: key.api_key, headers, body: { route: "/v1/chat/completions", body, ...extra } });
    assert.equal(r.status, 200);
    return r.json();
  };
  const q = await quote({ "x-max-credits": String(capMc / 1000) });
  // ⌊50 mc ÷ 0.108 mc⌋ = 462 output tokens, ⌈49.896⌉ = 50 mc.
  assert.deepEqual([q.admitted, q.output_cap, q.hold_mc, q.max_credits_mc], [true, 462, promptBoundMc(body) + outputMc(462), capMc]);
  assert.deepEqual((({ hold_mc, output_cap }) => ({ hold_mc, output_cap }))(await quote({}, { max_credits: capMc / 1000 })), { hold_mc: q.hold_mc, output_cap: 462 });
  const res = await openai(key).chat.completions.create(body, { headers: { "X-Max-Credits": String(capMc / 1000) } }).withResponse();
  const [entry] = await c.settled(key.id, res.response.headers.get("x-request-id"));
  assert.equal(entry.hold, q.hold_mc);
  const [sent] = (await c.mockRequests("openai")).slice(-1);
  assert.equal(sent.body.max_completion_tokens ?? sent.body.max_tokens, q.output_cap);
  // A cap the call cannot fit under is quoted as its refusal.
  const no = await quote({ "x-max-credits": "0.001" });
  assert.deepEqual([no.admitted, no.hold_mc, no.refusal], [false, null, "over_max_credits"]);
});

test("an image call: replayed once done, and refused over its cap (a fixed hold)", async () => {
  const key = await c.createKey({ credits: 100 });
  const ai = openai(key);
  const body = { model: "gpt-image-2", prompt: "A lighthouse at dusk", size: "1024x1024", quality: "low" };
  const first = await ai.images.generate(body, withKey("img-1")).withResponse();
  const rid = first.response.headers.get("x-request-id");
  await c.settled(key.id, rid);
  const after = await c.balanceMc(key.api_key);
  const again = await ai.images.generate(body, withKey("img-1")).withResponse();
  assert.deepEqual([again.response.headers.get("idempotent-replayed"), again.response.headers.get("x-request-id")], ["true", rid]);
  assert.deepEqual(again.data, first.data);
  assert.equal(await c.balanceMc(key.api_key), after);
  assert.equal((await c.mockRequests("openai-images")).length, 1);
  const e = await failure(ai.images.generate(body, { headers: { "X-Max-Credits": "0.001" } }));
  assert.equal(e.status, 402);
  assert.equal(e.code, "over_max_credits");
  assert.equal(e.error.credits_required, (await c.settled(key.id, rid)).find((x) => x.type === "call").hold / 1000, "the image's fixed hold");
  assert.equal(await c.balanceMc(key.api_key), after);
});

// ---- Still one blocking Redis round trip before the provider

test("with both controls, a call makes one Redis round trip before the provider, and a replay one in all", async () => {
  const key = await c.createKey({ credits: 10 });
  const ai = openai(key);
  const controls = withKey("one-trip", { "X-Max-Credits": "1" });
  // admit_v6 and settle_v6 loaded, and the warm-up's settlement landed before the count starts.
  // Admission and settlement (a key without an armed low-balance watcher makes no third
  // request): waits for both, so that no call's commands leak into the next count.
  const commands = async (n) => waitFor(async () => (await c.frontStats()).log.filter((e) => !e.commands.includes("LRANGE")).length >= n, { what: `${n} commands at the front` });
  await c.frontReset();
  const warm = await ai.chat.completions.create(chatBody("warm the scripts"), withKey("warm-up")).withResponse();
  await c.settled(key.id, warm.response.headers.get("x-request-id"));
  await commands(2);
  await c.mockScript({ provider: "openai", gate: true });
  await c.frontReset();
  const first = ai.chat.completions.create(chatBody("one trip"), controls).withResponse();
  await waitFor(async () => (await held()) === 1, { what: "the call at the provider" });
  const before = await c.frontStats();
  assert.equal(before.requests, 1, JSON.stringify(before.log));
  assert.deepEqual(before.log[0].commands, ["EVALSHA"], "the admission script, nothing else");
  await release();
  const done = await first;
  await c.settled(key.id, done.response.headers.get("x-request-id"));
  await commands(2);
  await c.frontReset();
  const replay = await ai.chat.completions.create(chatBody("one trip"), controls).withResponse();
  assert.equal(replay.response.headers.get("idempotent-replayed"), "true");
  assert.equal((await c.frontStats()).requests, 1, "a replay is answered by the admission round trip alone");
});
