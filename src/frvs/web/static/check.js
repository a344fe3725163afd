/* Identity check (verifiers): a random head-movement challenge from the server, frames
   from the browser's camera (getUserMedia) in capture order with their times, sent with
   the document photo to POST /v1/checks. Frames are drawn from the <video> element onto
   a canvas, which is never mirrored: only the preview is (CSS), so the customer's left
   stays the image's right, as FRVS expects. */
"use strict";
(() => {
  const { api, el, clear, guard, score, badge } = window.FRVS;
  const form = document.getElementById("check-form");
  const video = document.getElementById("c-video");
  const prompt = document.getElementById("c-prompt");
  const result = document.getElementById("result");
  const FPS = 4;
  const LEAD_S = 1.5;      // facing the camera before the first move
  const PER_MOVE_S = 2.5;  // time given for each move
  const WORDS = { left: "your LEFT", right: "your RIGHT", up: "UP", down: "DOWN" };

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  function snapshot(canvas) {
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => { canvas.toBlob(resolve, "image/jpeg", 0.9); });
  }

  async function capture(moves) {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    try {
      video.srcObject = stream;
      await video.play();
      while (!video.videoWidth) await sleep(50);
      const canvas = el("canvas", { width: video.videoWidth, height: video.videoHeight });
      const total = LEAD_S + PER_MOVE_S * moves.length;
      const frames = [];
      const start = performance.now();
      for (let i = 0; i < Math.round(total * FPS); i += 1) {
        const due = start + (i * 1000) / FPS;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const t = (performance.now() - start) / 1000;
        const move = moves[Math.min(Math.floor((t - LEAD_S) / PER_MOVE_S), moves.length - 1)];
        const nod = move === "up" || move === "down";
        prompt.textContent = t < LEAD_S ? "Look at the camera." :
          `${nod ? "Move your head" : "Turn your head to"} ${WORDS[move]}.`;
        frames.push({ blob: await snapshot(canvas), t });
      }
      return frames;
    } finally {
      for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
      prompt.textContent = "Camera off.";
    }
  }

  function show(check) {
    const live = check.liveness;
    clear(result,
      el("p", { id: "decision", dataset: { decision: check.decision, match: String(check.match), live: String(live.passed) } },
        badge(check.decision, check.passed ? "ok" : "bad")),
      el("ul", {},
        el("li", {}, `Face against the document: ${check.match ? "matches" : "does not match"} (score ${score(check.score)}, threshold ${score(check.threshold)} for a false match rate of ${check.operating_point.target_fmr}${check.operating_point.calibrated ? "" : ", not calibrated on this installation"})`),
        el("li", {}, `Liveness: ${live.passed ? "passed" : "failed"}; asked ${live.challenge.join(", ")}, saw ${live.moves_seen.join(", ") || "no move"}`),
        el("li", {}, `Document portrait: ${check.quality.document.chosen} (quality ${score(check.quality.document.quality.overall)}); live face quality ${score(check.quality.live.overall)}`)),
      live.reasons.length ? el("ul", { id: "reasons", class: "reasons" }, live.reasons.map((r) => el("li", { text: r }))) : null,
      el("p", {}, el("a", { href: `/console/receipt?id=${encodeURIComponent(check.id)}`, id: "receipt-link" }, "Receipt for the customer")));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guard(async () => {
      const f = form.elements;
      clear(result, el("p", { class: "muted", text: "Checking…" }));
      const challenge = await api("/v1/checks/challenges", { method: "POST" });
      const frames = await capture(challenge.moves);
      prompt.textContent = "Comparing…";
      const body = new FormData();
      body.append("document", f.document.files[0]);
      frames.forEach((frame, i) => body.append("live", frame.blob, `frame-${String(i).padStart(3, "0")}.jpg`));
      body.append("times", frames.map((frame) => frame.t.toFixed(3)).join(","));
      body.append("challenge_id", challenge.id);
      body.append("challenge", challenge.moves.join(","));
      if (f.purpose.value.trim()) body.append("purpose", f.purpose.value.trim());
      try {
        show(await api("/v1/checks", { method: "POST", form: body }));
      } catch (err) {
        clear(result, el("p", { id: "refused", class: "bad", text: `Refused: ${err.message}` }));
        throw err;
      } finally {
        prompt.textContent = "Camera off.";
      }
    }, form.querySelector("button[type=submit]"));
  });
})();
