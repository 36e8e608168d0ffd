// The portal's "Sub-keys" section (issue 25): the account's sub-keys with their spend and caps,
// create (the key shown once), rotate, revoke, all through /v1/keys with the signed-in key.
// portal.js calls window.PortalKeys.show(api) after signing in and on every refresh.
"use strict";
window.PortalKeys = (() => {
  const $ = (id) => document.getElementById(id);
  let api = null;
  const credits = (n) => (typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: 3 }) : "–");
  const capText = (cap) => (cap === null ? "none" : credits(cap));
  const cell = (text, cls) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  };
  const say = (msg) => { $("subkey-error").textContent = msg; };

  function showNewKey(label, key) {
    $("subkey-new-label").textContent = label;
    $("subkey-new-value").textContent = key;
    $("subkey-new").hidden = false;
  }

  function button(label, cls, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = cls;
    b.addEventListener("click", onClick);
    return b;
  }

  function row(k) {
    const tr = document.createElement("tr");
    tr.dataset.keyId = k.id;
    tr.append(
      cell(k.name, "name"), cell(k.id, "id"),
      cell(credits(k.spend.today), "num today"), cell(credits(k.spend.this_month), "num month"), cell(credits(k.spend.total), "num total"),
      cell(`${capText(k.caps.daily)} / ${capText(k.caps.monthly)} / ${capText(k.caps.total)}`, "caps"),
      cell(k.models ? k.models.join(", ") : "all", "models"),
    );
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.append(
      button("Rotate", "rotate", async () => {
        if (!confirm(`Rotate "${k.name}"? Its current key stops working at once.`)) return;
        try {
          const r = await api(`/v1/keys/${k.id}/rotate`, { method: "POST", body: {} });
          showNewKey(`New key for "${k.name}", shown only now:`, r.api_key);
        } catch (e) { say(e.message); }
      }),
      button("Revoke", "revoke", async () => {
        if (!confirm(`Revoke "${k.name}"? It stops working at once; your balance is not touched.`)) return;
        try {
          await api(`/v1/keys/${k.id}/revoke`, { method: "POST", body: {} });
          await show();
        } catch (e) { say(e.message); }
      }),
    );
    tr.append(actions);
    return tr;
  }

  async function show(apiFn) {
    if (apiFn) api = apiFn;
    let list;
    try {
      list = await api("/v1/keys");
    } catch (e) {
      // Signed in with a sub-key: only its account key manages keys.
      $("subkeys-card").hidden = true;
      return;
    }
    $("subkeys-card").hidden = false;
    const body = $("subkeys");
    body.replaceChildren(...list.keys.map(row));
    $("subkeys-empty").hidden = list.keys.length > 0;
    $("subkey-count").textContent = `${list.count} of at most ${list.max_sub_keys}`;
  }

  const num = (id) => ($(id).value.trim() === "" ? undefined : Number($(id).value));

  document.addEventListener("DOMContentLoaded", () => {
    $("subkey-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      say("");
      const models = $("subkey-models").value.split(",").map((m) => m.trim()).filter(Boolean);
      const body = { name: $("subkey-name").value.trim(), daily_cap: num("subkey-daily"), monthly_cap: num("subkey-monthly"), total_cap: num("subkey-total") };
      if (models.length) body.models = models;
      try {
        const made = await api("/v1/keys", { method: "POST", body });
        showNewKey(`Key for "${made.name}", shown only now:`, made.api_key);
        $("subkey-form").reset();
        await show();
      } catch (e) { say(e.message); }
    });
  });

  return { show };
})();
