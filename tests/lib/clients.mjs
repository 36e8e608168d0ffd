// The third-party clients of tests/clients.test.mjs, installed outside the checkout by
// scripts/setup-clients (pinned versions, once per machine), and a way to run them.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./procs.mjs";
import { MOCK_DEFAULTS } from "./mocks.mjs";

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

/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once per call: pico-USD × 18 / 1e8.
 *  `prices` maps a model to its list prices [input, output] in micro-USD per 1M tokens. */
export function listPriceMc(prices, model, inTok, outTok = 0) {
  const [pin, pout] = prices[model];
  return Number(((BigInt(inTok) * pin + BigInt(outTok) * pout) * 18n + 99_999_999n) / 100_000_000n);
}

/** A key's settled `call` ledger entries (as stored, newest first) once there are `n` of them
 *  (settlement runs after the answer); what is there after `timeoutMs` otherwise. */
export async function settledCalls(c, keyId, n, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entries = (await c.redis("LRANGE", `abk:ledger:${keyId}`, 0, 200)).map((e) => JSON.parse(e)).filter((e) => e.type === "call");
    if (entries.length >= n || Date.now() > deadline) return entries;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The google-genai SDK tests' `n` generate calls as Gemini got them (the SDKs' streamed and whole
 *  calls both go upstream as a stream): their body (maxOutputTokens 50, system "Be brief.") with
 *  the gateway's own key. */
export async function assertGeminiSdkSent(c, n) {
  const sent = (await c.mockRequests("gemini")).filter((q) => !q.path.endsWith(":countTokens"));
  assert.equal(sent.length, n);
  for (const q of sent) {
    assert.equal(q.path, "/gemini/v1beta/models/gemini-3.5-flash:streamGenerateContent");
    assert.equal(q.headers["x-goog-api-key"], MOCK_DEFAULTS.googleKey);
    assert.equal(q.body.generationConfig.maxOutputTokens, 50);
    assert.equal(q.body.systemInstruction.parts[0].text, "Be brief.");
  }
}
