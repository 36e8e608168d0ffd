// Fail closed: with Redis down the gateway refuses (503), never serves free, and recovers when
// Redis is back. Runs on a stack of its own because it stops Redis.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "../scripts/stack.mjs";
import { startRedis } from "./lib/procs.mjs";
import { TEST_VARS, client, describeStack } from "./lib/stack-client.mjs";

let stack, c, revived;
before(async () => {
  stack = await startStack({ name: "redisdown", vars: TEST_VARS });
  c = client(describeStack(stack));
});
after(async () => {
  await stack?.stop();
  await revived?.stop(); // not part of the stack's own process list
});

test("health is ok, then 503 degraded with Redis stopped, then ok again", async () => {
  const key = await c.createKey({ credits: 5 });
  const body = { provider: "openai", model: "gpt-4o-mini", max_tokens: 3, messages: [{ role: "user", content: "x" }] };
  const ok = await c.api("/health");
  assert.equal(ok.status, 200);
  assert.deepEqual((await ok.json()).services, { redis: "ok" });

  await stack.redis.stop();
  const down = await c.api("/health");
  assert.equal(down.status, 503);
  const d = await down.json();
  assert.equal(d.status, "degraded");
  assert.equal(d.services.redis, "unreachable");
  await c.mockReset();
  const chat = await c.api("/v1/chat", { key: key.api_key, body });
  assert.equal(chat.status, 503);
  assert.equal((await chat.json()).error.type, "service_unavailable");
  assert.equal((await c.mockRequests("openai")).length, 0, "nothing was served without a hold");
  const bal = await c.api("/v1/balance", { key: key.api_key });
  assert.equal(bal.status, 503);

  // Same port, empty data: the gateway reconnects and answers again.
  revived = await startRedis({ port: stack.ports.redis });
  const back = await c.api("/health");
  assert.equal(back.status, 200);
  assert.equal((await c.api("/v1/chat", { key: key.api_key, body })).status, 401, "the key died with the data");
});
