#!/usr/bin/env node
// Requests/s and CPU per request of upstash-front builds, measured in one run so they share the
// machine's state. Usage:
//   node scripts/bench-front.mjs [--seconds 10] [--connections 10] [--rounds 1] LABEL=BINARY ...
//   node scripts/bench-front.mjs before=/tmp/upstash-front.before after=target/tools/upstash-front
// One redis-server and one front per binary are started on free 127.0.0.1 ports; `wrk` (Debian
// package `wrk`, one thread) loads each front in turn with three workloads: POST / ["GET","k"],
// an EVALSHA of a one-line script, and a /pipeline of 3 commands. CPU per request is the front
// process's utime+stime delta (/proc/<pid>/stat, in clock ticks / CLK_TCK) over the requests
// wrk completed. With --rounds N the binaries alternate N times per workload and the table
// shows the median round.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildArgs, cpuMs, freePort, startProcess, startRedis, waitFor } from "../tests/lib/procs.mjs";

const { opt, builds } = buildArgs(process.argv.slice(2), { seconds: 10, connections: 10, rounds: 1 }, "node scripts/bench-front.mjs [--seconds S] [--connections C] [--rounds N] LABEL=BINARY ...");
if (spawnSync("wrk", ["--version"]).error) {
  console.error("wrk not found: apt-get install -y wrk");
  process.exit(2);
}

const TOKEN = "bench-token";

async function front(bin, redisPort) {
  const port = await freePort();
  const child = startProcess(bin, [], {
    name: "upstash-front",
    env: { UPSTASH_FRONT_TOKEN: TOKEN, UPSTASH_FRONT_PORT: String(port), REDIS_PORT: String(redisPort), UPSTASH_FRONT_DELAY_MS: "0" },
  });
  await waitFor(async () => child.output.includes(`listening on http://127.0.0.1:${port}`), { what: bin, child });
  return { child, port, url: `http://127.0.0.1:${port}` };
}

async function call(url, route, body) {
  const res = await fetch(url + route, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${route} ${JSON.stringify(body)} -> ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-front-"));
function luaScript(name, route, body) {
  const file = path.join(tmp, `${name}.lua`);
  fs.writeFileSync(file, [
    `wrk.method = "POST"`,
    `wrk.path = ${JSON.stringify(route)}`,
    `wrk.body = ${JSON.stringify(JSON.stringify(body))}`,
    `wrk.headers["Authorization"] = "Bearer ${TOKEN}"`,
    `wrk.headers["Content-Type"] = "application/json"`,
  ].join("\n") + "\n");
  return file;
}

/** One wrk run against `f`; returns { rps, requests, errors, cpuUsPerReq }. */
function load(f, script, seconds = opt.seconds) {
  const before = cpuMs([f.child.pid]);
  const out = spawnSync("wrk", ["-t1", `-c${opt.connections}`, `-d${seconds}s`, "-s", script, f.url], { encoding: "utf8" });
  const cpu = (cpuMs([f.child.pid]) - before) / 1000;
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const requests = Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1] ?? 0);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0)
    + [...out.stdout.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((s, m) => s + Number(m[2]), 0);
  return { rps, requests, errors, cpuUsPerReq: requests ? (cpu * 1e6) / requests : NaN };
}

const redis = await startRedis();
const fronts = [];
try {
  for (const b of builds) fronts.push({ ...b, ...(await front(b.bin, redis.port)) });
  const first = fronts[0];
  await call(first.url, "/", ["SET", "k", "v"]);
  const sha = (await call(first.url, "/", ["SCRIPT", "LOAD", "return redis.call('INCR', KEYS[1])"])).result;
  const workloads = [
    { name: "GET", script: luaScript("get", "/", ["GET", "k"]) },
    { name: "EVALSHA", script: luaScript("evalsha", "/", ["EVALSHA", sha, 1, "bench:n"]) },
    { name: "pipeline(3)", script: luaScript("pipeline", "/pipeline", [["GET", "k"], ["INCR", "bench:p"], ["EXPIRE", "bench:p", 60]]) },
  ];
  // Warm both fronts (connections to redis, page cache) before measuring.
  for (const f of fronts) load(f, workloads[0].script, 2);
  const rows = [];
  for (const w of workloads) {
    const runs = new Map(fronts.map((f) => [f.label, []]));
    for (let r = 0; r < opt.rounds; r++) {
      for (const f of fronts) runs.get(f.label).push(load(f, w.script));
    }
    for (const f of fronts) {
      const rs = runs.get(f.label).sort((a, b) => a.rps - b.rps);
      rows.push({ workload: w.name, build: f.label, ...rs[Math.floor(rs.length / 2)] });
    }
  }
  const pad = (s, n) => String(s).padEnd(n);
  const num = (x, d) => x.toFixed(d).padStart(10);
  console.log(`upstash-front bench: wrk -t1 -c${opt.connections} -d${opt.seconds}s, ${opt.rounds} round(s), ${os.cpus().length} CPUs, redis-server ${redis.port}`);
  console.log(`${pad("workload", 13)}${pad("build", 10)}${"req/s".padStart(10)}${"CPU µs/req".padStart(12)}${"requests".padStart(10)}${"errors".padStart(8)}`);
  for (const r of rows) {
    console.log(`${pad(r.workload, 13)}${pad(r.build, 10)}${num(r.rps, 0)}${num(r.cpuUsPerReq, 1).padStart(12)}${String(r.requests).padStart(10)}${String(r.errors).padStart(8)}`);
  }
} finally {
  for (const f of fronts) await f.child.stop();
  await redis.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
