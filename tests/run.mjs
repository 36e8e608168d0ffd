// Runs every integration test file against ONE local stack (redis-server, Upstash front, mocks,
// the worker in workerd), started here and stopped at the end. Files that need a stack of their
// own (they stop Redis) start it themselves.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./lib/procs.mjs";
import { startStack } from "../scripts/stack.mjs";
import { TEST_VARS, describeStack } from "./lib/stack-client.mjs";

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : fs.readdirSync(path.join(ROOT, "tests")).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join("tests", f));

const t0 = Date.now();
const stack = await startStack({ name: "suite", vars: TEST_VARS });
console.log(`[test] stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s: worker ${stack.workerUrl}`);
const stackJson = path.join(ROOT, ".stack", "suite.json");
fs.writeFileSync(stackJson, JSON.stringify(describeStack(stack)));
const code = await new Promise((resolve) => {
  const child = spawn(process.execPath, ["--test", "--test-concurrency=1", ...files], {
    cwd: ROOT, stdio: "inherit", env: { ...process.env, STACK_JSON: stackJson },
  });
  child.on("exit", (c, sig) => resolve(c ?? (sig ? 1 : 0)));
});
await stack.stop();
process.exit(code);
