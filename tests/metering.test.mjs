// Metered chat against the real worker (workerd), real redis-server behind the Upstash front,
// and the provider mocks: exact charges, holds, refunds, limits, streams, official SDKs.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { useStack, requestIds, assertServedAtMost } from "./lib/stack-client.mjs";

const { stack, c } = await useStack();

// List prices (micro-USD per 1M tokens, from shared/prices/REFERENCE.md), restated here so the
// test checks the worker's table instead of trusting it.
const PRICES = {
  "gpt-4o-mini": [150_000n, 600_000n],
  "claude-haiku-4-5": [1_000_000n, 5_000_000n],
  "gemini-3.5-flash": [1_500_000n, 9_000_000n],
};
const PROVIDER_OF = { "gpt-4o-mini": "openai", "claude-haiku-4-5": "anthropic", "gemini-3.5-flash": "google" };

/** credits = usd × 1.8 / 0.01, in millicredits, rounded up: pico-USD × 18 / 1e8. */
function expectedMc(model, inTok, outTok) {
  const [pin, pout] = PRICES[model];
  const pico = BigInt(inTok) * pin + BigInt(outTok) * pout;
  return Number((pico * 18n + 99_999_999n) / 100_000_000n);
}

/** The mock's documented usage rule: 3 + Σ(ceil(chars/4) + 4); output min(max_tokens, 24). */
function mockUsage(texts, maxTokens) {
  const input = 3 + texts.reduce((s, t) => s + Math.ceil([...t].length / 4) + 4, 0);
  return { input, output: Math.min(maxTokens ?? 24, 24) };
}

const mcToCredits = (mc) => mc / 1000;

async function sseEvents(res) {
  const text = await res.text();
  return text.split(/\r?\n\r?\n/).map((e) => e.split(/\r?\n/).find((l) => l.startsWith("data: "))?.slice(6))
    .filter((d) => d && d !== "[DONE]").map((d) => JSON.parse(d));
}

for (const model of Object.keys(PRICES)) {
  for (const stream of [false, true]) {
    test(`${model} ${stream ? "stream" : "plain"} on /v1/chat is charged exactly the mock's usage`, async () => {
      const key = await c.createKey({ credits: 10 });
      const content = `What is ${model}? ${stream ? "streaming" : "plain"}`;
      const res = await c.api("/v1/chat", {
        key: key.api_key,
        body: { provider: PROVIDER_OF[model], model, stream, max_tokens: 20, messages: [{ role: "user", content }] },
      });
      assert.equal(res.status, 200);
      const rid = res.headers.get("x-request-id");
      assert.match(rid, /^req_/);
      assert.ok(res.headers.get("ratelimit-policy"));
      const u = mockUsage([content], 20);
      const want = expectedMc(model, u.input, u.output);
      let reported;
      if (stream) {
        assert.match(res.headers.get("content-type"), /text\/event-stream/);
        // The charge is only known at the end: the head says it is pending, and what is held.
        assert.equal(res.headers.get("x-credits-charged"), "pending");
        const evs = await sseEvents(res);
        const done = evs.at(-1);
        assert.equal(done.type, "done");
        assert.equal(done.usage.input_tokens, u.input);
        assert.equal(done.usage.output_tokens, u.output);
        assert.equal(evs.filter((e) => e.type === "delta").length, u.output);
        reported = done.credits_charged;
      } else {
        const body = await res.json();
        assert.equal(body.usage.output_tokens, u.output);
        assert.equal(body.request_id, rid);
        assert.equal(res.headers.get("x-credits-charged"), String(mcToCredits(want)));
        reported = body.credits_charged;
      }
      assert.equal(reported, mcToCredits(want));
      const entries = await c.settled(key.id, rid);
      const charge = entries.find((e) => e.type === "call");
      assert.equal(charge.amount, -want);
      assert.equal(charge.exact, true);
      assert.ok(charge.hold >= want, "the hold covered the charge");
      if (stream) {
        assert.equal(res.headers.get("x-credits-held"), String(mcToCredits(charge.hold)));
        assert.equal(res.headers.get("x-credits-remaining"), String(mcToCredits(10_000 - charge.hold)));
      }
      assert.equal(await c.balanceMc(key.api_key), 10_000 - want);
    });
  }
}

test("openai SDK: plain and streaming through /v1/chat/completions, for all three providers", async () => {
  const key = await c.createKey({ credits: 50 });
  const ids = requestIds(); // the head's X-Request-Id of the SDK's last call
  const openai = new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0, fetch: ids.fetch });
  let spent = 0;
  for (const [model, bare] of [["gpt-4o-mini", "gpt-4o-mini"], ["anthropic/claude-haiku-4-5", "claude-haiku-4-5"], ["google/gemini-3.5-flash", "gemini-3.5-flash"]]) {
    const content = `hello ${model}`;
    const plain = await openai.chat.completions.create({ model, max_tokens: 12, messages: [{ role: "user", content }] });
    const u = mockUsage([content], 12);
    assert.equal(plain.usage.prompt_tokens, u.input, model);
    assert.equal(plain.usage.completion_tokens, u.output, model);
    assert.equal(plain.choices[0].message.content.split(" ").length, 12);
    spent += expectedMc(bare, u.input, u.output);

    const stream = await openai.chat.completions.create({
      model, max_tokens: 7, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content }],
    });
    let text = "";
    let usage = null;
    let broker = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) { usage = chunk.usage; broker = chunk.x_broker; }
    }
    assert.equal(text.split(" ").length, 7, model);
    assert.equal(usage.completion_tokens, 7);
    const want = expectedMc(bare, u.input, 7);
    if (model === bare) {
      // OpenAI's own stream, as OpenAI sent it: the charge is the call's bill.
      assert.equal(broker, undefined);
      const entry = (await c.settled(key.id, ids.last)).find((e) => e.type === "call");
      assert.equal(-entry.amount, want, model);
    } else {
      assert.equal(broker.credits_charged, mcToCredits(want), model);
      assert.equal(broker.request_id, ids.last);
    }
    spent += want;
  }
  // Settlement runs after each response; wait until the balance stops moving.
  let bal;
  for (let i = 0; i < 100; i++) {
    bal = await c.balanceMc(key.api_key);
    if (bal === 50_000 - spent) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(bal, 50_000 - spent);
});

test("openai SDK stream without include_usage never shows an empty-choices chunk", async () => {
  const key = await c.createKey({ credits: 5 });
  const openai = new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0 });
  const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", max_tokens: 4, stream: true, messages: [{ role: "user", content: "hi" }] });
  let n = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.choices.length, 1); // a client indexing choices[0] does not crash
    n++;
  }
  assert.ok(n >= 4);
  // ... and the call is still billed: the gateway asked the provider for usage itself.
  const sent = await c.mockRequests("openai");
  assert.equal(sent.at(-1).body.stream_options.include_usage, true);
});

test("anthropic SDK: plain and streaming through /v1/messages", async () => {
  const key = await c.createKey({ credits: 20 });
  const anthropic = new Anthropic({ baseURL: stack.workerUrl, apiKey: key.api_key, maxRetries: 0 });
  const content = "hello claude";
  const msg = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: [{ role: "user", content }] });
  const u = mockUsage([content], 9);
  assert.equal(msg.usage.input_tokens, u.input);
  assert.equal(msg.usage.output_tokens, 9);
  const s = anthropic.messages.stream({ model: "claude-haiku-4-5", max_tokens: 5, messages: [{ role: "user", content }] });
  const final = await s.finalMessage();
  assert.equal(final.usage.output_tokens, 5);
  assert.equal(final.content[0].text.split(" ").length, 5);
  const want = expectedMc("claude-haiku-4-5", u.input, 9) + expectedMc("claude-haiku-4-5", u.input, 5);
  let bal;
  for (let i = 0; i < 100 && bal !== 20_000 - want; i++) {
    bal = await c.balanceMc(key.api_key);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(bal, 20_000 - want);
  // The provider got the gateway's key, never the customer's.
  const sent = await c.mockRequests("anthropic");
  assert.equal(sent.length, 2);
  for (const r of sent) {
    assert.equal(r.headers["x-api-key"], "sk-ant-mock");
    assert.ok(!JSON.stringify(r).includes(key.api_key));
  }
});

test("200 concurrent calls on a balance that covers 10 serve at most 10 and never overdraw", async () => {
  // Measure one call's hold from a probe key's ledger, then fund exactly 10 holds (+ change).
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content: "concurrency" }] };
  const probe = await c.createKey({ credits: 10 });
  const pr = await c.api("/v1/chat", { key: probe.api_key, body });
  assert.equal(pr.status, 200);
  const hold = (await c.settled(probe.id, pr.headers.get("x-request-id"))).find((e) => e.type === "call").hold;
  const credits = (hold * 10 + Math.floor(hold / 2)) / 1000;
  const key = await c.createKey({ credits });
  // Every admitted call stays in flight while the others are admitted.
  const results = await c.burstHeld("openai", 200, () => c.api("/v1/chat", { key: key.api_key, body }));
  const ok = assertServedAtMost(results, 10);
  const refused = results.filter((r) => r.status === 402);
  assert.equal(ok + refused.length, 200, JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 402)));
  assert.equal(refused[0].body.error.type, "insufficient_credits");
  // After every settlement (no hold left open): balance = funded − charges, never negative.
  let entries;
  for (let i = 0; i < 200; i++) {
    entries = await c.ledger(key.id);
    if (entries.filter((e) => e.type === "call").length >= ok && (await c.redis("HGET", `abk:key:${key.id}`, "held")) === "0") break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(entries.every((e) => e.balance_mc >= 0), "a ledger step went below zero");
  const charges = entries.filter((e) => e.type === "call");
  assert.equal(charges.length, ok, "one ledger entry per served call");
  const bal = await c.balanceMc(key.api_key);
  assert.equal(bal, entries.reduce((s, e) => s + e.amount_mc, 0));
  assert.ok(bal >= 0);
});

test("a stream cut by the client is still billed for the provider's full usage", async () => {
  const key = await c.createKey({ credits: 10 });
  // The whole stream (24 chunks, 30 ms apart) ends well within the client-gone deadline.
  await c.mockScript({ provider: "openai", chunk_delay_ms: 30 });
  const ac = new AbortController();
  const content = "cut me off";
  const res = await c.api("/v1/chat", {
    key: key.api_key, signal: ac.signal,
    body: { provider: "openai", model: "gpt-4o-mini", stream: true, max_tokens: 24, messages: [{ role: "user", content }] },
  });
  assert.equal(res.status, 200);
  const rid = res.headers.get("x-request-id");
  const reader = res.body.getReader();
  await reader.read();
  ac.abort();
  const u = mockUsage([content], 24);
  const entries = await c.settled(key.id, rid, 15000);
  const charge = entries.find((e) => e.type === "call");
  assert.equal(charge.units.usage.output, 24);
  assert.equal(charge.amount, -expectedMc("gpt-4o-mini", u.input, 24));
  assert.equal(charge.exact, true);
  assert.match(charge.note, /client left/);
});

test("a provider stream that breaks before usage is billed the upper bound and says so", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "anthropic", cut_after_chunks: 6 });
  const res = await c.api("/v1/chat", {
    key: key.api_key,
    body: { provider: "anthropic", model: "claude-haiku-4-5", stream: true, max_tokens: 20, messages: [{ role: "user", content: "x" }] },
  });
  const evs = await sseEvents(res);
  assert.ok(evs.some((e) => e.type === "error" && /ended early/.test(e.error.message)));
  const entries = await c.settled(key.id, res.headers.get("x-request-id"));
  const charge = entries.find((e) => e.type === "call");
  // message_start reported the prompt; the output it never reported is bounded by max_tokens.
  assert.equal(charge.exact, false);
  assert.equal(charge.units.usage.output, 20);
  assert.equal(charge.amount, -expectedMc("claude-haiku-4-5", mockUsage(["x"], 20).input, 20));
  assert.match(charge.note, /never reported: billed the upper bound/);
});

test("provider 500: 502, the hold released in full; no answer head in time: 504, the hold charged", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 10, messages: [{ role: "user", content: "fail" }] };
  await c.mockScript({ provider: "openai", status: 500 });
  const r500 = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(r500.status, 502);
  const e500 = await r500.json();
  assert.equal(e500.error.type, "upstream_error");
  const released = await c.settled(key.id, r500.headers.get("x-request-id"));
  assert.deepEqual(released.map((e) => [e.type, e.amount]), [["call", 0]]);
  assert.match(released[0].note, /not served/);
  // The request reached the provider, which may have done the work: the hold is charged.
  await c.mockScript({ provider: "openai", delay_ms: 8000 });
  const rTimeout = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(rTimeout.status, 504);
  const err = (await rTimeout.json()).error;
  const [entry] = await c.settled(key.id, rTimeout.headers.get("x-request-id"));
  assert.ok(entry.hold > 0);
  assert.deepEqual([entry.type, entry.amount, entry.exact], ["call", -entry.hold, false]);
  assert.match(entry.note, /did not answer within 6000 ms: charged the hold/);
  assert.equal(err.credits_charged * 1000, entry.hold, "the error says what was charged");
  assert.equal(await c.balanceMc(key.api_key), 10_000 - entry.hold);
});

test("unknown and retired models are refused with 400 before any Redis call", async () => {
  const key = await c.createKey({ credits: 1 });
  await c.frontReset();
  const r = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-9-imaginary", messages: [{ role: "user", content: "x" }] } });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.type, "unknown_model");
  const retired = await c.api("/v1/chat/completions", { key: key.api_key, body: { model: "anthropic/claude-3-5-sonnet-20241022", messages: [{ role: "user", content: "x" }] } });
  assert.equal(retired.status, 400);
  const body = await retired.json();
  assert.match(body.error.message, /retired .* 2025-10-28/);
  assert.equal((await c.frontStats()).requests, 0);
  assert.equal(await c.balanceMc(key.api_key), 1000);
});

test("bad keys get 401, and guessing is throttled per client address", async () => {
  const body = { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] };
  const none = await c.api("/v1/chat", { body });
  assert.equal(none.status, 401);
  for (let i = 0; i < 5; i++) {
    const r = await c.api("/v1/chat", { key: `sk-broker-guess${i}`, body });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.type, "unauthorized");
  }
  const sixth = await c.api("/v1/chat", { key: "sk-broker-guess6", body });
  assert.equal(sixth.status, 429);
  assert.ok(Number(sixth.headers.get("retry-after")) > 0);
  await c.resetIpLimits();
  // The read routes count against the same window: they cannot be used to guess keys either.
  for (let i = 0; i < 5; i++) assert.equal((await c.api("/v1/balance", { key: `sk-broker-read${i}` })).status, 401);
  assert.equal((await c.api("/v1/usage", { key: "sk-broker-read6" })).status, 429);
  await c.resetIpLimits();
});

test("the free plan's 10 calls an hour: the 11th is 429 with Retry-After and RateLimit headers", async () => {
  const key = await c.createKey({ plan: "free", credits: 10 });
  const body = { provider: "google", model: "gemini-3.5-flash", max_tokens: 2, messages: [{ role: "user", content: "x" }] };
  let last;
  for (let i = 0; i < 10; i++) {
    last = await c.api("/v1/chat", { key: key.api_key, body });
    assert.equal(last.status, 200);
  }
  assert.equal(last.headers.get("x-ratelimit-remaining"), "0");
  assert.equal(last.headers.get("ratelimit-policy"), '"ai";q=10');
  const r = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(r.status, 429);
  const retry = Number(r.headers.get("retry-after"));
  assert.ok(retry > 3500 && retry <= 3600, `retry-after ${retry}`);
  assert.match(r.headers.get("ratelimit"), /^"ai";r=0;t=\d+$/);
  assert.equal(r.headers.get("x-ratelimit-limit"), "10");
  assert.equal((await r.json()).error.type, "rate_limited");
});

test("402 says how much the call needs; without max_tokens the gateway sends what the balance covers", async () => {
  const key = await c.createKey({ credits: 0.05 });
  const big = await c.api("/v1/chat", { key: key.api_key, body: { provider: "anthropic", model: "claude-haiku-4-5", max_tokens: 64000, messages: [{ role: "user", content: "x" }] } });
  assert.equal(big.status, 402);
  const e = (await big.json()).error;
  assert.equal(e.type, "insufficient_credits");
  assert.ok(e.credits_required > 0.05);
  assert.match(e.message, /up to [\d.]+ credits/);
  // No max_tokens: gpt-4o-mini's cap is 16384, far beyond 0.05 credits; the gateway picks less.
  const r = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] } });
  assert.equal(r.status, 200);
  const sent = (await c.mockRequests("openai")).at(-1).body.max_completion_tokens;
  assert.ok(sent > 0 && sent < 16384, `max_completion_tokens ${sent}`);
  await c.settled(key.id, r.headers.get("x-request-id"));
  assert.ok((await c.balanceMc(key.api_key)) >= 0);
});

test("exactly one Upstash round trip before the response; settlement after it", async () => {
  const key = await c.createKey({ credits: 10 });
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "rt" }] };
  // A key with no armed low-balance watcher (docs/accounts.md) makes no third request: the
  // settlement's reply says whether one is armed. Waits for the n commands, then a second more,
  // so that a late third one would be counted, and no call's commands leak into the next count.
  const worker = async (n) => {
    for (let i = 0; i < 200; i++) {
      const { log } = await c.frontStats();
      const mine = log.filter((e) => !e.commands.includes("LRANGE"));
      if (mine.length >= n) {
        await new Promise((r) => setTimeout(r, 1000));
        const later = (await c.frontStats()).log;
        return { log: later, mine: later.filter((e) => !e.commands.includes("LRANGE")) };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`fewer than ${n} commands reached the front`);
  };
  // Warm: the script is cached in Redis (EVALSHA hits), as in steady state.
  await c.frontReset();
  await c.settled(key.id, (await c.api("/v1/chat", { key: key.api_key, body })).headers.get("x-request-id"));
  await worker(2);
  // Emulate a distant region so "before" and "after" are far apart in time (1 s: the client's
  // head may come a few hundred ms late on a loaded machine; half of it is the margin below).
  await c.frontDelay(1000);
  try {
    for (const stream of [false, true]) {
      await c.frontReset();
      const res = await c.api("/v1/chat", { key: key.api_key, body: { ...body, stream } });
      const headersAt = Date.now();
      await res.arrayBuffer();
      await c.settled(key.id, res.headers.get("x-request-id"));
      const { log, mine } = await worker(2);
      // A request on the client's path started at least the emulated distance before the head
      // arrived; settlement starts only once the provider has answered, just before the head.
      const before = log.filter((e) => e.received_ms <= headersAt - 500 && !e.commands.includes("LRANGE"));
      assert.equal(before.length, 1, `stream=${stream}: ${JSON.stringify(log)}`);
      assert.deepEqual(before[0].commands, ["EVALSHA"]);
      assert.equal(mine.length, 2, `admission + settlement, nothing else: ${JSON.stringify(mine)}`);
    }
  } finally {
    await c.frontDelay(0);
  }
});

test("bad inputs get clear JSON errors, never a 500", async () => {
  const key = await c.createKey({ credits: 1 });
  const cases = [
    ["/v1/chat", "not json", 400],
    ["/v1/chat", { provider: "openai", model: "gpt-4o-mini" }, 400],
    ["/v1/chat", { provider: "openai", model: "gpt-4o-mini", max_tokens: 999999, messages: [{ role: "user", content: "x" }] }, 400],
    ["/v1/chat/completions", { model: "gpt-4o-mini", n: 3, messages: [{ role: "user", content: "x" }] }, 400],
    ["/v1/messages", { model: "claude-haiku-4-5", messages: [{ role: "user", content: "x" }] }, 400],
    ["/v1/chat", "x".repeat(1_100_000), 413],
  ];
  for (const [path, body, status] of cases) {
    const r = await c.api(path, { key: key.api_key, body });
    assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 80)}`);
    const j = await r.json();
    assert.ok(j.error && j.error.message, JSON.stringify(j));
  }
  const nf = await c.api("/v1/nope");
  assert.equal(nf.status, 404);
  const m = await c.api("/v1/chat", { key: key.api_key, method: "GET" });
  assert.equal(m.status, 405);
  assert.equal(await c.balanceMc(key.api_key), 1000);
});

test("GET /v1/models lists every priced model with credits per million tokens", async () => {
  const r = await c.api("/v1/models");
  assert.equal(r.status, 200);
  const { data } = await r.json();
  const mini = data.find((m) => m.id === "openai/gpt-4o-mini");
  assert.equal(mini.credits_per_million_tokens.input, 27); // $0.15 × 1.8 / 0.01
  assert.equal(mini.credits_per_million_tokens.output, 108);
  assert.ok(data.some((m) => m.id === "anthropic/claude-haiku-4-5"));
  assert.ok(!data.some((m) => m.model === "claude-3-5-sonnet-20241022"));
});

test("a plain call whose client hangs up mid-call is still settled (no hold left open)", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "openai", gate: true }); // answers only after the hang-up
  const ac = new AbortController();
  const content = "hang up";
  const pending = c.api("/v1/chat", {
    key: key.api_key, signal: ac.signal,
    body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }] },
  }).catch((e) => e);
  // Wait until the call is admitted (its hold is open), then hang up.
  let rid;
  for (let i = 0; i < 100 && !rid; i++) {
    [rid] = await c.redis("ZRANGE", "abk:open_holds", 0, -1);
    if (!rid) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(rid, "the call was admitted");
  assert.equal((await (await c.api("/v1/balance", { key: key.api_key })).json()).held_millicredits > 0, true, "/v1/balance shows the open hold");
  ac.abort();
  await pending;
  await c.mockRelease();
  const entries = await c.settled(key.id, rid, 15000);
  const charge = entries.find((e) => e.type === "call");
  const u = mockUsage([content], 24);
  assert.equal(charge.amount, -expectedMc("gpt-4o-mini", u.input, 24), "billed what the provider served");
  assert.equal(await c.balanceMc(key.api_key), 10_000 + charge.amount);
});

test("the sweeper charges the hold of a call whose settlement has not come; its late settlement corrects it once", async () => {
  const key = await c.createKey({ credits: 10 });
  // A call still in flight after HOLD_SWEEP_AFTER_SECS (2 s in tests) looks lost to the sweeper:
  // it waits at the mock's gate until the sweeper has charged its hold.
  await c.mockScript({ provider: "openai", gate: true });
  const content = "slow and swept";
  const pending = c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }] } });
  let rid;
  for (let i = 0; i < 100 && !rid; i++) {
    [rid] = await c.redis("ZRANGE", "abk:open_holds", 0, -1);
    if (!rid) await new Promise((r) => setTimeout(r, 20));
  }
  // Run the sweeper until the hold is old enough for it (2 s).
  let swept;
  for (let i = 0; i < 60 && !swept; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const sweep = await fetch(`${stack.workerUrl}/__scheduled?cron=*/10+*+*+*+*`);
    assert.equal(sweep.status, 200);
    swept = (await c.ledger(key.id)).find((e) => e.ref === rid);
  }
  assert.equal(swept.type, "call");
  assert.equal(swept.amount_mc, -swept.hold, "the hold, the proven upper bound, is charged");
  assert.equal(swept.exact, false);
  assert.match(swept.note, /charged the hold/);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - swept.hold);
  // The call finishes and settles exactly: the difference comes back, once.
  await c.mockRelease();
  const res = await pending;
  assert.equal(res.status, 200);
  const want = expectedMc("gpt-4o-mini", mockUsage([content], 24).input, 24);
  let correction;
  for (let i = 0; i < 200 && !correction; i++) {
    correction = (await c.ledger(key.id)).find((e) => e.ref === rid && e.type === "correction");
    if (!correction) await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(correction.amount_mc, swept.hold - want);
  assert.equal(await c.balanceMc(key.api_key), 10_000 - want);
  // A second sweep finds nothing to do.
  await fetch(`${stack.workerUrl}/__scheduled?cron=*/10+*+*+*+*`);
  const entries = await c.ledger(key.id);
  assert.equal(entries.filter((e) => e.ref === rid).length, 2);
  assert.equal(entries.reduce((s, e) => s + e.amount_mc, 0), 10_000 - want);
});
