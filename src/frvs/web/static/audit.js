/* Audit and oversight (auditors): the trail with filters, the hash-chain check, and the
   statistics a transparency report needs. Read-only: no route changes an entry. */
"use strict";
(() => {
  const { api, el, clear, guard, time, badge, table, isoFromLocal } = window.FRVS;
  const filters = document.getElementById("audit-filters");
  const more = document.getElementById("more");
  let cursor = null;
  let rows = [];

  function summary(value) {
    const text = Object.entries(value || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
    return text.length > 240 ? `${text.slice(0, 240)}…` : text;
  }

  function entryRow(e) {
    return el("tr", { dataset: { action: e.action, seq: e.seq } },
      el("td", { text: String(e.seq) }), el("td", { text: time(e.at) }),
      el("td", {}, el("span", { text: e.actor_label }), e.actor.role ? el("span", { class: "muted", text: ` (${e.actor.role}, ${e.actor.name})` }) : null),
      el("th", { scope: "row", text: e.action }), el("td", {}, badge(e.outcome, e.outcome === "ok" ? "ok" : "bad")),
      el("td", { text: [e.case_reference, e.purpose].filter(Boolean).join(" — ") || "—" }),
      el("td", { text: e.subjects.join(", ") || "—" }),
      el("td", { class: "muted", text: [summary(e.inputs), summary(e.result)].filter(Boolean).join(" → ") }));
  }

  function render() {
    clear(document.getElementById("trail"), rows.length
      ? table(["#", "Time", "Who", "Action", "Outcome", "Case — purpose", "Subjects", "Inputs → result"], rows.map(entryRow))
      : el("p", { class: "muted", text: "No entry matches these filters." }));
  }

  async function load(next = false) {
    const f = filters.elements;
    const params = new URLSearchParams({ limit: "100" });
    for (const key of ["action", "key_id", "subject"]) if (f[key].value.trim()) params.set(key, f[key].value.trim());
    if (f.since.value) params.set("since", isoFromLocal(f.since.value));
    if (f.until.value) params.set("until", isoFromLocal(f.until.value));
    if (next && cursor) params.set("cursor", cursor);
    const page = await api(`/v1/audit?${params}`);
    rows = next ? rows.concat(page.items) : page.items;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    render();
  }

  async function verify() {
    const report = await api("/v1/audit/verify");
    clear(document.getElementById("integrity"),
      el("p", { id: "integrity-result", dataset: { ok: report.ok } }, report.ok
        ? badge("intact", "ok") : badge("TAMPERED", "bad"),
        ` ${report.entries} entries, sequence ${report.first_seq}–${report.head_seq}`),
      el("p", { class: "muted", text: `Head hash ${report.head_hash.slice(0, 16)}…` }),
      report.problems.length ? el("ul", {}, report.problems.map((p) => el("li", { class: "error", text: `#${p.seq} ${p.kind}: ${p.detail}` }))) : null);
  }

  async function stats() {
    const s = await api("/v1/stats?period=day");
    const sum = (key) => s.buckets.reduce((n, b) => n + (b[key] || 0), 0);
    const purposes = {};
    for (const b of s.buckets) for (const [p, n] of Object.entries(b.searches_by_purpose)) purposes[p] = (purposes[p] || 0) + n;
    const confirmed = sum("alerts_confirmed");
    const dismissed = sum("alerts_dismissed");
    clear(document.getElementById("stats"),
      el("dl", { class: "facts" },
        el("dt", { text: "Searches" }), el("dd", { text: String(sum("searches")) }),
        el("dt", { text: "Verifications" }), el("dd", { text: String(sum("verifications")) }),
        el("dt", { text: "Images enrolled" }), el("dd", { text: String(sum("enrolments")) }),
        el("dt", { text: "Subjects deleted" }), el("dd", { text: String(sum("deletions")) }),
        el("dt", { text: "Exports" }), el("dd", { text: String(sum("exports")) }),
        el("dt", { text: "Alerts raised" }), el("dd", { text: String(sum("alerts_raised")) }),
        el("dt", { text: "Confirmed / dismissed" }), el("dd", { id: "alerts-reviewed", text: `${confirmed} / ${dismissed}` +
          (confirmed + dismissed ? ` (${Math.round((100 * dismissed) / (confirmed + dismissed))}% dismissed)` : "") })),
      Object.keys(purposes).length ? table(["Search purpose", "Searches"], Object.entries(purposes).map(([p, n]) =>
        el("tr", {}, el("th", { scope: "row", text: p }), el("td", { text: String(n) })))) : el("p", { class: "muted", text: "No search in this period." }));
  }

  filters.addEventListener("submit", (event) => { event.preventDefault(); guard(() => load()); });
  more.addEventListener("click", (event) => guard(() => load(true), event.currentTarget));
  document.getElementById("verify").addEventListener("click", (event) => guard(verify, event.currentTarget));
  guard(() => Promise.all([verify(), stats(), load()]));
})();
