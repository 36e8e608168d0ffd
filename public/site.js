// The guide page: the live price table from /v1/models, and a curl, Python and Node example for
// every operation of /openapi.json (so the examples cover every route and cannot drift).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
};
const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: 4 }) : "—");

/** A media price as text: a number per unit, or a nested table (size → quality → credits). */
function priceText(v) {
  if (typeof v === "number") return fmt(v);
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => (typeof x === "object" ? `${k}: ${priceText(x)}` : `${k} ${fmt(x)}`)).join(typeof Object.values(v)[0] === "object" ? "; " : ", ");
  return "—";
}

async function prices() {
  try {
    const [models, plans] = await Promise.all([fetch("/v1/models").then((r) => r.json()), fetch("/v1/plans").then((r) => r.json()).catch(() => null)]);
    $("#price-table-version").textContent = models.price_table;
    if (plans?.credit_pack?.usd_per_credit) $("#usd-per-credit").textContent = plans.credit_pack.usd_per_credit;
    for (const m of models.data) {
      const row = m.product
        ? el("tr", {}, el("td", {}, el("code", { textContent: m.id })), el("td", { textContent: m.product }), el("td", { textContent: m.unit }),
          el("td", { textContent: priceText(m.credits_per_unit) + (m.credits_per_1000_units !== undefined ? ` (${fmt(m.credits_per_1000_units)} per 1,000)` : "") }))
        : el("tr", {}, el("td", {}, el("code", { textContent: m.id })), el("td", { textContent: fmt(m.credits_per_million_tokens?.input) }),
          el("td", { textContent: fmt(m.credits_per_million_tokens?.cached_input) }), el("td", { textContent: fmt(m.credits_per_million_tokens?.output) }), el("td", { textContent: fmt(m.max_output_tokens) }));
      row.dataset.model = m.id;
      row.dataset.price = JSON.stringify(m.product ? m.credits_per_unit : m.credits_per_million_tokens);
      (m.product ? $("#media-prices tbody") : $("#prices tbody")).append(row);
    }
  } catch (e) {
    const err = $("#prices-error");
    err.hidden = false;
    err.textContent = `Could not load the prices: ${e.message}`;
  }
}

/** The request an operation's example makes: headers and body, for this server. */
function request(spec, path, method, op) {
  const headers = [];
  const scheme = Object.keys((op.security ?? [])[0] ?? {})[0];
  if (scheme === "bearerKey" || scheme === "anthropicKey") headers.push(["Authorization", "Bearer $KEY"]);
  if (scheme === "googApiKey") headers.push(["x-goog-api-key", "$KEY"]);
  if (scheme === "adminSecret") headers.push(["X-Admin-Secret", "$ADMIN_SECRET"]);
  if (scheme === "stripeSignature") headers.push(["Stripe-Signature", "t=…,v1=… (sent by Stripe)"]);
  if (scheme?.startsWith("paypal")) headers.push(["PAYPAL-TRANSMISSION-SIG", "… (sent by PayPal)"]);
  const example = op.requestBody?.content?.["application/json"]?.example;
  if (example) headers.push(["Content-Type", "application/json"]);
  const keyId = spec.components?.parameters?.KeyId?.example ?? "key_…";
  // Other path parameters and required query parameters from their examples (Gemini's `{model}`, `alt=sse`).
  const params = [...(spec.paths[path].parameters ?? []), ...(op.parameters ?? [])].filter((p) => p.example !== undefined && p.name !== "key_id");
  let url = path.replace("{key_id}", keyId);
  for (const p of params.filter((p) => p.in === "path")) url = url.replace(`{${p.name}}`, p.example);
  const query = params.filter((p) => p.in === "query" && p.required).map((p) => `${p.name}=${encodeURIComponent(p.example)}`);
  if (query.length) url += `?${query.join("&")}`;
  return { url: location.origin + url, method: method.toUpperCase(), headers, body: example && JSON.stringify(example) };
}

const envRef = { curl: (v) => v, python: (v) => v.replace(/\$(KEY|ADMIN_SECRET)/g, '" + os.environ["$1"] + "'), node: (v) => v.replace(/\$(KEY|ADMIN_SECRET)/g, "${process.env.$1}") };

function curl(r) {
  const parts = [`curl -s${r.method === "GET" ? "" : ` -X ${r.method}`} "${r.url}"`];
  for (const [k, v] of r.headers) parts.push(`-H "${k}: ${v}"`);
  if (r.body) parts.push(`-d '${r.body}'`);
  return parts.join(" \\\n  ");
}
function python(r) {
  const h = r.headers.map(([k, v]) => `"${k}": "${envRef.python(v)}"`).join(", ");
  return `import os, requests\nr = requests.request("${r.method}", "${r.url}", headers={${h}}${r.body ? `,\n    data='${r.body}'` : ""})\nprint(r.status_code, r.text)`;
}
function node(r) {
  const h = r.headers.map(([k, v]) => `"${k}": \`${envRef.node(v)}\``).join(", ");
  return `const r = await fetch("${r.url}", { method: "${r.method}", headers: { ${h} }${r.body ? `,\n  body: JSON.stringify(${r.body})` : ""} });\nconsole.log(r.status, await r.text());`;
}

function exampleBlock(r) {
  const langs = { curl: curl(r), Python: python(r), Node: node(r) };
  const pre = el("pre", {}, el("code", { textContent: langs.curl }));
  const tabs = el("div", { className: "tabs", role: "tablist" });
  for (const name of Object.keys(langs)) {
    const b = el("button", { type: "button", textContent: name });
    b.setAttribute("role", "tab");
    b.setAttribute("aria-selected", String(name === "curl"));
    b.addEventListener("click", () => {
      pre.firstChild.textContent = langs[name];
      for (const x of tabs.children) x.setAttribute("aria-selected", String(x === b));
    });
    tabs.append(b);
  }
  const block = el("div", {}, tabs, pre);
  block.dataset.curl = langs.curl;
  return block;
}

async function endpoints() {
  const box = $("#endpoints");
  try {
    const spec = await fetch("/openapi.json").then((r) => r.json());
    box.replaceChildren();
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of ["get", "post", "put", "patch", "delete"]) {
        const op = item[method];
        if (!op) continue;
        const section = el("div", { className: "endpoint" },
          el("h3", {}, el("span", { className: "method", textContent: method.toUpperCase() }), el("code", { textContent: path }), " ", el("span", { className: "muted", textContent: op.summary ?? "" })),
          ...(op.description ? [el("p", { textContent: op.description })] : []),
          exampleBlock(request(spec, path, method, op)));
        section.dataset.operation = `${method.toUpperCase()} ${path}`;
        box.append(section);
      }
    }
  } catch (e) {
    box.textContent = `Could not load /openapi.json: ${e.message}`;
  }
}

prices();
endpoints();
