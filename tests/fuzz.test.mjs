// schemathesis (PyPI, in a private venv: scripts/fuzz-setup) against /openapi.json on the test
// stack: a few examples per operation, stateful links (create key → read, ledger, grant, rotate,
// revoke), with a funded key and the admin secret. No 5xx, responses as documented; afterwards
// every key the run touched still has a ledger that sums to its balance.
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
// A few examples per operation keep the run near 20 s on 2 cores; FUZZ_MAX_EXAMPLES and FUZZ_SEED
// widen a hunt.
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

// The timeout is a hang guard, not a timing check (4,000+ requests on a loaded 2-core machine).
test("schemathesis finds no 5xx and no undocumented answer, and every touched ledger still sums", { timeout: 900_000 }, async () => {
  const funded = await c.createKey({ credits: 5000 });
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  // Credentials per security scheme of the spec (the fuzzer picks the scheme each operation names).
  fs.writeFileSync(path.join(OUT, "schemathesis.toml"), [
    `[auth.openapi.bearerKey]\nbearer = "${funded.api_key}"`,
    `[auth.openapi.anthropicKey]\napi_key = "${funded.api_key}"`,
    `[auth.openapi.adminSecret]\napi_key = "${stack.adminSecret}"`,
    `[auth.openapi.googApiKey]\napi_key = "${funded.api_key}"`,
  ].join("\n\n") + "\n");
  const har = path.join(OUT, "run.har");
  const t0 = Date.now();
  // Not spawnSync: a blocked event loop lets the worker close our idle keep-alive sockets.
  const run = await runCommand(path.join(VENV, "bin", "st"), [
    "--config-file", path.join(OUT, "schemathesis.toml"),
    "run", `${stack.workerUrl}/openapi.json`, "--url", stack.workerUrl,
    "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
    "--phases", process.env.FUZZ_PHASES ?? "examples,coverage,fuzzing,stateful", "--max-examples", String(MAX_EXAMPLES), "--seed", process.env.FUZZ_SEED ?? "11",
    // One worker: CPython 3.11 can trip over ast.parse from two threads ("AST constructor
    // recursion depth mismatch"), a crash of the fuzzer, not of the API.
    "--workers", "1", "--request-timeout", "20", "--no-shrink", "--generation-database", "none",
    "--report", "har", "--report-har-path", har, "--no-color", "--output-truncate", "true", "--warnings", "off",
    // Rotating its own key would lock the fuzzer out (tests/openapi.test.mjs calls it).
    "--exclude-operation-id", "rotateOwnKey",
  ], OUT);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const report = JSON.parse(fs.readFileSync(har, "utf8"));
  console.log(`[fuzz] schemathesis made ${report.log.entries.length} requests in ${secs} s (${MAX_EXAMPLES} examples per operation)`);
  assert.equal(run.status, 0, `schemathesis failed:\n${run.stdout.slice(-6000)}\n${run.stderr.slice(-2000)}`);
  // No answer the fuzzer saw was a 5xx (also those its checks did not flag).
  const fives = report.log.entries.filter((e) => e.response.status >= 500);
  assert.deepEqual(fives.map((e) => `${e.request.method} ${e.request.url} → ${e.response.status}`), []);
  // Every key it touched: spendable + held == carried + Σ entries, once its calls have settled.
  const ids = [...new Set([funded.id, ...touchedKeyIds(report)])];
  let checked = 0;
  for (const id of ids) {
    let s = await ledgerSums(id);
    for (let i = 0; s && s.held !== 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await ledgerSums(id);
    }
    if (!s) continue;
    assert.equal(s.ledger, s.balance, `${id}: ledger ${s.ledger} mc, balance ${s.balance} mc`);
    checked++;
  }
  console.log(`[fuzz] ${checked} touched keys: every ledger sums to its balance`);
  assert.ok(checked >= 2, "the stateful phase created keys");
});
