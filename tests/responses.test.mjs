// POST /v1/responses end to end through the worker, with the official OpenAI SDK: plain and
// streamed answers on an OpenAI, an Anthropic and a Gemini model, a tool loop (function_call →
// function_call_output → answer) on each, each call charged exactly list price × the mock's usage;
// what each provider was sent; the refusals (state, per-call-priced tools, unknown fields, size,
// unpriced models) are clear 400s/413s that hold nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { useStack, PRICE_DATE, requestIds } from "./lib/stack-client.mjs";
import { parseSSE } from "./lib/mocks.mjs";

const { stack, c } = await useStack();

// List prices (micro-USD per 1M tokens, shared/prices/REFERENCE.md), restated so the test checks
// the worker's table, on the test stacks' price day. Gemini 3.8 Flash doubles on 2027-01-01.
const G38 = PRICE_DATE >= "2027-01-01" ? [1_500_000n, 7_500_000n] : [750_000n, 3_750_000n];
const PRICES = {
  "gpt-4o-mini": [150_000n, 600_000n],
  "claude-haiku-4-5": [1_000_000n, 5_000_000n],
  "gemini-3.8-flash": G38,
};
const bare = (model) => model.split("/").at(-1);
/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once: pico-USD × 18 / 1e8. */
function expectedMc(model, inTok, outTok) {
  const [pin, pout] = PRICES[bare(model)];
  return Number(((BigInt(inTok) * pin + BigInt(outTok) * pout) * 18n + 99_999_999n) / 100_000_000n);
}
/** The mocks' input rule (every provider's mock): 3 + Σ (⌈chars/4⌉ + 4) over the texts. */
const mockInput = (...texts) => 3 + texts.reduce((n, t) => n + Math.ceil([...t].length / 4) + 4, 0);
const REPLY = "Mock reply from the deterministic provider simulator: every word here is one output token, so usage counts are easy to check in all tests.";

const MODELS = ["gpt-4o-mini", "anthropic/claude-haiku-4-5", "google/gemini-3.8-flash"];
const WEATHER = { type: "function", name: "get_weather", description: "Current weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } };

/** The `X-Request-Id` of the last answer an SDK client below received (its head, streams too). */
const ids = requestIds();
const openaiClient = (key) => new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0, fetch: ids.fetch });

/** A call's bill once settled, as `x_broker` shows a charge: OpenAI's own stream carries none. */
async function billOf(apiKey, requestId) {
  for (let i = 0; i < 200; i++) {
    const b = await (await c.api(`/v1/requests/${requestId}`, { key: apiKey, method: "GET" })).json();
    if (b.status === "settled") return { request_id: requestId, credits_charged: b.charged_mc / 1000 };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${requestId} was not settled`);
}

/** The call's ledger entry: charged exactly `want`, never above its hold. */
async function assertCharged(key, requestId, want) {
  const entry = (await c.settled(key.id, requestId)).find((e) => e.type === "call");
  assert.equal(entry.amount, -want, `request ${requestId}`);
  assert.equal(entry.exact, true);
  assert.ok(entry.hold >= want, `hold ${entry.hold} covers ${want}`);
  return entry;
}

/** One call through the SDK, plain or streamed: the final response and the credits object
 *  (`x_broker`; for OpenAI's own stream, which comes byte for byte, the call's bill). */
async function ask(openai, body, stream) {
  if (!stream) {
    const r = await openai.responses.create(body);
    assert.equal(r.x_broker.request_id, ids.last);
    return { response: r, broker: r.x_broker, events: [] };
  }
  const s = await openai.responses.create({ ...body, stream: true });
  const events = [];
  for await (const e of s) events.push(e);
  const last = events.at(-1);
  if (body.model.includes("/")) {
    assert.equal(last.x_broker.request_id, ids.last, "a translated stream's last event names the call");
    return { response: last.response, broker: last.x_broker, events };
  }
  assert.equal(last.x_broker, undefined, "OpenAI's own stream comes as OpenAI sent it");
  return { response: last.response, broker: await billOf(openai.apiKey, ids.last), events };
}

for (const stream of [false, true]) {
  test(`a plain question on each provider, ${stream ? "streamed" : "whole"}: the mock's answer, charged list price × its usage`, async () => {
    const key = await c.createKey({ credits: 20 });
    const openai = openaiClient(key);
    for (const model of MODELS) {
      const { response, broker, events } = await ask(openai, { model, input: "Say hi" }, stream);
      assert.equal(response.status, "completed", model);
      assert.equal(response.output.at(-1).type, "message");
      assert.equal(response.output.at(-1).content[0].text, REPLY, model);
      // The mocks' own rule, computed here: "Say hi" is 6 characters; the reply is 24 words.
      assert.equal(response.usage.input_tokens, mockInput("Say hi"), model);
      assert.equal(response.usage.output_tokens, 24, model);
      const want = expectedMc(model, mockInput("Say hi"), 24);
      assert.equal(Math.round(broker.credits_charged * 1000), want, model);
      await assertCharged(key, broker.request_id, want);
      if (stream) {
        const types = events.map((e) => e.type);
        assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"], model);
        assert.deepEqual(types.slice(-4), ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"], model);
        assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i), model);
        assert.equal(events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), REPLY);
      }
    }
    // What OpenAI was sent: a stream, nothing stored, the output cap admission granted.
    const [oa] = (await c.mockRequests("openai")).slice(-1);
    assert.equal(oa.path, "/openai/v1/responses");
    assert.equal(oa.body.store, false);
    assert.equal(oa.body.stream, true);
    assert.ok(oa.body.max_output_tokens >= 16);
  });

  test(`a tool loop (function_call → function_call_output → answer) on each provider, ${stream ? "streamed" : "whole"}, each turn charged exactly`, async () => {
    const key = await c.createKey({ credits: 20 });
    const openai = openaiClient(key);
    for (const model of MODELS) {
      const input = [{ role: "user", content: `What's the weather in Paris? (${model})` }];
      const first = await ask(openai, { model, instructions: "Use the tools.", input, tools: [WEATHER], max_output_tokens: 300 }, stream);
      const call = first.response.output.find((i) => i.type === "function_call");
      assert.ok(call, `${model}: ${JSON.stringify(first.response.output)}`);
      assert.equal(call.name, "get_weather");
      assert.deepEqual(JSON.parse(call.arguments), { city: "mock" });
      assert.ok(call.call_id);
      if (stream) {
        const deltas = first.events.filter((e) => e.type === "response.function_call_arguments.delta").map((e) => e.delta).join("");
        assert.equal(deltas, call.arguments, model);
        assert.ok(first.events.some((e) => e.type === "response.output_item.added" && e.item.type === "function_call" && e.item.name === "get_weather"));
      }
      const u1 = first.response.usage;
      await assertCharged(key, first.broker.request_id, expectedMc(model, u1.input_tokens, u1.output_tokens));

      input.push(...first.response.output, { type: "function_call_output", call_id: call.call_id, output: JSON.stringify({ temp_c: 18, sky: "clear" }) });
      const second = await ask(openai, { model, instructions: "Use the tools.", input, tools: [WEATHER], max_output_tokens: 300 }, stream);
      const msg = second.response.output.find((i) => i.type === "message");
      assert.equal(msg.content[0].text, REPLY, model);
      assert.ok(!second.response.output.some((i) => i.type === "function_call"));
      const u2 = second.response.usage;
      await assertCharged(key, second.broker.request_id, expectedMc(model, u2.input_tokens, u2.output_tokens));
    }
    // What each provider was sent on the second turn: its own tool-result vocabulary.
    const [oa] = (await c.mockRequests("openai")).slice(-1);
    assert.equal(oa.body.input.at(-1).type, "function_call_output");
    const [an] = (await c.mockRequests("anthropic")).slice(-1);
    assert.equal(an.body.system, "Use the tools.");
    assert.equal(an.body.messages.at(-1).content[0].type, "tool_result");
    assert.equal(an.body.tools[0].input_schema.required[0], "city");
    const [ge] = (await c.mockRequests("gemini")).slice(-1);
    assert.ok(ge.body.contents.at(-2).parts[0].thoughtSignature, "Gemini 3's thought signature came back through the call id");
    assert.deepEqual(ge.body.contents.at(-1).parts[0].functionResponse.response, { temp_c: 18, sky: "clear" });
  });
}

test("a streamed answer's head says the charge is pending; the credits come in response.completed (translated) or the bill (OpenAI's own bytes)", async () => {
  const key = await c.createKey({ credits: 5 });
  for (const model of ["gpt-4o-mini", "anthropic/claude-haiku-4-5"]) {
    const r = await c.api("/v1/responses", { key: key.api_key, body: { model, input: "Say hi", stream: true } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/event-stream/);
    assert.equal(r.headers.get("x-credits-charged"), "pending");
    const events = parseSSE(await r.text());
    assert.ok(events.every((e) => e.event === e.json.type), "named events, as OpenAI sends them");
    assert.ok(!events.some((e) => e.data === "[DONE]"));
    const last = events.at(-1).json;
    assert.equal(last.type, "response.completed");
    const want = expectedMc(model, mockInput("Say hi"), 24);
    const broker = last.x_broker ?? await billOf(key.api_key, r.headers.get("x-request-id"));
    assert.equal(model.includes("/"), "x_broker" in last, "only a translated stream adds x_broker");
    assert.equal(Math.round(broker.credits_charged * 1000), want);
    await assertCharged(key, broker.request_id, want);
  }
});

test("max_output_tokens cuts the answer: status incomplete, charged for what was produced", async () => {
  const key = await c.createKey({ credits: 5 });
  const openai = openaiClient(key);
  for (const model of MODELS) {
    const r = await openai.responses.create({ model, input: "Say hi", max_output_tokens: 16 });
    assert.equal(r.status, "incomplete", model);
    assert.equal(r.incomplete_details.reason, "max_output_tokens");
    assert.equal(r.usage.output_tokens, 16);
    await assertCharged(key, r.x_broker.request_id, expectedMc(model, mockInput("Say hi"), 16));
  }
});

test("refusals are 400s naming the field or tool, an oversized body is a 413, and none holds or charges anything", async () => {
  const key = await c.createKey({ credits: 5 });
  const before = await c.balanceMc(key.api_key);
  const base = { model: "gpt-4o-mini", input: "hi" };
  for (const [body, needle] of [
    [{ ...base, store: true }, "`store: true`"],
    [{ ...base, previous_response_id: "resp_123" }, "`previous_response_id`"],
    [{ ...base, conversation: "conv_1" }, "`conversation`"],
    [{ ...base, background: true }, "`background`"],
    [{ ...base, tools: [{ type: "web_search" }] }, "`web_search`"],
    [{ ...base, tools: [{ type: "code_interpreter", container: { type: "auto" } }] }, "`code_interpreter`"],
    [{ ...base, tools: [{ type: "image_generation" }] }, "`image_generation`"],
    [{ ...base, tools: [{ type: "file_search", vector_store_ids: ["vs_1"] }] }, "`file_search`"],
    [{ ...base, tools: [{ type: "computer_use_preview", display_width: 1024, display_height: 768, environment: "browser" }] }, "`computer_use_preview`"],
    [{ ...base, frobnicate: true }, "`frobnicate`"],
    [{ ...base, include: ["web_search_call.action.sources"] }, "`web_search_call.action.sources`"],
    [{ ...base, model: "gpt-unpriced-9" }, "gpt-unpriced-9"],
    [{ ...base, model: "anthropic/claude-haiku-4-5", tools: [{ type: "custom", name: "apply_patch" }] }, "`custom`"],
    [{ model: "gpt-4o-mini" }, "`input` is required"],
  ]) {
    const r = await c.api("/v1/responses", { key: key.api_key, body });
    const e = await r.json();
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.ok(e.error.message.includes(needle), `${JSON.stringify(body)}: ${e.error.message}`);
    assert.equal(e.error.type, "invalid_request_error", "OpenAI's error shape");
  }
  const big = await c.api("/v1/responses", { key: key.api_key, body: { ...base, input: "x".repeat(2 * 1024 * 1024) } });
  assert.equal(big.status, 413);
  assert.equal((await c.api("/v1/responses", { key: "sk-broker-nope", body: base })).status, 401);
  assert.equal(await c.balanceMc(key.api_key), before, "nothing held or charged");
  assert.equal((await c.mockRequests()).length, 0, "no provider was called");
});

test("Claude's thinking comes back as a reasoning item carrying its signature, and goes back to Claude in the tool loop", async () => {
  const key = await c.createKey({ credits: 20 });
  const openai = openaiClient(key);
  const model = "anthropic/claude-haiku-4-5";
  for (const stream of [false, true]) {
    const input = [{ role: "user", content: `Weather in Paris? ${stream}` }];
    const body = { model, input, tools: [WEATHER], reasoning: { effort: "low" }, max_output_tokens: 4000 };
    const first = await ask(openai, body, stream);
    const [reasoning, call] = first.response.output;
    assert.equal(reasoning.type, "reasoning");
    assert.match(reasoning.summary[0].text, /^Thinking step1/);
    assert.match(reasoning.encrypted_content, /^claude-thinking\.v1:./);
    assert.equal(call.type, "function_call");
    await assertCharged(key, first.broker.request_id, expectedMc(model, first.response.usage.input_tokens, first.response.usage.output_tokens));
    input.push(...first.response.output, { type: "function_call_output", call_id: call.call_id, output: "18C" });
    const second = await ask(openai, { ...body, input }, stream);
    assert.equal(second.response.output.at(-1).content[0].text, REPLY);
    const [sent] = (await c.mockRequests("anthropic")).slice(-1);
    assert.deepEqual(sent.body.thinking, { type: "enabled", budget_tokens: 1024 });
    const turn = sent.body.messages[1].content;
    assert.equal(turn[0].type, "thinking", "the signed thinking comes first in Claude's turn");
    assert.equal(turn[0].signature, reasoning.encrypted_content.slice("claude-thinking.v1:".length));
    assert.equal(turn[0].thinking, reasoning.summary[0].text);
    assert.equal(turn[1].type, "tool_use");
    await assertCharged(key, second.broker.request_id, expectedMc(model, second.response.usage.input_tokens, second.response.usage.output_tokens));
  }
});
