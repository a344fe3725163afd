/* Receipt of one identity check, for the customer: what was checked, the result, what
   was kept and for how long, and who to ask. Printable (print styles hide the console). */
"use strict";
(() => {
  const { api, el, clear, guard, time } = window.FRVS;
  const id = new URLSearchParams(window.location.search).get("id") || "";
  const body = document.getElementById("receipt-body");
  document.getElementById("print").addEventListener("click", () => window.print());
  document.getElementById("receipt-json").href = `/v1/checks/${encodeURIComponent(id)}`;

  guard(async () => {
    const c = await api(`/v1/checks/${encodeURIComponent(id)}`);
    const row = (term, ...value) => [el("dt", { text: term }), el("dd", {}, ...value)];
    clear(body, el("dl", { class: "receipt-list" },
      row("Check", c.id),
      row("When", time(c.at)),
      row("Checked by", c.verifier),
      row("Purpose", c.purpose),
      row("What was checked", "Your face, seen live by the camera, against the portrait on your identity document; and that a live person followed a random sequence of head movements (" + c.challenge.join(", ") + ")."),
      row("Result", el("strong", { id: "receipt-decision", text: c.decision })),
      row("Face against the document", c.match ? "matches" : "does not match"),
      row("Liveness", c.liveness.passed ? "passed" : "failed" + (c.liveness.reasons.length ? ": " + c.liveness.reasons.join("; ") : "")),
      row("What was kept", c.kept.stored.join("; ") + "."),
      row("For how long", c.kept.images ? `Images until ${time(c.kept.images_until)}; the record of the decision as long as the organisation's records of checks.` : "No image or face template was kept. The record of the decision is kept as long as the organisation's records of checks."),
      row("Questions", c.contact)));
  });
})();
