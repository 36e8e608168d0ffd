// Authorization follows the endpoint a path resolves to, never the path's spelling: every admin
// route (from the OpenAPI document) under a dozen spellings without the secret, and every customer
// route under the same spellings with another customer's key, answers >= 300 and moves no money.
// Requests go out raw (node:http keeps the path as written; fetch would normalise it).
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { ROOT } from "./lib/procs.mjs";

let stack, c;
before(async () => {
  stack = await getStack();
  c = client(stack);
});
after(async () => {
  await forgetAdminFailures();
  await releaseStack();
});
beforeEach(async () => {
  await c.resetIpLimits();
  await forgetAdminFailures();
});

/** The lockout counts these requests' failures; later tests from this address need the admin API. */
async function forgetAdminFailures() {
  for (const k of await c.redis("KEYS", "abk:adminfail:*")) await c.redis("DEL", k);
}

function raw(method, rawPath, { headers = {}, body } = {}) {
  const url = new URL(stack.workerUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: rawPath, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) } }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

/** Every documented operation: [METHOD, template]. */
const spec = JSON.parse(fs.readFileSync(path.join(ROOT, "public", "openapi.json"), "utf8"));
const operations = Object.entries(spec.paths).flatMap(([template, item]) =>
  ["get", "post", "put", "delete", "patch"].filter((m) => item[m]).map((m) => [m.toUpperCase(), template]));

/** Spellings of a canonical path `/a/b/c` that must never reach its handler unchecked. */
function spellings(p) {
  const [first, ...rest] = p.slice(1).split("/");
  const tail = rest.length ? "/" + rest.join("/") : "";
  const encodedFirst = `%${first.charCodeAt(0).toString(16)}${first.slice(1)}`;
  const out = [
    `/${p}`, // //admin/x
    `//${p}`, // ///admin/x
    `/${first}/${tail}`, // /admin//x
    `/.${p}`, // /./admin/x
    `/${first}/..${p}`, // /admin/../admin/x
    `/${encodedFirst}${tail}`, // /%61dmin/x
    `${p}/`, // trailing slash
    `${p}//`,
    p.toUpperCase(),
    `/${first[0].toUpperCase()}${first.slice(1)}${tail}`,
    `${p}/.`,
  ];
  if (rest.length) out.push(`/${first}%2F${rest.join("/")}`, `/${first}%2f${rest.join("%2F")}`, `/${first}\\${rest.join("/")}`);
  return [...new Set(out)].filter((s) => s !== p);
}

const concrete = (template, keyId) => template.replace("{key_id}", keyId);

test("no admin route answers below 300 without the secret, however its path is spelled, and no money moves", async () => {
  const victim = await c.createKey({ credits: 50 });
  const before = await c.balanceMc(victim.api_key);
  const keysBefore = (await c.redis("KEYS", "abk:key:*")).length;
  const admins = operations.filter(([, t]) => t.startsWith("/admin/"));
  assert.ok(admins.length >= 10, "the spec lists the admin routes");
  const body = { apiKey: victim.api_key, keyId: victim.id, credits: 1_000_000, reason: "x", name: "x", plan: "pro", keys: [] };
  const answered = [];
  for (const [method, template] of admins) {
    const p = concrete(template, victim.id);
    for (const spelled of [p, ...spellings(p)]) {
      for (const headers of [{}, { "x-admin-secret": "" }, { "x-admin-secret": "wrong" }]) {
        const r = await raw(method, spelled, { headers, body: method === "POST" ? body : undefined });
        if (r.status < 300) answered.push(`${method} ${spelled} -> ${r.status} ${r.text.slice(0, 120)}`);
        assert.notEqual(r.status, 500, `${method} ${spelled}: ${r.text}`);
      }
      await forgetAdminFailures();
    }
  }
  assert.deepEqual(answered, [], "admin routes served without the secret");
  assert.equal(await c.balanceMc(victim.api_key), before, "the balance did not move");
  assert.equal((await c.redis("KEYS", "abk:key:*")).length, keysBefore, "no key was created");
  const still = await c.api("/v1/balance", { key: victim.api_key });
  assert.equal(still.status, 200, "the key was neither rotated nor revoked");
});

test("odd spellings of a path are a 404 even with the admin secret: one path, one spelling", async () => {
  for (const spelled of ["//admin/stats", "///admin/stats", "/admin//stats", "/admin/stats/", "/%61dmin/stats", "/admin%2Fstats", "/ADMIN/stats", "/admin/stats//"]) {
    const r = await raw("GET", spelled, { headers: { "x-admin-secret": stack.adminSecret } });
    assert.equal(r.status, 404, `${spelled}: ${r.text}`);
    assert.equal(JSON.parse(r.text).error.type, "not_found");
  }
  const ok = await raw("GET", "/admin/stats", { headers: { "x-admin-secret": stack.adminSecret } });
  assert.equal(ok.status, 200, ok.text);
});

test("customer routes under odd spellings with another customer's key answer >= 300 and move no money", async () => {
  const victim = await c.createKey({ credits: 50 });
  const other = await c.createKey({ credits: 50 });
  const [victimBefore, otherBefore] = [await c.balanceMc(victim.api_key), await c.balanceMc(other.api_key)];
  const customer = operations.filter(([, t]) => t.startsWith("/v1/"));
  const chat = { provider: "openai", model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "hi" }] };
  const answered = [];
  for (const [method, template] of customer) {
    for (const spelled of spellings(template)) {
      // `/./v1/x`, `/v1/../v1/x` and `/v1\\x` are normalised by the URL parser before the worker
      // sees them: they are the canonical path, answered for the key's own account, so skipped.
      if (/\/\.\.?(\/|$)/.test(spelled) || spelled.includes("\\")) continue;
      const r = await raw(method, spelled, { headers: { authorization: `Bearer ${other.api_key}` }, body: method === "POST" ? chat : undefined });
      if (r.status < 300) answered.push(`${method} ${spelled} -> ${r.status}`);
      assert.notEqual(r.status, 500, `${method} ${spelled}: ${r.text}`);
    }
  }
  assert.deepEqual(answered, []);
  assert.equal(await c.balanceMc(victim.api_key), victimBefore);
  assert.equal(await c.balanceMc(other.api_key), otherBefore, "nothing was charged for a call that did not run");
});

test("a customer's rotation needs the key it was made with: the old key cannot rotate after the owner did", async () => {
  const k = await c.createKey({ credits: 5 });
  const first = await c.api("/v1/keys/rotate", { key: k.api_key, body: {} });
  assert.equal(first.status, 200);
  const fresh = (await first.json()).api_key;
  const again = await c.api("/v1/keys/rotate", { key: k.api_key, body: {} });
  assert.equal(again.status, 401, "the rotated-away key is dead");
  assert.equal((await c.api("/v1/balance", { key: fresh })).status, 200, "the owner's new key works");
});
