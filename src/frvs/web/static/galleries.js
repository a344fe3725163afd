/* Galleries and subjects (operators): create and delete galleries; enrol by uploading
   photos after seeing the detected face and its quality; delete and export subjects. */
"use strict";
(() => {
  const { api, all, el, clear, toast, guard, time, score, table, download } = window.FRVS;
  const role = document.body.dataset.role;
  const galleryForm = document.getElementById("gallery-form");
  const enrolForm = document.getElementById("enrol-form");
  const photos = document.getElementById("e-photos");
  const preview = document.getElementById("preview");
  const confirmButton = document.getElementById("e-confirm");
  let current = null;

  async function loadGalleries() {
    const galleries = await all("/v1/galleries");
    const rows = galleries.map((g) => el("tr", { dataset: { gallery: g.name } },
      el("th", { scope: "row" }, el("button", { type: "button", class: "link",
        "aria-label": `Show subjects of ${g.name}`, onclick: () => guard(() => loadSubjects(g.name)) }, g.name)),
      el("td", { text: g.kind }), el("td", { text: g.purpose || "—" }), el("td", { text: g.legal_basis || "—" }),
      el("td", { text: g.retention_days ? `${g.retention_days} d` : "until deleted" }),
      el("td", { text: `${g.subjects} / ${g.templates}` }), el("td", { text: score(g.decision_threshold) }),
      el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `Delete gallery ${g.name}`,
        onclick: (e) => guard(async () => {
          if (!window.confirm(`Delete gallery ${g.name} with all its subjects?`)) return;
          await api(`/v1/galleries/${encodeURIComponent(g.name)}`, { method: "DELETE" });
          toast(`Gallery ${g.name} deleted`);
          if (current === g.name) { current = null; clear(document.getElementById("subjects")); }
          await loadGalleries();
        }, e.currentTarget) }, "Delete"))));
    clear(document.getElementById("galleries"), galleries.length
      ? table(["Name", "Kind", "Purpose", "Legal basis", "Retention", "Subjects / templates", "Threshold", ""], rows)
      : el("p", { class: "muted", text: "No gallery yet." }));
    const select = enrolForm.elements.gallery;
    const chosen = select.value;
    clear(select, ...galleries.map((g) => el("option", { value: g.name, text: `${g.name} (${g.kind})` })));
    if (chosen) select.value = chosen;
  }

  async function loadSubjects(gallery) {
    current = gallery;
    document.getElementById("subjects-gallery").textContent = gallery;
    const subjects = await all(`/v1/galleries/${encodeURIComponent(gallery)}/subjects`);
    const base = `/v1/galleries/${encodeURIComponent(gallery)}/subjects`;
    const rows = subjects.map((s) => el("tr", { dataset: { subject: s.subject } },
      el("th", { scope: "row", text: s.subject }), el("td", { text: s.name || "—" }),
      el("td", { text: String(s.templates) }), el("td", { text: time(s.created_at) }),
      el("td", { text: s.expires_at ? time(s.expires_at) : "—" }),
      el("td", {}, el("div", { class: "actions" },
        role === "admin" ? el("button", { type: "button", class: "secondary", "aria-label": `Export ${s.subject}`,
          onclick: (e) => guard(async () => {
            const response = await api(`${base}/${encodeURIComponent(s.subject)}/export`);
            download(await response.blob(), `frvs-subject-${gallery}-${s.subject}.zip`);
          }, e.currentTarget) }, "Export") : null,
        el("button", { type: "button", class: "danger", "aria-label": `Delete ${s.subject}`,
          onclick: (e) => guard(async () => {
            if (!window.confirm(`Delete subject ${s.subject} and its templates?`)) return;
            await api(`${base}/${encodeURIComponent(s.subject)}`, { method: "DELETE" });
            toast(`Subject ${s.subject} deleted`);
            await Promise.all([loadSubjects(gallery), loadGalleries()]);
          }, e.currentTarget) }, "Delete")))));
    clear(document.getElementById("subjects"), subjects.length
      ? table(["Subject", "Name", "Templates", "Enrolled", "Expires", ""], rows)
      : el("p", { class: "muted", text: "No subject enrolled yet." }),
      role === "admin" ? null : el("p", { class: "hint",
        text: "Exporting a subject's data (right of access) is done with an admin key." }));
  }

  function bar(label, value, max, shown) {
    return el("div", { class: "bar" }, el("span", { text: label }),
      el("meter", { min: 0, max, value: Math.min(value, max), "aria-label": label }), el("span", { text: shown }));
  }

  async function previewFile(file) {
    const form = new FormData();
    form.append("image", file);
    const detected = await api("/v1/detect", { method: "POST", form });
    const bitmap = await createImageBitmap(file);
    const canvas = el("canvas", { role: "img", "aria-label": `${file.name}: ${detected.faces.length} face(s) found` });
    const scale = Math.min(1, 480 / bitmap.width);
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 3;
    detected.faces.forEach((face, i) => {
      const [x, y, w, h] = face.box.map((v) => v * scale);
      ctx.strokeStyle = i === 0 ? "#16a34a" : "#dc2626";
      ctx.strokeRect(x, y, w, h);
    });
    const face = detected.faces[0];
    // Usable means what enrolment will accept: one face meeting the quality minimums.
    const usable = detected.faces.filter((f) => f.enrolment.usable);
    const ok = detected.faces.length === 1 && usable.length === 1;
    let verdict;
    if (ok) verdict = el("p", { class: "check-ok", text: "One face: usable" });
    else if (detected.faces.length === 1) {
      verdict = el("div", { class: "check-bad shortfalls" },
        el("p", { text: "One face, below the quality minimums: enrolment will refuse it" }),
        el("ul", {}, face.enrolment.shortfalls.map((reason) => el("li", { text: reason }))));
    } else verdict = el("p", { class: "check-bad", text: detected.faces.length ? `${detected.faces.length} faces: crop the photo to one person` : "No face found" });
    return { ok, node: el("figure", { class: "card face-preview", dataset: { faces: detected.faces.length, usable: String(ok) } },
      canvas, el("figcaption", { text: file.name }), verdict,
      face ? el("div", { class: "bars" },
        bar("Overall quality", face.quality.overall, 1, score(face.quality.overall)),
        bar("Face size (px)", face.quality.face_size_px, 300, face.quality.face_size_px.toFixed(0)),
        bar("Sharpness", face.quality.sharpness, 500, face.quality.sharpness.toFixed(0)),
        bar("Yaw (deg)", Math.abs(face.quality.pose.yaw), 90, face.quality.pose.yaw.toFixed(0)),
        bar("Detector score", face.score, 1, score(face.score))) : null) };
  }

  photos.addEventListener("change", () => guard(async () => {
    confirmButton.disabled = true;
    clear(preview, el("p", { class: "muted", text: "Finding faces…" }));
    const results = [];
    for (const file of photos.files) results.push(await previewFile(file));
    clear(preview, ...results.map((r) => r.node));
    confirmButton.disabled = !results.length || !results.every((r) => r.ok);
  }));

  enrolForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guard(async () => {
      const f = enrolForm.elements;
      const form = new FormData();
      for (const file of photos.files) form.append("images", file);
      if (f.display_name.value.trim()) form.append("display_name", f.display_name.value.trim());
      const gallery = f.gallery.value;
      const subject = f.subject.value.trim();
      const report = await api(`/v1/galleries/${encodeURIComponent(gallery)}/subjects/${encodeURIComponent(subject)}/templates`,
        { method: "POST", form });
      clear(document.getElementById("enrol-result"), el("p", { class: report.refused ? "error" : "check-ok",
        text: `${subject}: ${report.enrolled} enrolled, ${report.duplicates} duplicate(s), ${report.refused} refused` }),
        el("ul", {}, report.images.filter((i) => i.status === "refused").map((i) => el("li", { text: `${i.image}: ${i.reason || i.error}` }))));
      toast(`Enrolled ${subject} in ${gallery}`);
      enrolForm.reset();
      clear(preview);
      confirmButton.disabled = true;
      f.gallery.value = gallery;
      await Promise.all([loadGalleries(), loadSubjects(gallery)]);
    }, confirmButton);
  });

  galleryForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guard(async () => {
      const f = galleryForm.elements;
      const body = { name: f.name.value.trim(), kind: f.kind.value, keep_crops: f.keep_crops.checked,
        purpose: f.purpose.value.trim() || null, legal_basis: f.legal_basis.value.trim() || null,
        retention_days: f.retention_days.value ? Number(f.retention_days.value) : null };
      await api("/v1/galleries", { method: "POST", json: body });
      toast(`Gallery ${body.name} created`);
      galleryForm.reset();
      await loadGalleries();
      enrolForm.elements.gallery.value = body.name;
      await loadSubjects(body.name);
    }, galleryForm.querySelector("button[type=submit]"));
  });

  guard(loadGalleries);
})();
