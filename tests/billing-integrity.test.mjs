// Billing integrity against the real worker, redis-server behind the Upstash front, and the
// mocks: no served call goes unbilled, only what is priced is forwarded, memory stays bounded,
// and the ledger has one entry per call.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startMiniflareWorker } from "./lib/miniflare.mjs";
import { useStack } from "./lib/stack-client.mjs";

const { stack, c } = await useStack();

const HAIKU = [1_000_000n, 5_000_000n]; // claude-haiku-4-5, micro-USD per 1M tokens (REFERENCE.md)
/** credits = usd × 1.8 / 0.01, in millicredits, rounded up: pico-USD × 18 / 1e8. */
const haikuMc = (inTok, outTok) => Number(((BigInt(inTok) * HAIKU[0] + BigInt(outTok) * HAIKU[1]) * 18n + 99_999_999n) / 100_000_000n);
/** The mock's documented input rule: 3 + Σ(ceil(chars/4) + 4). */
const mockInput = (...texts) => 3 + texts.reduce((s, t) => s + Math.ceil([...t].length / 4) + 4, 0);

async function waitFor(probe, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("five calls add five ledger entries, each naming its hold; open holds show in /v1/balance", async () => {
  const key = await c.createKey({ credits: 10 });
  const before = (await c.ledger(key.id)).length;
  // The first call waits at the mock's gate until its open hold has been seen.
  await c.mockScript({ provider: "openai", gate: true });
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "count me" }] };
  const first = c.api("/v1/chat", { key: key.api_key, body });
  let open;
  try {
    open = await waitFor(async () => {
      const b = await (await c.api("/v1/balance", { key: key.api_key })).json();
      return b.held_millicredits > 0 && b;
    }, "an open hold");
  } finally {
    await c.mockRelease();
  }
  assert.equal(open.millicredits + open.held_millicredits, 10_000, "spendable + held = the balance");
  const rids = [(await first).headers.get("x-request-id")];
  for (let i = 0; i < 4; i++) rids.push((await c.api("/v1/chat", { key: key.api_key, body })).headers.get("x-request-id"));
  for (const rid of rids) await c.settled(key.id, rid);
  const entries = await c.ledger(key.id);
  assert.equal(entries.length - before, 5);
  for (const rid of rids) {
    const mine = entries.filter((e) => e.ref === rid);
    assert.equal(mine.length, 1);
    assert.ok(mine[0].hold >= -mine[0].amount_mc);
  }
  const b = await (await c.api("/v1/balance", { key: key.api_key })).json();
  assert.equal(b.held_millicredits, 0);
  assert.equal(b.millicredits, entries.reduce((s, e) => s + e.amount_mc, 0));
});

test("a stream its client abandons is cut at the deadline and charged between what was generated and the hold", async () => {
  const key = await c.createKey({ credits: 10 });
  // 24 tokens, 400 ms apart: about 10 s, far past the 1.5 s client-gone deadline of the tests.
  await c.mockScript({ provider: "anthropic", chunk_delay_ms: 400 });
  const content = "abandon me";
  const ac = new AbortController();
  const res = await c.api("/v1/messages", {
    key: key.api_key, signal: ac.signal,
    body: { model: "claude-haiku-4-5", max_tokens: 24, stream: true, messages: [{ role: "user", content }] },
  });
  assert.equal(res.status, 200);
  const rid = res.headers.get("x-request-id");
  await res.body.getReader().read();
  ac.abort();
  const [entry] = (await c.settled(key.id, rid, 15000)).filter((e) => e.type === "call");
  const generatedSoFar = haikuMc(mockInput(content), 1);
  assert.ok(-entry.amount >= generatedSoFar, `charged ${-entry.amount} ≥ ${generatedSoFar}`);
  assert.ok(-entry.amount <= entry.hold, "never above the hold");
  assert.equal(entry.amount, -haikuMc(mockInput(content), 24), "the reported prompt, and every output token allowed");
  assert.equal(entry.exact, false);
  assert.match(entry.note, /cut at the deadline/);
});

test("a provider that stalls mid-answer on a plain call: 504, billed the hold (its usage never came)", async () => {
  const key = await c.createKey({ credits: 10 });
  // A plain call asks for a whole answer: half of it comes at once, then silence longer than
  // UPSTREAM_TIMEOUT_MS (6 s in tests). The usage is at the end of the body, so it never came.
  await c.mockScript({ provider: "anthropic", stall_after_chunks: 1, stall_ms: 7000 });
  const content = "stall after the start";
  const res = await c.api("/v1/chat", { key: key.api_key, body: { provider: "anthropic", model: "claude-haiku-4-5", max_tokens: 30, messages: [{ role: "user", content }] } });
  assert.equal(res.status, 504);
  const err = (await res.json()).error;
  assert.equal(err.type, "upstream_timeout");
  assert.match(err.message, /stalled/);
  const [entry] = await c.settled(key.id, res.headers.get("x-request-id"));
  assert.equal(entry.amount, -entry.hold, "usage unknown: the hold");
  assert.ok(-entry.amount >= haikuMc(mockInput(content), 30), "at least what the provider could have generated");
  assert.equal(entry.exact, false);
  assert.equal(err.credits_charged * 1000, -entry.amount, "the error says what was charged");
  assert.equal(await c.balanceMc(key.api_key), 10_000 + entry.amount);
});

test("only priced fields are forwarded: store, inference_geo and unknown fields are refused before anything is held", async () => {
  const key = await c.createKey({ credits: 1 });
  await c.frontReset();
  const msg = [{ role: "user", content: "x" }];
  for (const [path, body, field] of [
    ["/v1/chat/completions", { model: "gpt-4o-mini", store: true, messages: msg }, "store"],
    ["/v1/chat/completions", { model: "gpt-4o-mini", not_a_field: 1, messages: msg }, "not_a_field"],
    ["/v1/messages", { model: "claude-haiku-4-5", max_tokens: 5, inference_geo: "us", messages: msg }, "inference_geo"],
    // A beta field without its `anthropic-beta` header (Claude Code sends both; see clients.test.mjs).
    ["/v1/messages", { model: "claude-haiku-4-5", max_tokens: 5, context_management: { edits: [] }, messages: msg }, "context_management"],
    ["/v1/chat", { provider: "openai", model: "gpt-4o-mini", logprobs: true, messages: msg }, "logprobs"],
    ["/v1/chat/completions", { model: "anthropic/claude-haiku-4-5", logit_bias: { 1: 1 }, messages: msg }, "logit_bias"],
  ]) {
    const r = await c.api(path, { key: key.api_key, body });
    assert.equal(r.status, 400, `${path} ${field}`);
    const text = await r.text();
    assert.match(text, new RegExp(`\`${field}\``), text);
  }
  assert.equal((await c.mockRequests()).length, 0, "nothing reached a provider");
  assert.equal((await c.frontStats()).requests, 0, "nothing touched Redis");
  // What is allowed is forwarded as sent.
  const ok = await c.api("/v1/messages", { key: key.api_key, body: { model: "claude-haiku-4-5", max_tokens: 5, metadata: { user_id: "u-1" }, top_k: 3, messages: msg } });
  assert.equal(ok.status, 200, await ok.text());
  const [sent] = await c.mockRequests("anthropic");
  assert.deepEqual(sent.body.metadata, { user_id: "u-1" });
  assert.equal(sent.body.top_k, 3);
  assert.equal(sent.body.stream, false, "a plain call asks the provider for a whole answer (issue 22)");
});

/** POSTs `total` bytes with chunked transfer encoding (no Content-Length). */
function chunkedPost(url, headers, total) {
  return new Promise((resolve, reject) => {
    // A connection of its own: the server answers before the body is over, and this one is done with.
    const req = http.request(url, { method: "POST", agent: false, headers: { ...headers, "transfer-encoding": "chunked", connection: "close" } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", (e) => (e.code === "EPIPE" || e.code === "ECONNRESET" ? resolve({ status: 0, body: e.code }) : reject(e)));
    const piece = Buffer.alloc(64 * 1024, "a");
    let sent = 0;
    const write = () => {
      while (sent < total) {
        sent += piece.length;
        if (!req.write(piece)) return req.once("drain", write);
      }
      req.end();
    };
    write();
  });
}

test("a chunked 2 MiB body without Content-Length gets 413 before anything is held", async () => {
  const key = await c.createKey({ credits: 1 });
  await c.frontReset();
  const r = await chunkedPost(`${stack.workerUrl}/v1/chat`, { authorization: `Bearer ${key.api_key}`, "content-type": "application/json" }, 2 * 1024 * 1024);
  assert.equal(r.status, 413, r.body);
  assert.equal(JSON.parse(r.body).error.type, "payload_too_large");
  assert.equal((await c.frontStats()).requests, 0, "nothing touched Redis");
  // Webhook bodies have their own, smaller limit (MAX_WEBHOOK_BYTES, 256 KiB).
  const w = await chunkedPost(`${stack.workerUrl}/webhooks/stripe`, { "stripe-signature": "t=1,v1=00", "content-type": "application/json" }, 512 * 1024);
  assert.equal(w.status, 413, w.body);
  // The next request is served normally (no connection was left mid-body).
  const after = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 3, messages: [{ role: "user", content: "x" }] } });
  assert.equal(after.status, 200, await after.text());
});

test("a provider message about the gateway's own account never reaches the customer; the hold is released", async () => {
  const key = await c.createKey({ credits: 1 });
  const secret = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.";
  await c.mockScript({ provider: "anthropic", status: 400, body: { type: "error", error: { type: "invalid_request_error", message: secret } } });
  const r = await c.api("/v1/messages", { key: key.api_key, body: { model: "claude-haiku-4-5", max_tokens: 5, messages: [{ role: "user", content: "x" }] } });
  assert.equal(r.status, 503);
  const text = await r.text();
  assert.ok(!/credit balance|billing|purchase/i.test(text), text);
  const [entry] = await c.settled(key.id, r.headers.get("x-request-id"));
  assert.equal(entry.amount, 0);
  assert.equal(await c.balanceMc(key.api_key), 1000);
});

test("a settlement that meets Redis errors is retried and lands once", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "openai", gate: true });
  const pending = c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "retry" }] } });
  try {
    await waitFor(async () => (await c.mockHeld()) === 1, "the admitted call at the provider");
    // The next two settlement attempts fail at the Upstash front; the third lands.
    await c.frontFail(2, "EVALSHA");
  } finally {
    await c.mockRelease();
  }
  const res = await pending;
  assert.equal(res.status, 200);
  const rid = res.headers.get("x-request-id");
  const entries = await c.settled(key.id, rid, 15000);
  assert.equal(entries.filter((e) => e.type === "call").length, 1, "settled once");
  assert.equal(entries[0].amount, -Math.round((await res.json()).credits_charged * 1000));
  const stats = await c.frontStats();
  assert.equal(stats.fail_next_remaining, 0, "both injected failures were met");
  // The settlement's log line is written after its Redis write lands: wait for it to reach the log.
  let retries = [];
  for (let i = 0; i < 100 && retries.length < 3; i++) {
    retries = c.logLines().filter((l) => l.request_id === rid && l.msg === "settlement");
    if (retries.length < 3) await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(retries.map((l) => l.outcome), ["retrying", "retrying", "settled"]);
});

test("a malformed provider stream is a 502, and its hold is settled (released)", async () => {
  const key = await c.createKey({ credits: 10 });
  for (const stream of [false, true]) {
    await c.mockScript({ provider: "openai", raw_stream: 'data: [1,2]\n\ndata: "x"\n\ndata: 7\n\ndata: {not json\n\n' });
    const res = await c.api("/v1/chat/completions", { key: key.api_key, body: { model: "gpt-4o-mini", stream, max_tokens: 5, messages: [{ role: "user", content: "garbage" }] } });
    assert.equal(res.status, 502, `stream=${stream}`);
    assert.equal((await res.json()).error.code, "upstream_error");
    const [entry] = await c.settled(key.id, res.headers.get("x-request-id"));
    assert.deepEqual([entry.type, entry.amount], ["call", 0]);
  }
  assert.equal(await c.balanceMc(key.api_key), 10_000);
  assert.equal(await c.redis("ZCARD", "abk:open_holds"), 0, "no hold left open");
});

test("a client that never reads a long stream does not grow the worker's memory with it", async () => {
  // Served by Miniflare directly: `wrangler dev` itself keeps fetched bodies (see tests/lib/miniflare.mjs).
  const worker = await startMiniflareWorker(stack.vars);
  try {
    const key = await c.createKey({ credits: 100 });
    const stream = (path, body) => fetch(`${worker.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${key.api_key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    // Warm the isolate (its first request instantiates the module).
    await (await stream("/v1/chat", { provider: "openai", model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "warm" }] })).text();
    // 800 tokens of 64 KiB: a 52 MB answer.
    await c.mockScript({ provider: "openai", output_tokens: 800, token_bytes: 65536 });
    const before = worker.rssMiB();
    const res = await stream("/v1/chat/completions", { model: "gpt-4o-mini", stream: true, max_tokens: 1000, messages: [{ role: "user", content: "a long answer nobody reads" }] });
    assert.equal(res.status, 200);
    const rid = res.headers.get("x-request-id");
    // Read nothing; watch the worker's memory until the call is settled.
    let peak = before;
    let entry;
    for (let i = 0; i < 600 && !entry; i++) {
      peak = Math.max(peak, worker.rssMiB());
      [entry] = (await c.redis("LRANGE", `abk:ledger:${key.id}`, 0, 5)).map((e) => JSON.parse(e)).filter((e) => e.ref === rid);
      if (!entry) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(entry, "the call was settled");
    console.log(`# workerd RSS ${before.toFixed(1)} MiB before, peak ${peak.toFixed(1)} MiB (+${(peak - before).toFixed(1)}) for a 52 MB answer nobody read`);
    assert.ok(peak - before < 40, `the worker grew by ${(peak - before).toFixed(1)} MiB`);
    assert.match(entry.note ?? "", /client stopped reading/);
    assert.ok(-entry.amount <= entry.hold);
    res.body.cancel();
  } finally {
    await worker.dispose();
  }
});

test("a slow reader gets the whole stream: the provider waits for it", async () => {
  const key = await c.createKey({ credits: 100 });
  // 200 tokens of 16 KiB (3.3 MB), read 64 KiB at a time with pauses.
  await c.mockScript({ provider: "openai", output_tokens: 200, token_bytes: 16384 });
  const res = await c.api("/v1/chat/completions", { key: key.api_key, body: { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, max_tokens: 1000, messages: [{ role: "user", content: "slowly" }] } });
  const reader = res.body.getReader();
  let text = "";
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    await new Promise((r) => setTimeout(r, 3));
  }
  assert.ok(text.endsWith("data: [DONE]\n\n"), "the stream is complete");
  const usage = text.split("\n\n").map((e) => e.slice(6)).filter((d) => d.startsWith("{")).map((d) => JSON.parse(d)).find((e) => e.usage)?.usage;
  assert.equal(usage.completion_tokens, 200);
  const [entry] = await c.settled(key.id, res.headers.get("x-request-id"));
  assert.equal(entry.exact, true);
});
