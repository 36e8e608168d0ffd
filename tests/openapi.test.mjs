// /openapi.json against the live worker: every documented operation, called with its documented
// auth and example body, answers a documented status with a documented content type, and its body
// validates against the documented schema (ajv, JSON Schema 2020-12). Bad JSON gets the route's
// error shape; an undocumented path or method gets the native 404/405.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { getStack, releaseStack, client } from "./lib/stack-client.mjs";
import { ROOT } from "./lib/procs.mjs";

const SPEC_ID = "https://broker.invalid/openapi.json";
let stack, c, spec, ajv;
before(async () => {
  stack = await getStack();
  c = client(stack);
  const r = await fetch(`${stack.workerUrl}/openapi.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  spec = await r.json();
  // Formats (uri, date) are annotations in 2020-12; unknown OpenAPI keywords (example) are ignored.
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(spec, SPEC_ID);
});
after(releaseStack);

const METHODS = ["get", "post", "put", "patch", "delete"];
const pointer = (...parts) => parts.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

/** Checks one answer against the operation's documented responses; returns the parsed body. */
async function conforms(res, method, template, label) {
  const responses = spec.paths[template][method].responses;
  const documented = responses[String(res.status)];
  const text = await res.text();
  assert.ok(documented, `${label}: status ${res.status} is not documented (${text.slice(0, 200)})`);
  assert.ok(res.headers.get("x-request-id"), `${label}: X-Request-Id`);
  const type = (res.headers.get("content-type") ?? "").split(";")[0].trim();
  assert.ok(documented.content?.[type], `${label}: content type ${type} is not documented for ${res.status}`);
  if (type !== "application/json") return text;
  const body = JSON.parse(text);
  const validate = ajv.getSchema(`${SPEC_ID}#/${pointer("paths", template, method, "responses", res.status, "content", type, "schema")}`);
  assert.ok(validate(body), `${label}: ${res.status} body does not match its schema: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 400)}`);
  return body;
}

/** The documented auth of an operation, as headers, for a given customer key. */
function authHeaders(op, apiKey) {
  const first = Object.keys((op.security ?? [])[0] ?? {});
  const h = {};
  for (const scheme of first) {
    if (scheme === "bearerKey") h.authorization = `Bearer ${apiKey}`;
    if (scheme === "anthropicKey") h["x-api-key"] = apiKey;
    if (scheme === "googApiKey") h["x-goog-api-key"] = apiKey;
    if (scheme === "adminSecret") h["x-admin-secret"] = stack.adminSecret;
    // Signatures the gateway must refuse (a valid one is the webhook tests' business).
    if (scheme === "stripeSignature") h["stripe-signature"] = `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}`;
    if (scheme.startsWith("paypal")) h[spec.components.securitySchemes[scheme].name.toLowerCase()] = "not-a-real-signature";
  }
  return h;
}

/** The template with its other path parameters and its required query parameters filled from
 *  their documented examples (`{key_id}` is the caller's). */
function withParams(template, op) {
  const params = [...(spec.paths[template].parameters ?? []), ...(op.parameters ?? [])].filter((p) => p.example !== undefined);
  let url = template;
  for (const p of params.filter((p) => p.in === "path")) url = url.replace(`{${p.name}}`, p.example);
  const query = params.filter((p) => p.in === "query" && p.required).map((p) => `${p.name}=${encodeURIComponent(p.example)}`);
  return query.length ? `${url}?${query.join("&")}` : url;
}

function operations() {
  return Object.entries(spec.paths).flatMap(([template, item]) => METHODS.filter((m) => item[m]).map((m) => ({ template, method: m, op: item[m] })));
}

test("every documented operation answers as documented, with its example request", async () => {
  const ops = operations();
  assert.ok(ops.length >= 24);
  for (const { template, method, op } of ops) {
    // A key of its own per operation: rotations and revocations touch nothing else.
    const key = await c.createKey({ credits: 100 });
    const url = withParams(template, op).replace("{key_id}", key.id);
    // The examples' placeholder key id stands for this operation's key.
    const placeholder = spec.components.parameters.KeyId.example;
    const raw = op.requestBody?.content["application/json"].example;
    const example = raw && JSON.parse(JSON.stringify(raw).replaceAll(placeholder, key.id));
    const headers = { ...authHeaders(op, key.api_key), ...(example ? { "content-type": "application/json" } : {}) };
    const res = await fetch(`${stack.workerUrl}${url}`, { method: method.toUpperCase(), headers, body: example ? JSON.stringify(example) : undefined });
    const label = `${method.toUpperCase()} ${url}`;
    const answer = await conforms(res, method, template, label);
    // Each example is a working request, except the webhooks (their signatures are fakes) and the
    // billing portal (a fresh key has no subscription to manage).
    if (op.tags.includes("Webhooks")) assert.equal(res.status, 400, label);
    else if (op.operationId === "createBillingPortal") assert.equal(res.status, 400, label);
    // Nor a saved card for auto top-up (400 naming `card`).
    else if (op.operationId === "putAutoTopup") assert.equal(res.status, 400, label);
    // A fresh key has made no call: the example's request id is not its own.
    else if (op.operationId === "getRequestBill") assert.equal(res.status, 404, label);
    // The caller's own id is an account key, not one of its sub-keys.
    else if (["revokeSubKey", "rotateSubKey"].includes(op.operationId)) assert.equal(res.status, 404, label);
    else assert.ok(res.status < 300, `${label}: ${res.status} ${JSON.stringify(answer).slice(0, 300)}`);
    // A streamed chat answer is documented as text/event-stream.
    if (op.tags.includes("Chat")) {
      const s = await fetch(`${stack.workerUrl}${url}`, { method: "POST", headers, body: JSON.stringify({ ...example, stream: true }) });
      const events = await conforms(s, method, template, `${label} (stream)`);
      assert.match(events, /data: /);
    }
  }
});

test("bad JSON gets a documented 400 in each route's error shape", async () => {
  const key = await c.createKey({ credits: 10 });
  for (const { template, method, op } of operations().filter((o) => o.op.requestBody)) {
    const url = withParams(template, op).replace("{key_id}", key.id);
    const headers = { ...authHeaders(op, key.api_key), "content-type": "application/json" };
    const res = await fetch(`${stack.workerUrl}${url}`, { method: method.toUpperCase(), headers, body: "{not json" });
    const label = `${method.toUpperCase()} ${url} with bad JSON`;
    assert.equal(res.status, 400, label);
    await conforms(res, method, template, label);
  }
});

test("undocumented paths are 404 and undocumented methods 405, in the native shape", async () => {
  const nf = await fetch(`${stack.workerUrl}/v1/not-a-route`);
  assert.equal(nf.status, 404);
  assert.equal((await nf.json()).error.type, "not_found");
  const na = await fetch(`${stack.workerUrl}/v1/balance`, { method: "DELETE" });
  assert.equal(na.status, 405);
  assert.equal((await na.json()).error.type, "method_not_allowed");
  // The admin routes are published in this document, so an unknown admin path is a plain 404;
  // a known one asks for the secret.
  assert.equal((await fetch(`${stack.workerUrl}/admin/not-a-route`)).status, 404);
  assert.equal((await fetch(`${stack.workerUrl}/admin/stats`)).status, 401);
});

test("the served document is the one docs/openapi.mjs describes (its generated copy is not stale)", async () => {
  // The source, not the served file's own bytes: a stale public/openapi.json (docs changed, not
  // regenerated) or a worker serving something else both fail here.
  const { spec: source } = await import("../docs/openapi.mjs");
  assert.deepEqual(spec, JSON.parse(JSON.stringify(source)));
});

// Findings of the fuzz run (tests/fuzz.test.mjs), kept as regressions.
test("fuzz finding: an import page Redis cannot scan is a 400 naming the field, not a 503", async () => {
  for (const [body, field] of [[{ count: -93311, cursor: "\u0016\u0089+\u0006mL" }, "cursor"], [{ count: -93311 }, "count"], [{ cursor: "-1" }, "cursor"]]) {
    const res = await fetch(`${stack.workerUrl}/admin/import-keys`, { method: "POST", headers: { "x-admin-secret": stack.adminSecret, "content-type": "application/json" }, body: JSON.stringify(body) });
    assert.equal(res.status, 400, JSON.stringify(body));
    const err = await conforms(res, "post", "/admin/import-keys", `import-keys ${JSON.stringify(body)}`);
    assert.match(err.error.message, new RegExp(`\`${field}\``));
  }
});

test("fuzz finding: each streamed event is documented as an SSE event whose data is JSON or [DONE]", async () => {
  const key = await c.createKey({ credits: 10 });
  for (const [template, example] of [["/v1/chat", { provider: "openai", model: "gpt-4o-mini" }], ["/v1/chat/completions", { model: "openai/gpt-4o-mini" }], ["/v1/messages", { model: "claude-haiku-4-5" }]]) {
    const res = await c.api(template, { key: key.api_key, body: { ...example, max_tokens: 20, stream: true, messages: [{ role: "user", content: "hi" }] } });
    const text = await conforms(res, "post", template, `${template} stream`);
    const validate = ajv.getSchema(`${SPEC_ID}#/${pointer("paths", template, "post", "responses", 200, "content", "text/event-stream", "schema")}`);
    const events = text.split("\n\n").filter((b) => b.trim()).map((block) => {
      const ev = {};
      for (const line of block.split("\n")) {
        const [k, ...v] = line.split(":");
        if (k) ev[k] = ev[k] === undefined ? v.join(":").trimStart() : `${ev[k]}\n${v.join(":").trimStart()}`;
      }
      return ev;
    });
    assert.ok(events.length > 1, template);
    for (const ev of events) {
      assert.ok(validate(ev), `${template}: ${JSON.stringify(ev)}: ${ajv.errorsText(validate.errors)}`);
      if (ev.data !== "[DONE]") JSON.parse(ev.data);
    }
  }
});
