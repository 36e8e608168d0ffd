#!/usr/bin/env node
// Memory soak of mock-providers builds: does resident memory stay flat under a long run?
// Usage: node scripts/soak-mock.mjs [--requests 200000] [--connections 10] LABEL=BINARY ...
// Each binary is started on a free 127.0.0.1 port and loaded with `wrk` (one thread) in slices
// of 5 s until it has served --requests requests: OpenAI chat completions, plain and streamed
// (SSE with usage) in turn. After each slice the VmRSS of the mock (/proc/<pid>/status) is
// printed with the requests served so far.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildArgs, freePort, startProcess, waitFor } from "../tests/lib/procs.mjs";

const { opt, builds } = buildArgs(process.argv.slice(2), { requests: 200_000, connections: 10 }, "node scripts/soak-mock.mjs [--requests N] [--connections C] LABEL=BINARY ...");

const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "soak-mock-"));
const script = path.join(tmp, "chat.lua");
const chat = (extra) => JSON.stringify({
  model: "gpt-4o-mini",
  messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "How do I rotate my API key? ".repeat(8) }],
  ...extra,
});
fs.writeFileSync(script, `
local bodies = { ${JSON.stringify(chat({}))}, ${JSON.stringify(chat({ stream: true, stream_options: { include_usage: true } }))} }
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/openai/v1/chat/completions",
    { ["Authorization"] = "Bearer sk-mock-openai", ["Content-Type"] = "application/json" }, bodies[n % 2 + 1])
end
`);

try {
  for (const b of builds) {
    const port = await freePort();
    const child = startProcess(b.bin, [], { name: "mock-providers", env: { MOCK_PORT: String(port) } });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/__control/health`)).ok, { what: b.bin, child });
    console.log(`${b.label}: ${b.bin}, start RSS ${rssMiB(child.pid).toFixed(1)} MiB`);
    let served = 0;
    let errors = 0;
    while (served < opt.requests) {
      const out = spawnSync("wrk", ["-t1", `-c${opt.connections}`, "-d5s", "-s", script, url], { encoding: "utf8" });
      if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
      served += Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? 0);
      errors += Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0);
      console.log(`  ${String(served).padStart(8)} requests  RSS ${rssMiB(child.pid).toFixed(1).padStart(8)} MiB  (${errors} non-2xx)`);
    }
    await child.stop();
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
