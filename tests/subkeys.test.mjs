// Sub-keys (issue 25) against the real worker: an account key makes keys that spend its balance
// within their own caps, models and plan; every bad input is a 400 naming the field with nothing
// changed; the charge is the list price × the mock's usage; 200 calls at once on a sub-key whose
// cap covers 10 serve at most 10; the ledger and /v1/usage name the sub-key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useStack, assertServedAtMost } from "./lib/stack-client.mjs";

const { c } = await useStack();

// gpt-4o-mini's list price (micro-USD per 1M tokens: input, output), restated from
// shared/prices/REFERENCE.md so the test checks the gateway's table instead of trusting it.
const PRICE = [150_000n, 600_000n];
/** credits = usd × 1.8 / 0.01, in millicredits, rounded up: pico-USD × 18 / 1e8. */
const expectedMc = (inTok, outTok) => Number(((BigInt(inTok) * PRICE[0] + BigInt(outTok) * PRICE[1]) * 18n + 99_999_999n) / 100_000_000n);
/** The mock's documented usage rule: 3 + Σ(ceil(chars/4) + 4); output min(max_tokens, 24). */
const mockUsage = (text, maxTokens) => ({ input: 3 + Math.ceil([...text].length / 4) + 4, output: Math.min(maxTokens, 24) });

const chat = (key, content, { model = "gpt-4o-mini", provider = "openai", max_tokens = 24 } = {}) =>
  c.api("/v1/chat", { key, body: { provider, model, max_tokens, messages: [{ role: "user", content }] } });

async function json(res) {
  return { status: res.status, body: await res.json() };
}
const keys = async (key) => json(await c.api("/v1/keys", { key }));
/** `POST /v1/quote` for the chat call `chat()` makes. */
const quote = async (key, content) => {
  const r = await c.api("/v1/quote", { key, body: { route: "/v1/chat", body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }] } } });
  assert.equal(r.status, 200);
  return r.json();
};
const createSub = async (key, body) => json(await c.api("/v1/keys", { key, body }));

/** The hold of one call of `chat(…, content)` (measured on a probe key's ledger). */
async function holdOf(content) {
  const probe = await c.createKey({ credits: 10 });
  const r = await chat(probe.api_key, content);
  assert.equal(r.status, 200);
  return (await c.settled(probe.id, r.headers.get("x-request-id"))).find((e) => e.type === "call").hold;
}

test("an account key creates, lists, rotates and revokes sub-keys; a sub-key manages nothing", async () => {
  const account = await c.createKey({ credits: 50, plan: "pro" });
  const made = await createSub(account.api_key, { name: "ci runner", daily_cap: 2.5, total_cap: 10, models: ["openai/gpt-4o-mini"] });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  assert.match(made.body.api_key, /^sk-broker-[0-9a-f]{64}$/);
  assert.equal(made.body.account_key_id, account.id);
  assert.deepEqual(made.body.caps, { daily: 2.5, monthly: null, total: 10 });
  assert.equal(made.body.plan, "pro", "the account's plan by default");
  // The plaintext is stored hashed only.
  assert.equal(await c.redis("HGET", `abk:key:${made.body.id}`, "api_key"), null);
  const listed = await keys(account.api_key);
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.keys.map((k) => [k.id, k.name, k.status]), [[made.body.id, "ci runner", "active"]]);
  assert.ok(!JSON.stringify(listed.body).includes(made.body.api_key), "the list never shows a key");
  // A sub-key cannot manage keys, buy credits or rotate itself.
  const sub = made.body.api_key;
  for (const [path, body] of [["/v1/keys", undefined], ["/v1/keys", { name: "nested" }], [`/v1/keys/${made.body.id}/revoke`, {}], ["/v1/keys/rotate", {}],
    ["/v1/checkout", { credits: 1000, success_url: "https://x.example/ok", cancel_url: "https://x.example/no" }]]) {
    const r = await json(await c.api(path, { key: sub, body }));
    assert.equal(r.status, 403, `${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, "sub_key_forbidden");
  }
  // Admins see the sub-key with its account, and the account with its sub-keys.
  const adminSub = await c.admin(`/admin/keys/${made.body.id}`);
  assert.equal(adminSub.body.parent, account.id);
  assert.deepEqual(adminSub.body.sub_key.caps, { daily: 2.5, monthly: null, total: 10 });
  assert.deepEqual((await c.admin(`/admin/keys/${account.id}`)).body.sub_keys.map((k) => k.id), [made.body.id]);
  // Its balance is the account's, with its own caps.
  const bal = await json(await c.api("/v1/balance", { key: sub }));
  assert.equal(bal.body.credits, 50);
  assert.deepEqual(bal.body.sub_key.remaining, { daily: 2.5, monthly: null, total: 10 });
  // Rotate: a new key, the old one dead, the caps kept.
  const rot = await json(await c.api(`/v1/keys/${made.body.id}/rotate`, { key: account.api_key, body: {} }));
  assert.equal(rot.status, 200);
  assert.equal((await chat(sub, "old key")).status, 401);
  assert.equal((await chat(rot.body.api_key, "new key")).status, 200);
  assert.deepEqual((await keys(account.api_key)).body.keys[0].caps, { daily: 2.5, monthly: null, total: 10 });
  // Revoke: the sub-key stops, the account goes on, the list drops it.
  const rev = await json(await c.api(`/v1/keys/${made.body.id}/revoke`, { key: account.api_key, body: {} }));
  assert.deepEqual(rev, { status: 200, body: { id: made.body.id, status: "revoked" } });
  assert.equal((await chat(rot.body.api_key, "revoked")).status, 401);
  assert.equal((await chat(account.api_key, "the account")).status, 200);
  assert.deepEqual((await keys(account.api_key)).body.keys, []);
  // Another account's key cannot touch this account's sub-keys.
  const other = await c.createKey({ credits: 1 });
  const second = await createSub(account.api_key, { name: "second" });
  const stranger = await json(await c.api(`/v1/keys/${second.body.id}/revoke`, { key: other.api_key, body: {} }));
  assert.equal(stranger.status, 404);
  assert.equal((await chat(second.body.api_key, "still alive")).status, 200);
  // Revoking the account key disables its sub-keys.
  assert.equal((await c.admin(`/admin/keys/${account.id}/revoke`, {})).status, 200);
  const dead = await json(await chat(second.body.api_key, "account gone"));
  assert.equal(dead.status, 401);
  assert.match(dead.body.error.message, /account key has been revoked/);
});

test("each bad input is a 400 naming the field, and nothing is charged or changed", async () => {
  const account = await c.createKey({ credits: 20, plan: "pro" });
  const before = await c.ledger(account.id);
  for (const [body, field] of [
    [{ name: "x", colour: "blue" }, "colour"],
    [{ name: "x", daily_cap: -1 }, "daily_cap"],
    [{ name: "x", total_cap: "-0.5" }, "total_cap"],
    [{ name: "x", monthly_cap: -0.001 }, "monthly_cap"],
    [{ name: "x", models: ["openai/gpt-not-sold"] }, "models"],
    [{ name: "x", plan: "bulk" }, "plan"],
    [{ name: "" }, "name"],
  ]) {
    const r = await createSub(account.api_key, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.param, field);
    assert.match(r.body.error.message, new RegExp(`\`${field}\``));
  }
  assert.deepEqual((await keys(account.api_key)).body.keys, [], "no sub-key was made");
  assert.equal(await c.balanceMc(account.api_key), 20_000);
  assert.deepEqual(await c.ledger(account.id), before);
  assert.equal((await c.redis("SCARD", `abk:subkeys:${account.id}`)), 0);
});

test("a call on a sub-key charges the shared balance at list price; the ledger and /v1/usage name the sub-key", async () => {
  const account = await c.createKey({ credits: 30 });
  const made = (await createSub(account.api_key, { name: "reporting" })).body;
  const content = "sub-key call, priced";
  const r = await chat(made.api_key, content);
  assert.equal(r.status, 200);
  const u = mockUsage(content, 24);
  const want = expectedMc(u.input, u.output);
  assert.equal(Math.round(Number(r.headers.get("x-credits-charged")) * 1000), want);
  const rid = r.headers.get("x-request-id");
  const entry = (await c.settled(account.id, rid)).find((e) => e.type === "call");
  assert.equal(entry.amount, -want);
  assert.equal(entry.sub_key, made.id);
  assert.equal(entry.sub_key_name, "reporting");
  assert.equal(await c.balanceMc(account.api_key), 30_000 - want, "the account's balance paid");
  // The operator's log lines name both: the account that paid (`key_id`) and the sub-key.
  const lines = (await c.linesOf(rid, ["request", "settlement"])).filter((l) => ["request", "settlement"].includes(l.msg));
  assert.deepEqual(lines.map((l) => [l.msg, l.key_id, l.sub_key]).sort(), [["request", account.id, made.id], ["settlement", account.id, made.id]]);
  // The account makes a call of its own: the account sees both, the sub-key only its own.
  const own = await chat(account.api_key, "the account's own call");
  await c.settled(account.id, own.headers.get("x-request-id"));
  const accountUsage = (await json(await c.api("/v1/usage", { key: account.api_key }))).body;
  const calls = accountUsage.entries.filter((e) => e.type === "call");
  assert.equal(calls.length, 2);
  assert.deepEqual(calls.map((e) => e.sub_key ?? null).sort(), [made.id, null].sort());
  const subUsage = (await json(await c.api("/v1/usage", { key: made.api_key }))).body;
  assert.deepEqual(subUsage.entries.map((e) => [e.ref, e.sub_key, e.amount_mc]), [[rid, made.id, -want]]);
  // The list shows its spend; its day's usage is its own call.
  const row = (await keys(account.api_key)).body.keys[0];
  assert.deepEqual(row.spend_mc, { today: want, this_month: want, total: want, held: 0 });
  const daily = (await json(await c.api("/v1/usage/daily", { key: made.api_key }))).body;
  assert.equal(JSON.stringify(daily).includes("gpt-4o-mini"), true);
});

test("a sub-key sees its own call's bill while it runs and once settled; a sibling sub-key never does", async () => {
  const account = await c.createKey({ credits: 10 });
  const mine = (await createSub(account.api_key, { name: "mine" })).body;
  const sibling = (await createSub(account.api_key, { name: "sibling" })).body;
  await c.mockScript({ provider: "openai", gate: true }); // in flight until the release below
  const pending = chat(mine.api_key, "a bill in flight");
  let rid;
  try {
    for (let i = 0; i < 200 && !rid; i++) {
      [rid] = await c.redis("ZRANGE", "abk:open_holds", 0, -1);
      if (!rid) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(rid, "the call was admitted");
    const bill = (key) => c.api(`/v1/requests/${rid}`, { key, method: "GET" });
    for (const key of [mine.api_key, account.api_key]) {
      const b = await json(await bill(key));
      assert.deepEqual([b.status, b.body.status], [200, "held"], JSON.stringify(b.body));
    }
    assert.equal((await bill(sibling.api_key)).status, 404, "a sibling sub-key does not see it");
  } finally {
    await c.mockRelease();
  }
  const res = await pending;
  assert.equal(res.status, 200);
  await c.settled(account.id, rid);
  const settled = await json(await c.api(`/v1/requests/${rid}`, { key: mine.api_key, method: "GET" }));
  assert.deepEqual([settled.status, settled.body.status], [200, "settled"]);
  assert.equal((await c.api(`/v1/requests/${rid}`, { key: sibling.api_key, method: "GET" })).status, 404);
});

test("caps (total and daily) and allowed models are enforced", async () => {
  const content = "cap probe";
  const hold = await holdOf(content);
  const charge = expectedMc(mockUsage(content, 24).input, 24);
  assert.ok(charge < hold);
  const account = await c.createKey({ credits: 100 });
  // A total cap of exactly one hold: one call, then its spend leaves less than a hold.
  for (const cap of ["total_cap", "daily_cap"]) {
    const sub = (await createSub(account.api_key, { name: cap, [cap]: hold / 1000 })).body;
    // The quote sees the cap as admission will: the whole cap is room for this one hold.
    const before = await quote(sub.api_key, content);
    assert.deepEqual([before.admitted, before.hold_mc, before.sub_key_room_cap, before.sub_key_room_credits * 1000], [true, hold, cap, hold]);
    const first = await chat(sub.api_key, content);
    assert.equal(first.status, 200);
    await c.settled(account.id, first.headers.get("x-request-id"));
    const after = await quote(sub.api_key, content);
    assert.deepEqual([after.admitted, after.refusal, Math.round(after.sub_key_room_credits * 1000)], [false, "sub_key_cap_reached", hold - charge]);
    const second = await json(await chat(sub.api_key, content));
    assert.equal(second.status, 402, JSON.stringify(second.body));
    assert.equal(second.body.error.code, "sub_key_cap_reached");
    assert.equal(second.body.error.cap, cap);
    assert.equal(Math.round(second.body.error.credits_left_in_cap * 1000), hold - charge);
  }
  const zero = (await createSub(account.api_key, { name: "zero", daily_cap: 0 })).body;
  assert.equal((await chat(zero.api_key, content)).status, 402);
  // Models: only Claude.
  const claude = (await createSub(account.api_key, { name: "claude only", models: ["anthropic/claude-haiku-4-5"] })).body;
  const refused = await json(await chat(claude.api_key, content));
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, "model_not_allowed");
  assert.equal((await chat(claude.api_key, content, { provider: "anthropic", model: "claude-haiku-4-5" })).status, 200);
  // Nothing was held or charged for the refusals: two served calls of the capped keys, one of Claude.
  const served = (await c.ledger(account.id)).filter((e) => e.type === "call");
  assert.equal(served.length, 3);
});

test("200 concurrent calls on a sub-key whose cap covers 10 serve at most 10, and the balance stays within the cap", async () => {
  const content = "concurrency";
  const hold = await holdOf(content);
  const cap = hold * 10 + Math.floor(hold / 2);
  const account = await c.createKey({ credits: 500 });
  const sub = (await createSub(account.api_key, { name: "burst", total_cap: cap / 1000 })).body;
  const results = await c.burstHeld("openai", 200, () => chat(sub.api_key, content));
  const ok = assertServedAtMost(results, 10);
  const refused = results.filter((r) => r.status === 402);
  assert.equal(ok + refused.length, 200, JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 402)));
  assert.ok(refused.every((r) => r.body.error.code === "sub_key_cap_reached"), JSON.stringify(refused[0]));
  let entries;
  for (let i = 0; i < 200; i++) {
    entries = await c.ledger(account.id);
    if (entries.filter((e) => e.type === "call").length >= ok && (await c.redis("HGET", `abk:key:${sub.id}`, "held")) === "0") break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const calls = entries.filter((e) => e.type === "call");
  assert.equal(calls.length, ok, "one ledger entry per served call");
  assert.ok(calls.every((e) => e.sub_key === sub.id));
  const spent = -calls.reduce((s, e) => s + e.amount_mc, 0);
  assert.ok(spent <= cap, `spent ${spent} > cap ${cap}`);
  const bal = await c.balanceMc(account.api_key);
  assert.equal(bal, 500_000 - spent);
  assert.ok(bal >= 500_000 - cap, "the balance never went below what the cap allows");
  assert.equal((await keys(account.api_key)).body.keys[0].spend_mc.total, spent);
});

test("a sub-key's retry with the same Idempotency-Key runs once and spends its cap once (issues 24 and 25 together)", async () => {
  const content = "idempotent sub-key call";
  const account = await c.createKey({ credits: 40 });
  const sub = (await createSub(account.api_key, { name: "retrying client", total_cap: 5 })).body;
  const send = () => c.api("/v1/chat", { key: sub.api_key, headers: { "idempotency-key": "order-42" },
    body: { provider: "openai", model: "gpt-4o-mini", max_tokens: 24, messages: [{ role: "user", content }] } });
  const first = await send();
  assert.equal(first.status, 200);
  const rid = first.headers.get("x-request-id");
  await c.settled(account.id, rid);
  const again = await send();
  assert.equal(again.status, 200);
  assert.deepEqual([again.headers.get("idempotent-replayed"), again.headers.get("x-request-id")], ["true", rid]);
  const u = mockUsage(content, 24);
  const want = expectedMc(u.input, u.output);
  const calls = (await c.ledger(account.id)).filter((e) => e.type === "call");
  assert.deepEqual(calls.map((e) => [e.ref, e.amount_mc, e.sub_key]), [[rid, -want, sub.id]], "one call, charged once");
  assert.equal((await keys(account.api_key)).body.keys[0].spend_mc.total, want, "the cap counts it once");
  assert.equal(await c.balanceMc(account.api_key), 40_000 - want);
});

test("a sub-key's call is still one Upstash round trip before the response, and one after", async () => {
  const account = await c.createKey({ credits: 10 });
  const sub = (await createSub(account.api_key, { name: "one trip", daily_cap: 5, monthly_cap: 6, total_cap: 7, models: ["openai/gpt-4o-mini"] })).body;
  // Warm: the script is cached in Redis (EVALSHA hits), as in steady state.
  await c.settled(account.id, (await chat(sub.api_key, "warm")).headers.get("x-request-id"));
  // Emulate a distant region so "before" and "after" are far apart in time (as metering.test.mjs).
  await c.frontDelay(1000);
  try {
    await c.frontReset();
    const res = await chat(sub.api_key, "one round trip");
    const headersAt = Date.now();
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await c.settled(account.id, res.headers.get("x-request-id"));
    // The front logs a request when it answers it, after its emulated delay: the settlement may be
    // in the ledger a moment before it is in the front's log.
    let worker = [];
    for (let i = 0; i < 60 && worker.length < 2; i++) {
      if (i) await new Promise((r) => setTimeout(r, 50));
      worker = (await c.frontStats()).log.filter((e) => !e.commands.includes("LRANGE"));
    }
    const before = worker.filter((e) => e.received_ms <= headersAt - 500);
    assert.deepEqual(before.map((e) => e.commands), [["EVALSHA"]], JSON.stringify(worker));
    assert.equal(worker.length, 2, "admission + settlement");
  } finally {
    await c.frontDelay(0);
  }
});
