// schemathesis (PyPI, in a private venv: scripts/fuzz-setup) against /openapi.json on the test
// stack: a few examples per operation, stateful links (create key → read, ledger, grant, rotate,
// revoke), with funded keys and the admin secret. No 5xx, responses as documented, every operation
// called; afterwards every key the run touched still has a ledger that sums to its balance.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TEST_VARS, describeStack, client } from "./lib/stack-client.mjs";
import { startStack } from "../scripts/stack.mjs";
import { ROOT } from "./lib/procs.mjs";

const VENV = process.env.FUZZ_VENV ?? path.join(os.homedir(), ".cache", "ai-api-broker-fuzz");
// 10 examples per operation in the fuzzing phase (the coverage phase sends what the schemas call
// for, ~4,400 requests in all); FUZZ_MAX_EXAMPLES and FUZZ_SEED widen a hunt.
const MAX_EXAMPLES = Number(process.env.FUZZ_MAX_EXAMPLES ?? 10);
const OUT = path.join(ROOT, ".stack", "fuzz");

// A stack of its own: the fuzzer sends requests without credentials on purpose (negative cases),
// which the suite's limits (10 wrong admin secrets, 5 unknown keys per address) would turn into
// a run of 429s after a few requests. Here those limits are far away; everything else as in the suite.
const FUZZ_VARS = {
  ...TEST_VARS,
  ADMIN_FAILURE_LIMIT: "100000/900",
  PAYPAL_WEBHOOK_LIMIT: "100000/60",
  RATE_LIMITS: TEST_VARS.RATE_LIMITS.replace(/anonymous=\d+\/\d+/, "anonymous=100000/900"),
};
// As in tests/run.mjs: `wrangler dev` without its DevTools inspector (a third of each request's CPU).
process.env.VSCODE_INSPECTOR_OPTIONS ||= "{}";

let own, stack, c;
before(async () => {
  own = await startStack({ name: "fuzz", vars: FUZZ_VARS });
  stack = describeStack(own);
  c = client(stack);
  const setup = spawnSync("bash", [path.join(ROOT, "scripts", "fuzz-setup")], { stdio: "inherit" });
  assert.equal(setup.status, 0, "scripts/fuzz-setup failed");
});
after(async () => {
  await own?.stop();
});

function runCommand(bin, args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Every key id in the run's requests and answers (the HAR report). */
function touchedKeyIds(har) {
  const ids = new Set();
  for (const e of har.log.entries) {
    for (const text of [e.request.url, e.request.postData?.text ?? "", e.response.content?.text ?? ""]) {
      for (const m of text.matchAll(/key_[0-9a-f]{16}/g)) ids.add(m[0]);
    }
  }
  return [...ids];
}

async function ledgerSums(keyId) {
  const key = await c.admin(`/admin/keys/${keyId}`);
  if (key.status === 404) return null; // an id the fuzzer made up
  assert.equal(key.status, 200, `${keyId}: ${JSON.stringify(key.body)}`);
  // A sub-key spends its account's balance (checked with the account's ledger): docs/accounts.md.
  if (key.body.parent) return null;
  let sum = 0, carried = 0;
  for (let offset = 0; offset !== null;) {
    const page = await c.admin(`/admin/keys/${keyId}/ledger?limit=200&offset=${offset}`);
    assert.equal(page.status, 200);
    carried = page.body.carried_mc;
    sum += page.body.entries.reduce((s, e) => s + e.amount_mc, 0);
    offset = page.body.next_offset;
  }
  return { balance: key.body.millicredits + key.body.held_millicredits, ledger: carried + sum, held: key.body.held_millicredits };
}

/** Requests per operation of the spec (method and path template), from the HAR entries. */
function requestsPerOperation(spec, entries, base) {
  const ops = [];
  for (const [tpl, item] of Object.entries(spec.paths)) {
    const re = new RegExp("^" + tpl.split(/\{[^}]+\}/).map((p) => p.replace(/[.*+?^$()|[\]\\]/g, "\\$&")).join("[^/]+") + "$");
    for (const [method, op] of Object.entries(item)) {
      if (op && typeof op === "object" && op.operationId) ops.push({ id: op.operationId, method: method.toUpperCase(), re, n: 0 });
    }
  }
  for (const e of entries) {
    // The raw URL: the fuzzer sends backslashes and control characters a URL parser would rewrite.
    const p = e.request.url.slice(base.length).split("?")[0];
    for (const op of ops) if (op.method === e.request.method && op.re.test(p)) op.n++;
  }
  return ops;
}

// The run is split in two schemathesis processes side by side on this stack (one Python process
// uses one core; the API's bodies keep it busy generating): the Gemini operations with what
// feeds them (`listModels` for the model names, `getRequestBill` with the request ids their
// streams return), and everything else followed by the stateful phase over every operation. Each
// has a funded key of its own, so a revoke or rotate in one never locks the other out. Every
// operation gets the same phases, checks and examples as in one process.
const GEMINI = "^(gemini.*|listModels|getRequestBill)$";
const PHASES = (process.env.FUZZ_PHASES ?? "examples,coverage,fuzzing,stateful").split(",");
const UNIT_PHASES = PHASES.filter((p) => p !== "stateful").join(",");

// The timeout is a hang guard, not a timing check (4,000+ requests on a loaded 2-core machine).
test("schemathesis finds no 5xx and no undocumented answer, and every touched ledger still sums", { timeout: 900_000 }, async () => {
  fs.rmSync(OUT, { recursive: true, force: true });
  const spec = await (await fetch(`${stack.workerUrl}/openapi.json`)).json();
  const funded = [];

  /** One schemathesis process; its own key and directory; resolves to its HAR entries. */
  async function fuzz(name, phases, filter) {
    const key = await c.createKey({ credits: 5000 });
    funded.push(key.id);
    const dir = path.join(OUT, name);
    fs.mkdirSync(dir, { recursive: true });
    // Credentials per security scheme of the spec (the fuzzer picks the scheme each operation names).
    fs.writeFileSync(path.join(dir, "schemathesis.toml"), [
      `[auth.openapi.bearerKey]\nbearer = "${key.api_key}"`,
      `[auth.openapi.anthropicKey]\napi_key = "${key.api_key}"`,
      `[auth.openapi.adminSecret]\napi_key = "${stack.adminSecret}"`,
      `[auth.openapi.googApiKey]\napi_key = "${key.api_key}"`,
    ].join("\n\n") + "\n");
    const har = path.join(dir, "run.har");
    const t0 = Date.now();
    // Not spawnSync: a blocked event loop lets the worker close our idle keep-alive sockets.
    const run = await runCommand(path.join(VENV, "bin", "st"), [
      "--config-file", path.join(dir, "schemathesis.toml"),
      "run", `${stack.workerUrl}/openapi.json`, "--url", stack.workerUrl,
      "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
      "--phases", phases, "--max-examples", String(MAX_EXAMPLES), "--seed", process.env.FUZZ_SEED ?? "11",
      // One worker: CPython 3.11 can trip over ast.parse from two threads ("AST constructor
      // recursion depth mismatch"), a crash of the fuzzer, not of the API.
      "--workers", "1", "--request-timeout", "20", "--no-shrink", "--generation-database", "none",
      // An input generated twice is sent once; its copies get the first one's outcome and checks
      // (the coverage phase repeats ~250 of its cases: the same wrong type at two depths, …).
      "--generation-unique-inputs",
      "--report", "har", "--report-har-path", har, "--no-color", "--output-truncate", "true", "--warnings", "off",
      // Rotating its own key would lock the fuzzer out (tests/openapi.test.mjs calls it).
      "--exclude-operation-id", "rotateOwnKey",
      ...filter,
    ], dir);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    const entries = JSON.parse(fs.readFileSync(har, "utf8")).log.entries;
    console.log(`[fuzz] ${name} (${phases}): ${entries.length} requests in ${secs} s`);
    assert.equal(run.status, 0, `schemathesis (${name}) failed:\n${run.stdout.slice(-6000)}\n${run.stderr.slice(-2000)}`);
    return entries;
  }

  const t0 = Date.now();
  const runs = await Promise.all([
    UNIT_PHASES ? fuzz("gemini", UNIT_PHASES, ["--include-operation-id-regex", GEMINI]) : [],
    (async () => [
      ...(UNIT_PHASES ? await fuzz("rest", UNIT_PHASES, ["--exclude-operation-id-regex", "^(gemini.*|getRequestBill)$"]) : []),
      ...(PHASES.includes("stateful") ? await fuzz("stateful", "stateful", []) : []),
    ])(),
  ]);
  const entries = runs.flat();
  console.log(`[fuzz] schemathesis made ${entries.length} requests in ${((Date.now() - t0) / 1000).toFixed(1)} s (${MAX_EXAMPLES} examples per operation)`);
  // No answer the fuzzer saw was a 5xx (also those its checks did not flag).
  const fives = entries.filter((e) => e.response.status >= 500);
  assert.deepEqual(fives.map((e) => `${e.request.method} ${e.request.url} → ${e.response.status}`), []);
  // Every operation of the spec was called (the split leaves none out); the counts are kept.
  const ops = requestsPerOperation(spec, entries, stack.workerUrl).filter((o) => o.id !== "rotateOwnKey");
  fs.writeFileSync(path.join(OUT, "requests-per-operation.txt"), ops.map((o) => `${String(o.n).padStart(5)} ${o.method} ${o.id}`).join("\n") + "\n");
  assert.deepEqual(ops.filter((o) => o.n === 0).map((o) => o.id), [], "operations the fuzzer never called");
  console.log(`[fuzz] ${ops.length} operations, ${Math.min(...ops.map((o) => o.n))}–${Math.max(...ops.map((o) => o.n))} requests each (.stack/fuzz/requests-per-operation.txt)`);
  // Every key it touched: spendable + held == carried + Σ entries, once its calls have settled.
  const ids = [...new Set([...funded, ...touchedKeyIds({ log: { entries } })])];
  let checked = 0, created = 0;
  for (const id of ids) {
    let s = await ledgerSums(id);
    for (let i = 0; s && s.held !== 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await ledgerSums(id);
    }
    if (!s) continue;
    assert.equal(s.ledger, s.balance, `${id}: ledger ${s.ledger} mc, balance ${s.balance} mc`);
    checked++;
    if (!funded.includes(id)) created++;
  }
  console.log(`[fuzz] ${checked} touched keys: every ledger sums to its balance`);
  assert.ok(created >= 1, "the stateful phase created keys");
});
