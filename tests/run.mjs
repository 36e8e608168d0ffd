// Runs the integration test files. The worker is built once (scripts/build-worker; every stack's
// `wrangler dev` then finds build/ current and serves it as is). The files are split into lanes
// (balanced by the seconds in WEIGHT) that run side by side; within a lane, one file at a time.
// Each lane has a stack of its own (its own Redis, Upstash front, mocks and worker), so the
// resets, scripts and counters of its files touch no other lane; files that bring their own
// servers (the tools' tests, Redis going down, `npm run dev`) ignore it. A long file with servers
// of its own (the fuzzer) runs alone next to the lanes. The log check (zzz-no-secrets-in-logs)
// runs last in every lane, on that lane's whole worker log.
//
//   node tests/run.mjs                    every file
//   node tests/run.mjs tests/media.test.mjs [more files]
//   TEST_LANES=1 node tests/run.mjs       one shared stack, files one after another
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./lib/procs.mjs";
import { startStack } from "../scripts/stack.mjs";
import { TEST_VARS, describeStack, client } from "./lib/stack-client.mjs";

const LAST = "zzz-no-secrets-in-logs.test.mjs";
// No DevTools inspector in the test stacks' `wrangler dev`: with it open, every console line of
// the worker also travels through workerd's inspector, wrangler's inspector proxy and node, about
// a third of each request's CPU on the stack (measured on the fuzzer's 4,300 requests: 38 s → 26 s
// of CPU). No test uses it, and the worker's log is unchanged (wrangler reads it from workerd's
// structured output). wrangler has no flag for this: it leaves the inspector off inside VS Code's
// JavaScript debug terminal, which it recognises by this variable (with no debugger bootloader in
// NODE_OPTIONS nothing else reads it). Set for the lanes' stacks (started by this process) and by
// the fuzzer for its own; the test files do not inherit it, so `npm run dev` (tests/dev.test.mjs)
// and the files' own stacks run as a user's would.
const INSPECTOR_VAR = process.env.VSCODE_INSPECTOR_OPTIONS;
process.env.VSCODE_INSPECTOR_OPTIONS ||= "{}";
// Seconds each file took in a warm run (docs/testing.md): the lanes are balanced by these.
// A file not listed counts as DEFAULT_SECS.
const WEIGHT = {
  // Measured 2026-12-05 (warm runs, the lanes and the fuzzer side by side, load average 3–8).
  fuzz: 95, "clients-responses": 40, metering: 24, "alerts-topup": 23, "billing-integrity": 18,
  holds: 14, "payments-admin": 13, media: 12, dev: 10, docs: 9, subkeys: 9, "chat-agents": 9,
  portal: 8, clients: 8, "security-paths": 8, "clients-gemini": 7, operations: 7, openapi: 6,
  "portal-keys": 6, "portal-alerts": 6, "mock-providers": 5, "payments-takeback": 5, "zz-redis-down": 5,
  "upstash-front": 4, "money-controls-sdk": 4, responses: 3, "money-controls": 3, checkout: 2,
  rapidapi: 2, "mock-agents": 1, "stream-pipe": 12,
};
const DEFAULT_SECS = 6;
// A file this long runs alone, next to the lanes (the fuzzer: its own stack, ~1.5 min of requests).
const SOLO_SECS = 30;
const args = process.argv.slice(2);
const files = (args.length ? args : fs.readdirSync(path.join(ROOT, "tests")).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join("tests", f)))
  .map((f) => path.relative(ROOT, path.resolve(ROOT, f)));
// A file uses the lane's stack through useStack/getStack, or through tests/lib/browser.mjs.
const usesSuiteStack = (f) => /\b(useStack|getStack|useBrowserPage)\(/.test(fs.readFileSync(path.join(ROOT, f), "utf8"));
const weight = (f) => WEIGHT[path.basename(f, ".test.mjs")] ?? DEFAULT_SECS;
const last = files.filter((f) => path.basename(f) === LAST);
const rest = files.filter((f) => path.basename(f) !== LAST);
// Files with servers of their own that run long go alone; the rest share the lanes' time. The
// short files with servers of their own (they need no lane's stack) go to whichever is shorter:
// a lane, or the queue that runs once a long one is done (`afterSolo`).
const solo = rest.filter((f) => !usesSuiteStack(f) && weight(f) >= SOLO_SECS);
const laned = rest.filter((f) => !solo.includes(f));

const laneCount = Math.max(1, Math.min(Number(process.env.TEST_LANES ?? 2), laned.length || 1));
const lanes = Array.from({ length: laneCount }, () => ({ files: [], secs: 0 }));
const afterSolo = { files: [], secs: Math.max(0, ...solo.map(weight)) };
for (const f of [...laned].sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
  const bins = solo.length && !usesSuiteStack(f) ? [...lanes, afterSolo] : lanes;
  const bin = bins.reduce((m, l) => (l.secs < m.secs ? l : m));
  bin.files.push(f);
  bin.secs += weight(f);
}
for (const l of lanes) {
  l.files.sort();
  // A lane starts a stack only for files that use it; the log check then covers that stack.
  l.needsStack = l.files.some(usesSuiteStack) || (last.length > 0 && laned.length === 0 && l === lanes[0]);
  if (l.needsStack) l.files.push(...last);
}

const secs = (t0) => (Date.now() - t0) / 1000;
const timings = [];
const failures = []; // [file, its report]: printed again at the very end, where a CI log's tail shows it
const t0 = Date.now();

// 1. One build of the worker for every stack of the run.
{
  const t = Date.now();
  console.log("[test] building the worker once (scripts/build-worker)");
  execFileSync("bash", [path.join(ROOT, "scripts", "build-worker")], { cwd: ROOT, stdio: "inherit" });
  timings.push(["worker build", secs(t)]);
}

/** Runs one test file; prints its whole report at once when it ends (lanes run side by side). */
function runFile(file, env, label) {
  const t = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--test", "--test-reporter=spec", file], {
      cwd: ROOT, env: { ...process.env, VSCODE_INSPECTOR_OPTIONS: INSPECTOR_VAR, ...env }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code, sig) => {
      const ok = code === 0;
      const s = secs(t);
      process.stdout.write(`\n── ${file} [${label}] ${ok ? "ok" : "FAILED"} in ${s.toFixed(1)} s\n${out}`);
      timings.push([`${file} [${label}]`, s, ok]);
      if (!ok) failures.push([`${file} [${label}]`, out]);
      resolve(ok && !sig);
    });
  });
}

/** A lane: its own stack (if a file uses it), its files one after another. */
async function runLane(lane, i) {
  if (!lane.files.length) return true;
  const label = `lane ${i + 1}`;
  if (!lane.needsStack) return runOwn(lane.files, 1, label);
  const t = Date.now();
  let stack;
  try {
    stack = await startStack({ name: `suite${i + 1}`, vars: TEST_VARS });
  } catch (e) {
    console.error(`[test] ${label}: the stack did not start: ${e.message}`);
    return false;
  }
  timings.push([`${label}: stack start`, secs(t)]);
  const stackJson = path.join(ROOT, ".stack", `suite${i + 1}.json`);
  fs.writeFileSync(stackJson, JSON.stringify(describeStack(stack)));
  console.log(`[test] ${label} up in ${secs(t).toFixed(1)} s (worker ${stack.workerUrl}): ${lane.files.map((f) => path.basename(f, ".test.mjs")).join(", ")}`);
  let ok = true;
  const c = client(describeStack(stack));
  for (const f of lane.files) {
    // Each file starts with the per-address limits it would have on a stack of its own (the
    // browser files do not reset them per test; the files before them in the lane spend them).
    await c.resetIpLimits().catch((e) => console.error(`[test] ${label}: could not reset the per-address limits: ${e.message}`));
    ok = (await runFile(f, { STACK_JSON: stackJson }, label)) && ok;
  }
  await stack.stop();
  return ok;
}

/** Files with servers of their own, `parallel` at a time. */
async function runOwn(list, parallel, label) {
  let ok = true;
  const queue = [...list];
  await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, async () => {
    while (queue.length) ok = (await runFile(queue.shift(), { STACK_JSON: "" }, label)) && ok;
  }));
  return ok;
}

console.log(`[test] ${files.length} files: ${laneCount} lane(s) with a stack each, ${solo.length} alone (then ${afterSolo.files.length} more with servers of their own) (${os.cpus().length} CPUs)`);
const results = await Promise.all([...lanes.map(runLane), runOwn([...solo, ...afterSolo.files.sort()], solo.length, "alone")]);
const allOk = results.every(Boolean);

// 2. What took how long (a measurement for docs/testing.md, not a check).
timings.push(["integration tests, wall clock", secs(t0)]);
const width = Math.max(...timings.map(([n]) => n.length));
console.log("\n[test] integration timings (s):");
for (const [name, s, ok] of timings) console.log(`  ${name.padEnd(width)} ${s.toFixed(1).padStart(7)}${ok === false ? "  FAILED" : ""}`);
for (const [name, out] of failures) {
  // node's spec reporter ends with a "failing tests" section: the failed tests and their errors.
  const at = out.lastIndexOf("failing tests:");
  const lines = (at >= 0 ? out.slice(out.lastIndexOf("\n", at) + 1) : out).split("\n");
  console.log(`\n[test] FAILED: ${name}\n${(at >= 0 ? lines.slice(0, 120) : lines.slice(-60)).join("\n")}`);
}
if (process.env.TEST_TIMINGS) fs.appendFileSync(process.env.TEST_TIMINGS, timings.map(([n, s]) => `${n}\t${s.toFixed(1)}`).join("\n") + "\n");
process.exit(allOk ? 0 : 1);
