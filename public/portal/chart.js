// The portal's usage chart: one bar per day over the last 30 days (ending at the server's today,
// the `to` of /v1/usage/daily, so the browser's clock plays no part), stacked by model with one
// colour per model, a date axis, and the day's credits on hover or focus. Plain SVG, no library.
"use strict";
window.PortalChart = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const DAYS = 30;
  // Distinct hues, dark enough for white text and apart for the common kinds of colour blindness.
  const COLORS = ["#2f6fed", "#e0892f", "#2fa36b", "#9b4de0", "#d64545", "#2aa6b8", "#8a8f2f", "#7a5c3c"];
  // Plot geometry in viewBox units (the SVG scales to the card's width).
  const W = 720, H = 220, LEFT = 8, RIGHT = 8, TOP = 22, BOTTOM = 26;
  const PLOT_W = W - LEFT - RIGHT, PLOT_H = H - TOP - BOTTOM;
  // A model with usage on a day keeps at least this height, so a cheap model beside a dear one
  // still shows its colour (the exact figures are in the tooltip).
  const MIN_SEGMENT = 3;

  const node = (tag, attrs = {}) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  };
  const fmt = (n) => n.toLocaleString("en-US", { maximumFractionDigits: 3 });
  /** The `DAYS` dates (YYYY-MM-DD, UTC) ending at `last`. */
  function lastDays(last) {
    const end = Date.parse(`${last}T00:00:00Z`);
    return Array.from({ length: DAYS }, (_, i) => new Date(end - (DAYS - 1 - i) * 86_400_000).toISOString().slice(0, 10));
  }
  const label = (day) => new Date(`${day}T00:00:00Z`).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });

  /** Draws `daily` (the answer of GET /v1/usage/daily) into `chart`, its legend into `legend`. */
  function render(chart, legend, daily) {
    const byDay = new Map(daily.days.map((d) => [d.day, d]));
    const days = lastDays(daily.to);
    const shown = days.map((d) => byDay.get(d)).filter(Boolean);
    const models = [...new Set(shown.flatMap((d) => d.models.map((m) => m.model)))].sort();
    const color = (m) => COLORS[models.indexOf(m) % COLORS.length];
    const max = Math.max(1, ...shown.map((d) => d.totals.charged_mc));
    const scale = (PLOT_H - MIN_SEGMENT * models.length) / max;
    const slot = PLOT_W / DAYS;
    const barW = Math.max(2, slot * 0.7);

    const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "credits charged per day, by model, last 30 days" });
    // The scale: the busiest day's credits on a line at its height, and the baseline.
    const top = H - BOTTOM - max * scale;
    svg.append(node("line", { x1: LEFT, x2: W - RIGHT, y1: top, y2: top, class: "grid" }));
    const maxLabel = node("text", { x: LEFT, y: top - 6, class: "axis" });
    maxLabel.textContent = shown.length ? `${fmt(max / 1000)} credits` : "no usage in the last 30 days";
    svg.append(maxLabel, node("line", { x1: LEFT, x2: W - RIGHT, y1: H - BOTTOM, y2: H - BOTTOM, class: "baseline" }));

    days.forEach((day, i) => {
      const x = LEFT + i * slot;
      const g = node("g", { class: "day", "data-day": day });
      const d = byDay.get(day);
      // The whole column answers the pointer, so a short bar is as easy to hover as a tall one.
      g.append(node("rect", { x, y: TOP, width: slot, height: PLOT_H, class: "hit" }));
      if (d) {
        g.dataset.charged = String(d.totals.charged_mc);
        g.setAttribute("tabindex", "0");
        let y = H - BOTTOM;
        for (const m of [...d.models].sort((a, b) => models.indexOf(a.model) - models.indexOf(b.model))) {
          const h = Math.max(MIN_SEGMENT, m.charged_mc * scale);
          y -= h;
          const r = node("rect", { x: x + (slot - barW) / 2, y, width: barW, height: h, fill: color(m.model), class: "segment" });
          r.dataset.day = day;
          r.dataset.model = m.model;
          r.dataset.charged = String(m.charged_mc);
          g.append(r);
        }
        const title = node("title");
        title.textContent = tipText(d).join("\n");
        g.append(title);
      }
      if ((DAYS - 1 - i) % 5 === 0) {
        const t = node("text", { x: x + slot / 2, y: H - 8, class: "axis date" });
        t.textContent = label(day);
        svg.append(node("line", { x1: x + slot / 2, x2: x + slot / 2, y1: H - BOTTOM, y2: H - BOTTOM + 4, class: "baseline" }), t);
      }
      svg.append(g);
    });

    const tip = document.createElement("div");
    tip.id = "chart-tip";
    tip.hidden = true;
    tip.setAttribute("role", "status");
    const show = (g) => {
      const d = byDay.get(g.dataset.day);
      if (!d) { tip.hidden = true; return; }
      const [head, ...lines] = tipText(d);
      const b = document.createElement("b");
      b.textContent = head;
      tip.replaceChildren(b, ...lines.map((l) => { const p = document.createElement("div"); p.textContent = l; return p; }));
      tip.hidden = false;
      // Beside the day's column (on the side with more room), never over its bar.
      const box = chart.getBoundingClientRect(), col = g.getBoundingClientRect();
      const left = col.left - box.left;
      tip.style.left = `${left > box.width / 2 ? Math.max(0, left - tip.offsetWidth - 4) : left + col.width + 4}px`;
      tip.style.top = `${col.top - box.top}px`;
    };
    for (const g of svg.querySelectorAll("g.day")) {
      g.addEventListener("mouseenter", () => show(g));
      g.addEventListener("focus", () => show(g));
      g.addEventListener("mouseleave", () => { tip.hidden = true; });
      g.addEventListener("blur", () => { tip.hidden = true; });
    }
    chart.replaceChildren(svg, tip);

    legend.replaceChildren(...models.map((m) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.style.background = color(m);
      li.dataset.model = m;
      li.append(swatch, m);
      return li;
    }));
  }

  /** The day's total, then one line per model. */
  function tipText(d) {
    return [`${label(d.day)}: ${fmt(d.totals.credits_charged)} credits, ${d.totals.calls} calls`,
      ...d.models.map((m) => `${m.model}: ${fmt(m.credits_charged)} credits (${m.calls} calls)`)];
  }

  return { render };
})();
