// The portal's "Low balance" card: the alert (a signed POST to the customer's https URL when a
// call leaves the balance below a threshold) and auto top-up (a saved card charged when it
// does). Started by portal.js after sign-in with its `api` function (the key stays in its
// closure). Every rule is the API's: this page shows its answers and errors as they are.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const text = (el, value) => { el.textContent = value; };
  const credits = (n) => (typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: 3 }) : "–");
  let api = null;

  function showAlert(a) {
    $("alert-remove").hidden = !a.enabled;
    if (!a.enabled) return text($("alert-state"), "No alert set.");
    $("alert-threshold").value = a.threshold;
    $("alert-url").value = a.url;
    text($("alert-state"), `Alert on: below ${credits(a.threshold)} credits, POST to ${a.url}${a.armed ? "." : " (sent; armed again by your next top-up)."}`);
  }

  function showTopup(t) {
    text($("card-state"), t.card.saved ? "A card is saved for auto top-up." : "No card saved yet.");
    $("topup-form").hidden = !t.card.saved;
    $("topup-off").hidden = !t.enabled;
    if (t.threshold !== undefined) {
      $("topup-threshold").value = t.threshold;
      $("topup-amount").value = t.amount;
      $("topup-max").value = t.max_per_day;
    }
    const state = $("topup-state");
    state.className = "";
    if (t.enabled) {
      text(state, `Auto top-up on: below ${credits(t.threshold)} credits, buy ${credits(t.amount)} credits ($${t.amount_usd.toFixed(2)}), at most ${t.max_per_day} a day.`);
    } else if (t.status && t.status.includes("declined")) {
      state.className = "error";
      text(state, `Auto top-up is off: the card was declined${t.last_error ? ` (${t.last_error.replace(/\.$/, "")})` : ""}. Save another card and turn it on again.`);
    } else {
      text(state, "Auto top-up is off.");
    }
  }

  async function run(what) {
    text($("lowbal-error"), "");
    try {
      await what();
    } catch (e) {
      text($("lowbal-error"), e.message);
    }
  }

  async function refresh() {
    let a, t;
    try {
      [a, t] = await Promise.all([api("/v1/alerts"), api("/v1/auto-topup")]);
    } catch (e) {
      // Signed in with a sub-key: the alert and auto top-up are its account key's to set.
      if (/sub-key/.test(e.message)) return ($("lowbal-card").hidden = true);
      throw e;
    }
    $("lowbal-card").hidden = false;
    showAlert(a);
    showTopup(t);
  }

  $("alert-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(async () => {
      const a = await api("/v1/alerts", { method: "PUT", body: { threshold: Number($("alert-threshold").value), url: $("alert-url").value.trim() } });
      showAlert(a);
      $("alert-secret").hidden = !a.secret;
      if (a.secret) text($("alert-secret-value"), a.secret);
    });
  });
  $("alert-remove").addEventListener("click", () => run(async () => {
    showAlert(await api("/v1/alerts", { method: "DELETE" }));
    $("alert-secret").hidden = true;
  }));
  $("save-card").addEventListener("click", () => run(async () => {
    const back = `${location.origin}/portal/`;
    const s = await api("/v1/auto-topup/card", { method: "POST", body: { success_url: `${back}?card=1`, cancel_url: back } });
    location.assign(s.url);
  }));
  $("topup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(async () => showTopup(await api("/v1/auto-topup", { method: "PUT", body: {
      threshold: Number($("topup-threshold").value), amount: Number($("topup-amount").value), max_per_day: Number($("topup-max").value),
    } })));
  });
  $("topup-off").addEventListener("click", () => run(async () => showTopup(await api("/v1/auto-topup", { method: "DELETE" }))));

  window.PortalAlerts = { start: (fn) => { api = fn; return run(refresh); } };
})();
