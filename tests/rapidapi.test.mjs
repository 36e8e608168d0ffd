// The RapidAPI channel: calls RapidAPI forwards with its proxy secret are served for its user on
// the rate plan of its subscription, charge no credits, and land in the analytics with their
// provider cost; a wrong or missing proxy secret is never a free call.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";

let stack, c;
before(async () => {
  stack = await getStack();
  c = client(stack);
});
after(releaseStack);
beforeEach(() => c.mockReset());

const SECRET = "local-rapidapi-proxy-secret"; // TEST_VARS.RAPIDAPI_SECRET
const today = () => new Date().toISOString().slice(0, 10);
const chat = { provider: "openai", model: "gpt-4o-mini", max_tokens: 20, messages: [{ role: "user", content: "via RapidAPI" }] };

function rapid(user, { secret = SECRET, subscription = "BASIC", body = chat, key } = {}) {
  const headers = { "x-rapidapi-user": user, "x-rapidapi-subscription": subscription, "x-rapidapi-host": "ai-api-broker.p.rapidapi.com" };
  if (secret !== null) headers["x-rapidapi-proxy-secret"] = secret;
  return c.api("/v1/chat", { key, body, headers });
}

const stats = async (q) => (await c.admin(`/admin/stats?from=${today()}&to=${today()}${q}`)).body;

/** Waits until the analytics of `q` count `calls` calls (settlement runs after the response). */
async function statsWithCalls(q, calls) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const s = await stats(q);
    if ((s.totals.calls ?? 0) >= calls || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("with the proxy secret, a RapidAPI user is served on its plan's limits, with no credits charged", async () => {
  const user = `rapid-${Date.now()}`;
  const all = await stats("");
  const r = await rapid(user);
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.billed_by, "rapidapi");
  assert.equal(body.credits_charged, undefined);
  assert.equal(body.request_id, r.headers.get("x-request-id"));
  for (const h of ["x-credits-charged", "x-credits-remaining", "x-credits-held"]) assert.equal(r.headers.get(h), null, h);
  // BASIC maps to the `free` plan: 10 calls an hour.
  assert.equal(r.headers.get("x-ratelimit-limit"), "10");
  assert.equal(r.headers.get("x-ratelimit-remaining"), "9");
  // A stream: the last event names RapidAPI as the payer, the head shows no credits.
  const s = await rapid(user, { body: { ...chat, stream: true } });
  assert.equal(s.status, 200);
  assert.equal(s.headers.get("x-credits-held"), null);
  const events = (await s.text()).split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)));
  assert.equal(events.at(-1).type, "done");
  assert.equal(events.at(-1).billed_by, "rapidapi");
  assert.equal(events.at(-1).credits_charged, undefined);
  // The OpenAI-compatible route carries the payer in `x_broker`.
  const o = await c.api("/v1/chat/completions", { body: { model: "gpt-4o-mini", max_tokens: 5, messages: chat.messages }, headers: { "x-rapidapi-proxy-secret": SECRET, "x-rapidapi-user": `${user}-openai`, "x-rapidapi-subscription": "PRO" } });
  assert.equal(o.status, 200);
  assert.deepEqual((await o.json()).x_broker, { request_id: o.headers.get("x-request-id"), billed_by: "rapidapi" });
  assert.equal(o.headers.get("x-ratelimit-limit"), "100", "PRO maps to the `pro` plan");
  for (let i = 2; i < 10; i++) assert.equal((await rapid(user)).status, 200);
  const limited = await rapid(user);
  assert.equal(limited.status, 429, "the 11th call of the hour");
  assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
  assert.equal((await rapid(`${user}-other`)).status, 200, "another RapidAPI user has a window of its own");
  assert.equal((await c.mockRequests("openai")).length, 12, "only served calls reached the provider");

  const mine = await statsWithCalls(`&rapidapi_user=${user}`, 10);
  assert.equal(mine.scope, `rapidapi:${user}`);
  assert.equal(mine.totals.calls, 10);
  assert.ok(mine.totals.cost_usd_micro > 0, JSON.stringify(mine.totals));
  assert.equal(mine.totals.charged_mc, 0, "RapidAPI bills its users; no credits here");
  assert.deepEqual(mine.days[0].models.map((m) => m.model), ["openai/gpt-4o-mini"]);
  const plan = await stats("&rapidapi_plan=basic");
  assert.equal(plan.scope, "rapidapi-plan:BASIC");
  assert.ok(plan.totals.calls >= 11 && plan.totals.cost_usd_micro >= mine.totals.cost_usd_micro);
  const allAfter = await statsWithCalls("", (all.totals.calls ?? 0) + 12);
  assert.equal(allAfter.totals.calls - (all.totals.calls ?? 0), 12, "the all-callers rollup counts them");
  assert.equal(allAfter.totals.charged_mc, all.totals.charged_mc ?? 0);
});

test("a wrong or missing proxy secret is a 401, never a free call, even with a valid key", async () => {
  const key = await c.createKey({ credits: 5 });
  const before = await c.balanceMc(key.api_key);
  for (const secret of ["wrong-secret", "", `${SECRET}x`, SECRET.slice(0, -1)]) {
    const r = await rapid("someone", { secret, key: key.api_key });
    assert.equal(r.status, 401, `secret ${JSON.stringify(secret)}`);
    assert.match((await r.json()).error.message, /RapidAPI proxy secret/);
  }
  // Without the proxy secret the request is an ordinary one: it needs a key.
  assert.equal((await rapid("someone", { secret: null })).status, 401);
  assert.equal((await c.mockRequests("openai")).length, 0, "nothing reached the provider");
  assert.equal(await c.balanceMc(key.api_key), before);
  // The right secret, but no such subscription here, or no user: refused before the provider.
  assert.equal((await rapid("someone", { subscription: "ULTRA" })).status, 403);
  assert.equal((await rapid("")).status, 400);
  assert.equal((await c.mockRequests("openai")).length, 0);
  // The secret never reaches the log.
  assert.ok(!c.logLines().some((l) => JSON.stringify(l).includes(SECRET)));
});

test("/admin/stats scopes are checked", async () => {
  for (const q of ["?rapidapi_user=a%20b", "?rapidapi_plan=GOLD", "?rapidapi_user=a&key_id=key_0000000000000000"]) {
    const r = await c.admin(`/admin/stats${q}`);
    assert.equal(r.status, 400, q);
    assert.ok(r.body.error.message, q);
  }
});
