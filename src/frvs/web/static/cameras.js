/* Cameras (operators): registrations, live status, latest frame; add, edit, remove, start. */
"use strict";
(() => {
  const { api, all, el, clear, toast, guard, badge, imageUrl } = window.FRVS;
  const grid = document.getElementById("cameras");
  const form = document.getElementById("camera-form");
  const save = document.getElementById("c-save");
  const cancel = document.getElementById("c-cancel");
  let editing = null;
  let shownSource = null;
  let statuses = new Map();
  const frames = new Map();

  function statusLine(name, source) {
    const s = statuses.get(name);
    if (!s && source === "edge") return [badge("edge node", "online"),
      el("span", { class: "muted", text: " analysed by its node (see Nodes); the centre never opens it" })];
    if (!s) return [badge("not running", "warn")];
    return [badge(s.health, s.health),
      el("span", { class: "muted", text: ` ${s.processed_fps.toFixed(1)} fps analysed · ${s.input_fps.toFixed(1)} fps read · ${s.dropped} dropped · lag ${s.lag_seconds.toFixed(2)} s · ${s.frames_processed} frames` }),
      s.last_error ? el("p", { class: "error", text: s.last_error }) : null];
  }

  function cameraCard(camera) {
    // The picture stays hidden (no broken-image icon) until a frame has loaded.
    const placeholder = el("div", { class: "frame placeholder", text: "No frame analysed yet" });
    const img = el("img", { class: "frame", alt: `Latest frame of ${camera.name}`, hidden: true,
      onload: () => { img.hidden = false; placeholder.remove(); } });
    const s = statuses.get(camera.name);
    if (s && s.frames_processed > 0) {
      imageUrl(`/v1/cameras/${encodeURIComponent(camera.name)}/frame`).then((url) => {
        if (!url) return;
        const previous = frames.get(camera.name);
        frames.set(camera.name, url);
        img.src = url;
        if (previous) setTimeout(() => URL.revokeObjectURL(previous), 1000);
      });
    } else if (frames.get(camera.name)) {
      img.src = frames.get(camera.name);
    }
    const running = s && (s.health === "online" || s.health === "starting" || s.health === "offline");
    return el("article", { class: "card camera", "aria-labelledby": `cam-${camera.name}`, dataset: { camera: camera.name } },
      el("h2", { id: `cam-${camera.name}`, text: camera.name }),
      // A node's frames never reach the centre: no picture to wait for.
      camera.source === "edge" ? el("div", { class: "frame placeholder", text: "Frames stay on the edge node" }) : [placeholder, img],
      el("p", { class: "status" }, statusLine(camera.name, camera.source)),
      el("dl", { class: "facts" },
        el("dt", { text: "Source" }), el("dd", { text: camera.source }),
        el("dt", { text: "Galleries" }), el("dd", { text: camera.galleries.join(", ") || "none" }),
        el("dt", { text: "Role" }), el("dd", { text: camera.role }),
        el("dt", { text: "Location" }), el("dd", { text: camera.location || "—" }),
        el("dt", { text: "Analysis" }), el("dd", { text: camera.sample_fps ? `${camera.sample_fps} fps` : "every frame" })),
      el("div", { class: "actions" },
        el("button", { type: "button", disabled: running || camera.source === "edge", "aria-label": `Start ${camera.name}`,
          onclick: (e) => guard(async () => {
            await api(`/v1/cameras/${encodeURIComponent(camera.name)}/start`, { method: "POST" });
            toast(`Camera ${camera.name} started`);
            await refresh();
          }, e.currentTarget) }, "Start"),
        el("button", { type: "button", class: "secondary", "aria-label": `Edit ${camera.name}`,
          onclick: () => edit(camera) }, "Edit"),
        el("button", { type: "button", class: "danger", "aria-label": `Remove ${camera.name}`,
          onclick: (e) => guard(async () => {
            if (!window.confirm(`Remove camera ${camera.name}?`)) return;
            await api(`/v1/cameras/${encodeURIComponent(camera.name)}`, { method: "DELETE" });
            toast(`Camera ${camera.name} removed`);
            await refresh();
          }, e.currentTarget) }, "Remove")));
  }

  function nodeRow(n) {
    const when = n.last_heartbeat ? new Date(n.last_heartbeat).toLocaleString() : "never";
    const backlog = `${n.backlog} (${(n.backlog_bytes / 1048576).toFixed(1)} MiB)`;
    const offset = n.clock_offset_s === null ? "—" : `${n.clock_offset_s.toFixed(1)} s`;
    return el("tr", { dataset: { node: n.key_id } },
      el("th", { scope: "row", text: n.name }),
      el("td", {}, badge(n.status, n.status)),
      el("td", { text: n.cameras.join(", ") }),
      el("td", { text: when }),
      el("td", { text: backlog }),
      el("td", {}, n.clock_ok ? offset : badge(`${offset} (beyond the allowed skew)`, "warn")),
      el("td", { text: `${n.dropped_reports} reports, ${n.dropped_crops} crops` }),
      el("td", { text: String(n.reports) }),
      el("td", { text: n.version || "—" }));
  }

  async function refresh() {
    const [cameras, status, nodes] = await Promise.all([
      all("/v1/cameras"), api("/v1/cameras/status"), api("/v1/edge/nodes")]);
    statuses = new Map(status.map((s) => [s.camera, s]));
    clear(grid, ...cameras.map(cameraCard));
    document.getElementById("no-cameras").hidden = cameras.length > 0;
    clear(document.querySelector("#nodes tbody"), ...nodes.map(nodeRow));
    document.getElementById("nodes-section").hidden = nodes.length === 0;
  }

  function edit(camera) {
    editing = camera.name;
    shownSource = camera.source;
    form.elements.name.value = camera.name;
    form.elements.name.readOnly = true;
    form.elements.source_url.value = camera.source;
    for (const option of form.elements.galleries.options) option.selected = camera.galleries.includes(option.value);
    form.elements.role.value = camera.role;
    form.elements.location.value = camera.location || "";
    form.elements.sample_fps.value = camera.sample_fps ?? "";
    form.elements.retention_days.value = camera.retention_days;
    form.elements.keep_crops.checked = camera.keep_crops;
    form.elements.enabled.checked = camera.enabled;
    document.getElementById("camera-form-title").textContent = `Edit camera ${camera.name}`;
    document.getElementById("edit-hint").hidden = false;
    save.textContent = "Save camera";
    cancel.hidden = false;
    form.elements.source_url.focus();
  }

  function reset() {
    editing = null;
    form.reset();
    form.elements.name.readOnly = false;
    document.getElementById("camera-form-title").textContent = "Add a camera";
    document.getElementById("edit-hint").hidden = true;
    save.textContent = "Add camera";
    cancel.hidden = true;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guard(async () => {
      const f = form.elements;
      const body = {
        name: f.name.value.trim(), source_url: f.source_url.value.trim(),
        galleries: [...f.galleries.selectedOptions].map((o) => o.value), role: f.role.value,
        location: f.location.value.trim() || null,
        sample_fps: f.sample_fps.value ? Number(f.sample_fps.value) : null,
        retention_days: Number(f.retention_days.value), keep_crops: f.keep_crops.checked,
        enabled: f.enabled.checked,
      };
      if (editing) {
        // A change, not a re-creation: the camera keeps its history, and a source shown
        // with its password masked is sent back only when the operator typed a new one.
        const { name, ...changes } = body;
        if (changes.source_url === shownSource) delete changes.source_url;
        await api(`/v1/cameras/${encodeURIComponent(name)}`, { method: "PATCH", json: changes });
      } else {
        await api("/v1/cameras", { method: "POST", json: body });
      }
      toast(`Camera ${body.name} ${editing ? "saved" : "added"}`);
      reset();
      await refresh();
    }, save);
  });
  cancel.addEventListener("click", reset);

  guard(async () => {
    const galleries = await all("/v1/galleries");
    const select = form.elements.galleries;
    for (const g of galleries) select.append(el("option", { value: g.name, text: `${g.name} (${g.kind})` }));
    await refresh();
    setInterval(() => guard(refresh), 5000);
  });
})();
