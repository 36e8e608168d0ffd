// Helpers for the mock-providers server (tools/mock-providers): start it, script it, read its
// request log, sign PayPal webhook deliveries the way it verifies them, and parse SSE.
import crypto from "node:crypto";
import path from "node:path";
import { TOOLS_DIR, freePort, startProcess, waitFor } from "./procs.mjs";

export const MOCK_DEFAULTS = {
  openaiKey: "sk-mock-openai",
  anthropicKey: "sk-ant-mock",
  googleKey: "AIza-mock-google",
  elevenlabsKey: "el-mock",
  stabilityKey: "sk-stability-mock",
  paypalClientId: "paypal-mock-client",
  paypalClientSecret: "paypal-mock-secret",
  paypalWebhookId: "WH-MOCK-0001",
  paypalSigningSecret: "paypal-mock-signing-secret",
  stripeKey: "sk_test_local_stripe",
};

/**
 * Start `${TOOLS_DIR}/mock-providers` on `port` (default: a free port) with extra `env`
 * (MOCK_OPENAI_API_KEY, MOCK_PAYPAL_WEBHOOK_ID, ...).
 * Returns { url, port, child, script(obj), requests(provider?), reset(), stop() }.
 */
export async function startMocks({ port, env = {} } = {}) {
  port = port ?? (await freePort());
  const bin = path.join(TOOLS_DIR, process.platform === "win32" ? "mock-providers.exe" : "mock-providers");
  const child = startProcess(bin, [], { env: { ...env, MOCK_PORT: String(port) }, name: "mock-providers" });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/__control/health`)).ok, { what: "mock-providers", child });
  const control = async (method, route, body) => {
    const res = await fetch(`${url}/__control/${route}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`mock control ${method} ${route} -> ${res.status}: ${text}`);
    return JSON.parse(text);
  };
  return {
    url,
    port,
    child,
    /** Queue a behaviour: {provider, times, status, body, delay_ms, chunk_delay_ms, cut_after_chunks, usage, verification_status}. */
    script: (obj) => control("POST", "script", obj),
    /** Recorded requests, oldest first; optionally only those of one provider. */
    requests: (provider) =>
      control("GET", provider ? `requests?provider=${encodeURIComponent(provider)}` : "requests"),
    reset: () => control("POST", "reset", {}),
    stop: () => child.stop(),
  };
}

/** CRC-32/IEEE of a Buffer/string (unsigned). */
export function crc32(data) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(String(data), "utf8");
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The `transmission_sig` the mock accepts: lowercase hex HMAC-SHA256(secret,
 * `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(rawEvent)}`), where rawEvent is the exact
 * webhook_event JSON text (string or Buffer) that will be spliced into the verification body.
 */
export function paypalSign({
  transmissionId,
  transmissionTime,
  webhookId = MOCK_DEFAULTS.paypalWebhookId,
  rawEvent,
  secret = MOCK_DEFAULTS.paypalSigningSecret,
}) {
  const msg = `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(rawEvent)}`;
  return crypto.createHmac("sha256", secret).update(msg, "utf8").digest("hex");
}

/**
 * Parse an SSE body (LF or CRLF framing) into [{event, data, json}] (`event` null when absent,
 * `json` null when data is not JSON, e.g. "[DONE]").
 */
export function parseSSE(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    let event = null;
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    const joined = data.join("\n");
    let json = null;
    try { json = JSON.parse(joined); } catch {}
    out.push({ event, data: joined, json });
  }
  return out;
}
