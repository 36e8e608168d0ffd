// The clients people run, unmodified, against the local stack (only their base URL and key
// changed): Claude Code headless, the google-genai Python SDK, and embeddings through the
// openai SDK; plus the routes they use, called directly for what a client does not show
// (headers, refusals, count_tokens). Pinned versions come from scripts/setup-clients (installed
// outside the checkout). Every answer comes from the mocks; every charge is computed here from
// the mock's usage at list price (shared/prices/REFERENCE.md; embeddings: genai-prices, LiteLLM).
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import OpenAI from "openai";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { parseSSE } from "./lib/mocks.mjs";
import { assertGeminiSdkSent, clientHome, listPriceMc, run, settledCalls, setupClients, tempDir } from "./lib/clients.mjs";

let stack, c;
before(async () => {
  setupClients();
  stack = await getStack();
  c = client(stack);
});
after(releaseStack);
beforeEach(async () => {
  await c.mockReset();
  await c.resetIpLimits();
});

// List prices, micro-USD per 1M tokens: [input, output].
const PRICES = {
  "claude-opus-5-5": [4_000_000n, 20_000_000n],
  "claude-sonnet-4-6": [3_000_000n, 15_000_000n],
  "claude-haiku-4-5": [1_000_000n, 5_000_000n],
  "gemini-3.5-flash": [1_500_000n, 9_000_000n],
  "text-embedding-3-small": [20_000n, 0n],
  "text-embedding-3-large": [130_000n, 0n],
};
const expectedMc = (model, inTok, outTok = 0) => listPriceMc(PRICES, model, inTok, outTok);
/** The mock's embedding usage rule: a text costs max(1, ceil(chars / 4)) tokens, token ids their count. */
const embedTokens = (inputs) => inputs.reduce((n, x) => n + (typeof x === "string" ? Math.max(1, Math.ceil([...x].length / 4)) : x.length), 0);

const calls = (keyId, n) => settledCalls(c, keyId, n);

test("Claude Code (claude -p) answers from the mock through /v1/messages, every call charged its usage at list price", async () => {
  const key = await c.createKey({ credits: 3000 });
  // The mock reports this usage for each of Claude Code's calls, whatever it sends.
  await c.mockScript({ provider: "anthropic", times: 20, usage: { input_tokens: 1500, output_tokens: 7 } });
  const home = tempDir("claude-home-");
  const claude = path.join(clientHome("claude-code"), "node_modules", ".bin", "claude");
  const env = {
    HOME: home, CLAUDE_CONFIG_DIR: path.join(home, ".claude"), ANTHROPIC_BASE_URL: stack.workerUrl,
    // No telemetry, error reports, update checks or other traffic beyond the model calls.
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_TELEMETRY: "1", DISABLE_ERROR_REPORTING: "1", DISABLE_AUTOUPDATER: "1",
  };
  for (const auth of ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"]) {
    const before = (await calls(key.id, 0)).length;
    const r = await run(claude, ["-p", "Say hi"], { env: { ...env, [auth]: key.api_key }, cwd: home });
    assert.equal(r.code, 0, `${auth}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^Mock reply/, auth);
    const sent = (await c.mockRequests("anthropic")).filter((q) => q.path === "/anthropic/v1/messages");
    assert.ok(sent.length > before - 0, auth);
    const entries = await calls(key.id, before + 1);
    assert.ok(entries.length > before, `${auth}: a call was charged`);
    for (const e of entries) {
      assert.equal(e.exact, true);
      assert.equal(e.amount, -expectedMc(e.model, 1500, 7), `${e.model} ${e.ref}`);
    }
  }
  // What reached Anthropic: Claude Code's own body, with only the allowlisted betas.
  const last = (await c.mockRequests("anthropic")).at(-1);
  const beta = last.headers["anthropic-beta"] ?? "";
  assert.ok(beta.includes("context-management-2025-06-27") && beta.includes("claude-code-20250219"), beta);
  assert.ok(!beta.includes("thinking-token-count"), `a beta outside the allowlist was forwarded: ${beta}`);
  assert.equal(last.body.context_management.edits[0].type, "clear_thinking_20251015");
  assert.ok(last.body.system.some((b) => b.cache_control), "the system array with cache_control");
  assert.equal(last.query, "", "the gateway calls Anthropic without ?beta=true");
});

test("/v1/messages?beta=true with Claude Code's captured body: betas forwarded, dropped or refused, and said so", async () => {
  const key = await c.createKey({ credits: 3000 });
  const body = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "..", "fixtures", "anthropic", "claude-code.request.json"), "utf8"));
  const betas = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24";
  const headers = { "x-api-key": key.api_key, "anthropic-version": "2023-06-01", "anthropic-beta": betas, "content-type": "application/json" };
  const r = await fetch(`${stack.workerUrl}/v1/messages?beta=true`, { method: "POST", headers, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get("x-broker-dropped-betas"), "mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13");
  const events = parseSSE(await r.text());
  assert.equal(events.at(-1).event, "message_stop");
  const [sent] = await c.mockRequests("anthropic");
  assert.equal(sent.headers["anthropic-beta"],
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,advanced-tool-use-2025-11-20,effort-2025-11-24");
  // A price-changing beta is refused before anything is held.
  const balance = await c.balanceMc(key.api_key);
  const refused = await fetch(`${stack.workerUrl}/v1/messages`, { method: "POST", headers: { ...headers, "anthropic-beta": "context-1m-2025-08-07" }, body: JSON.stringify(body) });
  assert.equal(refused.status, 400);
  const err = await refused.json();
  assert.equal(err.type, "error");
  assert.match(err.error.message, /context-1m-2025-08-07/);
  // context_management without its beta: refused by the gateway naming both, before any hold and
  // without a provider call (Anthropic would refuse it after the hold).
  const sentBefore = (await c.mockRequests("anthropic")).length;
  const noBeta = await fetch(`${stack.workerUrl}/v1/messages`, { method: "POST", headers: { ...headers, "anthropic-beta": "" }, body: JSON.stringify(body) });
  assert.equal(noBeta.status, 400);
  const noBetaMessage = (await noBeta.json()).error.message;
  assert.match(noBetaMessage, /context-management-2025-06-27/);
  assert.match(noBetaMessage, /`context_management`/);
  assert.equal((await c.mockRequests("anthropic")).length, sentBefore, "nothing reached Anthropic");
  // Compaction is a second model call billed apart: refused by name.
  const compact = await fetch(`${stack.workerUrl}/v1/messages`, { method: "POST", headers, body: JSON.stringify({ ...body, context_management: { edits: [{ type: "compact_20260112" }] } }) });
  assert.equal(compact.status, 400);
  assert.match((await compact.json()).error.message, /compact_20260112/);
  // Only the served call is in the ledger: the gateway's refusals hold nothing.
  const entries = await calls(key.id, 1);
  assert.deepEqual(entries.map((e) => e.amount < 0), [true], "one charged call");
  assert.equal(await c.balanceMc(key.api_key), balance);
});

test("count_tokens: Anthropic's count, authenticated, never charged", async () => {
  const key = await c.createKey({ credits: 5 });
  const before = await c.balanceMc(key.api_key);
  const ask = (body, headers = {}) => fetch(`${stack.workerUrl}/v1/messages/count_tokens`, {
    method: "POST", headers: { "x-api-key": key.api_key, "anthropic-version": "2023-06-01", "content-type": "application/json", ...headers }, body: JSON.stringify(body),
  });
  // The mock counts 3 + Σ (ceil(chars / 4) + 4): system "Be brief." (9) and "Say hi" (6).
  const r = await ask({ model: "claude-haiku-4-5", system: "Be brief.", messages: [{ role: "user", content: "Say hi" }] });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { input_tokens: 3 + (3 + 4) + (2 + 4) });
  // With Claude Code's context_management and its beta.
  const cm = await ask({ model: "claude-haiku-4-5", messages: [{ role: "user", content: "Say hi" }], context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] } },
    { "anthropic-beta": "context-management-2025-06-27,some-future-beta-2027-01-01" });
  assert.equal(cm.status, 200);
  assert.equal(cm.headers.get("x-broker-dropped-betas"), "some-future-beta-2027-01-01");
  assert.equal(await c.balanceMc(key.api_key), before, "nothing charged");
  assert.deepEqual(await calls(key.id, 0), [], "nothing in the ledger");
  for (const [body, status, says] of [
    [{ model: "claude-haiku-4-5", messages: [{ role: "user", content: "x" }], max_tokens: 5 }, 400, "max_tokens"],
    [{ model: "claude-9", messages: [{ role: "user", content: "x" }] }, 400, "claude-9"],
  ]) {
    const e = await ask(body);
    assert.equal(e.status, status);
    const j = await e.json();
    assert.equal(j.type, "error");
    assert.match(j.error.message, new RegExp(says));
  }
  const anon = await fetch(`${stack.workerUrl}/v1/messages/count_tokens`, { method: "POST", headers: { "x-api-key": "sk-broker-nope", "content-type": "application/json" }, body: JSON.stringify({ model: "claude-haiku-4-5", messages: [{ role: "user", content: "x" }] }) });
  assert.equal(anon.status, 401);
  assert.equal((await anon.json()).error.type, "authentication_error");
});

test("embeddings through the openai SDK: base64 (its default) and float, token ids, dimensions; charged the mock's usage", async () => {
  const key = await c.createKey({ credits: 10 });
  const openai = new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0 });
  const cases = [
    [{ model: "text-embedding-3-small", input: ["Hello world", "Hi"] }, "base64", 1536],
    [{ model: "text-embedding-3-small", input: "The quick brown fox", encoding_format: "float" }, "float", 1536],
    [{ model: "text-embedding-3-large", input: [[9906, 1917], [13347]], dimensions: 256, encoding_format: "float" }, "float", 256],
  ];
  for (const [i, [params, wire, dims]] of cases.entries()) {
    const r = await openai.embeddings.create(params);
    const inputs = Array.isArray(params.input) ? params.input : [params.input];
    assert.equal(r.data.length, inputs.length);
    for (const d of r.data) {
      assert.equal(d.embedding.length, dims);
      assert.ok(d.embedding.every((x) => typeof x === "number" && Number.isFinite(x)));
    }
    const tokens = embedTokens(inputs);
    assert.equal(r.usage.prompt_tokens, tokens);
    const [sent] = (await c.mockRequests("openai-embeddings")).slice(-1);
    assert.equal(sent.body.encoding_format ?? "float", wire, "what the SDK asked for");
    const entries = await calls(key.id, i + 1);
    const entry = entries.find((e) => e.ref === r.x_broker.request_id);
    assert.ok(entry, "the answer names its ledger entry");
    assert.equal(entry.amount, -expectedMc(params.model, tokens));
    assert.equal(entry.exact, true);
    assert.ok(entry.hold >= -entry.amount);
  }
  // Bad input: OpenAI's error shape, nothing held.
  const balance = await c.balanceMc(key.api_key);
  for (const [body, status, says] of [
    [{ model: "text-embedding-3-small", input: "x", truncate: true }, 400, "`truncate`"],
    [{ model: "gemini-embedding-001", input: "x" }, 400, "not priced"],
    [{ model: "text-embedding-ada-002", input: "x", dimensions: 8 }, 400, "dimensions"],
    [{ model: "text-embedding-3-small", input: "x".repeat(3 << 20) }, 413, "exceeds"],
  ]) {
    const r = await c.api("/v1/embeddings", { key: key.api_key, body });
    assert.equal(r.status, status, JSON.stringify(body).slice(0, 80));
    const j = await r.json();
    assert.match(j.error.message, new RegExp(says));
    assert.ok("param" in j.error && "code" in j.error, "OpenAI's error shape");
  }
  assert.equal(await c.balanceMc(key.api_key), balance);
});

const GENAI_SCRIPT = `
import json, os
from google import genai
from google.genai import types, errors
client = genai.Client(api_key=os.environ["KEY"], http_options=types.HttpOptions(base_url=os.environ["BASE"]))
config = types.GenerateContentConfig(max_output_tokens=50, system_instruction="Be brief.")
out = {}
r = client.models.generate_content(model="gemini-3.5-flash", contents="Say hi", config=config)
out["text"] = r.text
out["usage"] = r.usage_metadata.model_dump(mode="json", exclude_none=True)
text, usage = "", None
for chunk in client.models.generate_content_stream(model="gemini-3.5-flash", contents="Say hi", config=config):
    text += chunk.text or ""
    usage = chunk.usage_metadata or usage
out["stream_text"] = text
out["stream_usage"] = usage.model_dump(mode="json", exclude_none=True)
out["count"] = client.models.count_tokens(model="gemini-3.5-flash", contents="Say hi").total_tokens
for name, call in [("unpriced", lambda: client.models.generate_content(model="gemini-9-ultra", contents="x")),
                   ("search", lambda: client.models.generate_content(model="gemini-3.5-flash", contents="x", config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])))]:
    try:
        call()
        out[name] = "served"
    except errors.ClientError as e:
        out[name] = {"code": e.code, "status": e.status, "message": e.message}
print(json.dumps(out))
`;

test("google-genai (Python) with only its base URL changed: generateContent and the SSE stream, charged the mock's usage", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "gemini", times: 2, usage: { promptTokenCount: 120, candidatesTokenCount: 24, thoughtsTokenCount: 10 } });
  const python = path.join(clientHome("google-genai"), "bin", "python");
  const r = await run(python, ["-c", GENAI_SCRIPT], { env: { KEY: key.api_key, BASE: stack.workerUrl, HOME: tempDir("genai-home-") } });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1));
  assert.match(out.text, /^Mock reply/);
  assert.equal(out.stream_text, out.text);
  for (const u of [out.usage, out.stream_usage]) assert.deepEqual([u.prompt_token_count, u.candidates_token_count, u.thoughts_token_count], [120, 24, 10]);
  // countTokens: the mock's rule, 3 + (ceil(6 / 4) + 4); free.
  assert.equal(out.count, 9);
  assert.deepEqual([out.unpriced.code, out.unpriced.status], [400, "INVALID_ARGUMENT"]);
  assert.match(out.unpriced.message, /gemini-9-ultra/);
  assert.deepEqual([out.search.code, out.search.status], [400, "INVALID_ARGUMENT"]);
  assert.match(out.search.message, /googleSearch/);
  // Both calls charged their usage: 120 in, 24 + 10 thoughts out; the count is not in the ledger.
  const entries = await calls(key.id, 2);
  assert.equal(entries.length, 2);
  for (const e of entries) assert.equal(e.amount, -expectedMc("gemini-3.5-flash", 120, 34));
  // What Gemini was sent: the SDK's body, with the key in the gateway's own header.
  await assertGeminiSdkSent(c, 2);
});

test("Gemini's own API by hand: ?key= works and stays out of the log; bad input in Google's error shape", async () => {
  const key = await c.createKey({ credits: 10 });
  const url = (method, query = "") => `${stack.workerUrl}/v1beta/models/gemini-3.5-flash:${method}${query}`;
  const body = { contents: [{ role: "user", parts: [{ text: "Say hi" }] }], generationConfig: { maxOutputTokens: 5 } };
  const r = await fetch(url("streamGenerateContent", `?alt=sse&key=${key.api_key}`), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/event-stream/);
  const chunks = parseSSE(await r.text());
  assert.equal(chunks.at(-1).json.candidates[0].finishReason, "MAX_TOKENS");
  // The mock's usage rule: 3 + (ceil(6 / 4) + 4) prompt tokens, 5 output tokens.
  const [entry] = await calls(key.id, 1);
  assert.equal(entry.amount, -expectedMc("gemini-3.5-flash", 9, 5));
  // The call's log lines reach the log after its ledger entry: wait for them.
  let ours = [];
  for (let i = 0; i < 100 && !ours.some((l) => l.msg === "settlement"); i++) {
    ours = c.logLines().filter((l) => JSON.stringify(l).includes(entry.ref));
    if (!ours.some((l) => l.msg === "settlement")) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(ours.some((l) => l.msg === "settlement"), "the call's settlement is logged");
  assert.ok(!c.logLines().some((l) => JSON.stringify(l).includes(key.api_key)), "the ?key= value is not in the worker's log");
  for (const [method, b, status, gstatus, says] of [
    ["generateContent", { ...body, cachedContent: "cachedContents/x" }, 400, "INVALID_ARGUMENT", "cachedContent"],
    ["generateContent", { ...body, generationConfig: { candidateCount: 2 } }, 400, "INVALID_ARGUMENT", "candidateCount"],
    ["streamGenerateContent", body, 400, "INVALID_ARGUMENT", "alt=sse"],
    ["generateContent", { contents: [{ parts: [{ text: "x".repeat(3 << 20) }] }] }, 413, "INVALID_ARGUMENT", "exceeds"],
  ]) {
    const e = await fetch(url(method), { method: "POST", headers: { "x-goog-api-key": key.api_key, "content-type": "application/json" }, body: JSON.stringify(b) });
    assert.equal(e.status, status, says);
    const j = await e.json();
    assert.deepEqual([j.error.code, j.error.status], [status, gstatus]);
    assert.match(j.error.message, new RegExp(says));
  }
  const anon = await fetch(url("generateContent"), { method: "POST", headers: { "x-goog-api-key": "not-a-key-at-all", "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(anon.status, 401);
  assert.equal((await anon.json()).error.status, "UNAUTHENTICATED");
});
