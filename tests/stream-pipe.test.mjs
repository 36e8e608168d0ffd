// Same-format streams at the cost of a pipe (issue 22): an OpenAI stream to an OpenAI client that
// asked for usage, and an Anthropic stream to an Anthropic client, are the provider's bytes,
// byte for byte, handed over by the runtime's own pipe while the gateway meters a copy. The
// provider's bytes here are the recorded streams of fixtures/ (sent by the mock as they are);
// charges are computed from REFERENCE.md's list prices × the usage those bytes report.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { useStack } from "./lib/stack-client.mjs";
import { startMiniflareWorker } from "./lib/miniflare.mjs";
import { ROOT } from "./lib/procs.mjs";

const { c, stack } = await useStack();

/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once: pico-USD × 18 / 1e8. */
const mcOf = (pico) => Number((pico * 18n + 99_999_999n) / 100_000_000n);
// List prices in pico-USD per token (REFERENCE.md, per 1M tokens: gpt-4o-mini $0.15 in, $0.075
// cached, $0.60 out; claude-haiku-4-5 $1 in, $1.25 5-minute cache write, $5 out).
const MINI = { input: 150_000n, cached: 75_000n, output: 600_000n };
const HAIKU = { input: 1_000_000n, write5m: 1_250_000n, output: 5_000_000n };

// The recorded streams, served as the models asked for here.
const fixture = (p) => fs.readFileSync(path.join(ROOT, "fixtures", p), "utf8");
const OPENAI_SSE = fixture("openai/chat-completion.stream.sse").replaceAll("gpt-5-mini-2025-08-07", "gpt-4o-mini-2024-07-18");
const ANTHROPIC_SSE = fixture("anthropic/messages.stream.sse").replaceAll("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001");
const events = (sse) => sse.split(/(?<=\n\n)/);
const dataOf = (event) => JSON.parse(event.split("\n").find((l) => l.startsWith("data: ")).slice(6));

/** The settlement log line of a request (the worker's log), once it is there. */
const settlementLine = async (rid) => (await c.linesOf(rid, ["settlement"])).find((l) => l.msg === "settlement");

const post = (key, p, body, headers = {}) => fetch(`${stack.workerUrl}${p}`, {
  method: "POST", headers: { authorization: `Bearer ${key.api_key}`, "content-type": "application/json", ...headers }, body: JSON.stringify(body),
});

test("an OpenAI stream with usage asked for is OpenAI's bytes, byte for byte, charged list price × the usage they report", async () => {
  const key = await c.createKey({ credits: 5 });
  await c.mockScript({ provider: "openai", raw_stream: OPENAI_SSE, chunk_delay_ms: 2 });
  const res = await post(key, "/v1/chat/completions", { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, max_tokens: 300, messages: [{ role: "user", content: "where are my API keys?" }] });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const rid = res.headers.get("x-request-id");
  assert.equal(await res.text(), OPENAI_SSE, "the provider's bytes, nothing added, nothing taken");
  const usage = events(OPENAI_SSE).map((e) => e.startsWith("data: {") && dataOf(e)).find((d) => d && d.usage)?.usage;
  const cached = BigInt(usage.prompt_tokens_details.cached_tokens);
  const want = mcOf((BigInt(usage.prompt_tokens) - cached) * MINI.input + cached * MINI.cached + BigInt(usage.completion_tokens) * MINI.output);
  const [entry] = (await c.settled(key.id, rid)).filter((e) => e.type === "call");
  assert.deepEqual([-entry.amount, entry.exact], [want, true]);
  const line = await settlementLine(rid);
  assert.equal(line.piped, true, "handed over as the runtime's pipe");
  // The call's bill says what the stream no longer carries in-band.
  const bill = await (await c.api(`/v1/requests/${rid}`, { key: key.api_key, method: "GET" })).json();
  assert.deepEqual([bill.status, bill.charged_mc], ["settled", want]);
});

test("an Anthropic stream is Anthropic's bytes, byte for byte, charged list price × the usage they report", async () => {
  const key = await c.createKey({ credits: 5 });
  await c.mockScript({ provider: "anthropic", raw_stream: ANTHROPIC_SSE, chunk_delay_ms: 2 });
  const res = await post(key, "/v1/messages", { model: "claude-haiku-4-5", stream: true, max_tokens: 300, messages: [{ role: "user", content: "where are my API keys?" }] }, { "anthropic-version": "2023-06-01" });
  assert.equal(res.status, 200);
  const rid = res.headers.get("x-request-id");
  assert.equal(await res.text(), ANTHROPIC_SSE);
  const delta = events(ANTHROPIC_SSE).map((e) => e.includes("data: {") && dataOf(e)).find((d) => d && d.type === "message_delta");
  const start = events(ANTHROPIC_SSE).map((e) => e.includes("data: {") && dataOf(e)).find((d) => d && d.type === "message_start");
  const u = start.message.usage;
  const want = mcOf(BigInt(u.input_tokens) * HAIKU.input + BigInt(u.cache_creation.ephemeral_5m_input_tokens) * HAIKU.write5m + BigInt(delta.usage.output_tokens) * HAIKU.output);
  const [entry] = (await c.settled(key.id, rid)).filter((e) => e.type === "call");
  assert.deepEqual([-entry.amount, entry.exact], [want, true]);
  assert.equal((await settlementLine(rid)).piped, true);
});

test("a piped stream the provider breaks off: the client gets the provider's bytes as they came, and nothing more; billed the bound", async () => {
  const key = await c.createKey({ credits: 5 });
  await c.mockScript({ provider: "openai", raw_stream: OPENAI_SSE, cut_after_chunks: 5 });
  const res = await post(key, "/v1/chat/completions", { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, max_tokens: 40, messages: [{ role: "user", content: "cut" }] });
  assert.equal(res.status, 200);
  const rid = res.headers.get("x-request-id");
  // The client's body fails with the provider's, as the provider's own connection would (a local
  // Miniflare ends it cleanly instead): either way, what came is the provider's five events.
  let got = "";
  const reader = res.body.getReader();
  try {
    for (let r; !(r = await reader.read()).done;) got += new TextDecoder().decode(r.value);
  } catch {}
  assert.equal(got, events(OPENAI_SSE).slice(0, 5).join(""));
  const [entry] = (await c.settled(key.id, rid)).filter((e) => e.type === "call");
  assert.equal(entry.exact, false);
  assert.equal(entry.units.usage.output, 40, "the output it never reported is bounded by max_tokens");
  assert.match(entry.note, /broke off/);
});

test("a piped stream that ends cleanly but early: the provider's bytes, then the gateway's error event and [DONE]", async () => {
  const key = await c.createKey({ credits: 5 });
  const early = events(OPENAI_SSE).slice(0, 5).join("");
  await c.mockScript({ provider: "openai", raw_stream: early });
  const res = await post(key, "/v1/chat/completions", { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, max_tokens: 40, messages: [{ role: "user", content: "early" }] });
  const body = await res.text();
  assert.ok(body.startsWith(early), "the provider's bytes first, unchanged");
  const added = events(body.slice(early.length)).map((e) => e.slice(6, -2));
  assert.match(JSON.parse(added[0]).error.message, /ended early/, added[0]);
  assert.equal(added.at(-1), "[DONE]");
  const usage = JSON.parse(added.at(-2));
  assert.equal(usage.usage.completion_tokens, 40, "the usage chunk asked for: the bound billed");
  const [entry] = (await c.settled(key.id, res.headers.get("x-request-id"))).filter((e) => e.type === "call");
  assert.equal(-entry.amount, Math.round(usage.x_broker.credits_charged * 1000));
  assert.equal((await settlementLine(res.headers.get("x-request-id"))).piped, true);
});

test("a client that hangs up mid-pipe: the call is metered to its end and charged what the provider reported", async () => {
  const key = await c.createKey({ credits: 5 });
  // 120 tokens 2 ms apart: the provider finishes well inside the client-gone deadline (1.5 s).
  await c.mockScript({ provider: "openai", output_tokens: 120, chunk_delay_ms: 2 });
  const content = "a long answer, left early";
  const res = await post(key, "/v1/chat/completions", { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, max_tokens: 300, messages: [{ role: "user", content }] });
  const rid = res.headers.get("x-request-id");
  const reader = res.body.getReader();
  await reader.read();
  await reader.cancel();
  const [entry] = (await c.settled(key.id, rid, 20_000)).filter((e) => e.type === "call");
  // The mock's documented usage: 3 + ceil(chars/4) + 4 in, the 300 tokens asked for out.
  const input = 3 + Math.ceil(content.length / 4) + 4;
  assert.deepEqual([-entry.amount, entry.exact], [mcOf(BigInt(input) * MINI.input + 120n * MINI.output), true]);
  assert.match(entry.note ?? "", /client left/);
  assert.equal((await settlementLine(rid)).piped, true);
});

test("streams that change bytes are relayed, not piped: OpenAI without usage asked for, and translated ones", async () => {
  const key = await c.createKey({ credits: 5 });
  for (const [p, body] of [
    ["/v1/chat/completions", { model: "gpt-4o-mini", stream: true, max_tokens: 5, messages: [{ role: "user", content: "relay" }] }],
    ["/v1/chat/completions", { model: "anthropic/claude-haiku-4-5", stream: true, stream_options: { include_usage: true }, max_tokens: 5, messages: [{ role: "user", content: "relay" }] }],
  ]) {
    const res = await post(key, p, body);
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.equal((await settlementLine(res.headers.get("x-request-id"))).piped, false, `${body.model}`);
    if (!body.stream_options) assert.ok(!text.includes('"choices":[]'), "the usage chunk nobody asked for is consumed");
    else assert.match(text, /"x_broker":\{/, "a translated stream's usage chunk carries the charge");
  }
});

test("a client that reads nothing of a piped stream does not hold the metering back; past the deadline it is dropped", async () => {
  // Served by Miniflare directly: `wrangler dev` keeps what the worker fetches (tests/lib/miniflare.mjs).
  const worker = await startMiniflareWorker(stack.vars);
  try {
    const key = await c.createKey({ credits: 100 });
    const content = "a long answer nobody reads";
    // 400 tokens of 64 KiB: 26 MB, far more than the sockets between can hold.
    await c.mockScript({ provider: "openai", output_tokens: 400, token_bytes: 65536 });
    const res = await fetch(`${worker.url}/v1/chat/completions`, {
      method: "POST", headers: { authorization: `Bearer ${key.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, max_tokens: 1000, messages: [{ role: "user", content }] }),
    });
    assert.equal(res.status, 200);
    const rid = res.headers.get("x-request-id");
    // Nothing read: the call is settled all the same, at the usage the provider reported.
    const [entry] = (await c.settled(key.id, rid, 20_000)).filter((e) => e.type === "call");
    const input = 3 + Math.ceil(content.length / 4) + 4;
    assert.deepEqual([-entry.amount, entry.exact], [mcOf(BigInt(input) * MINI.input + 400n * MINI.output), true]);
    // Past the client-gone deadline the stream is ended with an error (a local Miniflare ends it
    // cleanly instead): either way the client never gets a whole answer's end.
    await new Promise((r) => setTimeout(r, Number(stack.vars.CLIENT_GONE_DEADLINE_MS) + 500));
    const got = await res.text().catch(() => null);
    assert.ok(got === null || (got.length < 26 * 1024 * 1024 && !got.endsWith("data: [DONE]\n\n")), `${got?.length} bytes, ending ${JSON.stringify(got?.slice(-20))}`);
  } finally {
    await worker.dispose();
  }
});
