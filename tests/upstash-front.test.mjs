// Integration tests for tools/upstash-front: the Upstash-REST-compatible front for a local
// redis-server. Build first: `cargo build -p upstash-front`, then
// `node --test tests/upstash-front.test.mjs`.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { TOOLS_DIR, startRedis, startProcess, freePort, waitFor } from "./lib/procs.mjs";

const BIN = path.join(TOOLS_DIR, "upstash-front");
const TOKEN = `tok-${randomUUID()}`;
let redisServer;
let front;
let base;

const uniq = (p) => `${p}:${randomUUID()}`;

/** Raw HTTP call to the front; returns { status, body (parsed JSON or raw text), ms }. */
async function raw(urlPath, { body, token = TOKEN, headers = {}, method } = {}) {
  const h = { ...headers };
  if (token !== null) h.Authorization = `Bearer ${token}`;
  const init = { method: method ?? (body === undefined ? "GET" : "POST"), headers: h };
  if (body !== undefined) init.body = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
  const t0 = performance.now();
  const res = await fetch(base + urlPath, init);
  const text = await res.text();
  const ms = performance.now() - t0;
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.status, body: parsed, ms };
}

const cmd = (...args) => raw("/", { body: args });

function client(responseEncoding, token = TOKEN) {
  return new Redis({ url: base, token, responseEncoding, retry: false, enableTelemetry: false });
}

before(async () => {
  if (!fs.existsSync(BIN)) {
    throw new Error(`${BIN} not found: build it first with \`cargo build -p upstash-front\``);
  }
  redisServer = await startRedis();
  const port = await freePort();
  front = startProcess(BIN, [], {
    name: "upstash-front",
    env: { UPSTASH_FRONT_TOKEN: TOKEN, UPSTASH_FRONT_PORT: String(port), REDIS_HOST: "127.0.0.1", REDIS_PORT: String(redisServer.port), UPSTASH_FRONT_DELAY_MS: "0" },
  });
  await waitFor(async () => front.output.includes(`upstash-front listening on http://127.0.0.1:${port}`), { what: "upstash-front", child: front });
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  await front?.stop();
  await redisServer?.stop();
});

test("exits with a clear message when UPSTASH_FRONT_TOKEN is missing", async () => {
  const env = { UPSTASH_FRONT_TOKEN: "", UPSTASH_FRONT_PORT: String(await freePort()) };
  const p = startProcess(BIN, [], { env, name: "no-token" });
  const code = await new Promise((r) => p.on("exit", (c) => r(c)));
  assert.notEqual(code, 0);
  assert.match(p.output, /UPSTASH_FRONT_TOKEN/);
});

for (const [label, encoding] of [["base64 responses (client default)", "base64"], ["plain responses (responseEncoding: false)", false]]) {
  describe(`official @upstash/redis client, ${label}`, () => {
    const redis = () => client(encoding);

    test("set/get/incrby, missing key is null, SET options", async () => {
      const r = redis();
      const k = uniq("str");
      assert.equal(await r.set(k, "hello"), "OK");
      assert.equal(await r.get(k), "hello");
      assert.equal(await r.get(uniq("missing")), null);
      const c = uniq("ctr");
      assert.equal(await r.incrby(c, 5), 5);
      assert.equal(await r.incrby(c, 7), 12);
      assert.equal(await r.set(uniq("ex"), "v", { ex: 100 }), "OK");
      const kx = uniq("ex");
      await r.set(kx, "v", { ex: 100 });
      const ttl = await r.ttl(kx);
      assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
      assert.equal(await r.set(kx, "w", { nx: true }), null);
      assert.equal(await r.ping(), "PONG");
    });

    test("pipeline", async () => {
      const r = redis();
      const k = uniq("p");
      const res = await r.pipeline().set(k, "x").incr(`${k}:n`).get(k).get(uniq("none")).exec();
      assert.deepEqual(res, ["OK", 1, "x", null]);
    });

    test("multi (transaction)", async () => {
      const r = redis();
      const k = uniq("m");
      const res = await r.multi().set(k, "a").append(k, "bc").get(k).incrby(`${k}:n`, 3).exec();
      assert.deepEqual(res, ["OK", 3, "abc", 3]);
    });

    test("a failing command in a pipeline surfaces as an error for that command", async () => {
      const r = redis();
      const k = uniq("pe");
      await r.set(k, "str");
      await assert.rejects(r.pipeline().hget(k, "f").get(k).exec(), /WRONGTYPE/);
      const kept = await r.pipeline().hget(k, "f").get(k).exec({ keepErrors: true });
      assert.match(kept[0].error, /WRONGTYPE/);
      assert.equal(kept[1].result, "str");
    });

    test("eval, evalsha after script load, and createScript NOSCRIPT fallback", async () => {
      const r = redis();
      const k = uniq("ev");
      assert.deepEqual(await r.eval("return {KEYS[1], ARGV[1], 42}", [k], ["arg"]), [k, "arg", 42]);
      const src = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
      const sha = await r.scriptLoad(src);
      assert.match(sha, /^[0-9a-f]{40}$/);
      assert.equal(await r.evalsha(sha, [k + ":n"], [4]), 4);
      assert.equal(await r.evalsha(sha, [k + ":n"], [4]), 8);
      await assert.rejects(r.evalsha("0".repeat(40), [], []), /NOSCRIPT/);
      // A never-loaded script: EVALSHA fails with NOSCRIPT, the client falls back to EVAL.
      const script = r.createScript(`return 'fresh-${randomUUID()}-' .. ARGV[1]`);
      assert.match(await script.exec([], ["z"]), /^fresh-.*-z$/);
    });

    test("hash, list and sorted-set basics", async () => {
      const r = redis();
      const h = uniq("h");
      assert.equal(await r.hset(h, { name: "ann", city: "Zürich" }), 2);
      assert.equal(await r.hget(h, "city"), "Zürich");
      assert.deepEqual(await r.hgetall(h), { name: "ann", city: "Zürich" });
      assert.equal(await r.hget(h, "nope"), null);
      const l = uniq("l");
      assert.equal(await r.rpush(l, "a", "b", "c"), 3);
      assert.deepEqual(await r.lrange(l, 0, -1), ["a", "b", "c"]);
      assert.equal(await r.lpop(l), "a");
      const z = uniq("z");
      assert.equal(await r.zadd(z, { score: 2, member: "two" }, { score: 1, member: "one" }), 2);
      assert.deepEqual(await r.zrange(z, 0, -1), ["one", "two"]);
      assert.equal(await r.zscore(z, "two"), 2);
      assert.deepEqual(await r.zrange(z, 0, -1, { withScores: true }), ["one", 1, "two", 2]);
    });

    test("unicode and binary-ish strings round-trip", async () => {
      const r = redis();
      const values = [
        "héllo wörld ✓ 🚀 日本語 עברית",
        "line1\r\nline2\ttab \"quoted\" back\\slash",
        "nul\u0000byte",
        "OK",
        "PONG",
        "dg==",
        " leading and trailing ",
        "",
      ];
      for (const v of values) {
        const k = uniq("u");
        assert.equal(await r.set(k, v), "OK");
        assert.equal(await r.get(k), v, `round trip of ${JSON.stringify(v)}`);
      }
      const keys = values.map(() => uniq("mu"));
      await r.mset(Object.fromEntries(keys.map((k, i) => [k, values[i]])));
      assert.deepEqual(await r.mget(...keys), values);
    });
  });
}

test("wrong or missing token: 401 Unauthorized on every route and the command does not run", async () => {
  const k = uniq("unauth");
  for (const token of ["wrong-token", null]) {
    const single = await raw("/", { body: ["SET", k, "1"], token });
    assert.equal(single.status, 401);
    assert.deepEqual(single.body, { error: "Unauthorized" });
    const pipe = await raw("/pipeline", { body: [["SET", k, "1"]], token });
    assert.equal(pipe.status, 401);
    assert.deepEqual(pipe.body, { error: "Unauthorized" });
    const multi = await raw("/multi-exec", { body: [["SET", k, "1"]], token });
    assert.equal(multi.status, 401);
    assert.deepEqual(multi.body, { error: "Unauthorized" });
    const pathStyle = await raw(`/set/${k}/1`, { token });
    assert.equal(pathStyle.status, 401);
    const stats = await raw("/__stats", { token });
    assert.equal(stats.status, 401);
  }
  const check = await cmd("EXISTS", k);
  assert.deepEqual(check, { status: 200, body: { result: 0 }, ms: check.ms });
  await assert.rejects(client("base64", "wrong-token").get(k), /Unauthorized/);
});

test("_token query parameter authorizes like the bearer header", async () => {
  const k = uniq("qtok");
  const set = await raw(`/set/${k}/v1?_token=${encodeURIComponent(TOKEN)}`, { token: null });
  assert.equal(set.status, 200);
  assert.deepEqual(set.body, { result: "OK" });
  const bad = await raw(`/get/${k}?_token=nope`, { token: null });
  assert.equal(bad.status, 401);
});

test("failing command: HTTP 400 with the redis error message", async () => {
  const unknown = await cmd("NOSUCHCOMMAND", "x");
  assert.equal(unknown.status, 400);
  assert.deepEqual(Object.keys(unknown.body), ["error"]);
  assert.match(unknown.body.error, /^ERR unknown command/);
  const k = uniq("wt");
  await cmd("SET", k, "s");
  const wrongType = await cmd("LPUSH", k, "x");
  assert.equal(wrongType.status, 400);
  assert.match(wrongType.body.error, /^WRONGTYPE/);
  const noscript = await cmd("EVALSHA", "f".repeat(40), 0);
  assert.equal(noscript.status, 400);
  assert.match(noscript.body.error, /^NOSCRIPT/);
});

test("raw single commands: numbers as args, result mapping, base64 header", async () => {
  const k = uniq("raw");
  assert.deepEqual((await cmd("SET", k, "bar", "EX", 100)).body, { result: "OK" });
  assert.deepEqual((await cmd("GET", k)).body, { result: "bar" });
  assert.deepEqual((await cmd("TTL", k)).body.result > 0, true);
  assert.deepEqual((await cmd("GET", uniq("none"))).body, { result: null });
  const b64 = { "Upstash-Encoding": "base64" };
  assert.deepEqual((await raw("/", { body: ["GET", k], headers: b64 })).body, { result: "YmFy" });
  assert.deepEqual((await raw("/", { body: ["SET", k, "bar"], headers: b64 })).body, { result: "OK" });
  assert.deepEqual((await raw("/", { body: ["PING"], headers: b64 })).body, { result: "UE9ORw==" });
  assert.deepEqual((await raw("/", { body: ["STRLEN", k], headers: b64 })).body, { result: 3 });
  const l = uniq("rl");
  await cmd("RPUSH", l, "foo", "bar");
  assert.deepEqual((await raw("/", { body: ["LRANGE", l, 0, -1], headers: b64 })).body, { result: ["Zm9v", "YmFy"] });
  assert.deepEqual((await raw("/", { body: ["MGET", k, uniq("none")], headers: b64 })).body, { result: ["YmFy", null] });
  const pipe = await raw("/pipeline", { body: [["GET", k], ["SET", k, "x"], ["INCR", uniq("n")]], headers: b64 });
  assert.deepEqual(pipe.body, [{ result: "YmFy" }, { result: "OK" }, { result: 1 }]);
});

test("path-style commands, POST body appended as the last argument, query args after it", async () => {
  const k = uniq("path");
  assert.deepEqual((await raw(`/set/${encodeURIComponent(k)}/a%20b%2Fc`)).body, { result: "OK" });
  assert.deepEqual((await raw(`/get/${encodeURIComponent(k)}`)).body, { result: "a b/c" });
  const json = JSON.stringify({ nested: [1, "two"] });
  const posted = await raw(`/set/${encodeURIComponent(k)}?EX=100`, { body: json, method: "POST" });
  assert.deepEqual(posted.body, { result: "OK" });
  assert.deepEqual((await cmd("GET", k)).body, { result: json });
  const ttl = (await cmd("TTL", k)).body.result;
  assert.ok(ttl > 0 && ttl <= 100);
  // Binary body bytes are stored exactly; read back with base64 encoding.
  const bin = uniq("bin");
  await raw(`/set/${encodeURIComponent(bin)}`, { body: new Uint8Array([0xff, 0x00, 0xfe, 0x41]), method: "POST" });
  const back = await raw("/", { body: ["GET", bin], headers: { "Upstash-Encoding": "base64" } });
  assert.deepEqual(back.body, { result: Buffer.from([0xff, 0x00, 0xfe, 0x41]).toString("base64") });
  assert.equal((await raw("/nosuchcommand/x")).status, 400);
});

test("pipeline with one failing command: 200, others still run, results in order", async () => {
  const k = uniq("pipe");
  const res = await raw("/pipeline", { body: [["SET", k, 1], ["HGET", k, "f"], ["INCR", k], ["NOSUCH"], ["GET", k]] });
  assert.equal(res.status, 200);
  assert.equal(res.body.length, 5);
  assert.deepEqual(res.body[0], { result: "OK" });
  assert.match(res.body[1].error, /^WRONGTYPE/);
  assert.deepEqual(res.body[2], { result: 2 });
  assert.match(res.body[3].error, /^ERR unknown command/);
  assert.deepEqual(res.body[4], { result: "2" });
});

test("multi-exec: runtime errors stay per command; a discarded transaction is one 400 error", async () => {
  const k = uniq("tx");
  const ok = await raw("/multi-exec", { body: [["SET", k, "s"], ["INCR", k], ["GET", k]] });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body[0], { result: "OK" });
  assert.match(ok.body[1].error, /not an integer/);
  assert.deepEqual(ok.body[2], { result: "s" });

  const k2 = uniq("tx2");
  const discarded = await raw("/multi-exec", { body: [["SET", k2, "x"], ["NOSUCHCMD", "a"], ["SET", `${k2}:b`, "y"]] });
  assert.equal(discarded.status, 400);
  assert.ok(!Array.isArray(discarded.body), "a single error object, not an array");
  assert.deepEqual(Object.keys(discarded.body), ["error"]);
  assert.match(discarded.body.error, /^EXECABORT/);
  assert.deepEqual((await cmd("EXISTS", k2, `${k2}:b`)).body, { result: 0 });
  // The connection that saw the aborted transaction is still usable.
  assert.deepEqual((await raw("/multi-exec", { body: [["SET", k2, "z"], ["GET", k2]] })).body, [{ result: "OK" }, { result: "z" }]);
  await assert.rejects(client("base64").multi().set(k2, "q").hget(k2, "f").exec(), /WRONGTYPE/);
});

test("malformed requests: 400 with an error body", async () => {
  for (const route of ["/", "/pipeline", "/multi-exec"]) {
    const bad = await raw(route, { body: "{not json" });
    assert.equal(bad.status, 400, route);
    assert.equal(typeof bad.body.error, "string");
  }
  for (const body of [{ a: 1 }, [], [null], [["nested"]], "\"GET\""]) {
    const res = await raw("/", { body: typeof body === "string" ? body : JSON.stringify(body) });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(typeof res.body.error, "string");
  }
  for (const body of [[], ["GET", "k"], [["GET", "k"], []]]) {
    const res = await raw("/pipeline", { body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(typeof res.body.error, "string");
  }
  // Connection-state commands are refused rather than breaking the pool.
  const multi = await cmd("MULTI");
  assert.equal(multi.status, 400);
  assert.deepEqual((await cmd("PING")).body, { result: "PONG" });
});

test("200 concurrent requests are all served", async () => {
  const k = uniq("conc");
  const results = await Promise.all(Array.from({ length: 200 }, () => cmd("INCR", k)));
  assert.ok(results.every((r) => r.status === 200), "all 200");
  assert.deepEqual(results.map((r) => r.body.result).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.deepEqual((await cmd("GET", k)).body, { result: "200" });
});

test("stats: requests, commands, unauthorized counter, log entries, reset", async () => {
  assert.deepEqual((await raw("/__stats/reset", { method: "POST" })).status, 200);
  const zero = (await raw("/__stats")).body;
  assert.equal(zero.requests, 0);
  assert.equal(zero.commands, 0);
  assert.equal(zero.unauthorized, 0);
  assert.deepEqual(zero.log, []);

  const k = uniq("st");
  await cmd("SET", k, "1");
  await raw("/pipeline", { body: [["GET", k], ["incr", k], ["EVALSHA", "0".repeat(40), 0]] });
  await raw("/multi-exec", { body: [["GET", k], ["GET", k]] });
  await raw(`/get/${k}`);
  await raw("/", { body: ["GET", k], token: "bad" });

  const s = (await raw("/__stats")).body;
  assert.equal(s.requests, 4);
  assert.equal(s.commands, 7);
  assert.equal(s.unauthorized, 1);
  assert.equal(s.log.length, 4);
  assert.deepEqual(s.log.map((e) => e.route), ["/", "/pipeline", "/multi-exec", "path"]);
  assert.deepEqual(s.log.map((e) => e.commands), [["SET"], ["GET", "INCR", "EVALSHA"], ["GET", "GET"], ["GET"]]);
  assert.deepEqual(s.log.map((e) => e.status), [200, 200, 200, 200]);
  const seqs = s.log.map((e) => e.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  for (const e of s.log) {
    assert.ok(e.received_ms > 1.6e12 && e.completed_ms >= e.received_ms, JSON.stringify(e));
  }

  assert.equal((await raw("/__stats/reset", { method: "POST" })).status, 200);
  const after = (await raw("/__stats")).body;
  assert.equal(after.requests, 0);
  assert.equal(after.commands, 0);
  assert.equal(after.unauthorized, 0);
  assert.deepEqual(after.log, []);
});

test("delay config: requests take at least the configured delay", async () => {
  const delay = 300;
  const set = await raw("/__config", { body: { delay_ms: delay } });
  assert.equal(set.status, 200);
  assert.deepEqual(set.body, { delay_ms: delay });
  try {
    await raw("/__stats/reset", { method: "POST" });
    const res = await cmd("PING");
    assert.deepEqual(res.body, { result: "PONG" });
    assert.ok(res.ms >= delay, `took ${res.ms}ms, expected >= ${delay}`);
    const t0 = performance.now();
    assert.equal(await client("base64").get(uniq("none")), null);
    assert.ok(performance.now() - t0 >= delay);
    const entry = (await raw("/__stats")).body.log[0];
    assert.ok(entry.completed_ms - entry.received_ms >= delay, JSON.stringify(entry));
    assert.equal((await raw("/__config", { body: { delay_ms: "x" } })).status, 400);
  } finally {
    await raw("/__config", { body: { delay_ms: 0 } });
  }
});

test("redis down: 5xx with an error body; redis back on the same port: works again", async () => {
  const port = redisServer.port;
  await cmd("PING"); // make sure pooled connections exist
  await redisServer.stop();
  const down = await cmd("PING");
  assert.ok(down.status >= 500 && down.status < 600, `status ${down.status}`);
  assert.equal(typeof down.body.error, "string");
  const downPipe = await raw("/pipeline", { body: [["PING"]] });
  assert.ok(downPipe.status >= 500);

  redisServer = await startRedis({ port });
  await waitFor(async () => (await cmd("PING")).status === 200, { what: "front reconnecting to redis" });
  const k = uniq("back");
  const r = client("base64");
  assert.equal(await r.set(k, "again"), "OK");
  assert.equal(await r.get(k), "again");
  assert.deepEqual(await r.pipeline().get(k).exec(), ["again"]);
});

test("fail_next: the next matching requests fail without running anything (status or dropped connection)", async () => {
  await raw("/__stats/reset", { method: "POST" });
  const k = uniq("fail");
  const sha = (await cmd("SCRIPT", "LOAD", "return redis.call('INCR', KEYS[1])")).body.result;
  const armed = await raw("/__config", { body: { fail_next: { count: 2, command: "evalsha", status: 500 } } });
  assert.equal(armed.status, 200);
  assert.deepEqual(armed.body, { fail_next_remaining: 2 });
  // Other commands are not affected and do not use up the rule.
  assert.deepEqual((await cmd("SET", k, "0")).body, { result: "OK" });
  assert.equal((await raw("/__stats")).body.fail_next_remaining, 2);
  // A single EVALSHA, then a pipeline carrying one: both fail whole, nothing runs.
  const single = await cmd("EVALSHA", sha, 1, k);
  assert.equal(single.status, 500);
  assert.deepEqual(single.body, { error: "injected failure" });
  const pipe = await raw("/pipeline", { body: [["INCR", k], ["EVALSHA", sha, 1, k]] });
  assert.equal(pipe.status, 500);
  assert.deepEqual(pipe.body, { error: "injected failure" });
  assert.deepEqual((await cmd("GET", k)).body, { result: "0" }, "no command of a failed request ran");
  assert.equal((await raw("/__stats")).body.fail_next_remaining, 0);
  assert.deepEqual((await cmd("EVALSHA", sha, 1, k)).body, { result: 1 });

  // "drop": the connection closes without an answer; no command = any request; the delay applies.
  await raw("/__config", { body: { delay_ms: 200, fail_next: { status: "drop" } } });
  try {
    const t0 = performance.now();
    await assert.rejects(cmd("INCR", k));
    assert.ok(performance.now() - t0 >= 200);
  } finally {
    await raw("/__config", { body: { delay_ms: 0 } });
  }
  assert.deepEqual((await cmd("GET", k)).body, { result: "1" });
  await assert.rejects(
    (async () => {
      await raw("/__config", { body: { fail_next: { command: "GET" } } });
      return client("base64").get(k);
    })(),
    /injected failure/,
  );

  const log = (await raw("/__stats")).body.log;
  const injected = log.filter((e) => e.injected);
  assert.deepEqual(injected.map((e) => [e.commands, e.status]), [
    [["EVALSHA"], 500], [["INCR", "EVALSHA"], 500], [["INCR"], 0], [["GET"], 500],
  ]);

  // count 0 disarms; malformed rules are refused.
  await raw("/__config", { body: { fail_next: { count: 5 } } });
  assert.deepEqual((await raw("/__config", { body: { fail_next: { count: 0 } } })).body, { fail_next_remaining: 0 });
  assert.deepEqual((await cmd("PING")).body, { result: "PONG" });
  for (const bad of [{ status: 200 }, { count: -1 }, { command: 7 }, { what: 1 }, "x"]) {
    assert.equal((await raw("/__config", { body: { fail_next: bad } })).status, 400, JSON.stringify(bad));
  }
});

test("raw HTTP framing: chunked request bodies, pipelined requests, body over the cap", async () => {
  const net = await import("node:net");
  const port = new URL(base).port;
  const exchange = (text) => new Promise((resolve) => {
    const sock = net.connect(Number(port), "127.0.0.1", () => sock.write(text));
    let out = "";
    sock.on("data", (d) => { out += d; });
    sock.on("close", () => resolve(out));
    sock.on("error", () => resolve(out));
  });
  const auth = `Authorization: Bearer ${TOKEN}\r\n`;
  const k = uniq("raw-http");
  const out = await exchange(
    `POST / HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\n5\r\n["SET\r\n${(`","${k}","v"]`.length).toString(16)}\r\n","${k}","v"]\r\n0\r\n\r\n` +
    `POST / HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: ${`["GET","${k}"]`.length}\r\nConnection: close\r\n\r\n["GET","${k}"]`,
  );
  const bodies = out.split("\r\n\r\n").slice(1).map((b) => b.split("HTTP/1.1")[0]);
  assert.deepEqual(bodies, ['{"result":"OK"}', '{"result":"v"}']);
  const big = await exchange(`POST / HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: ${64 * 1024 * 1024 + 1}\r\n\r\n[`);
  assert.match(big, /^HTTP\/1\.1 400 /);
  assert.match(big, /body too large/);
});
