/* Attendance (operators): a day's first-in, last-out and time present per subject, and
   the same report as CSV (made in the page from the API's JSON). */
"use strict";
(() => {
  const { api, all, el, clear, guard, time, table, download } = window.FRVS;
  const form = document.getElementById("attendance-form");
  const csvButton = document.getElementById("a-csv");
  let report = null;

  function hours(seconds) { return (seconds / 3600).toFixed(2); }
  function cell(value) { const s = String(value ?? ""); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; }

  async function load() {
    const params = new URLSearchParams({ day: form.elements.day.value });
    if (form.elements.gallery.value) params.set("gallery", form.elements.gallery.value);
    report = await api(`/v1/attendance?${params}`);
    csvButton.disabled = false;
    clear(document.getElementById("report"), report.lines.length
      ? table(["Subject", "First in", "Last out", "Hours present", "Entries", "Exits"], report.lines.map((l) =>
        el("tr", {}, el("th", { scope: "row", text: l.subject }), el("td", { text: time(l.first_in) }),
          el("td", { text: time(l.last_out) }), el("td", { text: hours(l.present_seconds) }),
          el("td", { text: String(l.entries) }), el("td", { text: String(l.exits) }))),
        `Attendance on ${report.day}${report.gallery ? ` in ${report.gallery}` : ""}`)
      : el("p", { class: "muted", text: `Nobody recorded on ${report.day}.` }));
  }

  csvButton.addEventListener("click", () => {
    if (!report) return;
    const header = ["subject", "first_in", "last_out", "present_seconds", "entries", "exits"];
    const lines = report.lines.map((l) => header.map((k) => cell(l[k])).join(","));
    download(new Blob([[header.join(","), ...lines].join("\n") + "\n"], { type: "text/csv" }),
      `attendance-${report.day}${report.gallery ? `-${report.gallery}` : ""}.csv`);
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); guard(load); });
  form.elements.day.value = new Date().toISOString().slice(0, 10);
  guard(async () => {
    for (const g of await all("/v1/galleries")) {
      form.elements.gallery.append(el("option", { value: g.name, text: `${g.name} (${g.kind})` }));
    }
    await load();
  });
})();
