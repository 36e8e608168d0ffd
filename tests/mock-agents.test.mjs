// The mocks' agent features (tools/mock-providers/src/agent.rs): tool calls and results, streams
// with tool-call deltas in each provider's real format, structured output, thinking, and the
// input tokens of images and tool definitions, against the official SDKs and the fixtures.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { ROOT } from "./lib/procs.mjs";
import { startMocks, parseSSE, MOCK_DEFAULTS as K } from "./lib/mocks.mjs";

let mock;
before(async () => { mock = await startMocks(); });
after(async () => { await mock?.stop(); });
beforeEach(async () => { await mock.reset(); });

/** The mocks' documented rules: input 3 + Σ(ceil(chars/4) + 4); JSON and arguments in 8-char pieces. */
const inTokens = (...texts) => 3 + texts.reduce((s, t) => s + Math.ceil([...t].length / 4) + 4, 0);
const pieces = (s) => Math.ceil([...s].length / 8);
const WEATHER = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const ARGS = '{"city":"mock"}'; // what the mocks fill WEATHER with: 2 pieces
const PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const fixture = (f) => fs.readFileSync(path.join(ROOT, "fixtures", f), "utf8");
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  return v === null ? "null" : typeof v;
}
const keys = (v) => JSON.stringify(shape(v));

// ---------------------------------------------------------------- OpenAI

test("openai: parallel tool calls, plain and streamed as tool_calls deltas; a tool result gets text", async () => {
  const client = new OpenAI({ apiKey: K.openaiKey, baseURL: mock.url + "/openai/v1", maxRetries: 0 });
  const tools = [
    { type: "function", function: { name: "get_weather", parameters: WEATHER } },
    { type: "function", function: { name: "get_time", parameters: WEATHER } },
  ];
  const messages = [{ role: "user", content: "weather and time in Paris?" }];
  const r = await client.chat.completions.create({ model: "gpt-4o-mini", tools, messages });
  const msg = r.choices[0].message;
  assert.equal(msg.content, null);
  assert.deepEqual(msg.tool_calls.map((c) => [c.type, c.function.name, c.function.arguments]), [["function", "get_weather", ARGS], ["function", "get_time", ARGS]]);
  assert.match(msg.tool_calls[0].id, /^call_/);
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  assert.equal(r.usage.completion_tokens, 2 * (1 + pieces(ARGS)));
  assert.equal(r.usage.prompt_tokens, inTokens("weather and time in Paris?", ...tools.map((t) => JSON.stringify(t))));

  // The SDK's stream helper rebuilds the same calls from the deltas.
  const stream = client.chat.completions.stream({ model: "gpt-4o-mini", tools, messages, stream_options: { include_usage: true } });
  const fin = await stream.finalChatCompletion();
  assert.deepEqual(fin.choices[0].message.tool_calls.map((c) => c.function.arguments), [ARGS, ARGS]);
  assert.equal(fin.choices[0].finish_reason, "tool_calls");

  const one = await client.chat.completions.create({ model: "gpt-4o-mini", tools, messages, parallel_tool_calls: false });
  assert.equal(one.choices[0].message.tool_calls.length, 1);
  const forced = await client.chat.completions.create({ model: "gpt-4o-mini", tools, messages, tool_choice: { type: "function", function: { name: "get_time" } } });
  assert.deepEqual(forced.choices[0].message.tool_calls.map((c) => c.function.name), ["get_time"]);
  const none = await client.chat.completions.create({ model: "gpt-4o-mini", tools, messages, tool_choice: "none", max_tokens: 3 });
  assert.equal(none.choices[0].message.content, "Mock reply from");

  const back = await client.chat.completions.create({
    model: "gpt-4o-mini", tools, max_tokens: 4,
    messages: [...messages, { role: "assistant", content: null, tool_calls: [msg.tool_calls[0]] }, { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "18C" }],
  });
  assert.equal(back.choices[0].message.content, "Mock reply from the");
  assert.equal(back.choices[0].finish_reason, "length");
});

test("openai: json_schema answers valid JSON by the schema; reasoning adds reasoning tokens; images add tile tokens", async () => {
  const client = new OpenAI({ apiKey: K.openaiKey, baseURL: mock.url + "/openai/v1", maxRetries: 0 });
  const schema = { type: "object", properties: { answer: { type: "string" }, confidence: { type: "number" } } };
  const r = await client.chat.completions.create({
    model: "gpt-5.6-luna", reasoning_effort: "low", messages: [{ role: "user", content: "x" }],
    response_format: { type: "json_schema", json_schema: { name: "a", schema, strict: true } },
  });
  const text = r.choices[0].message.content;
  assert.deepEqual(JSON.parse(text), { answer: "mock", confidence: 1 });
  assert.equal(r.usage.completion_tokens, pieces(text) + 16);
  assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 16);
  const j = await client.chat.completions.create({ model: "gpt-4o-mini", response_format: { type: "json_object" }, messages: [{ role: "user", content: "x" }] });
  assert.equal(typeof JSON.parse(j.choices[0].message.content).answer, "string");

  const content = (detail) => [{ type: "text", text: "what?" }, { type: "image_url", image_url: { url: "https://example.com/a.png", detail } }, { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1X1}` } }];
  const base = inTokens("what?");
  const high = await client.chat.completions.create({ model: "gpt-4o", max_tokens: 1, messages: [{ role: "user", content: content("high") }] });
  assert.equal(high.usage.prompt_tokens, base + (85 + 170 * 4) + (85 + 170)); // a URL counts as 1024×1024; the PNG is 1×1
  const low = await client.chat.completions.create({ model: "gpt-4o-mini", max_tokens: 1, messages: [{ role: "user", content: content("low") }] });
  assert.equal(low.usage.prompt_tokens, base + 2833 + (2833 + 5667));
});

// ---------------------------------------------------------------- Anthropic

test("anthropic: tool_use blocks, plain and streamed with input_json_delta; thinking blocks; structured output", async () => {
  const client = new Anthropic({ apiKey: K.anthropicKey, baseURL: mock.url + "/anthropic", maxRetries: 0 });
  const tools = [{ name: "get_weather", description: "now", input_schema: WEATHER }, { name: "get_time", input_schema: WEATHER }];
  const messages = [{ role: "user", content: "weather in Paris?" }];
  const m = await client.messages.create({ model: "claude-haiku-4-5", max_tokens: 100, tools, messages });
  assert.equal(m.stop_reason, "tool_use");
  assert.deepEqual(m.content.map((b) => [b.type, b.name, b.input]), [["tool_use", "get_weather", { city: "mock" }], ["tool_use", "get_time", { city: "mock" }]]);
  assert.match(m.content[0].id, /^toolu_/);
  assert.equal(m.usage.output_tokens, 2 * (1 + pieces(ARGS)));
  assert.equal(m.usage.input_tokens, inTokens("weather in Paris?", ...tools.map((t) => JSON.stringify(t))));

  const s = client.messages.stream({ model: "claude-haiku-4-5", max_tokens: 100, tools, tool_choice: { type: "any", disable_parallel_tool_use: true }, messages });
  const fin = await s.finalMessage();
  assert.deepEqual(fin.content.map((b) => b.input), [{ city: "mock" }]);

  const back = await client.messages.create({
    model: "claude-haiku-4-5", max_tokens: 3, tools,
    messages: [...messages, { role: "assistant", content: [m.content[0]] }, { role: "user", content: [{ type: "tool_result", tool_use_id: m.content[0].id, content: "18C" }] }],
  });
  assert.deepEqual(back.content, [{ type: "text", text: "Mock reply from" }]);

  const think = client.messages.stream({ model: "claude-sonnet-4-6", max_tokens: 50, thinking: { type: "adaptive" }, messages });
  const t = await think.finalMessage();
  assert.equal(t.content[0].type, "thinking");
  assert.equal(typeof t.content[0].signature, "string");
  assert.equal(t.usage.output_tokens, 16 + 24);

  const schema = { type: "object", properties: { ok: { type: "boolean" } }, additionalProperties: false };
  const j = await client.messages.create({ model: "claude-sonnet-4-6", max_tokens: 50, output_config: { format: { type: "json_schema", schema } }, messages });
  assert.deepEqual(JSON.parse(j.content[0].text), { ok: true });

  const img = await client.messages.create({
    model: "claude-sonnet-4-6", max_tokens: 1,
    messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1X1 } }, { type: "image", source: { type: "url", url: "https://example.com/a.jpg" } }, { type: "text", text: "what?" }] }],
  });
  assert.equal(img.usage.input_tokens, inTokens("what?") + 1 + 37 * 37);
});

// ---------------------------------------------------------------- Gemini

const GEM = (model) => `${mock.url}/gemini/v1beta/models/${model}`;
const gemini = (model, method, body) => fetch(`${GEM(model)}:${method}`, { method: "POST", headers: { "x-goog-api-key": K.googleKey, "content-type": "application/json" }, body: JSON.stringify(body) });

test("gemini: whole functionCall parts with Gemini 3's signature, which a replay must carry; JSON and thinking", async () => {
  const tools = [{ functionDeclarations: [{ name: "get_weather", parametersJsonSchema: WEATHER }, { name: "get_time", parameters: WEATHER }] }];
  const contents = [{ role: "user", parts: [{ text: "weather?" }] }];
  const r = await gemini("gemini-3.8-flash", "streamGenerateContent?alt=sse", { contents, tools });
  const text = await r.text();
  assert.ok(text.endsWith("\r\n\r\n"));
  const evs = parseSSE(text);
  assert.equal(evs.length, 1, "calls come whole, in one chunk");
  const cand = evs[0].json.candidates[0];
  assert.equal(cand.finishReason, "STOP");
  assert.deepEqual(cand.content.parts.map((p) => p.functionCall), [{ name: "get_weather", args: { city: "mock" } }, { name: "get_time", args: { city: "mock" } }]);
  assert.match(cand.content.parts[0].thoughtSignature, /^CiQBMock/);
  assert.ok(!("thoughtSignature" in cand.content.parts[1]));
  assert.equal(evs[0].json.usageMetadata.candidatesTokenCount, 2 * (1 + pieces(ARGS)));

  const replay = (parts) => gemini("gemini-3.8-flash", "generateContent", {
    tools, contents: [...contents, { role: "model", parts }, { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temp_c: 18 } } }] }],
  });
  const bad = await replay(cand.content.parts.map((p) => ({ functionCall: p.functionCall })));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /thought_signature/);
  const good = await replay(cand.content.parts);
  assert.equal(good.status, 200);
  assert.equal((await good.json()).candidates[0].content.parts[0].text.split(" ")[0], "Mock");

  const j = await (await gemini("gemini-2.5-flash", "generateContent", {
    contents, generationConfig: { responseMimeType: "application/json", responseJsonSchema: { type: "object", properties: { n: { type: "integer" } } }, thinkingConfig: { thinkingBudget: 1024 } },
  })).json();
  assert.deepEqual(JSON.parse(j.candidates[0].content.parts[0].text), { n: 1 });
  assert.equal(j.usageMetadata.thoughtsTokenCount, 16);

  const img = await (await gemini("gemini-2.5-flash", "generateContent", {
    contents: [{ role: "user", parts: [{ text: "what?" }, { inlineData: { mimeType: "image/png", data: PNG_1X1 } }, { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/a.jpg" } }] }],
    generationConfig: { maxOutputTokens: 1 },
  })).json();
  assert.equal(img.usageMetadata.promptTokenCount, inTokens("what?") + 2 * 258);
});

// ---------------------------------------------------------------- Shapes vs the tool-call fixtures

test("tool-call streams have the shapes of the fixtures", async () => {
  const tools = [{ type: "function", function: { name: "get_weather", parameters: WEATHER } }, { type: "function", function: { name: "get_time", parameters: WEATHER } }];
  const o = await fetch(`${mock.url}/openai/v1/chat/completions`, {
    method: "POST", headers: { authorization: `Bearer ${K.openaiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, tools, messages: [{ role: "user", content: "x" }] }),
  });
  const mine = parseSSE(await o.text()), theirs = parseSSE(fixture("openai/chat-completion.tools.stream.sse"));
  // Opening chunk of the first call, an argument fragment, the opening of the second call, finish, usage.
  // (The mocks send no system fingerprint; gpt-4o-mini's recorded chunks have one.)
  const pick = (ev) => [ev[0], ev[1], ev.find((e) => e.json?.choices?.[0]?.delta?.tool_calls?.[0]?.index === 1), ev.at(-3), ev.at(-2)].map((e) => keys({ ...e.json, system_fingerprint: null }));
  assert.deepEqual(pick(mine), pick(theirs));

  const a = await fetch(`${mock.url}/anthropic/v1/messages`, {
    method: "POST", headers: { "x-api-key": K.anthropicKey, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify({ model: "claude-sonnet-4-6", max_tokens: 100, stream: true, tools: [{ name: "get_weather", input_schema: WEATHER }], messages: [{ role: "user", content: "x" }] }),
  });
  const ae = parseSSE(await a.text()), af = parseSSE(fixture("anthropic/messages.tools.stream.sse"));
  const toolStart = (ev) => ev.find((e) => e.json.content_block?.type === "tool_use");
  const jsonDelta = (ev) => ev.find((e) => e.json.delta?.type === "input_json_delta");
  assert.equal(keys(toolStart(ae).json), keys(toolStart(af).json));
  assert.equal(keys(jsonDelta(ae).json), keys(jsonDelta(af).json));
  assert.equal(ae.find((e) => e.event === "message_delta").json.delta.stop_reason, "tool_use");

  const g = await gemini("gemini-3.8-flash", "streamGenerateContent?alt=sse", { contents: [{ role: "user", parts: [{ text: "x" }] }], tools: [{ functionDeclarations: [{ name: "get_weather", parameters: WEATHER }, { name: "get_time", parameters: WEATHER }] }] });
  const ge = parseSSE(await g.text()), gf = parseSSE(fixture("gemini/streamGenerateContent.tools.sse"));
  assert.deepEqual(Object.keys(ge[0].json.candidates[0].content.parts[0]), Object.keys(gf[0].json.candidates[0].content.parts[0]));
  assert.deepEqual(Object.keys(ge[0].json.candidates[0].content.parts[0].functionCall), Object.keys(gf[0].json.candidates[0].content.parts[0].functionCall));
});
