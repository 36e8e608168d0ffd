// The third-party clients of tests/clients.test.mjs, installed outside the checkout by
// scripts/setup-clients (pinned versions, once per machine), and a way to run them.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./procs.mjs";

export const CLIENTS_DIR = process.env.BROKER_CLIENTS_DIR || path.join(os.homedir(), ".cache", "broker-clients");

/** NAME → VERSION, as scripts/setup-clients pins them (its `npm_client` / `py_client` lines). */
export function pinned() {
  const text = fs.readFileSync(path.join(ROOT, "scripts", "setup-clients"), "utf8");
  return Object.fromEntries([...text.matchAll(/^(?:npm|py)_client (\S+) (\S+)/gm)].map((m) => [m[1], m[2]]));
}

/** Installs what is missing (a no-op when every client is there). */
export function setupClients() {
  execFileSync("bash", [path.join(ROOT, "scripts", "setup-clients")], { stdio: ["ignore", "inherit", "inherit"] });
}

/** The install directory of a pinned client. */
export function clientHome(name) {
  const version = pinned()[name];
  if (!version) throw new Error(`scripts/setup-clients pins no client ${name}`);
  const home = path.join(CLIENTS_DIR, `${name}-${version}`);
  if (!fs.existsSync(path.join(home, ".installed"))) throw new Error(`${name} ${version} is not installed: run scripts/setup-clients`);
  return home;
}

/** Runs a client to its end (at most `timeoutMs`): { code, stdout, stderr }. */
export function run(cmd, args, { env = {}, cwd, timeoutMs = 120_000, input } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 124 : 1), stdout, stderr });
    });
    child.stdin.end(input ?? "");
  });
}

/** A fresh empty directory (a client's HOME or config dir), removed at exit. */
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
