// The Gemini API's own clients against the local stack, unmodified (only their base URL and key
// changed): the JS SDK `@google/genai` and Gemini CLI (`gemini -p`, headless), both installed by
// scripts/setup-clients (pinned, outside the checkout). The answers come from the mocks; every
// charge is computed here from the mock's scripted usage at list price (shared/prices/REFERENCE.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { useStack, PRICE_DATE } from "./lib/stack-client.mjs";
import { MOCK_DEFAULTS } from "./lib/mocks.mjs";
import { assertGeminiSdkSent, clientHome, listPriceMc, run, settledCalls, tempDir } from "./lib/clients.mjs";

const { stack, c } = await useStack();

// List prices, micro-USD per 1M tokens: [input, output] (thinking is billed as output).
// Gemini 3.8 Flash doubles on 2027-01-01; 3.1 Pro's rates are those of prompts up to 200k tokens.
const PRICES = {
  "gemini-3.5-flash": [1_500_000n, 9_000_000n],
  "gemini-3.8-flash": PRICE_DATE >= "2027-01-01" ? [1_500_000n, 7_500_000n] : [750_000n, 3_750_000n],
  "gemini-3.1-pro-preview": [2_000_000n, 12_000_000n],
};
const expectedMc = (model, inTok, outTok = 0) => listPriceMc(PRICES, model, inTok, outTok);
const REPLY = /^Mock reply/;

const calls = (keyId, n) => settledCalls(c, keyId, n);

test("@google/genai (JS) with only its baseUrl changed: generateContent and the stream charged the mock's usage; countTokens free", async () => {
  const key = await c.createKey({ credits: 10 });
  await c.mockScript({ provider: "gemini", times: 2, usage: { promptTokenCount: 120, candidatesTokenCount: 24, thoughtsTokenCount: 10 } });
  const { GoogleGenAI, ApiError } = await import(pathToFileURL(path.join(clientHome("google-genai-js"), "node_modules", "@google", "genai", "dist", "node", "index.mjs")));
  const ai = new GoogleGenAI({ apiKey: key.api_key, httpOptions: { baseUrl: stack.workerUrl } });
  const config = { maxOutputTokens: 50, systemInstruction: "Be brief." };
  const balance0 = await c.balanceMc(key.api_key);

  const r = await ai.models.generateContent({ model: "gemini-3.5-flash", contents: "Say hi", config });
  assert.match(r.text, REPLY);
  assert.deepEqual([r.usageMetadata.promptTokenCount, r.usageMetadata.candidatesTokenCount, r.usageMetadata.thoughtsTokenCount], [120, 24, 10]);
  const [first] = await calls(key.id, 1);
  const each = expectedMc("gemini-3.5-flash", 120, 24 + 10);
  assert.equal(first.amount, -each);
  assert.equal(first.exact, true);
  assert.equal(first.model, "gemini-3.5-flash");
  assert.equal(await c.balanceMc(key.api_key), balance0 - each);

  let text = "", usage;
  for await (const chunk of await ai.models.generateContentStream({ model: "gemini-3.5-flash", contents: "Say hi", config })) {
    text += chunk.text ?? "";
    usage = chunk.usageMetadata ?? usage;
  }
  assert.equal(text, r.text);
  assert.deepEqual([usage.promptTokenCount, usage.candidatesTokenCount, usage.thoughtsTokenCount], [120, 24, 10]);
  const entries = await calls(key.id, 2);
  assert.deepEqual(entries.map((e) => e.amount), [-each, -each]);
  assert.equal(await c.balanceMc(key.api_key), balance0 - 2 * each);

  // countTokens: the mock's rule, 3 + (ceil(6 / 4) + 4); not charged, not in the ledger.
  const count = await ai.models.countTokens({ model: "gemini-3.5-flash", contents: "Say hi" });
  assert.equal(count.totalTokens, 9);
  // Refusals reach the SDK as its ApiError with Google's status; nothing held or charged.
  for (const [params, says] of [
    [{ model: "gemini-9-ultra", contents: "x" }, /gemini-9-ultra/],
    [{ model: "gemini-3.5-flash", contents: "x", config: { tools: [{ googleSearch: {} }] } }, /googleSearch/],
  ]) {
    await assert.rejects(ai.models.generateContent(params), (e) => e instanceof ApiError && e.status === 400 && says.test(e.message) && /INVALID_ARGUMENT/.test(e.message));
  }
  assert.equal(await c.balanceMc(key.api_key), balance0 - 2 * each);
  assert.equal((await calls(key.id, 2)).length, 2);

  // What Gemini was sent: the SDK's body, with the key in the gateway's own header.
  await assertGeminiSdkSent(c, 2);
});

// Gemini CLI 0.61 picks the "gateway" auth type whenever GOOGLE_GEMINI_BASE_URL is set, and its
// headless auth check then refuses it ("Invalid auth method selected."): the settings select the
// API-key auth instead, which still takes its base URL from GOOGLE_GEMINI_BASE_URL. The rest turns
// off what would call anything but the gateway (usage statistics, telemetry, update checks); its
// error reports (the refused router call) go to TMPDIR, removed with the home directory.
function geminiCliEnv(apiKey) {
  const home = tempDir("gemini-cli-home-");
  fs.mkdirSync(path.join(home, ".gemini"));
  fs.writeFileSync(path.join(home, ".gemini", "settings.json"), JSON.stringify({
    security: { auth: { selectedType: "gemini-api-key" } },
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
  }));
  return {
    home,
    env: {
      HOME: home, TMPDIR: home, GOOGLE_GEMINI_BASE_URL: stack.workerUrl, GEMINI_API_KEY: apiKey,
      GEMINI_TELEMETRY_ENABLED: "false", GEMINI_CLI_NO_RELAUNCH: "true", GEMINI_CLI_TRUST_WORKSPACE: "true",
    },
  };
}

test("Gemini CLI (gemini -p) answers from the mock through streamGenerateContent, every call charged its usage at list price", async () => {
  const gemini = path.join(clientHome("gemini-cli"), "node_modules", ".bin", "gemini");
  // The default (auto) model: the CLI first asks gemini-3.5-flash-lite to classify the prompt; the
  // gateway has no price for that model and refuses it (nothing held, nothing sent), the CLI falls
  // back to its default, gemini-3.1-pro-preview. With `-m gemini-3.5-flash` the CLI itself asks for
  // gemini-3.8-flash (its "latest flash" mapping for API keys).
  for (const [args, model] of [[[], "gemini-3.1-pro-preview"], [["-m", "gemini-3.5-flash"], "gemini-3.8-flash"]]) {
    await c.mockReset();
    await c.mockScript({ provider: "gemini", times: 50, usage: { promptTokenCount: 1500, candidatesTokenCount: 7, thoughtsTokenCount: 3 } });
    const key = await c.createKey({ credits: 100 });
    const { home, env } = geminiCliEnv(key.api_key);
    const balance0 = await c.balanceMc(key.api_key);
    const logged = c.logLines().length;
    const r = await run(gemini, [...args, "-p", "Say hi"], { env, cwd: home });
    assert.equal(r.code, 0, `${args}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, REPLY, String(args));
    // The router's call on the default model, refused by name before anything is held.
    const routed = c.logLines().slice(logged).filter((l) => l.route === "/v1beta/models/gemini-3.5-flash-lite:generateContent");
    assert.deepEqual([...new Set(routed.map((l) => `${l.status} ${l.error_type}`))], args.length ? [] : ["400 unknown_model"]);
    const sent = await c.mockRequests("gemini");
    assert.ok(sent.length >= 1, "the CLI's calls reached Gemini");
    for (const q of sent) {
      assert.equal(q.path, `/gemini/v1beta/models/${model}:streamGenerateContent`);
      assert.equal(q.headers["x-goog-api-key"], MOCK_DEFAULTS.googleKey);
      assert.ok(q.body.tools.every((t) => Object.keys(t).join() === "functionDeclarations"), "only function tools");
    }
    // One ledger entry per call Gemini served, each its usage at list price (thinking is output).
    const entries = await calls(key.id, sent.length);
    assert.equal(entries.length, sent.length);
    const each = expectedMc(model, 1500, 7 + 3);
    for (const e of entries) assert.deepEqual([e.model, e.amount, e.exact], [model, -each, true]);
    assert.equal(await c.balanceMc(key.api_key), balance0 - sent.length * each);
  }
});
