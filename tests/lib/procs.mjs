// Process helpers shared by the integration tests and scripts: start a server on 127.0.0.1,
// wait until it answers, and make sure it dies with the test process.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// Cargo's target directory: CARGO_TARGET_DIR when set (CI keeps one outside the clone), else ./target.
export const TOOLS_DIR = process.env.BROKER_TOOLS_DIR || path.join(path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target"), "tools");

const children = new Set();
// Each child leads its own process group, so killing it also kills what it spawned
// (wrangler's workerd), and nothing outlives the test run.
function killGroup(child, sig) {
  try { process.kill(-child.pid, sig); } catch { try { child.kill(sig); } catch {} }
}
process.on("exit", () => { for (const c of children) killGroup(c, "SIGKILL"); });
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (process.listenerCount(sig) > 1) return; // someone else shuts down gracefully
    process.exit(130);
  });
}

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Spawn a child whose output goes to the test log only when DEBUG_STACK is set, and whole to
 *  `logFile` when one is given. */
export function startProcess(cmd, args, { env = {}, name = cmd, logFile } = {}) {
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.add(child);
  child.output = "";
  const log = logFile ? fs.createWriteStream(logFile, { flags: "a" }) : null;
  const keep = (d) => {
    log?.write(d);
    child.output = (child.output + d.toString()).slice(-20000);
    if (process.env.DEBUG_STACK) process.stderr.write(`[${name}] ${d}`);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.on("exit", () => children.delete(child));
  child.stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    killGroup(child, "SIGTERM");
    setTimeout(() => killGroup(child, "SIGKILL"), 3000).unref();
  });
  return child;
}

/** Poll until `probe()` resolves truthy, or fail after `timeoutMs` with the child's output. */
export async function waitFor(probe, { timeoutMs = 15000, what = "service", child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) break;
    try { if (await probe()) return; } catch (e) { lastErr = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready: ${lastErr ?? ""}\n${child?.output ?? ""}`);
}

/** Resolve once something accepts TCP connections on 127.0.0.1:port. */
export function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
  });
}

/** Start a throwaway redis-server (no persistence) on a free port. */
export async function startRedis({ port } = {}) {
  port = port ?? (await freePort());
  const child = startProcess("redis-server", [
    "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no",
  ], { name: "redis" });
  await waitFor(() => tcpOpen(port), { what: "redis-server", child });
  child.port = port;
  return child;
}

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

/** CPU time (user + system) of a set of processes so far, in ms (from /proc; a process that is
 *  gone counts 0). */
export function cpuMs(pids) {
  let ticks = 0;
  for (const p of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command name, which is in parentheses and may contain spaces.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return (ticks * 1000) / CLK_TCK;
}

/** The arguments of the tools' comparison scripts: `--name N` options (defaults in `opt`, numbers)
 *  and `LABEL=BINARY` builds; prints `usage` and exits when no build is named. */
export function buildArgs(argv, opt, usage) {
  const builds = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) {
      const key = a.slice(2);
      if (!(key in opt)) throw new Error(`unknown option ${a}`);
      opt[key] = Number(argv[++i]);
    } else {
      const eq = a.indexOf("=");
      const [label, bin] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [path.basename(a), a];
      if (!fs.existsSync(bin)) throw new Error(`${bin} not found`);
      builds.push({ label, bin: path.resolve(bin) });
    }
  }
  if (builds.length === 0) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return { opt, builds };
}
