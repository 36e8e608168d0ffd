// The customer portal: everything through the customer API of this origin, with the key held in
// this closure only (never in storage, a cookie or a URL). No third-party code.
"use strict";
(() => {
  let apiKey = null;
  let offset = 0;
  const PAGE = 20;
  const $ = (id) => document.getElementById(id);

  async function api(path, { method = "GET", body } = {}) {
    const res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
      cache: "no-store",
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(json?.error?.message ?? `request failed (${res.status})`);
    return json;
  }

  const text = (el, value) => { el.textContent = value; };
  const credits = (n) => (typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: 3 }) : "–");

  async function showBalance() {
    const b = await api("/v1/balance");
    text($("credits"), credits(b.credits));
    text($("held"), credits(b.held_credits));
    text($("plan"), b.plan);
    text($("key-id"), b.key_id);
    $("debt").hidden = !(b.debt_credits > 0);
    if (b.debt_credits > 0) text($("debt"), `A refund left a debt of ${credits(b.debt_credits)} credits: calls are refused until a top-up covers it.`);
  }

  async function showLedger() {
    const page = await api(`/v1/usage?limit=${PAGE}&offset=${offset}`);
    const body = $("ledger");
    body.replaceChildren();
    for (const e of page.entries) {
      const tr = document.createElement("tr");
      const when = new Date(e.ts).toISOString().replace("T", " ").slice(0, 19);
      for (const [value, cls] of [[when], [e.sub_key_name ? `${e.type} · ${e.sub_key_name}` : e.type], [e.model ?? ""], [credits(e.credits), "num"], [credits(e.balance_credits), "num"], [e.ref ?? e.reason ?? ""]]) {
        const td = document.createElement("td");
        td.textContent = value;
        if (cls) td.className = cls;
        tr.append(td);
      }
      body.append(tr);
    }
    text($("page-info"), page.total ? `${offset + 1}–${offset + page.entries.length} of ${page.total}` : "no entries yet");
    $("newer").disabled = offset === 0;
    $("older").disabled = page.next_offset === null;
  }

  async function showChart() {
    window.PortalChart.render($("chart"), $("legend"), await api("/v1/usage/daily"));
  }

  async function showPlans() {
    const p = await fetch("/v1/plans").then((r) => r.json());
    text($("pack-hint"), `A pack costs between $${p.credit_pack.min_usd} and $${p.credit_pack.max_usd}, at $${p.credit_pack.usd_per_credit} a credit.`);
    $("plans").replaceChildren(...p.plans.map((plan) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `Subscribe: ${plan.name} (${credits(plan.monthly_credits)} credits a month)`;
      b.addEventListener("click", () => checkout({ plan: plan.name }));
      return b;
    }));
  }

  async function checkout(what) {
    text($("buy-error"), "");
    try {
      const back = `${location.origin}/portal/`;
      const s = await api("/v1/checkout", { method: "POST", body: { ...what, success_url: `${back}?paid=1`, cancel_url: back } });
      location.assign(s.url);
    } catch (e) {
      text($("buy-error"), e.message);
    }
  }

  async function refresh() {
    await Promise.all([showBalance(), showLedger(), showChart(), window.PortalKeys.show(api)]);
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    apiKey = $("key").value.trim();
    $("key").value = "";
    text($("signin-error"), "");
    try {
      await showBalance();
    } catch (e) {
      apiKey = null;
      text($("signin-error"), e.message);
      return;
    }
    $("signin").hidden = true;
    $("account").hidden = false;
    offset = 0;
    await Promise.all([refresh(), showPlans(), window.PortalAlerts?.start(api)]).catch((e) => text($("buy-error"), e.message));
  });
  $("signout").addEventListener("click", () => location.reload());
  $("older").addEventListener("click", () => { offset += PAGE; showLedger(); });
  $("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); showLedger(); });
  $("buy-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    checkout({ credits: Number($("buy-credits").value) });
  });
  $("manage").addEventListener("click", async () => {
    text($("buy-error"), "");
    try {
      const s = await api("/v1/billing-portal", { method: "POST", body: { return_url: `${location.origin}/portal/` } });
      location.assign(s.url);
    } catch (e) {
      text($("buy-error"), e.message);
    }
  });
  $("rotate").addEventListener("click", async () => {
    if (!confirm("Rotate your key? The current one stops working at once.")) return;
    const r = await api("/v1/keys/rotate", { method: "POST" });
    apiKey = r.api_key;
    text($("new-key-value"), r.api_key);
    $("new-key").hidden = false;
  });
})();
