// Chat parity for agents, end to end through the worker: the official SDKs' tool loops on an
// OpenAI, an Anthropic and a Gemini model (plain and streaming), Anthropic tool_use/tool_result on
// /v1/messages, images, structured output, thinking, each call charged exactly from the mock's
// usage and within its hold; bad inputs are clear 400s that hold nothing; 200 concurrent calls
// with images on a balance covering 10 serve at most 10.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { useStack, PRICE_DATE, requestIds, assertServedAtMost } from "./lib/stack-client.mjs";

const { stack, c } = await useStack();

// List prices (micro-USD per 1M tokens, shared/prices/REFERENCE.md), restated so the test checks
// the worker's table. Gemini 3.8 Flash doubles on 2027-01-01 (the stack prices by PRICE_DATE).
const G38 = PRICE_DATE >= "2027-01-01" ? [1_500_000n, 7_500_000n] : [750_000n, 3_750_000n];
const PRICES = {
  "gpt-4o-mini": [150_000n, 600_000n],
  "gpt-5.6-luna": [200_000n, 1_200_000n],
  "claude-haiku-4-5": [1_000_000n, 5_000_000n],
  "claude-sonnet-4-6": [3_000_000n, 15_000_000n],
  "gemini-3.8-flash": G38,
};
const bare = (model) => model.split("/").at(-1);

/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once: pico-USD × 18 / 1e8. */
function expectedMc(model, inTok, outTok) {
  const [pin, pout] = PRICES[bare(model)];
  return Number(((BigInt(inTok) * pin + BigInt(outTok) * pout) * 18n + 99_999_999n) / 100_000_000n);
}

const PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const WEATHER_TOOL = {
  type: "function",
  function: { name: "get_weather", description: "Current weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};
const MODELS = ["gpt-4o-mini", "anthropic/claude-haiku-4-5", "google/gemini-3.8-flash"];

/** The `X-Request-Id` of the last answer an SDK client below received (its head, streams too). */
const ids = requestIds();
const openaiClient = (key) => new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0, fetch: ids.fetch });

/** Tells the mock which usage to report for the next provider call (each provider's own field
 *  names; `output` undefined: the mock's own rule, min(max_tokens, 24) plus 16 when thinking).
 *  The charge is computed from these figures, never from the usage the gateway passes on, so a
 *  bug in translating usage cannot cancel out. */
async function mockReports(input, output) {
  const usage = { prompt_tokens: input, input_tokens: input, promptTokenCount: input };
  if (output !== undefined) Object.assign(usage, { completion_tokens: output, output_tokens: output, candidatesTokenCount: output, thoughtsTokenCount: 0 });
  await c.mockScript({ provider: "*", times: 1, usage });
  return { input, output };
}

/** The usage the client was shown is the mock's (OpenAI's or Anthropic's field names). */
function assertPassedOn(usage, want, label) {
  assert.equal(usage.prompt_tokens ?? usage.input_tokens, want.input, `${label}: input tokens`);
  assert.equal(usage.completion_tokens ?? usage.output_tokens, want.output, `${label}: output tokens`);
}

/** The call's ledger entry: charged exactly `want`, never above its hold. */
async function assertCharged(key, requestId, want) {
  const entry = (await c.settled(key.id, requestId)).find((e) => e.type === "call");
  assert.equal(entry.amount, -want, `request ${requestId}`);
  assert.equal(entry.exact, true);
  assert.ok(entry.hold >= want, `hold ${entry.hold} covers ${want}`);
  return entry;
}

/** One turn through the OpenAI SDK, plain or with its stream helper: the assistant message,
 *  finish reason, usage and the request id. A stream in OpenAI's own format is OpenAI's bytes
 *  (no `x_broker`: the head's `X-Request-Id` names its bill); a translated one carries
 *  `x_broker` in its usage chunk. */
async function turn(openai, body, stream) {
  if (!stream) {
    const r = await openai.chat.completions.create(body);
    assert.equal(r.x_broker.request_id, ids.last);
    return { message: r.choices[0].message, finish: r.choices[0].finish_reason, usage: r.usage, requestId: r.x_broker.request_id };
  }
  const s = openai.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
  let usage, broker;
  const argFragments = [];
  s.on("chunk", (chunk) => {
    if (chunk.usage) ({ usage, x_broker: broker } = chunk);
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) argFragments.push(tc);
  });
  const fin = await s.finalChatCompletion();
  if (body.model.includes("/")) assert.equal(broker?.request_id, ids.last, `${body.model}: the translated usage chunk names the call`);
  else assert.equal(broker, undefined, `${body.model}: OpenAI's own stream comes as OpenAI sent it`);
  return { message: fin.choices[0].message, finish: fin.choices[0].finish_reason, usage, requestId: ids.last, argFragments };
}

for (const stream of [false, true]) {
  test(`openai SDK: a two-turn tool loop (call → result → answer) on all three providers, ${stream ? "streaming" : "plain"}, each charged exactly`, async () => {
    const key = await c.createKey({ credits: 20 });
    const openai = openaiClient(key);
    for (const model of MODELS) {
      const messages = [{ role: "system", content: "Use the tools." }, { role: "user", content: `What's the weather in Paris? (${model})` }];
      const u1 = await mockReports(23, 5);
      const first = await turn(openai, { model, max_tokens: 200, tools: [WEATHER_TOOL], messages }, stream);
      assert.equal(first.finish, "tool_calls", model);
      assert.equal(first.message.tool_calls.length, 1, model);
      const call = first.message.tool_calls[0];
      assert.equal(call.type, "function");
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city: "mock" });
      if (stream) {
        // OpenAI's wire shape: the first delta names the call, later ones carry argument fragments.
        assert.ok(first.argFragments[0].id && first.argFragments[0].function.name === "get_weather", model);
        assert.ok(first.argFragments.every((f) => f.index === 0));
        assert.equal(first.argFragments.map((f) => f.function.arguments ?? "").join(""), call.function.arguments);
      }
      assertPassedOn(first.usage, u1, model);
      await assertCharged(key, first.requestId, expectedMc(model, u1.input, u1.output));

      messages.push(first.message, { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temp_c: 18, sky: "clear" }) });
      const u2 = await mockReports(41, 7);
      const second = await turn(openai, { model, max_tokens: 200, tools: [WEATHER_TOOL], messages }, stream);
      assert.equal(second.finish, "stop", model);
      assert.ok(second.message.content.startsWith("Mock reply"), model);
      assert.ok(!second.message.tool_calls?.length);
      assertPassedOn(second.usage, u2, model);
      await assertCharged(key, second.requestId, expectedMc(model, u2.input, u2.output));
    }
    // What each provider was sent on the second turn: its own tool-result vocabulary.
    const [oa] = (await c.mockRequests("openai")).slice(-1);
    assert.equal(oa.body.messages.at(-1).role, "tool");
    const [an] = (await c.mockRequests("anthropic")).slice(-1);
    assert.equal(an.body.messages.at(-1).content[0].type, "tool_result");
    assert.equal(an.body.tools[0].input_schema.required[0], "city");
    const [ge] = (await c.mockRequests("gemini")).slice(-1);
    const model = ge.body.contents.at(-2);
    assert.equal(model.role, "model");
    assert.ok(model.parts[0].thoughtSignature, "Gemini 3's thought signature came back through the call id");
    assert.deepEqual(ge.body.contents.at(-1).parts[0].functionResponse.response, { temp_c: 18, sky: "clear" });
    assert.equal(ge.body.tools[0].functionDeclarations[0].name, "get_weather");
  });
}

test("anthropic SDK: a tool_use → tool_result loop on /v1/messages, plain and streaming, charged exactly", async () => {
  const key = await c.createKey({ credits: 20 });
  const anthropic = new Anthropic({ baseURL: stack.workerUrl, apiKey: key.api_key, maxRetries: 0, fetch: ids.fetch });
  const tools = [{ name: "get_weather", description: "Current weather", input_schema: WEATHER_TOOL.function.parameters }];
  for (const stream of [false, true]) {
    const messages = [{ role: "user", content: `Weather in Paris? ${stream}` }];
    const ask = async () => {
      if (!stream) {
        const m = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 300, tools, messages });
        assert.equal(m.x_broker.request_id, ids.last);
        return m;
      }
      // Anthropic's own stream comes as Anthropic sent it: its bill is named by the head.
      const s = anthropic.messages.stream({ model: "claude-haiku-4-5", max_tokens: 300, tools, messages });
      const seen = [];
      s.on("streamEvent", (e) => seen.push(e));
      const m = await s.finalMessage();
      assert.ok(seen.some((e) => e.type === "message_delta") && seen.every((e) => !("x_broker" in e)));
      return { ...m, x_broker: { request_id: ids.last } };
    };
    const u1 = await mockReports(23, 5);
    const first = await ask();
    assert.equal(first.stop_reason, "tool_use");
    const use = first.content.find((b) => b.type === "tool_use");
    assert.deepEqual(use.input, { city: "mock" });
    assertPassedOn(first.usage, u1, `stream ${stream}`);
    await assertCharged(key, first.x_broker.request_id, expectedMc("claude-haiku-4-5", u1.input, u1.output));
    messages.push({ role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C and clear" }] });
    const u2 = await mockReports(41, 7);
    const second = await ask();
    assert.equal(second.stop_reason, "end_turn");
    assert.ok(second.content[0].text.startsWith("Mock reply"));
    assertPassedOn(second.usage, u2, `stream ${stream}`);
    await assertCharged(key, second.x_broker.request_id, expectedMc("claude-haiku-4-5", u2.input, u2.output));
  }
});

test("an image question is answered on each provider, with a hold that covered it", async () => {
  const key = await c.createKey({ credits: 50 });
  const openai = openaiClient(key);
  const content = [
    { type: "text", text: "What is in these images?" },
    { type: "image_url", image_url: { url: "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg", detail: "high" } },
    { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1X1}` } },
  ];
  for (const model of MODELS) {
    // The images cost tokens: a prompt of a few words reported as 201 tokens must still be inside
    // the hold (assertCharged checks it), so the hold counted the images.
    const u = await mockReports(201, 5);
    const { data: r, response } = await openai.chat.completions.create({ model, max_tokens: 20, messages: [{ role: "user", content }] }).withResponse();
    assert.ok(r.choices[0].message.content.startsWith("Mock reply"), model);
    assertPassedOn(r.usage, u, model);
    await assertCharged(key, response.headers.get("x-request-id"), expectedMc(model, u.input, u.output));
  }
  const sent = await c.mockRequests();
  const last = (p) => sent.filter((r) => r.provider === p).at(-1).body;
  assert.equal(last("openai").messages[0].content[1].image_url.detail, "high");
  assert.deepEqual(last("anthropic").messages[0].content[1].source, { type: "url", url: content[1].image_url.url });
  assert.equal(last("anthropic").messages[0].content[2].source.type, "base64");
  assert.deepEqual(last("gemini").contents[0].parts[1].fileData, { mimeType: "image/jpeg", fileUri: content[1].image_url.url });
  assert.deepEqual(last("gemini").contents[0].parts[2].inlineData, { mimeType: "image/png", data: PNG_1X1 });

  // Natively on /v1/messages: a base64 block and a URL block.
  const anthropic = new Anthropic({ baseURL: stack.workerUrl, apiKey: key.api_key, maxRetries: 0 });
  const um = await mockReports(201, 5);
  const m = await anthropic.messages.create({
    model: "claude-haiku-4-5", max_tokens: 10,
    messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1X1 } }, { type: "image", source: { type: "url", url: content[1].image_url.url } }, { type: "text", text: "Describe." }] }],
  });
  assertPassedOn(m.usage, um, "native image");
  await assertCharged(key, m.x_broker.request_id, expectedMc("claude-haiku-4-5", um.input, um.output));
});

test("structured output returns valid JSON per provider, or a clear 400 where it cannot be honoured", async () => {
  const key = await c.createKey({ credits: 20 });
  const openai = openaiClient(key);
  const schema = { type: "object", properties: { city: { type: "string" }, temp_c: { type: "integer" } }, required: ["city", "temp_c"], additionalProperties: false };
  for (const model of MODELS) {
    const u = await mockReports(23, 5);
    const r = await openai.chat.completions.create({
      model, max_tokens: 100, messages: [{ role: "user", content: "Weather in Paris as JSON" }],
      response_format: { type: "json_schema", json_schema: { name: "weather", schema, strict: true } },
    });
    assert.deepEqual(JSON.parse(r.choices[0].message.content), { city: "mock", temp_c: 1 }, model);
    assertPassedOn(r.usage, u, model);
    await assertCharged(key, r.x_broker.request_id, expectedMc(model, u.input, u.output));
  }
  const sent = await c.mockRequests();
  const last = (p) => sent.filter((r) => r.provider === p).at(-1).body;
  assert.deepEqual(last("anthropic").output_config.format, { type: "json_schema", schema });
  assert.equal(last("gemini").generationConfig.responseMimeType, "application/json");
  assert.deepEqual(last("gemini").generationConfig.responseJsonSchema, schema);

  for (const model of ["gpt-4o-mini", "google/gemini-3.8-flash"]) {
    const r = await openai.chat.completions.create({ model, max_tokens: 100, response_format: { type: "json_object" }, messages: [{ role: "user", content: "JSON please" }] });
    assert.equal(typeof JSON.parse(r.choices[0].message.content), "object", model);
    await c.settled(key.id, r.x_broker.request_id); // the balance below is read once it has settled
  }
  const before = await c.balanceMc(key.api_key);
  await assert.rejects(
    openai.chat.completions.create({ model: "anthropic/claude-haiku-4-5", response_format: { type: "json_object" }, messages: [{ role: "user", content: "x" }] }),
    (e) => e.status === 400 && /json_object.*use `json_schema`/.test(e.message),
  );
  assert.equal(await c.balanceMc(key.api_key), before, "a refusal holds and charges nothing");
});

test("thinking and reasoning pass where the model supports them, billed as output within the hold", async () => {
  const key = await c.createKey({ credits: 50 });
  const openai = openaiClient(key);
  const messages = [{ role: "user", content: "Think, then answer." }];
  for (const model of ["gpt-5.6-luna", "anthropic/claude-sonnet-4-6", "google/gemini-3.8-flash"]) {
    // The output is the mock's own rule: 24 reply tokens and 16 thinking tokens, both billed as output.
    const u = { ...(await mockReports(23)), output: 24 + 16 };
    const r = await openai.chat.completions.create({ model, max_tokens: 2000, reasoning_effort: "high", messages });
    assertPassedOn(r.usage, u, `${model}: the mock's 16 thinking tokens are output`);
    await assertCharged(key, r.x_broker.request_id, expectedMc(model, u.input, u.output));
  }
  const sent = await c.mockRequests();
  const last = (p) => sent.filter((r) => r.provider === p).at(-1).body;
  assert.equal(last("openai").reasoning_effort, "high");
  assert.deepEqual([last("anthropic").thinking, last("anthropic").output_config], [{ type: "adaptive" }, { effort: "high" }]);
  assert.deepEqual(last("gemini").generationConfig.thinkingConfig, { thinkingLevel: "high" });

  // A budget model from the OpenAI route: the budget fits below max_tokens; without max_tokens
  // admission grants room for it.
  const r = await openai.chat.completions.create({ model: "anthropic/claude-haiku-4-5", reasoning_effort: "low", messages });
  assert.equal(r.usage.completion_tokens, 40);
  const hk = (await c.mockRequests("anthropic")).at(-1).body;
  assert.equal(hk.thinking.type, "enabled");
  assert.ok(hk.thinking.budget_tokens >= 1024 && hk.thinking.budget_tokens < hk.max_tokens);

  // Natively on /v1/messages: `thinking` with its budget, checked against max_tokens.
  const anthropic = new Anthropic({ baseURL: stack.workerUrl, apiKey: key.api_key, maxRetries: 0 });
  const s = anthropic.messages.stream({ model: "claude-haiku-4-5", max_tokens: 3000, thinking: { type: "enabled", budget_tokens: 2000 }, messages });
  const fin = await s.finalMessage();
  assert.equal(fin.content[0].type, "thinking");
  assert.equal(fin.usage.output_tokens, 40);
  await assert.rejects(
    anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 2000, thinking: { type: "enabled", budget_tokens: 2000 }, messages }),
    (e) => e.status === 400 && /budget_tokens/.test(e.message),
  );
});

test("bad agent inputs are clear 400s that hold and charge nothing", async () => {
  const key = await c.createKey({ credits: 5 });
  const user = (content) => [{ role: "user", content }];
  const img = (url) => user([{ type: "image_url", image_url: { url } }]);
  const cases = [
    [{ model: "gpt-4o-mini", messages: img("http://example.com/a.png") }, /https:\/\//],
    [{ model: "gpt-4o-mini", messages: img("https://169.254.169.254/latest/meta-data") }, /IP address/],
    [{ model: "gpt-4o-mini", messages: img("https://localhost/a.png") }, /local name/],
    [{ model: "anthropic/claude-haiku-4-5", messages: img("https://[::1]/a.png") }, /IP address/],
    [{ model: "gpt-4o-mini", messages: img("data:image/png;base64,not-base64!") }, /not valid base64/],
    [{ model: "gpt-4o-mini", messages: img(`data:image/jpeg;base64,${PNG_1X1}`) }, /not a readable JPEG/],
    [{ model: "google/gemini-3.8-flash", messages: img("https://example.com/image") }, /names no image type/],
    [{ model: "gpt-4o-mini", messages: user([{ type: "input_audio", input_audio: { data: "", format: "wav" } }]) }, /audio/],
    [{ model: "gpt-4o-mini", messages: [...user("x"), { role: "tool", tool_call_id: "call_nope", content: "r" }] }, /answers no tool call/],
    [{ model: "anthropic/claude-haiku-4-5", messages: [...user("x"), { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{oops" } }] }] }, /JSON object/],
    [{ model: "google/gemini-3.8-flash", tools: [WEATHER_TOOL], parallel_tool_calls: false, messages: user("x") }, /parallel_tool_calls/],
    [{ model: "gpt-4o-mini", tools: [WEATHER_TOOL], tool_choice: { type: "function", function: { name: "nope" } }, messages: user("x") }, /does not define/],
  ];
  await c.frontReset();
  for (const [body, re] of cases) {
    const r = await c.api("/v1/chat/completions", { key: key.api_key, body });
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 120));
    const e = (await r.json()).error;
    assert.match(e.message, re);
    assert.equal(e.type, "invalid_request_error");
  }
  const huge = await c.api("/v1/messages", {
    key: key.api_key,
    body: { model: "claude-haiku-4-5", max_tokens: 5, messages: [{ role: "user", content: [{ type: "document", source: { type: "text", data: "x" } }] }] },
  });
  assert.equal(huge.status, 400);
  assert.match((await huge.json()).error.message, /`document` is not supported/);
  assert.equal((await c.frontStats()).requests, 0, "refused before any Redis call");
  assert.equal(await c.balanceMc(key.api_key), 5000);
});

test("200 concurrent calls with images on a balance that covers 10 serve at most 10 and never overdraw", async () => {
  const body = {
    model: "anthropic/claude-haiku-4-5", max_tokens: 24,
    messages: [{ role: "user", content: [{ type: "text", text: "concurrent images" }, { type: "image_url", image_url: { url: "https://example.com/photo.jpg" } }, { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1X1}` } }] }],
  };
  const probe = await c.createKey({ credits: 10 });
  const pr = await c.api("/v1/chat/completions", { key: probe.api_key, body });
  assert.equal(pr.status, 200);
  const hold = (await c.settled(probe.id, pr.headers.get("x-request-id"))).find((e) => e.type === "call").hold;
  const key = await c.createKey({ credits: (hold * 10 + Math.floor(hold / 2)) / 1000 });
  // Every admitted call stays in flight while the others are admitted.
  const results = await c.burstHeld("anthropic", 200, () => c.api("/v1/chat/completions", { key: key.api_key, body }));
  const ok = assertServedAtMost(results, 10);
  const refused = results.filter((r) => r.status === 402);
  assert.equal(ok + refused.length, 200, JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 402)));
  let entries;
  for (let i = 0; i < 200; i++) {
    entries = await c.ledger(key.id);
    if (entries.filter((e) => e.type === "call").length >= ok && (await c.redis("HGET", `abk:key:${key.id}`, "held")) === "0") break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(entries.every((e) => e.balance_mc >= 0), "a ledger step went below zero");
  const calls = entries.filter((e) => e.type === "call");
  assert.equal(calls.length, ok);
  assert.ok(calls.every((e) => e.exact && -e.amount_mc <= e.hold));
  const bal = await c.balanceMc(key.api_key);
  assert.equal(bal, entries.reduce((s, e) => s + e.amount_mc, 0));
  assert.ok(bal >= 0);
});
