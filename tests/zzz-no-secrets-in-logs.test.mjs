// Runs last on the suite's stack: the worker's whole log of the run holds no secret, whatever the
// tests before made it do (errors, webhooks, admin lockouts, provider failures).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { MOCK_DEFAULTS } from "./lib/mocks.mjs";

let stack, c;
before(async () => {
  stack = await getStack();
  c = client(stack);
});

test("no API key, admin secret, webhook secret, provider key or Upstash token is in the log", async () => {
  // When run alone, make the log say something first.
  const key = await c.createKey({ credits: 1 });
  await c.api("/v1/chat", { key: key.api_key, body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "x" }] } });
  await c.api("/admin/keys", { headers: { "x-admin-secret": "a-wrong-admin-secret" } });
  const log = fs.readFileSync(stack.workerLog, "utf8");
  assert.ok(c.logLines().length > 10, "the log has lines");
  const secrets = {
    ADMIN_SECRET: stack.adminSecret,
    UPSTASH_REDIS_REST_TOKEN: stack.upstashToken,
    STRIPE_WEBHOOK_SECRET: stack.stripeSecret,
    OPENAI_API_KEY: MOCK_DEFAULTS.openaiKey,
    ANTHROPIC_API_KEY: MOCK_DEFAULTS.anthropicKey,
    GOOGLE_API_KEY: MOCK_DEFAULTS.googleKey,
    ELEVENLABS_API_KEY: MOCK_DEFAULTS.elevenlabsKey,
    STABILITY_API_KEY: MOCK_DEFAULTS.stabilityKey,
    PAYPAL_CLIENT_SECRET: MOCK_DEFAULTS.paypalClientSecret,
    STRIPE_SECRET_KEY: MOCK_DEFAULTS.stripeKey,
    RAPIDAPI_SECRET: stack.vars.RAPIDAPI_SECRET,
    "a created API key": key.api_key,
  };
  for (const [name, value] of Object.entries(secrets)) assert.ok(!log.includes(value), `${name} appears in the log`);
  const keys = log.match(/sk-broker-[0-9a-f]{64}/g);
  assert.equal(keys, null, `API keys in the log: ${keys?.slice(0, 3)}`);
  releaseStack();
});
