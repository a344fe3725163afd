/* Search (investigators): 1:N identification of a probe photo with a case reference and a
   purpose, ranked candidates against the threshold; past sightings by photo. */
"use strict";
(() => {
  const { api, all, el, clear, guard, time, score, table, badge } = window.FRVS;
  const results = document.getElementById("results");
  const identifyForm = document.getElementById("identify-form");
  const sightingsForm = document.getElementById("sightings-form");

  function caseFields(form, source) {
    form.append("case_reference", source.case_reference.value.trim());
    form.append("purpose", source.purpose.value.trim());
  }

  /** The probe scaled to at most 480 px wide with each face's box and number. */
  function probeWithBoxes(bitmap, faces) {
    const scale = Math.min(1, 480 / bitmap.width);
    const canvas = el("canvas", { class: "probe-boxes", role: "img",
      "aria-label": `Probe photo with ${faces.length} numbered face box(es)` });
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 3;
    ctx.font = "bold 16px sans-serif";
    faces.forEach((face, i) => {
      const [x, y, w, h] = face.box.map((v) => v * scale);
      ctx.strokeStyle = face.match ? "#16a34a" : "#f59e0b";
      ctx.strokeRect(x, y, w, h);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillRect(x, Math.max(0, y - 20), 22, 20);
      ctx.fillStyle = "#fff";
      ctx.fillText(String(i + 1), x + 6, Math.max(15, y - 5));
    });
    return canvas;
  }

  /** One face of the probe, cropped with a margin, 112 px wide. */
  function faceCrop(bitmap, box, number) {
    const [x, y, w, h] = box;
    const m = 0.25 * Math.max(w, h);
    const sx = Math.max(0, x - m), sy = Math.max(0, y - m);
    const sw = Math.min(bitmap.width - sx, w + 2 * m), sh = Math.min(bitmap.height - sy, h + 2 * m);
    const canvas = el("canvas", { class: "face-crop", role: "img", "aria-label": `Face ${number} of the probe` });
    canvas.width = 112;
    canvas.height = Math.max(1, Math.round(112 * sh / Math.max(1, sw)));
    canvas.getContext("2d").drawImage(bitmap, sx, sy, sw, sh, 0, 0, canvas.width, canvas.height);
    return canvas;
  }

  identifyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guard(async () => {
      const f = identifyForm.elements;
      const form = new FormData();
      form.append("image", f.image.files[0]);
      form.append("top", f.top.value || "5");
      caseFields(form, f);
      const result = await api(`/v1/galleries/${encodeURIComponent(f.gallery.value)}/identify`, { method: "POST", form });
      // The probe stays in the browser: its faces are drawn and cropped here, numbered as
      // the results are, so with several faces one sees which result is whose.
      const bitmap = await createImageBitmap(f.image.files[0]);
      const faces = result.faces.map((face, i) => el("div", { class: "face-result", dataset: { face: String(i + 1) } },
        faceCrop(bitmap, face.box, i + 1),
        el("h3", { text: `Face ${i + 1} of ${result.faces.length} (quality ${score(face.quality)})` }),
        face.candidates.length ? table(["Rank", "Subject", "Score", "Threshold"], face.candidates.map((c, rank) =>
          el("tr", { dataset: { subject: c.subject } }, el("td", { text: String(rank + 1) }), el("th", { scope: "row", text: c.subject }),
            el("td", { text: score(c.score) }),
            el("td", {}, c.score >= result.threshold ? badge("at or above", "ok") : badge("below", "warn"))))) :
          el("p", { class: "muted", text: "No candidate." }),
        el("p", {}, face.match ? `Best candidate reaching the threshold: ${face.match}` : "No candidate reaches the threshold.")));
      clear(results, el("p", {}, `Gallery ${result.gallery} · pack ${result.pack} · threshold `, el("strong", { text: score(result.threshold) })),
        faces.length ? [probeWithBoxes(bitmap, result.faces), ...faces] : el("p", { class: "muted", text: "No face found in the probe." }));
    }, identifyForm.querySelector("button[type=submit]"));
  });

  sightingsForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guard(async () => {
      const f = sightingsForm.elements;
      const form = new FormData();
      form.append("image", f.image.files[0]);
      if (f.camera.value.trim()) form.append("camera", f.camera.value.trim());
      caseFields(form, f);
      const hits = await api("/v1/sightings/search", { method: "POST", form });
      const list = Array.isArray(hits) ? hits : hits.items || [];
      clear(results, el("h3", { text: `Past sightings similar to the probe (${list.length})` }),
        list.length ? table(["Score", "Camera", "First seen", "Last seen", "Matched subject"], list.map((h) =>
          el("tr", {}, el("td", { text: score(h.score) }), el("td", { text: h.sighting.camera }),
            el("td", { text: time(h.sighting.first_seen) }), el("td", { text: time(h.sighting.last_seen) }),
            el("td", { text: h.sighting.subject || "unknown" })))) : el("p", { class: "muted", text: "No sighting above the threshold." }));
    }, sightingsForm.querySelector("button[type=submit]"));
  });

  guard(async () => {
    const galleries = await all("/v1/galleries");
    const select = identifyForm.elements.gallery;
    for (const g of galleries) select.append(el("option", { value: g.name, text: `${g.name} (${g.kind})` }));
  });
})();
