// Wire-format tests for tools/mock-providers against the framing rules of /work/shared/fixtures.
// Run: cargo build -p mock-providers && node --test tests/mock-providers.test.mjs
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./lib/procs.mjs";
import net from "node:net";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startMocks, paypalSign, parseSSE, crc32, MOCK_DEFAULTS as K } from "./lib/mocks.mjs";

const WORDS = "Mock reply from the deterministic provider simulator: every word here is one output token, so usage counts are easy to check in all tests.".split(" ");
const reply = (n) => WORDS.slice(0, n).join(" ");
/** The mock's documented input-token rule. */
const inTokens = (...texts) => 3 + texts.reduce((s, t) => s + Math.ceil([...t].length / 4) + 4, 0);

let mock;
before(async () => { mock = await startMocks(); });
after(async () => { await mock?.stop(); });
beforeEach(async () => { await mock.reset(); });

async function call(path, { method = "POST", headers = {}, body, json } = {}) {
  const h = { ...headers };
  if (json !== undefined) { h["content-type"] = "application/json"; body = JSON.stringify(json); }
  const res = await fetch(mock.url + path, { method, headers: h, body });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString("utf8");
  let parsed = null;
  try { parsed = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, buf, text, json: parsed };
}

/** Read a (possibly truncated) body; returns {text, error}. */
async function readPartial(res) {
  const reader = res.body.getReader();
  const parts = [];
  let error = null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(Buffer.from(value));
    }
  } catch (e) { error = e; }
  return { text: Buffer.concat(parts).toString("utf8"), error };
}

const OA = { authorization: `Bearer ${K.openaiKey}` };
const AN = { "x-api-key": K.anthropicKey, "anthropic-version": "2023-06-01" };
const chatBody = (extra = {}) => ({
  model: "gpt-5-mini",
  messages: [
    { role: "developer", content: "You are the support assistant for Acme Cloud. Answer in at most two sentences." },
    { role: "user", content: "How do I rotate my API key?" },
  ],
  ...extra,
});
const chatIn = inTokens("You are the support assistant for Acme Cloud. Answer in at most two sentences.", "How do I rotate my API key?");

test("health and unknown routes", async () => {
  assert.equal((await call("/__control/health", { method: "GET" })).status, 200);
  assert.equal((await call("/nope", { method: "GET" })).status, 404);
  const bad = await call("/__control/script", { json: { provider: "nope" } });
  assert.equal(bad.status, 400);
});

// ---------------------------------------------------------------- OpenAI chat

test("openai plain chat completion", async () => {
  const r = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody({ max_completion_tokens: 1024 }) });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.match(r.headers.get("x-request-id"), /^req_/);
  for (const h of ["limit-requests", "limit-tokens", "remaining-requests", "remaining-tokens", "reset-requests", "reset-tokens"]) {
    assert.ok(r.headers.get(`x-ratelimit-${h}`), h);
  }
  const b = r.json;
  assert.equal(b.object, "chat.completion");
  assert.match(b.id, /^chatcmpl-/);
  assert.equal(b.model, "gpt-5-mini");
  assert.equal(typeof b.created, "number");
  assert.deepEqual(b.choices[0].message, { role: "assistant", content: reply(24), refusal: null, annotations: [] });
  assert.equal(b.choices[0].finish_reason, "stop");
  assert.ok(!("logprobs" in b.choices[0]), "reasoning models have no logprobs key");
  assert.deepEqual(b.usage, {
    prompt_tokens: chatIn, completion_tokens: 24, total_tokens: chatIn + 24,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  });
  assert.equal(b.service_tier, "default");
  assert.equal(b.system_fingerprint, null);
});

test("openai max_tokens and max_completion_tokens both cap the reply", async () => {
  for (const key of ["max_tokens", "max_completion_tokens"]) {
    const r = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody({ model: "gpt-4o-mini", [key]: 5 }) });
    assert.equal(r.json.choices[0].message.content, reply(5));
    assert.equal(r.json.choices[0].finish_reason, "length");
    assert.equal(r.json.choices[0].logprobs, null);
    assert.equal(r.json.usage.completion_tokens, 5);
  }
});

test("openai stream with include_usage: byte framing like chat-completion.stream.sse", async () => {
  const res = await fetch(mock.url + "/openai/v1/chat/completions", {
    method: "POST", headers: { ...OA, "content-type": "application/json" },
    body: JSON.stringify(chatBody({ max_tokens: 4, stream: true, stream_options: { include_usage: true } })),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const text = await res.text();
  assert.ok(text.endsWith("\n\ndata: [DONE]\n\n"));
  assert.ok(!text.includes("\r"));
  assert.ok(!/^event:/m.test(text));
  const blocks = text.split("\n\n").slice(0, -1);
  assert.ok(blocks.every((b) => b.startsWith("data: ") && !b.includes("\n")));
  const ev = parseSSE(text);
  assert.equal(ev.at(-1).data, "[DONE]");
  const chunks = ev.slice(0, -1).map((e) => e.json);
  // role chunk, 4 word chunks, finish chunk, usage chunk
  assert.equal(chunks.length, 7);
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "", refusal: null });
  assert.deepEqual(chunks.slice(1, 5).map((c) => c.choices[0].delta.content), ["Mock", " reply", " from", " the"]);
  assert.deepEqual(chunks[5].choices[0].delta, {});
  assert.equal(chunks[5].choices[0].finish_reason, "length");
  for (const c of chunks.slice(0, -1)) {
    assert.equal(c.object, "chat.completion.chunk");
    assert.ok("usage" in c && c.usage === null);
    assert.equal(c.id, chunks[0].id);
  }
  for (const c of chunks) assert.equal(typeof c.obfuscation, "string");
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, chatIn);
  assert.equal(last.usage.completion_tokens, 4);
  assert.equal(last.usage.total_tokens, chatIn + 4);
});

test("openai stream without include_usage has no usage anywhere", async () => {
  const r = await call("/openai/v1/chat/completions", {
    headers: OA, json: chatBody({ max_tokens: 2, stream: true, stream_options: { include_obfuscation: false } }),
  });
  const ev = parseSSE(r.text);
  assert.equal(ev.length, 1 + 2 + 1 + 1);
  for (const e of ev.slice(0, -1)) {
    assert.ok(!("usage" in e.json));
    assert.ok(!("obfuscation" in e.json));
    assert.equal(e.json.choices.length, 1);
  }
  assert.ok(r.text.endsWith("data: [DONE]\n\n"));
});

test("openai auth failures use OpenAI's error body", async () => {
  for (const headers of [{}, { authorization: "Bearer sk-wrong-key-000000" }, { "x-api-key": K.openaiKey }]) {
    const r = await call("/openai/v1/chat/completions", { headers, json: chatBody() });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "invalid_api_key");
    assert.equal(r.json.error.type, "invalid_request_error");
    assert.equal(r.json.error.param, null);
    assert.match(r.json.error.message, /^Incorrect API key provided/);
  }
  const bad = await call("/openai/v1/chat/completions", { headers: OA, json: { model: "x" } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, "messages");
});

test("openai SDK: plain and streaming with include_usage", async () => {
  const client = new OpenAI({ apiKey: K.openaiKey, baseURL: mock.url + "/openai/v1", maxRetries: 0 });
  const c = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }], max_tokens: 6 });
  assert.equal(c.choices[0].message.content, reply(6));
  assert.equal(c.usage.prompt_tokens, inTokens("Hello"));
  assert.equal(c.usage.completion_tokens, 6);

  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }], max_tokens: 3,
    stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, reply(3));
  assert.equal(usage.completion_tokens, 3);
  assert.equal(usage.prompt_tokens, inTokens("Hello"));

  await assert.rejects(
    new OpenAI({ apiKey: "sk-bad", baseURL: mock.url + "/openai/v1", maxRetries: 0 }).chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    (e) => e.status === 401 && e.code === "invalid_api_key",
  );
});

// ---------------------------------------------------------------- OpenAI images

test("openai images: dall-e url / b64 and gpt-image-1 usage", async () => {
  const u = await call("/openai/v1/images/generations", { headers: OA, json: { model: "dall-e-3", prompt: "A watercolor lighthouse", n: 1, size: "1024x1024", quality: "standard", response_format: "url" } });
  assert.equal(u.status, 200);
  assert.equal(u.json.data.length, 1);
  assert.match(u.json.data[0].url, /^http/);
  assert.equal(typeof u.json.data[0].revised_prompt, "string");
  const img = await fetch(u.json.data[0].url);
  assert.equal(img.headers.get("content-type"), "image/png");

  const b = await call("/openai/v1/images/generations", { headers: OA, json: { model: "dall-e-2", prompt: "x", n: 2, response_format: "b64_json" } });
  assert.equal(b.json.data.length, 2);
  assert.ok(b.json.data.every((d) => typeof d.b64_json === "string" && !("url" in d) && !("revised_prompt" in d)));

  const g = await call("/openai/v1/images/generations", { headers: OA, json: { model: "gpt-image-1", prompt: "A watercolor lighthouse on a rocky coast at dawn", n: 2, quality: "low", size: "1024x1536" } });
  assert.equal(g.status, 200);
  assert.equal(g.json.data.length, 2);
  assert.equal(g.json.quality, "low");
  assert.equal(g.json.size, "1024x1536");
  assert.deepEqual(g.json.usage, { input_tokens: 14, input_tokens_details: { image_tokens: 0, text_tokens: 14 }, output_tokens: 816, total_tokens: 830 });

  const m = await call("/openai/v1/images/generations", { headers: OA, json: { model: "gpt-image-1", prompt: "x", quality: "high", size: "1536x1024" } });
  assert.equal(m.json.usage.output_tokens, 6208);
  assert.equal((await call("/openai/v1/images/generations", { json: { prompt: "x" } })).status, 401);
});

// ---------------------------------------------------------------- Anthropic

const SYS = "You are the support assistant for Acme Cloud.";
test("anthropic plain message (system blocks, content blocks)", async () => {
  const r = await call("/anthropic/v1/messages", {
    headers: AN,
    json: {
      model: "claude-sonnet-4-5", max_tokens: 1024,
      system: [{ type: "text", text: SYS, cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "How do I rotate my API key?" }] }],
    },
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.ok(r.headers.get("request-id"));
  const b = r.json;
  assert.equal(b.type, "message");
  assert.equal(b.role, "assistant");
  assert.equal(b.model, "claude-sonnet-4-5");
  assert.match(b.id, /^msg_/);
  assert.deepEqual(b.content, [{ type: "text", text: reply(24) }]);
  assert.equal(b.stop_reason, "end_turn");
  assert.equal(b.stop_sequence, null);
  assert.equal(b.usage.input_tokens, inTokens(SYS, "How do I rotate my API key?"));
  assert.equal(b.usage.output_tokens, 24);
  assert.equal(b.usage.cache_creation_input_tokens, 0);
  assert.equal(b.usage.cache_read_input_tokens, 0);

  const s = await call("/anthropic/v1/messages", { headers: AN, json: { model: "c", max_tokens: 3, system: SYS, messages: [{ role: "user", content: "Hi" }] } });
  assert.equal(s.json.usage.input_tokens, inTokens(SYS, "Hi"));
  assert.equal(s.json.stop_reason, "max_tokens");
  assert.equal(s.json.content[0].text, reply(3));
});

test("anthropic stream framing like messages.stream.sse", async () => {
  const r = await call("/anthropic/v1/messages", { headers: AN, json: { model: "claude-sonnet-4-5", max_tokens: 3, stream: true, messages: [{ role: "user", content: "Hello" }] } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.ok(r.headers.get("request-id"));
  assert.ok(!r.text.includes("[DONE]"));
  assert.ok(!r.text.includes("\r"));
  const blocks = r.text.split("\n\n");
  assert.equal(blocks.pop(), "");
  for (const b of blocks) assert.match(b, /^event: [a-z_]+\ndata: \{.*\}$/);
  const ev = parseSSE(r.text);
  assert.deepEqual(ev.map((e) => e.event), [
    "message_start", "content_block_start", "ping",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_stop", "message_delta", "message_stop",
  ]);
  for (const e of ev) assert.equal(e.json.type, e.event);
  const start = ev[0].json.message;
  assert.equal(start.usage.input_tokens, inTokens("Hello"));
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.equal(ev.slice(3, 6).map((e) => e.json.delta.text).join(""), reply(3));
  assert.ok(ev.slice(3, 6).every((e) => e.json.delta.type === "text_delta" && e.json.index === 0));
  const delta = ev[7].json;
  assert.equal(delta.delta.stop_reason, "max_tokens");
  assert.deepEqual(delta.usage, { input_tokens: inTokens("Hello"), cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 3 });
});

test("anthropic errors in Anthropic's shape", async () => {
  const body = { model: "c", max_tokens: 5, messages: [{ role: "user", content: "x" }] };
  const shape = (r, status, type) => {
    assert.equal(r.status, status);
    assert.equal(r.json.type, "error");
    assert.equal(r.json.error.type, type);
    assert.equal(typeof r.json.error.message, "string");
    assert.match(r.json.request_id, /^req_/);
  };
  shape(await call("/anthropic/v1/messages", { headers: { ...AN, "x-api-key": "wrong" }, json: body }), 401, "authentication_error");
  shape(await call("/anthropic/v1/messages", { headers: { "anthropic-version": "2023-06-01" }, json: body }), 401, "authentication_error");
  shape(await call("/anthropic/v1/messages", { headers: { "x-api-key": K.anthropicKey }, json: body }), 400, "invalid_request_error");
  shape(await call("/anthropic/v1/messages", { headers: { "anthropic-version": "2023-06-01", authorization: "Bearer wrong" }, json: body }), 401, "authentication_error");
  const viaBearer = await call("/anthropic/v1/messages", { headers: { "anthropic-version": "2023-06-01", authorization: `Bearer ${K.anthropicKey}` }, json: body });
  assert.equal(viaBearer.status, 200, "the official SDK sends the key as Bearer");
  const noMax = await call("/anthropic/v1/messages", { headers: AN, json: { model: "c", messages: [{ role: "user", content: "x" }] } });
  shape(noMax, 400, "invalid_request_error");
  assert.match(noMax.json.error.message, /max_tokens/);
});

test("anthropic SDK: plain and messages.stream() finalMessage usage", async () => {
  const client = new Anthropic({ apiKey: K.anthropicKey, baseURL: mock.url + "/anthropic", maxRetries: 0 });
  const m = await client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 7, messages: [{ role: "user", content: "Hello" }] });
  assert.equal(m.content[0].text, reply(7));
  assert.equal(m.usage.input_tokens, inTokens("Hello"));
  assert.equal(m.usage.output_tokens, 7);

  await mock.script({ provider: "anthropic", usage: { input_tokens: 12, output_tokens: 31, cache_creation_input_tokens: 2048, cache_read_input_tokens: 5 } });
  const stream = client.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 5, messages: [{ role: "user", content: "Hello" }] });
  let text = "";
  stream.on("text", (t) => { text += t; });
  const fin = await stream.finalMessage();
  assert.equal(text, reply(5));
  assert.equal(fin.usage.input_tokens, 12);
  assert.equal(fin.usage.output_tokens, 31);
  assert.equal(fin.usage.cache_creation_input_tokens, 2048);
  assert.equal(fin.usage.cache_read_input_tokens, 5);
  assert.equal(fin.stop_reason, "max_tokens");
});

// ---------------------------------------------------------------- Gemini

const GEM = "/gemini/v1beta/models/gemini-2.5-flash";
const gemBody = (max) => ({
  systemInstruction: { parts: [{ text: SYS }] },
  contents: [{ role: "user", parts: [{ text: "How do I rotate my API key?" }] }],
  generationConfig: max === undefined ? { temperature: 0.7 } : { maxOutputTokens: max },
});
const gemIn = inTokens(SYS, "How do I rotate my API key?");

test("gemini generateContent: pretty JSON + newline, modelVersion, usage", async () => {
  const r = await call(`${GEM}:generateContent`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody() });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.ok(r.text.startsWith('{\n  "candidates": [\n'));
  assert.ok(r.text.endsWith("}\n"));
  const b = r.json;
  assert.deepEqual(b.candidates[0].content, { parts: [{ text: reply(24) }], role: "model" });
  assert.equal(b.candidates[0].finishReason, "STOP");
  assert.equal(b.modelVersion, "gemini-2.5-flash");
  assert.equal(typeof b.responseId, "string");
  assert.equal(b.usageMetadata.promptTokenCount, gemIn);
  assert.equal(b.usageMetadata.candidatesTokenCount, 24);
  assert.equal(b.usageMetadata.totalTokenCount, gemIn + 24);
  assert.ok(!("thoughtsTokenCount" in b.usageMetadata));
  assert.deepEqual(b.usageMetadata.promptTokensDetails, [{ modality: "TEXT", tokenCount: gemIn }]);
});

test("gemini streamGenerateContent alt=sse: CRLF framing, cumulative usage, finishReason last", async () => {
  const r = await call(`${GEM}:streamGenerateContent?alt=sse&key=${K.googleKey}`, { json: gemBody(4) });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/event-stream/);
  assert.ok(r.text.endsWith("}\r\n\r\n"));
  assert.ok(!r.text.includes("[DONE]"));
  const blocks = r.text.split("\r\n\r\n");
  assert.equal(blocks.pop(), "");
  assert.equal(blocks.length, 4);
  for (const b of blocks) {
    assert.ok(b.startsWith('data: {"candidates": [{"content": {"parts": [{"text": '), b);
    assert.ok(!b.includes("\n") && !b.includes("\r"));
  }
  const ev = parseSSE(r.text).map((e) => e.json);
  assert.equal(ev.map((c) => c.candidates[0].content.parts[0].text).join(""), reply(4));
  ev.forEach((c, i) => {
    assert.equal(c.usageMetadata.promptTokenCount, gemIn);
    assert.equal(c.usageMetadata.candidatesTokenCount, i + 1);
    assert.equal(c.usageMetadata.totalTokenCount, gemIn + i + 1);
    assert.equal(c.modelVersion, "gemini-2.5-flash");
    if (i < 3) assert.ok(!("finishReason" in c.candidates[0]));
  });
  assert.equal(ev[3].candidates[0].finishReason, "MAX_TOKENS");
});

test("gemini streamGenerateContent without alt=sse is one JSON array", async () => {
  const r = await call(`${GEM}:streamGenerateContent`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody(3) });
  assert.equal(r.status, 200);
  assert.ok(Array.isArray(r.json));
  assert.equal(r.json.length, 3);
  assert.equal(r.json.at(-1).usageMetadata.candidatesTokenCount, 3);
  assert.equal(r.json.at(-1).candidates[0].finishReason, "MAX_TOKENS");
});

test("gemini bad key is 400 INVALID_ARGUMENT / API_KEY_INVALID", async () => {
  for (const opts of [{ headers: { "x-goog-api-key": "AIza-wrong" } }, { path: "?key=AIza-wrong" }]) {
    const r = await call(`${GEM}:generateContent${opts.path ?? ""}`, { headers: opts.headers ?? {}, json: gemBody() });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 400);
    assert.equal(r.json.error.status, "INVALID_ARGUMENT");
    assert.equal(r.json.error.details[0].reason, "API_KEY_INVALID");
  }
  const none = await call(`${GEM}:generateContent`, { json: gemBody() });
  assert.equal(none.status, 403);
  assert.equal(none.json.error.status, "PERMISSION_DENIED");
});

// ---------------------------------------------------------------- ElevenLabs

test("elevenlabs text-to-speech: fake mp3, character-cost, auth, 422", async () => {
  const text = "Your order has shipped and will arrive on Thursday.";
  const r = await call("/elevenlabs/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb?output_format=mp3_44100_128", {
    headers: { "xi-api-key": K.elevenlabsKey, accept: "audio/mpeg" }, json: { text, model_id: "eleven_multilingual_v2" },
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "audio/mpeg");
  assert.equal(r.buf.subarray(0, 3).toString("latin1"), "ID3");
  assert.equal(r.headers.get("character-cost"), "51");
  assert.ok(r.headers.get("request-id"));

  const flash = await call("/elevenlabs/v1/text-to-speech/v/stream", { headers: { "xi-api-key": K.elevenlabsKey }, json: { text, model_id: "eleven_flash_v2_5" } });
  assert.equal(flash.headers.get("character-cost"), "26");
  assert.equal(flash.buf.subarray(0, 3).toString("latin1"), "ID3");
  const dflt = await call("/elevenlabs/v1/text-to-speech/v", { headers: { "xi-api-key": K.elevenlabsKey }, json: { text: "abc" } });
  assert.equal(dflt.headers.get("character-cost"), "3");
  assert.ok(dflt.buf.length < r.buf.length, "length depends on text length");

  const bearer = await call("/elevenlabs/v1/text-to-speech/v", { headers: { authorization: `Bearer ${K.elevenlabsKey}` }, json: { text } });
  assert.equal(bearer.status, 401);
  assert.equal(bearer.json.detail.status, "invalid_api_key");
  assert.equal(bearer.json.detail.type, "authentication_error");

  const missing = await call("/elevenlabs/v1/text-to-speech/v", { headers: { "xi-api-key": K.elevenlabsKey }, json: { model_id: "x" } });
  assert.equal(missing.status, 422);
  assert.deepEqual(missing.json, { detail: [{ type: "missing", loc: ["body", "text"], msg: "Field required", input: null }] });
});

// ---------------------------------------------------------------- Stability

const STAB = "/stability/v2beta/audio/stable-audio-2/text-to-audio";
function form(fields) {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, String(v));
  return fd;
}

test("stability stable audio: raw bytes, json, errors", async () => {
  const auth = { authorization: `Bearer ${K.stabilityKey}` };
  const raw = await call(STAB, { headers: { ...auth, accept: "audio/*" }, body: form({ prompt: "lofi loop", model: "stable-audio-2.5", duration: 30, output_format: "mp3", steps: 8 }) });
  assert.equal(raw.status, 200);
  assert.equal(raw.headers.get("content-type"), "audio/mpeg");
  assert.equal(raw.headers.get("finish-reason"), "SUCCESS");
  assert.match(raw.headers.get("seed"), /^\d+$/);
  assert.equal(raw.buf.subarray(0, 3).toString("latin1"), "ID3");

  const wav = await call(STAB, { headers: { ...auth, accept: "audio/*" }, body: form({ prompt: "p", output_format: "wav", duration: 5, seed: 42 }) });
  assert.equal(wav.headers.get("content-type"), "audio/wav");
  assert.equal(wav.headers.get("seed"), "42");

  const js = await call(STAB, { headers: { ...auth, accept: "application/json" }, body: form({ prompt: "lofi loop", duration: 10 }) });
  assert.equal(js.status, 200);
  assert.deepEqual(Object.keys(js.json), ["audio", "finish_reason", "seed"]);
  assert.equal(js.json.finish_reason, "SUCCESS");
  assert.equal(Buffer.from(js.json.audio, "base64").subarray(0, 3).toString("latin1"), "ID3");

  const noPrompt = await call(STAB, { headers: { ...auth, accept: "audio/*" }, body: form({ duration: 10 }) });
  assert.equal(noPrompt.status, 400);
  assert.equal(noPrompt.json.name, "bad_request");
  assert.ok(Array.isArray(noPrompt.json.errors) && typeof noPrompt.json.id === "string");

  const badDur = await call(STAB, { headers: auth, body: form({ prompt: "x", duration: 500 }) });
  assert.deepEqual(badDur.json.errors, ["duration: must be between 1 and 190"]);

  const unauth = await call(STAB, { headers: { authorization: "Bearer nope" }, body: form({ prompt: "x" }) });
  assert.equal(unauth.status, 401);
  assert.equal(unauth.json.name, "unauthorized");
});

// ---------------------------------------------------------------- PayPal

async function paypalToken() {
  const basic = Buffer.from(`${K.paypalClientId}:${K.paypalClientSecret}`).toString("base64");
  const r = await call("/paypal/v1/oauth2/token", {
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: "grant_type=client_credentials",
  });
  assert.equal(r.status, 200);
  return r.json;
}

function verifyBody({ rawEvent, transmissionId = "3c9e8f20-8250-11f0-9d4a-5b1f7e2c9a11", transmissionTime = "2025-08-26T09:15:03Z", webhookId = K.paypalWebhookId, sig }) {
  return `{"auth_algo":"SHA256withRSA","cert_url":"https://api.sandbox.paypal.com/v1/notifications/certs/CERT-mock","transmission_id":${JSON.stringify(transmissionId)},"transmission_sig":${JSON.stringify(sig)},"transmission_time":${JSON.stringify(transmissionTime)},"webhook_id":${JSON.stringify(webhookId)},"webhook_event":${rawEvent}}`;
}

test("paypal oauth2 token", async () => {
  const t = await paypalToken();
  assert.deepEqual(Object.keys(t), ["scope", "access_token", "token_type", "app_id", "expires_in", "nonce"]);
  assert.equal(t.token_type, "Bearer");
  assert.equal(t.expires_in, 32400);
  const bad = await call("/paypal/v1/oauth2/token", { headers: { authorization: `Basic ${Buffer.from("x:y").toString("base64")}` }, body: "grant_type=client_credentials" });
  assert.equal(bad.status, 401);
  assert.deepEqual(bad.json, { error: "invalid_client", error_description: "Client Authentication failed" });
});

test("paypal verify-webhook-signature: SUCCESS / FAILURE on exact raw bytes", async () => {
  assert.equal(crc32("123456789"), 3421780262);
  const { access_token } = await paypalToken();
  const auth = { authorization: `Bearer ${access_token}`, "content-type": "application/json" };
  const rawEvent = '{"id":"WH-7YT41358GK0981934-2CJ55263LM117021X","event_type":"PAYMENT.CAPTURE.COMPLETED", "resource": {"custom_id":"usr_1:pack_2000","amount":{"value":"20.00","currency_code":"USD"}}}';
  const base = { transmissionId: "t-1", transmissionTime: "2025-08-26T09:15:03Z" };
  const sig = paypalSign({ ...base, webhookId: K.paypalWebhookId, rawEvent, secret: K.paypalSigningSecret });
  const send = (body, headers = auth) => call("/paypal/v1/notifications/verify-webhook-signature", { headers, body });

  const ok = await send(verifyBody({ rawEvent, sig, ...base }));
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json, { verification_status: "SUCCESS" });

  // Re-serialized event (whitespace changed) => different CRC => FAILURE, still HTTP 200.
  const reser = await send(verifyBody({ rawEvent: JSON.stringify(JSON.parse(rawEvent)), sig, ...base }));
  assert.equal(reser.status, 200);
  assert.deepEqual(reser.json, { verification_status: "FAILURE" });
  const wrongId = await send(verifyBody({ rawEvent, sig: paypalSign({ ...base, webhookId: "WH-OTHER", rawEvent }), ...base, webhookId: "WH-OTHER" }));
  assert.deepEqual(wrongId.json, { verification_status: "FAILURE" });
  const wrongSig = await send(verifyBody({ rawEvent, sig: "00".repeat(32), ...base }));
  assert.deepEqual(wrongSig.json, { verification_status: "FAILURE" });

  await mock.script({ provider: "paypal-verify", verification_status: "FAILURE" });
  assert.deepEqual((await send(verifyBody({ rawEvent, sig, ...base }))).json, { verification_status: "FAILURE" });
  assert.deepEqual((await send(verifyBody({ rawEvent, sig, ...base }))).json, { verification_status: "SUCCESS" });

  const noToken = await send(verifyBody({ rawEvent, sig, ...base }), { "content-type": "application/json" });
  assert.equal(noToken.status, 401);
  const fakeToken = await send(verifyBody({ rawEvent, sig, ...base }), { ...auth, authorization: "Bearer A21AAnot-issued" });
  assert.equal(fakeToken.status, 401);
});

// ---------------------------------------------------------------- Control API

test("script: status with the provider's default error body, times, FIFO, wildcard", async () => {
  await mock.script({ provider: "openai", status: 429, times: 2 });
  await mock.script({ provider: "*", status: 503 });
  for (let i = 0; i < 2; i++) {
    const r = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody() });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, "rate_limit_exceeded");
    assert.ok(r.headers.get("x-ratelimit-limit-requests"));
  }
  const g = await call(`${GEM}:generateContent`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody() });
  assert.equal(g.status, 503);
  assert.equal(g.json.error.status, "UNAVAILABLE");
  assert.equal((await call("/openai/v1/chat/completions", { headers: OA, json: chatBody() })).status, 200);

  await mock.script({ provider: "anthropic", status: 529 });
  const a = await call("/anthropic/v1/messages", { headers: AN, json: { model: "c", max_tokens: 5, messages: [{ role: "user", content: "x" }] } });
  assert.equal(a.status, 529);
  assert.equal(a.json.error.type, "overloaded_error");

  await mock.script({ provider: "elevenlabs", status: 500, body: { detail: "custom" } });
  const e = await call("/elevenlabs/v1/text-to-speech/v", { headers: { "xi-api-key": K.elevenlabsKey }, json: { text: "x" } });
  assert.equal(e.status, 500);
  assert.deepEqual(e.json, { detail: "custom" });

  await mock.script({ provider: "stability", status: 502, body: "<html>bad gateway</html>" });
  const s = await call(STAB, { headers: { authorization: `Bearer ${K.stabilityKey}` }, body: form({ prompt: "x" }) });
  assert.equal(s.status, 502);
  assert.equal(s.text, "<html>bad gateway</html>");
});

test("script: delay_ms delays the head by at least the asked time", async () => {
  await mock.script({ provider: "openai", delay_ms: 400 });
  const t0 = Date.now();
  const r = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody() });
  assert.ok(Date.now() - t0 >= 390, `took ${Date.now() - t0} ms`);
  assert.equal(r.status, 200);
});

test("script: chunk_delay_ms spaces stream chunks", async () => {
  await mock.script({ provider: "gemini", chunk_delay_ms: 50 });
  const t0 = Date.now();
  const r = await call(`${GEM}:streamGenerateContent?alt=sse`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody(5) });
  assert.ok(Date.now() - t0 >= 4 * 50 - 10);
  assert.equal(parseSSE(r.text).length, 5);
});

test("script: cut_after_chunks really truncates the stream", async () => {
  await mock.script({ provider: "openai", cut_after_chunks: 3 });
  const res = await fetch(mock.url + "/openai/v1/chat/completions", {
    method: "POST", headers: { ...OA, "content-type": "application/json" },
    body: JSON.stringify(chatBody({ stream: true, stream_options: { include_usage: true } })),
  });
  assert.equal(res.status, 200);
  const { text, error } = await readPartial(res);
  assert.ok(error, "the body must end with a connection error");
  const ev = parseSSE(text);
  assert.equal(ev.length, 3);
  assert.ok(!text.includes("[DONE]"));
  assert.ok(!text.includes('"choices":[]'));

  await mock.script({ provider: "anthropic", cut_after_chunks: 4 });
  const ares = await fetch(mock.url + "/anthropic/v1/messages", {
    method: "POST", headers: { ...AN, "content-type": "application/json" },
    body: JSON.stringify({ model: "c", max_tokens: 10, stream: true, messages: [{ role: "user", content: "x" }] }),
  });
  const ap = await readPartial(ares);
  assert.ok(ap.error);
  assert.deepEqual(parseSSE(ap.text).map((e) => e.event), ["message_start", "content_block_start", "ping", "content_block_delta"]);

  // The server survives and answers normally afterwards.
  assert.equal((await call("/openai/v1/chat/completions", { headers: OA, json: chatBody() })).status, 200);
});

test("script: usage overrides per provider", async () => {
  await mock.script({ provider: "openai", usage: { prompt_tokens: 1864, completion_tokens: 214, cached_tokens: 1792, reasoning_tokens: 192 } });
  const o = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody({ stream: true, stream_options: { include_usage: true } }) });
  const u = parseSSE(o.text).at(-2).json.usage;
  assert.deepEqual(u, {
    prompt_tokens: 1864, completion_tokens: 214, total_tokens: 2078,
    prompt_tokens_details: { cached_tokens: 1792, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 192, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  });

  await mock.script({ provider: "anthropic", usage: { input_tokens: 12, output_tokens: 31, cache_creation_input_tokens: 2048, cache_read_input_tokens: 0 } });
  const a = await call("/anthropic/v1/messages", { headers: AN, json: { model: "c", max_tokens: 50, stream: true, messages: [{ role: "user", content: "x" }] } });
  const ev = parseSSE(a.text);
  assert.equal(ev[0].json.message.usage.cache_creation_input_tokens, 2048);
  assert.deepEqual(ev.find((e) => e.event === "message_delta").json.usage, { input_tokens: 12, cache_creation_input_tokens: 2048, cache_read_input_tokens: 0, output_tokens: 31 });

  await mock.script({ provider: "gemini", usage: { promptTokenCount: 31, candidatesTokenCount: 26, thoughtsTokenCount: 186, cachedContentTokenCount: 20 } });
  const g = await call(`${GEM}:streamGenerateContent?alt=sse`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody(3) });
  const gl = parseSSE(g.text).map((e) => e.json.usageMetadata);
  assert.equal(gl.length, 3);
  assert.ok(gl.every((m) => m.thoughtsTokenCount === 186 && m.promptTokenCount === 31 && m.cachedContentTokenCount === 20));
  assert.equal(gl.at(-1).candidatesTokenCount, 26);
  assert.equal(gl.at(-1).totalTokenCount, 31 + 26 + 186);
  assert.ok(gl[0].candidatesTokenCount <= gl[1].candidatesTokenCount && gl[1].candidatesTokenCount <= gl[2].candidatesTokenCount);
});

test("request log records everything, filters by provider, reset clears", async () => {
  await call("/openai/v1/chat/completions?x=1", { headers: { ...OA, "X-Custom": "Abc" }, json: chatBody() });
  await call(`${GEM}:generateContent?key=${K.googleKey}`, { json: gemBody() });
  await call("/elevenlabs/v1/text-to-speech/v", { headers: { "xi-api-key": K.elevenlabsKey }, body: "not json" });
  const all = await mock.requests();
  assert.deepEqual(all.map((r) => r.provider), ["openai", "gemini", "elevenlabs"]);
  const [o] = await mock.requests("openai");
  assert.equal(o.method, "POST");
  assert.equal(o.path, "/openai/v1/chat/completions");
  assert.equal(o.query, "x=1");
  assert.equal(o.headers["x-custom"], "Abc");
  assert.equal(o.headers.authorization, OA.authorization);
  assert.deepEqual(o.body, chatBody());
  assert.equal(o.raw_len, JSON.stringify(chatBody()).length);
  assert.ok(Math.abs(o.at_ms - Date.now()) < 60_000);
  assert.equal(all[2].body, "not json");
  await mock.reset();
  assert.deepEqual(await mock.requests(), []);
});

test("bad input never kills the server; each provider answers in its own error shape", async () => {
  const raw = await new Promise((resolve) => {
    const sock = net.connect(mock.port, "127.0.0.1", () => sock.write("GARBAGE\r\n\r\n"));
    let out = "";
    sock.on("data", (d) => { out += d; });
    sock.on("close", () => resolve(out));
    sock.on("error", () => resolve(out));
  });
  assert.match(raw, /^HTTP\/1\.1 400/);
  const junk = { body: "{not json", headers: { "content-type": "application/json" } };
  const o = await call("/openai/v1/chat/completions", { ...junk, headers: { ...junk.headers, ...OA } });
  assert.equal(o.status, 400);
  assert.equal(o.json.error.type, "invalid_request_error");
  const a = await call("/anthropic/v1/messages", { ...junk, headers: { ...junk.headers, ...AN } });
  assert.equal(a.status, 400);
  assert.equal(a.json.error.type, "invalid_request_error");
  const g = await call(`${GEM}:generateContent`, { ...junk, headers: { ...junk.headers, "x-goog-api-key": K.googleKey } });
  assert.equal(g.status, 400);
  assert.equal(g.json.error.status, "INVALID_ARGUMENT");
  const e = await call("/elevenlabs/v1/text-to-speech/v", { ...junk, headers: { ...junk.headers, "xi-api-key": K.elevenlabsKey } });
  assert.equal(e.status, 422);
  assert.ok(Array.isArray(e.json.detail));
  const s = await call(STAB, { ...junk, headers: { ...junk.headers, authorization: `Bearer ${K.stabilityKey}` } });
  assert.equal(s.status, 400);
  assert.equal(s.json.name, "bad_request");
  const { access_token } = await paypalToken();
  const p = await call("/paypal/v1/notifications/verify-webhook-signature", { ...junk, headers: { ...junk.headers, authorization: `Bearer ${access_token}` } });
  assert.equal(p.status, 400);
  assert.equal(typeof p.json.name, "string");
  assert.equal((await call("/__control/health", { method: "GET" })).status, 200);
});

// ---------------------------------------------------------------- Shapes vs fixtures

const FIX = process.env.FIXTURES_DIR || path.join(ROOT, "fixtures");
const haveFixtures = fs.existsSync(FIX);
const fixture = (f) => fs.readFileSync(`${FIX}/${f}`, "utf8");
/** Key paths (in order) + value types, ignoring values. Arrays: shape of the first element. */
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  return v === null ? "null" : typeof v;
}
const keysInOrder = (v) => JSON.stringify(shape(v));

test("same JSON shapes (keys, order, types) as the fixtures", { skip: !haveFixtures && "fixtures not found" }, async () => {
  // OpenAI plain + stream (gpt-5 family: no logprobs key, like the fixture).
  await mock.script({ provider: "openai", usage: { cached_tokens: 1 } });
  const o = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody() });
  assert.equal(keysInOrder(o.json), keysInOrder(JSON.parse(fixture("openai/chat-completion.response.json"))));
  const os = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody({ stream: true, stream_options: { include_usage: true } }) });
  const mine = parseSSE(os.text), theirs = parseSSE(fixture("openai/chat-completion.stream.sse"));
  const pick = (ev) => [ev[0], ev[1], ev.at(-3), ev.at(-2)].map((e) => keysInOrder(e.json));
  assert.deepEqual(pick(mine), pick(theirs));
  assert.equal(mine.at(-1).data, theirs.at(-1).data);

  // Anthropic plain + stream.
  const a = await call("/anthropic/v1/messages", { headers: AN, json: JSON.parse(fixture("anthropic/messages.request.json")) });
  assert.equal(keysInOrder(a.json), keysInOrder(JSON.parse(fixture("anthropic/messages.response.json"))));
  const as = await call("/anthropic/v1/messages", { headers: AN, json: { ...JSON.parse(fixture("anthropic/messages.request.json")), max_tokens: 3, stream: true } });
  assert.deepEqual(parseSSE(as.text).map((e) => [e.event, keysInOrder(e.json)]), parseSSE(fixture("anthropic/messages.stream.sse")).map((e) => [e.event, keysInOrder(e.json)]));
  assert.ok(as.text.includes('data: {"type": "ping"}\n\n'));
  const ae = await call("/anthropic/v1/messages", { headers: { ...AN, "x-api-key": "bad" }, json: {} });
  assert.equal(keysInOrder(ae.json), keysInOrder(JSON.parse(fixture("anthropic/error.json"))));

  // Gemini plain + SSE (fixture is a thinking model: script thoughtsTokenCount).
  const greq = JSON.parse(fixture("gemini/generateContent.request.json"));
  await mock.script({ provider: "gemini", usage: { thoughtsTokenCount: 186 }, times: 2 });
  const g = await call(`${GEM}:generateContent`, { headers: { "x-goog-api-key": K.googleKey }, json: greq });
  assert.equal(keysInOrder(g.json), keysInOrder(JSON.parse(fixture("gemini/generateContent.response.json"))));
  const gs = await call(`${GEM}:streamGenerateContent?alt=sse`, { headers: { "x-goog-api-key": K.googleKey }, json: { ...greq, generationConfig: { maxOutputTokens: 3 } } });
  assert.deepEqual(parseSSE(gs.text).map((e) => keysInOrder(e.json)), parseSSE(fixture("gemini/streamGenerateContent.sse")).map((e) => keysInOrder(e.json)));

  // OpenAI images.
  const img = await call("/openai/v1/images/generations", { headers: OA, json: JSON.parse(fixture("openai/images-generations.request.json")) });
  assert.equal(keysInOrder(img.json), keysInOrder(JSON.parse(fixture("openai/images-generations.response.json"))));
  const gi = await call("/openai/v1/images/generations", { headers: OA, json: { model: "gpt-image-1", prompt: "A watercolor lighthouse on a rocky coast at dawn", quality: "medium" } });
  const gfix = JSON.parse(fixture("openai/images-generations.gpt-image-1.response.json"));
  assert.equal(keysInOrder(gi.json), keysInOrder(gfix));
  assert.deepEqual(gi.json.usage, gfix.usage);
});

// ---------------------------------------------------------------- Control API: billing-integrity knobs

/** Read a stream; returns the text and, per SSE event, the ms since the request when it completed. */
async function timedEvents(url, init) {
  const t0 = performance.now();
  const res = await fetch(url, init);
  const reader = res.body.getReader();
  let text = "";
  const times = [];
  const dec = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    const complete = text.split(/\r?\n\r?\n/).length - 1;
    while (times.length < complete) times.push(performance.now() - t0);
  }
  return { res, text, times };
}

const streamCalls = {
  openai: () => [mock.url + "/openai/v1/chat/completions", { method: "POST", headers: { ...OA, "content-type": "application/json" }, body: JSON.stringify(chatBody({ stream: true, max_tokens: 4 })) }],
  anthropic: () => [mock.url + "/anthropic/v1/messages", { method: "POST", headers: { ...AN, "content-type": "application/json" }, body: JSON.stringify({ model: "c", max_tokens: 4, stream: true, messages: [{ role: "user", content: "x" }] }) }],
  gemini: () => [mock.url + `${GEM}:streamGenerateContent?alt=sse`, { method: "POST", headers: { "x-goog-api-key": K.googleKey, "content-type": "application/json" }, body: JSON.stringify(gemBody(4)) }],
};

test("script: stall_after_chunks + stall_ms pause a stream once, then it goes on normally", async () => {
  for (const [provider, callArgs] of Object.entries(streamCalls)) {
    await mock.script({ provider, stall_after_chunks: 2, stall_ms: 400 });
    const { res, text, times } = await timedEvents(...callArgs());
    assert.equal(res.status, 200, provider);
    // The third event comes after the stall (a late reader only makes it later); the first two
    // before it. (Their gap itself is not measured: a loaded reader may see the second one late.)
    assert.ok(times[2] >= 380, `${provider}: the third event came ${times[2]} ms after the request`);
    assert.ok(times[1] < 300, `${provider}: the first 2 chunks came at once (${times[1]} ms)`);
    const plain = await (await fetch(...callArgs())).text();
    assert.equal(parseSSE(text).length, parseSSE(plain).length, `${provider}: same events as without the stall`);
  }
});

test("script: raw_stream answers these exact bytes as an SSE body; raw_body as a plain body", async () => {
  const raw = 'data: [1,2]\n\ndata: "x"\n\n: comment without a blank line';
  await mock.script({ provider: "openai", raw_stream: raw, chunk_delay_ms: 100 });
  const { res, text, times } = await timedEvents(...streamCalls.openai());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(text, raw);
  assert.ok(times[1] - times[0] >= 90, "one event per chunk, paced by chunk_delay_ms");

  await mock.script({ provider: "anthropic", raw_body: '{"type":"message","content":[', content_type: "application/json" });
  const a = await call("/anthropic/v1/messages", { headers: AN, json: { model: "c", max_tokens: 5, messages: [{ role: "user", content: "x" }] } });
  assert.equal(a.status, 200);
  assert.equal(a.headers.get("content-type"), "application/json");
  assert.equal(a.text, '{"type":"message","content":[');

  await mock.script({ provider: "gemini", raw_body: "<html>upstream</html>", content_type: "text/html", status: 502 });
  const g = await call(`${GEM}:generateContent`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody() });
  assert.equal(g.status, 502);
  assert.equal(g.text, "<html>upstream</html>");

  const both = await call("/__control/script", { json: { provider: "openai", raw_body: "x", raw_stream: "y" } });
  assert.equal(both.status, 400);
});

test("script: output_tokens and token_bytes make long/big replies with consistent usage", async () => {
  const words = (n) => Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join(" ");

  await mock.script({ provider: "openai", output_tokens: 30 });
  const o = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody({ stream: true, stream_options: { include_usage: true } }) });
  const oc = parseSSE(o.text).slice(0, -1).map((e) => e.json);
  assert.equal(oc.filter((c) => c.choices[0]?.delta?.content).length, 30);
  assert.equal(oc.map((c) => c.choices[0]?.delta?.content ?? "").join(""), words(30));
  assert.equal(oc.at(-2).choices[0].finish_reason, "stop");
  assert.equal(oc.at(-1).usage.completion_tokens, 30);

  await mock.script({ provider: "openai", output_tokens: 800 });
  const capped = await call("/openai/v1/chat/completions", { headers: OA, json: chatBody({ max_tokens: 10 }) });
  assert.equal(capped.json.choices[0].message.content, words(10));
  assert.equal(capped.json.choices[0].finish_reason, "length");
  assert.equal(capped.json.usage.completion_tokens, 10);

  await mock.script({ provider: "anthropic", output_tokens: 200, token_bytes: 16 * 1024 });
  const a = await call("/anthropic/v1/messages", { headers: AN, json: { model: "c", max_tokens: 1000, stream: true, messages: [{ role: "user", content: "x" }] } });
  const deltas = parseSSE(a.text).filter((e) => e.event === "content_block_delta").map((e) => e.json.delta.text);
  assert.equal(deltas.length, 200);
  assert.ok(deltas.every((t) => Buffer.byteLength(t) === 16 * 1024));
  assert.ok(deltas[1].startsWith(" reply."));
  const md = parseSSE(a.text).find((e) => e.event === "message_delta").json;
  assert.equal(md.usage.output_tokens, 200);
  assert.equal(md.delta.stop_reason, "end_turn");

  await mock.script({ provider: "gemini", output_tokens: 5, token_bytes: 8 });
  const g = await call(`${GEM}:streamGenerateContent?alt=sse`, { headers: { "x-goog-api-key": K.googleKey }, json: gemBody() });
  const gc = parseSSE(g.text).map((e) => e.json);
  assert.equal(gc.length, 5);
  assert.equal(gc.map((c) => c.candidates[0].content.parts[0].text).join(""), "Mock.... reply.. from... the.... deterministic", "words longer than token_bytes stay whole");
  assert.equal(gc.at(-1).usageMetadata.candidatesTokenCount, 5);
  assert.equal(gc.at(-1).candidates[0].finishReason, "STOP");
});

test("request log is a ring buffer of the last 1000 requests", async () => {
  for (let i = 0; i < 1005; i += 67) {
    await Promise.all(Array.from({ length: Math.min(67, 1005 - i) }, (_, j) =>
      call(`/openai/v1/models?i=${i + j}`, { method: "GET" })));
  }
  const log = await mock.requests("openai");
  assert.equal(log.length, 1000);
  const seen = new Set(log.map((r) => Number(new URLSearchParams(r.query).get("i"))));
  assert.equal(seen.size, 1000);
});

test("stripe: the official stripe library creates Checkout and Billing Portal sessions on the mock", async () => {
  const { default: Stripe } = await import("stripe");
  const port = Number(new URL(mock.url).port);
  const api = new Stripe(K.stripeKey, { host: "127.0.0.1", port, protocol: "http", maxNetworkRetries: 0 });
  const pack = await api.checkout.sessions.create({
    mode: "payment", success_url: "https://a.example/ok", cancel_url: "https://a.example/no", client_reference_id: "key_0123456789abcdef",
    line_items: [{ quantity: 1, price_data: { currency: "usd", unit_amount: 2500, product_data: { name: "2500 credits" } } }],
    metadata: { key_id: "key_0123456789abcdef", credits: "2500" },
  }, { idempotencyKey: "lib-1" });
  assert.match(pack.id, /^cs_test_/);
  assert.equal(pack.object, "checkout.session");
  assert.equal(pack.amount_total, 2500);
  assert.equal(pack.metadata.credits, "2500");
  assert.equal(pack.payment_status, "unpaid");
  const again = await api.checkout.sessions.create({
    mode: "payment", success_url: "https://a.example/ok", cancel_url: "https://a.example/no", client_reference_id: "key_0123456789abcdef",
    line_items: [{ quantity: 1, price_data: { currency: "usd", unit_amount: 2500, product_data: { name: "2500 credits" } } }],
    metadata: { key_id: "key_0123456789abcdef", credits: "2500" },
  }, { idempotencyKey: "lib-1" });
  assert.equal(again.id, pack.id, "an idempotent retry answers the first session");
  const sub = await api.checkout.sessions.create({ mode: "subscription", success_url: "https://a.example/ok", line_items: [{ price: "price_pro_4900", quantity: 1 }] });
  assert.equal(sub.amount_total, 4900);
  const portal = await api.billingPortal.sessions.create({ customer: "cus_1", return_url: "https://a.example/" });
  assert.equal(portal.object, "billing_portal.session");
  // Stripe's errors reach the library as its own error types.
  await assert.rejects(api.checkout.sessions.create({ success_url: "https://a.example/ok" }), (e) => e.type === "StripeInvalidRequestError" && e.param === "mode");
  const wrong = new Stripe("sk_test_wrong_key_0000", { host: "127.0.0.1", port, protocol: "http", maxNetworkRetries: 0 });
  await assert.rejects(wrong.checkout.sessions.create({ mode: "payment" }), (e) => e.type === "StripeAuthenticationError");
});
