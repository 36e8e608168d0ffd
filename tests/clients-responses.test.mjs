// The real clients of the Responses API against the local stack, each installed by
// scripts/setup-clients (pinned, outside the checkout) and pointed at the worker by its base URL
// and key only: Codex CLI (`codex exec`, a custom provider with wire_api = "responses"), the
// OpenAI Agents SDK (Python), the Vercel AI SDK's default provider (`openai(model)` is the
// Responses API) and LangChain's `ChatOpenAI(use_responses_api=True)`. Each runs a tool loop on
// an OpenAI, an Anthropic and a Gemini model; the answer comes from the mocks, and the key is
// charged exactly the mocks' scripted usage at list price, once per provider call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { useStack, PRICE_DATE } from "./lib/stack-client.mjs";
import { CLIENTS_DIR, pinned } from "./lib/clients.mjs";

// Versions are pinned once, in scripts/setup-clients.
const dir = (name) => path.join(CLIENTS_DIR, `${name}-${pinned()[name]}`);
const CODEX = dir("codex");
const AI_SDK = dir("ai-sdk");
const AGENTS = dir("openai-agents");
const LANGCHAIN = dir("langchain-openai");

const { stack, c } = await useStack();

// List prices (micro-USD per 1M tokens, shared/prices/REFERENCE.md). Gemini 3.8 Flash doubles on 2027-01-01.
const G38 = PRICE_DATE >= "2027-01-01" ? [1_500_000n, 7_500_000n] : [750_000n, 3_750_000n];
const PRICES = { "gpt-4o-mini": [150_000n, 600_000n], "gpt-5.6-luna": [200_000n, 1_200_000n], "claude-haiku-4-5": [1_000_000n, 5_000_000n], "gemini-3.8-flash": G38 };
const PROVIDER = { "gpt-4o-mini": "openai", "anthropic/claude-haiku-4-5": "anthropic", "google/gemini-3.8-flash": "gemini" };
const MODELS = Object.keys(PROVIDER);
const bare = (model) => model.split("/").at(-1);
/** credits = usd × 1.8 / 0.01, in millicredits, rounded up once per call: pico-USD × 18 / 1e8. */
const expectedMc = (model, inTok, outTok) => {
  const [pin, pout] = PRICES[bare(model)];
  return Number(((BigInt(inTok) * pin + BigInt(outTok) * pout) * 18n + 99_999_999n) / 100_000_000n);
};
const REPLY = "Mock reply from the deterministic provider simulator";

// Keys get 100 credits: without max_output_tokens a call holds the output the balance covers (up
// to the model's limit, ~58 credits on Claude Haiku), and an agent's next step can start before
// the previous call's settlement has released its hold.
// Every provider call of a test reports this usage (the mocks' scripted override), so the charge
// of each call is known here without reading anything back from the gateway.
const IN = 1000, OUT = 100;
async function scriptUsage() {
  for (const provider of ["openai", "anthropic", "gemini"]) {
    await c.mockScript({ provider, times: 100, usage: { input_tokens: IN, output_tokens: OUT, promptTokenCount: IN, candidatesTokenCount: OUT, thoughtsTokenCount: 0, reasoning_tokens: 0 } });
  }
}

/** The key's `call` ledger entries, once `n` are there. */
async function settledCalls(key, n) {
  const deadline = Date.now() + 15000;
  let entries = [];
  while (Date.now() < deadline) {
    entries = (await c.ledger(key.id)).filter((e) => e.type === "call");
    if (entries.length >= n) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(entries.length, n, "one ledger entry per provider call");
  return entries;
}

/** Waits until every provider call of the test is settled, then checks the key paid exactly
 *  (provider calls × the scripted usage at list price); returns how many calls there were. */
async function assertChargedPerCall(key, model, least = 2) {
  const calls = (await c.mockRequests(PROVIDER[model] ?? "openai")).length;
  assert.ok(calls >= least, `${model}: a tool loop is at least two calls (${calls})`);
  const entries = await settledCalls(key, calls);
  const paid = -entries.reduce((n, e) => n + e.amount_mc, 0);
  assert.equal(paid, calls * expectedMc(model, IN, OUT), model);
  assert.equal(await c.balanceMc(key.api_key), 100_000 - paid, "the balance is what was paid");
  return calls;
}

function run(cmd, args, { env = {}, cwd, input, timeout = 120_000 } = {}) {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
    if (input !== undefined) child.stdin.end(input);
  });
}
const installed = (d) => fs.existsSync(path.join(d, ".installed"));
const skipUnless = (d) => (installed(d) ? false : `not installed: run scripts/setup-clients (${d})`);

test("Codex CLI: `codex exec` runs its tool loop through /v1/responses on each provider, charged exactly", { skip: skipUnless(CODEX) }, async () => {
  const bin = path.join(CODEX, "node_modules", ".bin", "codex");
  // gpt-5.6-luna: Codex declares its tools inside the input (`additional_tools`, which the mock
  // does not call) and sends `reasoning.context`: one call, no tool loop.
  for (const model of [...MODELS, "gpt-5.6-luna"]) {
    const loop = model !== "gpt-5.6-luna";
    await c.mockReset();
    await scriptUsage();
    const key = await c.createKey({ credits: 100 });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "codex-home-"));
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "codex-work-"));
    fs.writeFileSync(path.join(home, "config.toml"), [
      `model = "${model}"`,
      `model_provider = "broker"`,
      // The gateway does not serve OpenAI's per-call-priced built-in tools (docs/responses.md).
      `web_search = "disabled"`,
      // Thinking on: Claude's signed thinking must make the round trip through Codex's items.
      `model_reasoning_effort = "low"`,
      `[model_providers.broker]`,
      `name = "AI API Broker"`,
      `base_url = "${stack.workerUrl}/v1"`,
      `env_key = "BROKER_API_KEY"`,
      `wire_api = "responses"`,
      "",
    ].join("\n"));
    const r = await run(bin, ["exec", "--skip-git-repo-check", "--json", "-s", "read-only", "What is in this directory?"], { cwd: work, input: "", env: { CODEX_HOME: home, BROKER_API_KEY: key.api_key, RUST_LOG: "error" } });
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
    const events = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const answer = events.filter((e) => e.item?.type === "agent_message").map((e) => e.item.text).join("");
    assert.ok(answer.startsWith(REPLY), `${model}: code ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    if (loop) assert.ok(events.some((e) => e.type === "item.completed" && e.item?.type !== "agent_message" && e.item?.type !== "reasoning"), `${model}: a tool was called`);
    const sent = await c.mockRequests(PROVIDER[model] ?? "openai");
    if (!PROVIDER[model] || PROVIDER[model] === "openai") {
      assert.equal(sent[0].path, "/openai/v1/responses");
      assert.equal(sent[0].body.store, false);
      if (loop) assert.ok(sent.at(-1).body.input.some((i) => i.type === "function_call_output"), "the tool's output went back");
      else assert.ok(sent[0].body.input.some((i) => i.type === "additional_tools") && sent[0].body.reasoning.context, model);
    }
    if (PROVIDER[model] === "anthropic") {
      const turn = sent.at(-1).body.messages.find((m) => m.role === "assistant").content;
      assert.equal(turn[0].type, "thinking", "Codex sent Claude's signed thinking back first");
      assert.ok(turn[0].signature);
    }
    await assertChargedPerCall(key, model, loop ? 2 : 1);
  }
});

test("OpenAI Agents SDK (Python): Runner runs a function tool loop on the Responses model of each provider, charged exactly", { skip: skipUnless(AGENTS) }, async () => {
  const script = `
import json, os, sys
from openai import AsyncOpenAI
from agents import Agent, Runner, function_tool, set_tracing_disabled, OpenAIResponsesModel
set_tracing_disabled(True)

@function_tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return json.dumps({"city": city, "temp_c": 18})

client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
agent = Agent(name="weather", instructions="Use the tools.", tools=[get_weather], model=OpenAIResponsesModel(model=sys.argv[1], openai_client=client))
result = Runner.run_sync(agent, "What is the weather in Paris?")
print(json.dumps({"final": result.final_output, "responses": len(result.raw_responses),
  "tool_outputs": [i.output for i in result.new_items if i.type == "tool_call_output_item"]}))
`;
  for (const model of MODELS) {
    await c.mockReset();
    await scriptUsage();
    const key = await c.createKey({ credits: 100 });
    const r = await run(path.join(AGENTS, "bin", "python"), ["-c", script, model], { env: { BASE_URL: `${stack.workerUrl}/v1`, API_KEY: key.api_key } });
    assert.equal(r.code, 0, `${model}: ${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1));
    assert.ok(out.final.startsWith(REPLY), model);
    assert.deepEqual(out.tool_outputs.map((o) => JSON.parse(o)), [{ city: "mock", temp_c: 18 }], model);
    assert.equal(await assertChargedPerCall(key, model), out.responses);
  }
});

test("Vercel AI SDK: the default provider's openai(model) (Responses API) runs a tool loop, plain and streamed, charged exactly", { skip: skipUnless(AI_SDK) }, async () => {
  const require = createRequire(path.join(AI_SDK, "package.json"));
  const { generateText, streamText, tool, jsonSchema, stepCountIs } = require("ai");
  const { createOpenAI } = require("@ai-sdk/openai");
  for (const model of MODELS) {
    for (const stream of [false, true]) {
      await c.mockReset();
      await scriptUsage();
      const key = await c.createKey({ credits: 100 });
      const openai = createOpenAI({ baseURL: `${stack.workerUrl}/v1`, apiKey: key.api_key });
      const tools = {
        get_weather: tool({
          description: "Current weather in a city",
          inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }),
          execute: async ({ city }) => ({ city, temp_c: 18 }),
        }),
      };
      const args = { model: openai(model), tools, stopWhen: stepCountIs(4), prompt: "What is the weather in Paris?", maxRetries: 0 };
      let text, steps;
      if (stream) {
        const s = streamText(args);
        text = await s.text;
        steps = await s.steps;
      } else {
        ({ text, steps } = await generateText(args));
      }
      assert.ok(text.startsWith(REPLY), `${model}: ${text}`);
      assert.deepEqual(steps[0].toolCalls.map((t) => [t.toolName, t.input]), [["get_weather", { city: "mock" }]], model);
      assert.equal(await assertChargedPerCall(key, model), steps.length);
      const [first] = await c.mockRequests(PROVIDER[model]);
      assert.ok(first.path.endsWith("/v1/responses") || PROVIDER[model] !== "openai", "the default provider speaks the Responses API");
    }
  }
});

test("LangChain ChatOpenAI(use_responses_api=True): bind_tools → ToolMessage → answer on each provider, invoked and streamed, charged exactly", { skip: skipUnless(LANGCHAIN) }, async () => {
  // One Python process for every run (its imports take seconds): one key per model and mode.
  const script = `
import json, os, sys
from langchain_openai import ChatOpenAI
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return json.dumps({"city": city, "temp_c": 18})

for run in json.loads(os.environ["RUNS"]):
    llm = ChatOpenAI(model=run["model"], base_url=os.environ["BASE_URL"], api_key=run["key"], use_responses_api=True, max_retries=0, streaming=run["stream"])
    bound = llm.bind_tools([get_weather])
    messages = [HumanMessage("What is the weather in Paris?")]
    first = bound.invoke(messages)
    messages.append(first)
    for call in first.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    second = bound.invoke(messages)
    text = second.text if isinstance(second.text, str) else second.text()
    print(json.dumps({"calls": [[c["name"], c["args"]] for c in first.tool_calls], "text": text, "usage": [first.usage_metadata, second.usage_metadata]}))
`;
  await scriptUsage();
  const runs = [];
  for (const model of MODELS) {
    for (const stream of [false, true]) runs.push({ model, stream, key: await c.createKey({ credits: 100 }) });
  }
  const env = { BASE_URL: `${stack.workerUrl}/v1`, RUNS: JSON.stringify(runs.map((r) => ({ model: r.model, stream: r.stream, key: r.key.api_key }))) };
  const r = await run(path.join(LANGCHAIN, "bin", "python"), ["-c", script], { env, timeout: 300_000 });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const outs = r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  assert.equal(outs.length, runs.length);
  for (const [i, out] of outs.entries()) {
    const { model, key } = runs[i];
    assert.deepEqual(out.calls, [["get_weather", { city: "mock" }]], model);
    assert.ok(out.text.startsWith(REPLY), `${model}: ${out.text}`);
    assert.deepEqual(out.usage.map((u) => [u.input_tokens, u.output_tokens]), [[IN, OUT], [IN, OUT]], "the mock's usage reached the client");
    // Two provider calls per run (invoke, then invoke with the tool's answer).
    const entries = await settledCalls(key, 2);
    assert.equal(-entries.reduce((n, e) => n + e.amount_mc, 0), 2 * expectedMc(model, IN, OUT), model);
  }
  for (const model of MODELS) assert.equal((await c.mockRequests(PROVIDER[model])).length, 4, `${model}: 2 runs × 2 calls`);
});
