// The worker served by Miniflare directly (workerd, no `wrangler dev` proxy), from the build the
// stack made, against the same Redis front and mocks. For measurements the dev proxy would skew:
// `wrangler dev` keeps what the worker fetches for its DevTools (a 52 MB provider stream read
// through it grows workerd by about 1 GB), so memory is measured here. The bench uses it too.
import fs from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, freePort } from "./procs.mjs";

/** Starts the built worker with `vars`; returns { url, rssMiB(), dispose() }. */
export async function startMiniflareWorker(vars, { compatibilityDate = "2026-04-01" } = {}) {
  const script = path.join(ROOT, "build", "index.js");
  if (!fs.existsSync(script)) throw new Error("build/index.js is missing: the stack (wrangler dev) builds it");
  const port = await freePort();
  const mf = new Miniflare({
    scriptPath: script,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate,
    bindings: vars,
    host: "127.0.0.1",
    port,
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, rssMiB: () => workerdRssMiB(process.pid), dispose: () => mf.dispose() };
}

/** Resident memory (MiB) of the workerd process below `pid`. */
export function workerdRssMiB(pid) {
  const children = (p) => {
    try {
      return fs.readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch { return []; }
  };
  const all = [];
  for (const queue = [pid]; queue.length;) {
    const p = queue.shift();
    all.push(p);
    queue.push(...children(p));
  }
  const comm = (p) => { try { return fs.readFileSync(`/proc/${p}/comm`, "utf8").trim(); } catch { return ""; } };
  const workerd = all.find((p) => comm(p) === "workerd");
  if (!workerd) throw new Error(`no workerd process below ${pid}`);
  return Number(fs.readFileSync(`/proc/${workerd}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;
}
