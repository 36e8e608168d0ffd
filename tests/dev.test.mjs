// The README's first command on a fresh clone: `npm run dev` in a copy of the checkout's files
// (what git tracks, plus new files not yet added; no .stack/, no .dev.vars, no build output),
// sharing only what a clone with the tools installed would have built already: node_modules, the
// stack's tools (BROKER_TOOLS_DIR) and this run's worker build (build/, which scripts/build-worker
// accepts only if the copy's sources hash to the same inputs). Ports come from the environment,
// so it never meets another stack. Waits for the banner, runs the curl lines it prints, stops it
// with SIGINT (Ctrl-C) and checks that nothing it started is left.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, TOOLS_DIR, freePort, tcpOpen } from "./lib/procs.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let dir, dev;
const seen = new Set();

/** Every process below `pid` (by parent, so also those in process groups of their own). */
function descendants(pid) {
  const parent = new Map();
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const out = [];
  for (const [p] of parent) {
    for (let q = parent.get(p); q; q = parent.get(q)) if (q === pid) { out.push(p); break; }
  }
  return out;
}

/** A process that still runs (a zombie has finished: only its parent has not read its status). */
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch { return false; }
}
const comm = (pid) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim(); } catch { return "?"; } };

after(async () => {
  // Whatever happened above: nothing of this test outlives it.
  if (dev && dev.exitCode === null) try { process.kill(-dev.pid, "SIGKILL"); } catch {}
  for (const p of seen) try { process.kill(p, "SIGKILL"); } catch {}
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("npm run dev on a fresh clone: banner, its curl lines (200, a charge), Ctrl-C leaves nothing behind", async () => {
  // The worker this run built (tests/run.mjs builds it first; alone, this builds it if needed).
  execFileSync("bash", [path.join(ROOT, "scripts", "build-worker")], { cwd: ROOT, stdio: "ignore" });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-fresh-clone-"));
  const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT }).toString().split("\0").filter(Boolean);
  for (const f of listed) {
    const from = path.join(ROOT, f);
    if (!fs.existsSync(from) || fs.lstatSync(from).isDirectory()) continue; // deleted, or a submodule
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.cpSync(from, path.join(dir, f), { preserveTimestamps: true });
  }
  assert.ok(!fs.existsSync(path.join(dir, ".stack")) && !fs.existsSync(path.join(dir, ".dev.vars")), "a fresh clone has no .stack/ and no .dev.vars");
  // Shared only if current: else the copy's setup would run `npm ci` into the link.
  const installed = path.join(ROOT, "node_modules", ".package-lock.json");
  assert.ok(fs.existsSync(installed) && fs.statSync(installed).mtimeMs >= fs.statSync(path.join(ROOT, "package-lock.json")).mtimeMs,
    "node_modules is older than package-lock.json: run scripts/setup first");
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  fs.cpSync(path.join(ROOT, "build"), path.join(dir, "build"), { recursive: true, preserveTimestamps: true });

  const ports = { PORT: await freePort(), REDIS_PORT: await freePort(), UPSTASH_PORT: await freePort(), MOCK_PORT: await freePort(), INSPECTOR_PORT: await freePort() };
  assert.equal(new Set(Object.values(ports)).size, 5, "five distinct ports");
  const env = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), BROKER_TOOLS_DIR: TOOLS_DIR, NO_COLOR: "1" };
  delete env.STACK_JSON;
  // A process group of its own, as a terminal gives a foreground command: Ctrl-C signals it whole.
  dev = spawn("npm", ["run", "dev"], { cwd: dir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  dev.stdout.on("data", (d) => (out += d));
  dev.stderr.on("data", (d) => (out += d));
  const deadline = Date.now() + 5 * 60 * 1000;
  while (!/curl -s \S+\/v1\/balance .*\n/.test(out)) {
    assert.equal(dev.exitCode, null, `npm run dev exited:\n${out}`);
    assert.ok(Date.now() < deadline, `no banner within 5 minutes:\n${out}`);
    await sleep(100);
  }
  assert.ok(!/ENOENT/.test(out), out);
  assert.match(out, /wrote \.dev\.vars from \.dev\.vars\.example/);
  const url = `http://127.0.0.1:${ports.PORT}`;
  assert.ok(out.includes(`AI API Broker is running at ${url}`), out);
  for (const p of descendants(dev.pid)) seen.add(p);

  // The banner's commands, as printed (continuation lines joined by the shell).
  const banner = out.slice(out.indexOf("AI API Broker is running at"));
  const commands = [...banner.matchAll(/^ {2}(curl (?:.*\\\n)*.*)$/gm)].map((m) => m[1]);
  assert.equal(commands.length, 2, banner);
  const [chatCmd, balanceCmd] = commands;
  const run = (cmd) => {
    const text = execFileSync("bash", ["-c", `${cmd} -w '\\n%{http_code}'`], { encoding: "utf8" });
    const i = text.lastIndexOf("\n");
    return { status: Number(text.slice(i + 1)), body: JSON.parse(text.slice(0, i)) };
  };
  const before = run(balanceCmd);
  assert.equal(before.status, 200);
  assert.equal(before.body.credits, 1000, "the demo key starts with 1000 credits");

  // The example model is one the gateway serves today.
  const model = JSON.parse(chatCmd.match(/-d '(.*)'/)[1]);
  const served = (await (await fetch(`${url}/v1/models`)).json()).data;
  assert.ok(served.some((m) => m.provider === model.provider && m.model === model.model), `${model.provider}/${model.model} is in /v1/models`);

  const chat = run(chatCmd);
  assert.equal(chat.status, 200, JSON.stringify(chat.body));
  assert.equal(typeof chat.body.content, "string", JSON.stringify(chat.body));
  assert.ok(chat.body.content.length > 0, "the model answered");
  const charged = chat.body.credits_charged;
  assert.ok(charged > 0, "the call was charged");
  // Settlement runs after the response: wait for the balance to move.
  let now;
  for (let i = 0; i < 100; i++) {
    now = run(balanceCmd);
    if (now.body.credits !== 1000) break;
    await sleep(50);
  }
  assert.equal(now.status, 200);
  assert.equal(Math.round(now.body.millicredits), 1_000_000 - Math.round(charged * 1000), "the balance dropped by the charge");
  for (const p of descendants(dev.pid)) seen.add(p);
  const names = [...seen].map(comm).join("\n");
  for (const what of ["redis-server", "upstash-front", "mock-providers", "workerd"]) assert.ok(names.includes(what), `${what} was started:\n${names}`);

  // Ctrl-C.
  process.kill(-dev.pid, "SIGINT");
  const exited = new Promise((r) => (dev.exitCode !== null ? r() : dev.once("exit", r)));
  let timer;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 20000)))]);
  clearTimeout(timer);
  assert.notEqual(dev.exitCode ?? dev.signalCode, null, "npm run dev exited after Ctrl-C");
  let left = [];
  for (let i = 0; i < 100; i++) {
    left = [...seen].filter(alive);
    if (!left.length) break;
    await sleep(100);
  }
  assert.deepEqual(left.map(comm), [], "processes left after Ctrl-C");
  for (const [name, port] of Object.entries(ports)) {
    if (name !== "INSPECTOR_PORT") assert.equal(await tcpOpen(port), false, `${name} ${port} is closed`);
  }
  assert.match(out, /stopping the stack/);
});
