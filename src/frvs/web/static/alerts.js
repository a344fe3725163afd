/* Alerts (reviewers): the queue, live over Server-Sent Events, with the evidence side by
   side and confirm/dismiss with a note. */
"use strict";
(() => {
  const { api, all, el, clear, toast, guard, time, score, badge, imageUrl } = window.FRVS;
  const me = document.body.dataset.key;
  const queue = document.getElementById("queue");
  const filters = document.getElementById("filters");
  const live = document.getElementById("live");
  const count = document.getElementById("count");
  const cards = new Map();
  const keepsCrops = new Map();

  function wanted(alert) {
    const f = new FormData(filters);
    if (f.get("status") && alert.status !== f.get("status")) return false;
    if (f.get("camera") && alert.camera !== f.get("camera")) return false;
    if (f.get("gallery") && alert.gallery !== f.get("gallery")) return false;
    const day = f.get("day");
    if (day) {
      const at = new Date(alert.at);
      const start = new Date(`${day}T00:00:00`);
      const end = new Date(start.getTime() + 86400000);
      if (at < start || at >= end) return false;
    }
    return true;
  }

  function mine(review) { return me && review.reviewer.startsWith(`key:${me} `); }

  function state(alert) {
    if (alert.status !== "new") return badge(alert.status);
    const confirms = alert.reviews.filter((r) => r.verdict === "confirm").length;
    if (alert.two_person && confirms === 1) return badge("waiting for a second reviewer", "waiting");
    return badge("new");
  }

  function evidence(alert) {
    const shot = el("img", { alt: `Best shot of track ${alert.track} on camera ${alert.camera}` });
    const enrolled = el("img", { alt: `Enrolled photo of ${alert.subject}` });
    imageUrl(`/v1/alerts/${alert.id}/crop`).then((url) => { if (url) shot.src = url; });
    // Only galleries that keep enrolment crops have a photo to show (no request to fail);
    // a reviewer sees it through the alert, never by browsing the gallery.
    if (keepsCrops.get(alert.gallery)) {
      imageUrl(`/v1/alerts/${alert.id}/subject-photo`)
        .then((url) => { if (url) enrolled.src = url; });
    } else {
      enrolled.alt = `No enrolled photo kept for ${alert.subject} (gallery keeps no crops)`;
    }
    const passed = alert.score >= alert.threshold;
    return el("div", { class: "evidence" },
      el("figure", {}, shot, el("figcaption", { text: "Best shot (camera)" })),
      el("figure", {}, enrolled, el("figcaption", { text: "Enrolled photo" })),
      el("dl", { class: "facts" },
        el("dt", { text: "Score" }), el("dd", { class: "score" },
          `${score(alert.score)} `, el("span", { class: passed ? "check-ok" : "check-bad",
            text: `(threshold ${score(alert.threshold)})` })),
        el("dt", { text: "Camera" }), el("dd", { class: "camera", text: alert.camera }),
        el("dt", { text: "Time" }), el("dd", { text: time(alert.at) }),
        el("dt", { text: "Gallery" }), el("dd", { text: alert.gallery }),
        el("dt", { text: "Face quality" }), el("dd", { text: score(alert.quality) }),
        el("dt", { text: "Track" }), el("dd", { text: `${alert.track} (${alert.attempts} attempts)` })));
  }

  function reviewForm(alert) {
    if (alert.status !== "new") return null;
    if (alert.reviews.some(mine)) {
      return el("p", { class: "muted you-reviewed", text: "You have reviewed this alert; another reviewer must decide it." });
    }
    const noteId = `note-${alert.id}`;
    const note = el("textarea", { id: noteId, name: "note", maxlength: 2000,
      placeholder: "What you compared and why you decided so" });
    const decide = (verdict) => async (event) => {
      await guard(async () => {
        const updated = await api(`/v1/alerts/${alert.id}/review`, { method: "POST",
          json: { verdict, note: note.value.trim() || null } });
        // A first confirmation of a two-person alert leaves it waiting: say so plainly.
        toast(updated.status === "new"
          ? `Alert ${alert.id}: your confirmation is recorded; it waits for a second reviewer`
          : `Alert ${alert.id}: ${updated.status}`);
        show(updated);
      }, event.currentTarget);
    };
    return el("div", { class: "review" },
      el("label", { for: noteId, text: `Note for alert ${alert.id}` }), note,
      el("div", { class: "actions" },
        el("button", { type: "button", class: "ok", onclick: decide("confirm") }, "Confirm"),
        el("button", { type: "button", class: "danger", onclick: decide("dismiss") }, "Dismiss")));
  }

  function card(alert) {
    return el("article", { class: `card alert ${alert.status}`, "aria-labelledby": `alert-${alert.id}-title`,
                           dataset: { alertId: alert.id, subject: alert.subject, status: alert.status } },
      el("header", {}, el("h2", { id: `alert-${alert.id}-title`, text: alert.subject }), state(alert),
         el("span", { class: "muted", text: `alert ${alert.id}` })),
      evidence(alert),
      alert.reviews.length ? el("ul", { class: "reviews", "aria-label": "Reviews" }, alert.reviews.map((r) =>
        el("li", {}, `${r.verdict} by ${r.reviewer} at ${time(r.at)}`, r.note ? ` — “${r.note}”` : ""))) : null,
      reviewForm(alert));
  }

  function recount() {
    const n = queue.querySelectorAll("article.alert").length;
    count.textContent = n ? `${n} alert(s) shown` : "No alerts match these filters.";
  }

  function show(alert, { prepend = false } = {}) {
    const old = cards.get(alert.id);
    if (!wanted(alert)) {
      if (old) { old.remove(); cards.delete(alert.id); }
      recount();
      return;
    }
    const fresh = card(alert);
    if (old) old.replaceWith(fresh);
    else if (prepend) queue.prepend(fresh);
    else queue.append(fresh);
    cards.set(alert.id, fresh);
    recount();
  }

  async function load() {
    const f = new FormData(filters);
    const params = new URLSearchParams({ limit: "200" });
    if (f.get("status")) params.set("status", f.get("status"));
    if (f.get("camera")) params.set("camera", f.get("camera"));
    if (f.get("day")) params.set("since", new Date(`${f.get("day")}T00:00:00`).toISOString());
    const page = await api(`/v1/alerts?${params}`);
    clear(queue);
    cards.clear();
    for (const alert of page.items) show(alert);
    recount();
  }

  async function options() {
    const [galleries, cameras] = await Promise.all([all("/v1/galleries"), api("/v1/cameras/status")]);
    const gallerySelect = document.getElementById("f-gallery");
    for (const g of galleries) keepsCrops.set(g.name, g.keep_crops);
    for (const g of galleries) gallerySelect.append(el("option", { value: g.name, text: g.name }));
    addCameras(cameras.map((c) => c.camera));
  }

  function addCameras(names) {
    const select = document.getElementById("f-camera");
    const known = new Set([...select.options].map((o) => o.value));
    for (const name of names) if (!known.has(name)) select.append(el("option", { value: name, text: name }));
  }

  function connect() {
    const source = new EventSource("/v1/events?max_seconds=600");
    source.addEventListener("open", () => { live.textContent = "Live: new alerts appear here"; live.classList.add("on"); });
    source.addEventListener("error", () => { live.textContent = "Reconnecting to live alerts…"; live.classList.remove("on"); });
    source.addEventListener("alert.raised", (event) => {
      const alert = JSON.parse(event.data);
      addCameras([alert.camera]);
      show(alert, { prepend: true });
      if (wanted(alert)) toast(`New alert: ${alert.subject} on ${alert.camera}`);
    });
    source.addEventListener("alert.reviewed", (event) => show(JSON.parse(event.data)));
    source.addEventListener("camera.status", (event) => addCameras(JSON.parse(event.data).map((c) => c.camera)));
  }

  filters.addEventListener("submit", (event) => { event.preventDefault(); guard(load); });
  guard(async () => { await options(); await load(); connect(); });
})();
