// Metered media (images, speech, music) against the real worker (workerd), redis-server behind the
// Upstash front, and the provider mocks: exact charges per unit from list prices restated here,
// the official openai SDK, audio byte for byte, provider failures, bad input, concurrency.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { useStack, PRICE_DATE, assertServedAtMost } from "./lib/stack-client.mjs";

const { stack, c } = await useStack();

// ---- List prices, restated from shared/prices/REFERENCE.md so the test checks the worker's table.

/** The day the test stack prices by (TEST_PRICE_DATE): the per-image models are sold on it. */
const TODAY = PRICE_DATE;
/** §2 per-image prices, micro-USD: 1024x1024 / the two other sizes, by quality. */
const PER_IMAGE = {
  "gpt-image-1.5": { square: { low: 9_000, medium: 34_000, high: 133_000 }, other: { low: 13_000, medium: 50_000, high: 200_000 } },
  "gpt-image-1-mini": { square: { low: 5_000, medium: 11_000, high: 36_000 }, other: { low: 6_000, medium: 15_000, high: 52_000 } },
};
/** §2 token prices, micro-USD per 1M tokens (= pico-USD per token): text in, image out. */
const TOKENS = {
  "gpt-image-1.5": { text: 5_000_000n, out: 32_000_000n },
  "gpt-image-1-mini": { text: 2_000_000n, out: 8_000_000n },
  "gpt-image-2": { text: 5_000_000n, out: 30_000_000n },
};
/** §0 shutdown days of the per-image models. */
const SHUTDOWN = { "gpt-image-1.5": "2026-12-01", "gpt-image-1-mini": "2026-12-01" };
/** gpt-image-2's output tokens per image (OpenAI's calculator; the mock reports these). */
const OUT_TOKENS_2 = { low: { "1024x1024": 196, "1024x1536": 158, "1536x1024": 158 }, medium: { "1024x1024": 1756, "1024x1536": 1372, "1536x1024": 1372 } };
/** §2 image output tokens per image of the other GPT image models (the mock reports these). */
const OUT_TOKENS = { low: { "1024x1024": 272, "1024x1536": 408, "1536x1024": 400 }, medium: { "1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568 }, high: { "1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208 } };
/** §3: ElevenLabs credits per character (thousandths), the default $0.0003 per credit, OpenAI tts. */
const EL_MILLI_CREDITS = { eleven_multilingual_v2: 1000, eleven_flash_v2_5: 500 };
const EL_PICO_PER_CREDIT = 300_000_000n;
const TTS_PICO_PER_CHAR = { "tts-1": 15_000_000n, "tts-1-hd": 30_000_000n };
/** §4: Stable Audio 2.5, 20 Stability credits at $0.01. */
const MUSIC_PICO = { "stable-audio-2.5": 200_000_000_000n };

/** credits = usd × 1.8 / 0.01, in millicredits, rounded up: pico-USD × 18 / 1e8. */
const mcOf = (pico) => Number((BigInt(pico) * 18n + 99_999_999n) / 100_000_000n);
/** The mock's text tokens of an image prompt: ceil(chars / 4) + 2. */
const promptTokens = (p) => BigInt(Math.ceil([...p].length / 4) + 2);
const elCredits = (model, chars) => Math.ceil((chars * EL_MILLI_CREDITS[model]) / 1000);
const VOICE = "JBFqnCBsd6RMkjVDRZzb";

/** What a per-image model charges: the larger of n images at the published price and the usage. */
function perImageMc(model, prompt, n, size, quality) {
  const price = BigInt(PER_IMAGE[model][size === "1024x1024" ? "square" : "other"][quality]) * 1_000_000n;
  const images = BigInt(n) * price;
  const usage = promptTokens(prompt) * TOKENS[model].text + BigInt(n * OUT_TOKENS[quality][size]) * TOKENS[model].out;
  return mcOf(images > usage ? images : usage);
}

async function waitFor(probe, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function charged(key, res) {
  const [entry] = (await c.settled(key.id, res.headers.get("x-request-id"))).filter((e) => e.type === "call");
  return entry;
}

const priceTable = async () => (await (await c.api("/v1/models")).json()).price_table;

/** The bytes the mock itself answers a request with (it is deterministic). */
async function mockBytes(path, init) {
  const r = await fetch(`${stack.mocksUrl}${path}`, init);
  assert.equal(r.status, 200, path);
  return { type: r.headers.get("content-type"), bytes: Buffer.from(await r.arrayBuffer()) };
}

// ---- Images

for (const model of Object.keys(PER_IMAGE)) {
  test(`images: ${model} (per image) is charged model × size × quality for n = 1 and n = 2, or refused after its shutdown`, async () => {
    const key = await c.createKey({ credits: 100 });
    const prompt = `A watercolor lighthouse, by ${model}`;
    if (TODAY >= SHUTDOWN[model]) {
      const r = await c.api("/v1/images/generations", { key: key.api_key, body: { model, prompt } });
      assert.equal(r.status, 400);
      assert.match((await r.json()).error.message, new RegExp(`retired .* ${SHUTDOWN[model]}`));
      return;
    }
    const version = await priceTable();
    let spent = 0;
    for (const [n, size, quality] of [[1, "1024x1024", "medium"], [2, "1536x1024", "high"]]) {
      const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model, prompt, n, size, quality } });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.data.length, n);
      assert.ok(body.data.every((d) => typeof d.b64_json === "string"));
      const want = perImageMc(model, prompt, n, size, quality);
      assert.equal(res.headers.get("x-credits-charged"), String(want / 1000));
      assert.equal(body.x_broker.credits_charged, want / 1000);
      const entry = await charged(key, res);
      assert.equal(entry.amount, -want, `n = ${n}`);
      assert.ok(entry.hold >= want, "the hold covered the charge");
      assert.equal(entry.exact, true);
      assert.deepEqual([entry.units.unit, entry.units.count, entry.units.detail.billing, entry.units.detail.size, entry.units.detail.quality], ["images", n, "per_image", size, quality]);
      assert.equal(entry.price_table, version);
      assert.equal(entry.product, "image");
      spent += want;
    }
    assert.equal(await c.balanceMc(key.api_key), 100_000 - spent);
  });
}

test("images: gpt-image-2 (per token) is charged its reported usage for n = 1 and n = 2, on both routes", async () => {
  const key = await c.createKey({ credits: 100 });
  const model = "gpt-image-2";
  const prompt = "A lighthouse in fog, token-billed";
  const version = await priceTable();
  for (const [route, n, size, quality] of [["/v1/images/generations", 1, "1024x1024", "low"], ["/v1/images/generations", 2, "1536x1024", "medium"], ["/v1/image", 2, "1024x1536", "low"]]) {
    const res = await c.api(route, { key: key.api_key, body: { model, prompt, n, size, quality } });
    assert.equal(res.status, 200, route);
    const body = await res.json();
    const out = n * OUT_TOKENS_2[quality][size];
    const want = mcOf(promptTokens(prompt) * TOKENS[model].text + BigInt(out) * TOKENS[model].out);
    assert.equal(res.headers.get("x-credits-charged"), String(want / 1000));
    if (route === "/v1/image") {
      assert.equal(body.images, n);
      assert.equal(body.credits_charged, want / 1000);
      assert.equal(body.request_id, res.headers.get("x-request-id"));
      assert.equal(body.units.detail.tokens.image_output, out);
    } else {
      assert.equal(body.usage.output_tokens, out);
      assert.equal(body.x_broker.credits_charged, want / 1000);
    }
    assert.equal(body.data.length, n);
    const entry = await charged(key, res);
    assert.equal(entry.amount, -want, `${route} n = ${n}`);
    assert.deepEqual([entry.units.unit, entry.units.count, entry.units.detail.billing], ["images", n, "tokens"]);
    assert.equal(entry.units.detail.tokens.text_input, Number(promptTokens(prompt)));
    assert.equal(entry.price_table, version);
  }
});

test("images: b64_json and URL answers pass through byte for byte, with x_broker added", async () => {
  const key = await c.createKey({ credits: 20 });
  const raw = '{\n  "created": 1756199020,\n  "data": [\n    {\n      "url": "https://images.example.test/img-1.png?sig=a%3D"\n    }\n  ],\n  "usage": {"input_tokens": 9, "input_tokens_details": {"image_tokens": 0, "text_tokens": 9}, "output_tokens": 272, "total_tokens": 281}\n}\n';
  await c.mockScript({ provider: "openai-images", raw_body: raw });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "url please", quality: "low", size: "1024x1024" } });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.ok(text.startsWith(raw.trimEnd().slice(0, -1)), text);
  const body = JSON.parse(text);
  assert.equal(body.data[0].url, "https://images.example.test/img-1.png?sig=a%3D");
  assert.equal(body.x_broker.credits_charged, mcOf(9n * 5_000_000n + 272n * 30_000_000n) / 1000);
  // The mock's own b64 answer: the PNG arrives as it was sent.
  const b64 = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "b64 please", quality: "low", size: "1024x1024" } });
  const png = (await b64.json()).data[0].b64_json;
  assert.ok(Buffer.from(png, "base64").subarray(1, 4).equals(Buffer.from("PNG")));
});

test("openai SDK: images.generate and audio.speech.create through the gateway", async () => {
  const key = await c.createKey({ credits: 50 });
  const openai = new OpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key, maxRetries: 0 });
  const img = await openai.images.generate({ model: "gpt-image-2", prompt: "An SDK-made lighthouse", size: "1024x1024", quality: "low" });
  assert.equal(img.data.length, 1);
  assert.equal(img.usage.output_tokens, 196);
  assert.equal(img.x_broker.credits_charged, mcOf(promptTokens("An SDK-made lighthouse") * 5_000_000n + 196n * 30_000_000n) / 1000);
  // OpenAI's own speech model, then an ElevenLabs one through the same call.
  const input = "The SDK speaks through the gateway.";
  const speech = await openai.audio.speech.create({ model: "tts-1", voice: "alloy", input, response_format: "wav" });
  assert.equal(speech.headers.get("content-type"), "audio/wav");
  const got = Buffer.from(await speech.arrayBuffer());
  const want = await mockBytes("/openai/v1/audio/speech", { method: "POST", headers: { authorization: "Bearer sk-mock-openai", "content-type": "application/json" }, body: JSON.stringify({ model: "tts-1", voice: "alloy", input, response_format: "wav" }) });
  assert.ok(got.equals(want.bytes), `${got.length} bytes vs the mock's ${want.bytes.length}`);
  assert.equal(speech.headers.get("x-credits-charged"), String(mcOf(BigInt([...input].length) * TTS_PICO_PER_CHAR["tts-1"]) / 1000));
  const el = await openai.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", voice: VOICE, input });
  assert.equal(el.headers.get("content-type"), "audio/mpeg");
  const elBytes = Buffer.from(await el.arrayBuffer());
  const elWant = await mockBytes(`/elevenlabs/v1/text-to-speech/${VOICE}/stream`, { method: "POST", headers: { "xi-api-key": "el-mock", "content-type": "application/json" }, body: JSON.stringify({ text: input, model_id: "eleven_flash_v2_5" }) });
  assert.ok(elBytes.equals(elWant.bytes));
  assert.equal(el.headers.get("x-credits-charged"), String(mcOf(BigInt(elCredits("eleven_flash_v2_5", [...input].length)) * EL_PICO_PER_CREDIT) / 1000));
});

// ---- Speech

test("tts: a call of known length is charged characters × rate, its audio byte for byte as ElevenLabs sent it", async () => {
  const key = await c.createKey({ credits: 100 });
  const text = "Your order has shipped and will arrive on Thursday. ".repeat(4).trim();
  const chars = [...text].length;
  let spent = 0;
  for (const model of Object.keys(EL_MILLI_CREDITS)) {
    const res = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text, model_id: model, output_format: "mp3_44100_128" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "audio/mpeg");
    const want = mcOf(BigInt(elCredits(model, chars)) * EL_PICO_PER_CREDIT);
    assert.equal(res.headers.get("x-credits-charged"), String(want / 1000), model);
    const got = Buffer.from(await res.arrayBuffer());
    const sent = await mockBytes(`/elevenlabs/v1/text-to-speech/${VOICE}/stream?output_format=mp3_44100_128`, { method: "POST", headers: { "xi-api-key": "el-mock", "content-type": "application/json" }, body: JSON.stringify({ text, model_id: model }) });
    assert.ok(got.equals(sent.bytes), `${got.length} bytes vs ${sent.bytes.length}`);
    const entry = await charged(key, res);
    assert.equal(entry.amount, -want);
    assert.deepEqual([entry.units.unit, entry.units.count, entry.exact, entry.note, entry.product], ["characters", chars, true, undefined, "speech"]);
    assert.equal(entry.provider, "elevenlabs");
    spent += want;
  }
  assert.equal(await c.balanceMc(key.api_key), 100_000 - spent);
  // The provider got the gateway's key and the voice in its path, never the customer's key.
  const [req] = await c.mockRequests("elevenlabs");
  assert.equal(req.headers["xi-api-key"], "el-mock");
  assert.equal(req.path, `/elevenlabs/v1/text-to-speech/${VOICE}/stream`);
  assert.equal(req.query, "output_format=mp3_44100_128");
  assert.ok(!JSON.stringify(req).includes(key.api_key));
});

test("tts: ElevenLabs' character-cost is what is charged, a mismatch with the gateway's count is noted", async () => {
  const key = await c.createKey({ credits: 20 });
  const text = "Forty characters of text, give or take.";
  const chars = [...text].length;
  await c.mockScript({ provider: "elevenlabs", usage: { character_cost: chars - 5 } });
  const low = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text } });
  await low.arrayBuffer();
  let entry = await charged(key, low);
  assert.equal(entry.amount, -mcOf(BigInt(chars - 5) * EL_PICO_PER_CREDIT), "ElevenLabs' bill");
  assert.match(entry.note, new RegExp(`reported ${chars - 5} credits, the gateway counted ${chars}`));
  const logged = await waitFor(() => c.logLines().find((l) => l.request_id === low.headers.get("x-request-id") && l.msg === "settlement"), "the settlement's log line");
  assert.match(logged.metering_note, /the gateway counted/, "the mismatch is in the log too");
  await c.mockScript({ provider: "elevenlabs", usage: { character_cost: chars * 2 } });
  const high = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text } });
  await high.arrayBuffer();
  entry = await charged(key, high);
  assert.equal(entry.amount, -mcOf(BigInt(chars * 2) * EL_PICO_PER_CREDIT), "billed in full, above the hold of a premade voice");
  assert.equal(entry.hold, mcOf(BigInt(chars) * EL_PICO_PER_CREDIT));
  assert.match(entry.note, /more than the hold .*charged in full/);
});

test("tts: the audio is streamed to the client as it arrives", async () => {
  const key = await c.createKey({ credits: 50 });
  // 400 characters: 51 frames in 13 chunks, 250 ms apart (about 3 s in all).
  await c.mockScript({ provider: "elevenlabs", chunk_delay_ms: 250 });
  const t0 = Date.now();
  const res = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text: "a".repeat(400), model_id: "eleven_flash_v2_5" } });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const first = await reader.read();
  const firstAt = Date.now() - t0;
  assert.ok(first.value.length > 0);
  assert.ok(Buffer.from(first.value).subarray(0, 3).equals(Buffer.from("ID3")));
  let total = first.value.length;
  for (let r = await reader.read(); !r.done; r = await reader.read()) total += r.value.length;
  const doneAt = Date.now() - t0;
  assert.ok(firstAt < 1500 && doneAt - firstAt > 2000, `first bytes after ${firstAt} ms, the last after ${doneAt} ms`);
  assert.equal(total, 10 + 51 * 417);
});

test("tts: a stream the client cuts is still billed in full (ElevenLabs bills the characters of a started generation)", async () => {
  const key = await c.createKey({ credits: 50 });
  await c.mockScript({ provider: "elevenlabs", chunk_delay_ms: 200 });
  const text = "b".repeat(300);
  const ac = new AbortController();
  const res = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text }, signal: ac.signal });
  assert.equal(res.status, 200);
  await res.body.getReader().read();
  ac.abort();
  const [entry] = (await c.settled(key.id, res.headers.get("x-request-id"), 15000)).filter((e) => e.type === "call");
  assert.equal(entry.amount, -mcOf(300n * EL_PICO_PER_CREDIT));
  assert.match(entry.note, /client (left|stopped reading)/);
});

test("tts and music: a provider body that breaks off mid-way is charged in full and the client's stream is failed", async () => {
  const key = await c.createKey({ credits: 100 });
  await c.mockScript({ provider: "elevenlabs", cut_after_chunks: 2 });
  const text = "c".repeat(200);
  const res = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text } });
  assert.equal(res.status, 200);
  // 200 characters: 10 + 26 × 417 bytes of MP3 in all; two chunks came.
  const read = await res.arrayBuffer().then((b) => b.byteLength, (e) => e);
  assert.ok(read instanceof Error || read < 10 + 26 * 417, `a cut body (got ${read} bytes)`);
  const failed = (rid) => waitFor(() => c.logLines().some((l) => l.request_id === rid && l.msg === "client_stream_failed"), "the stream's failure in the log");
  // On the platform the client's read fails (no chunked terminator); a local Miniflare's entry
  // worker ends the body cleanly, so the worker's log is what shows the stream was failed.
  await failed(res.headers.get("x-request-id"));
  let entry = await charged(key, res);
  assert.equal(entry.amount, -mcOf(200n * EL_PICO_PER_CREDIT));
  assert.match(entry.note, /broke off .* charged in full/);
  await c.mockScript({ provider: "stability", cut_after_chunks: 1 });
  const music = await c.api("/v1/music", { key: key.api_key, body: { prompt: "a cut clip", model: "stable-audio-2.5", duration: 60 } });
  assert.equal(music.status, 200);
  const clip = await music.arrayBuffer().then((b) => b.byteLength, (e) => e);
  assert.ok(clip instanceof Error || clip < 1000 + 100 * 60, `a cut clip (got ${clip} bytes)`);
  await failed(music.headers.get("x-request-id"));
  entry = await charged(key, music);
  assert.equal(entry.amount, -mcOf(MUSIC_PICO["stable-audio-2.5"]), "a 200 is a generation: the flat price");
  assert.match(entry.note, /broke off/);
});

// ---- Music

test("music: a generation is charged its flat price; the audio arrives byte for byte with its content type", async () => {
  const key = await c.createKey({ credits: 100 });
  const fields = { prompt: "Upbeat lo-fi hip hop loop with warm Rhodes piano, 90 BPM", model: "stable-audio-2.5", duration: 20, output_format: "wav" };
  const res = await c.api("/v1/music", { key: key.api_key, body: fields });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "audio/wav");
  const want = mcOf(MUSIC_PICO["stable-audio-2.5"]);
  assert.equal(res.headers.get("x-credits-charged"), String(want / 1000));
  const got = Buffer.from(await res.arrayBuffer());
  const [sent] = await c.mockRequests("stability");
  assert.match(sent.headers["content-type"], /^multipart\/form-data; boundary=/);
  assert.equal(sent.headers.accept, "audio/*");
  for (const [k, v] of Object.entries(fields)) assert.match(sent.body, new RegExp(`name="${k}"\r\n\r\n${v}\r\n`));
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  const direct = await mockBytes("/stability/v2beta/audio/stable-audio-2/text-to-audio", { method: "POST", headers: { authorization: "Bearer sk-stability-mock", accept: "audio/*" }, body: form });
  assert.ok(got.equals(direct.bytes), `${got.length} bytes vs ${direct.bytes.length}`);
  const entry = await charged(key, res);
  assert.equal(entry.amount, -want);
  assert.deepEqual([entry.units.unit, entry.units.count, entry.exact, entry.product, entry.provider], ["generations", 1, true, "music", "stability"]);
  assert.equal(entry.price_table, await priceTable());
});

// ---- Failures, bad input, limits, concurrency

test("a provider 500 releases the hold on every media route", async () => {
  const key = await c.createKey({ credits: 100 });
  for (const [provider, path, body] of [
    ["openai-images", "/v1/images/generations", { model: "gpt-image-2", prompt: "fail", quality: "low" }],
    ["openai-images", "/v1/image", { model: "gpt-image-2", prompt: "fail" }],
    ["elevenlabs", "/v1/tts", { voice_id: VOICE, text: "fail" }],
    ["openai-speech", "/v1/audio/speech", { model: "tts-1", voice: "alloy", input: "fail" }],
    ["stability", "/v1/music", { prompt: "fail", model: "stable-audio-2.5" }],
  ]) {
    await c.mockScript({ provider, status: 500 });
    const r = await c.api(path, { key: key.api_key, body });
    assert.equal(r.status, 502, `${path}: ${await r.clone().text()}`);
    const err = (await r.json()).error;
    assert.ok(err.message && !/scripted/.test(err.message), "the provider's 500 text stays in the log");
    const [entry] = await c.settled(key.id, r.headers.get("x-request-id"));
    assert.deepEqual([entry.type, entry.amount], ["call", 0], path);
    assert.match(entry.note, /not served: the provider answered 500/);
  }
  assert.equal(await c.balanceMc(key.api_key), 100_000);
  assert.equal(await c.redis("HGET", `abk:key:${key.id}`, "held"), "0");
});

test("bad input: a clear 400 in the route's shape, before any provider call, without touching the balance", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.frontReset();
  const img = { model: "gpt-image-2", prompt: "x" };
  const tts = { voice_id: VOICE, text: "x" };
  const oas = { model: "tts-1", voice: "alloy", input: "x" };
  const cases = [
    // images: n, size, quality, format, model (unknown, retired), prompt
    ["/v1/images/generations", { ...img, n: 0 }, "`n`"],
    ["/v1/images/generations", { ...img, n: 11 }, "`n`"],
    ["/v1/images/generations", { ...img, size: "512x512" }, "`size`"],
    ["/v1/images/generations", { ...img, quality: "hd" }, "`quality`"],
    ["/v1/images/generations", { ...img, output_format: "gif" }, "`output_format`"],
    ["/v1/images/generations", { ...img, response_format: "url" }, "`url`"],
    ["/v1/images/generations", { ...img, model: "gpt-image-9" }, "not offered"],
    ["/v1/images/generations", { ...img, model: "dall-e-3" }, "2026-05-12"],
    ["/v1/images/generations", { ...img, model: "gpt-image-1" }, "2026-10-23"],
    ["/v1/images/generations", { ...img, prompt: "" }, "`prompt`"],
    ["/v1/images/generations", { ...img, prompt: "p".repeat(32_001) }, "32000"],
    ["/v1/image", { ...img, size: "4096x4096" }, "`size`"],
    ["/v1/image", { ...img, n: 2.5 }, "`n`"],
    // speech: text, voice, model, format
    ["/v1/tts", { ...tts, text: "" }, "`text`"],
    ["/v1/tts", { ...tts, text: "t".repeat(10_001) }, "at most 10000"],
    ["/v1/tts", { ...tts, text: "t".repeat(40_001), model_id: "eleven_flash_v2_5" }, "at most 40000"],
    ["/v1/tts", { ...tts, voice_id: "no-such-voice" }, "voice"],
    ["/v1/tts", { ...tts, model_id: "eleven_v9" }, "not offered"],
    ["/v1/tts", { ...tts, output_format: "mp3_96000_999" }, "`output_format`"],
    ["/v1/audio/speech", { ...oas, input: "" }, "`input`"],
    ["/v1/audio/speech", { ...oas, input: "i".repeat(4097) }, "at most 4096"],
    ["/v1/audio/speech", { ...oas, voice: "nobody" }, "`voice`"],
    ["/v1/audio/speech", { ...oas, model: "gpt-4o-mini-tts" }, "not offered"],
    ["/v1/audio/speech", { ...oas, response_format: "ogg" }, "`response_format`"],
    ["/v1/audio/speech", { ...oas, model: "eleven_flash_v2_5", voice: VOICE, response_format: "flac" }, "ElevenLabs"],
    // music: duration, format, model, prompt
    ["/v1/music", { prompt: "m", duration: 0 }, "`duration`"],
    ["/v1/music", { prompt: "m", duration: 191 }, "`duration`"],
    ["/v1/music", { prompt: "m", output_format: "ogg" }, "`output_format`"],
    ["/v1/music", { prompt: "m", model: "stable-audio-9" }, "not offered"],
    ["/v1/music", { prompt: "" }, "`prompt`"],
    ["/v1/music", "not json", "JSON"],
  ];
  for (const [path, body, needle] of cases) {
    const r = await c.api(path, { key: key.api_key, body });
    const text = await r.text();
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body).slice(0, 80)}: ${text}`);
    const err = JSON.parse(text).error;
    assert.ok(err.message.includes(needle), `${path}: "${err.message}" names ${needle}`);
    if (path === "/v1/images/generations" || path === "/v1/audio/speech") {
      assert.equal(err.type, "invalid_request_error", "OpenAI's error shape");
      assert.ok("param" in err && "code" in err);
    } else {
      assert.ok(["invalid_request", "unknown_model"].includes(err.type), "the gateway's error shape");
      assert.equal(err.request_id, r.headers.get("x-request-id"));
    }
  }
  assert.equal((await c.frontStats()).requests, 0, "nothing touched Redis");
  assert.equal((await c.mockRequests()).length, 0, "nothing reached a provider");
  assert.equal(await c.balanceMc(key.api_key), 10_000);
});

test("GET /v1/models lists every media model with its unit and its price in credits per unit", async () => {
  const { data, price_table } = await (await c.api("/v1/models")).json();
  const find = (id) => data.find((m) => m.id === id);
  assert.ok(find("openai/gpt-4o-mini").credits_per_million_tokens, "chat models keep their fields");
  assert.deepEqual([find("openai/tts-1").unit, find("openai/tts-1").credits_per_unit], ["character", 0.0027]);
  assert.deepEqual([find("elevenlabs/eleven_multilingual_v2").unit, find("elevenlabs/eleven_multilingual_v2").credits_per_unit], ["character", 0.054]);
  assert.deepEqual([find("stability/stable-audio-2.5").unit, find("stability/stable-audio-2.5").credits_per_unit], ["generation", 36]);
  assert.deepEqual([find("openai/gpt-image-2").unit, find("openai/gpt-image-2").credits_per_million_tokens.image_output], ["token", 5400]);
  if (TODAY < SHUTDOWN["gpt-image-1.5"]) {
    const m = find("openai/gpt-image-1.5");
    assert.deepEqual([m.unit, m.credits_per_unit["1024x1024"].medium, m.retires_on], ["image", 6.12, "2026-12-01"]);
  }
  assert.ok(!find("openai/dall-e-3") && !find("openai/gpt-image-1"), "retired models are not listed");
  assert.match(price_table, /^\d{4}-\d{2}-\d{2}\.\d+$/);
});

test("media calls have their own rate-limit class: the free plan's 10 an hour, chat unaffected", async () => {
  const key = await c.createKey({ plan: "free", credits: 50 });
  for (let i = 0; i < 10; i++) {
    const r = await c.api("/v1/tts", { key: key.api_key, body: { voice_id: VOICE, text: `call ${i}` } });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  }
  const r = await c.api("/v1/music", { key: key.api_key, body: { prompt: "one too many" } });
  assert.equal(r.status, 429);
  assert.match(r.headers.get("ratelimit"), /^"media";r=0;t=\d+$/);
  const chat = await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "x" }] } });
  assert.equal(chat.status, 200, "the ai class has its own allowance");
});

test("an image answer cut after its 200 is billed the hold and says so; garbage is released", async () => {
  const key = await c.createKey({ credits: 50 });
  await c.mockScript({ provider: "openai-images", cut_after_chunks: 1 });
  const res = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "cut", quality: "low", size: "1024x1024" } });
  assert.equal(res.status, 502);
  const err = (await res.json()).error;
  let entry = await charged(key, res);
  assert.equal(entry.amount, -entry.hold);
  assert.equal(err.credits_charged * 1000, entry.hold, "the error says what was charged");
  assert.equal(entry.exact, false);
  await c.mockScript({ provider: "openai-images", raw_body: "<html>gateway timeout</html>", content_type: "application/json" });
  const garbage = await c.api("/v1/images/generations", { key: key.api_key, body: { model: "gpt-image-2", prompt: "garbage" } });
  assert.equal(garbage.status, 502);
  entry = await charged(key, garbage);
  assert.equal(entry.amount, 0);
});

test("200 concurrent image calls on a balance covering 10 serve at most 10 and never overdraw", async () => {
  const body = { model: "gpt-image-2", prompt: "concurrency", size: "1024x1024", quality: "low" };
  const probe = await c.createKey({ credits: 10 });
  const pr = await c.api("/v1/images/generations", { key: probe.api_key, body });
  assert.equal(pr.status, 200);
  const hold = (await charged(probe, pr)).hold;
  const key = await c.createKey({ credits: (hold * 10 + Math.floor(hold / 2)) / 1000 });
  // Every admitted call stays in flight while the others are admitted.
  const results = await c.burstHeld("openai-images", 200, () => c.api("/v1/images/generations", { key: key.api_key, body }));
  const ok = assertServedAtMost(results, 10);
  const refused = results.filter((r) => r.status === 402);
  console.log(`# 200 concurrent image calls, balance for 10 holds: ${ok} served, ${refused.length} refused (402)`);
  assert.equal(ok + refused.length, 200, JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 402)));
  assert.equal(refused[0].body.error.code, "insufficient_credits");
  let entries;
  await waitFor(async () => {
    entries = await c.ledger(key.id);
    return entries.filter((e) => e.type === "call").length >= ok && (await c.redis("HGET", `abk:key:${key.id}`, "held")) === "0";
  }, "every settlement");
  assert.ok(entries.every((e) => e.balance_mc >= 0), "a ledger step went below zero");
  assert.equal(entries.filter((e) => e.type === "call").length, ok, "one ledger entry per served call");
  const bal = await c.balanceMc(key.api_key);
  assert.equal(bal, entries.reduce((s, e) => s + e.amount_mc, 0));
  assert.ok(bal >= 0);
});
