/* FRVS console: the few helpers every page shares. Plain ES2020, no dependencies.
   Data only ever enters the page through el()/text nodes, never innerHTML, so names
   and notes typed by people cannot inject markup. */
"use strict";

const FRVS = (() => {
  let leaving = false;

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  /** Call the public API with the session cookie. State-changing calls carry the
      console header the server requires against cross-site requests. */
  async function api(path, { method = "GET", json, form, headers = {} } = {}) {
    const init = { method, credentials: "same-origin", headers: { ...headers } };
    if (method !== "GET" && method !== "HEAD") init.headers["X-FRVS-Console"] = "1";
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form;
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      // The key was revoked or the session ended: go to sign-in once (the server closes
      // the session, so the sign-in page stays), however many calls were under way.
      if (!leaving) {
        leaving = true;
        window.location.assign("/?next=" + encodeURIComponent(window.location.pathname));
      }
      throw new ApiError(401, "signed out");
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok) {
      let detail = response.statusText;
      if (type.includes("json")) {
        const body = await response.json();
        detail = body.detail || body.title || detail;
      }
      throw new ApiError(response.status, detail);
    }
    if (type.includes("json")) return response.json();
    return response;
  }

  /** Every page of a list, following next_cursor (bounded). */
  async function all(path, maxPages = 20) {
    const items = [];
    let cursor = null;
    for (let i = 0; i < maxPages; i += 1) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
      items.push(...page.items);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    return items;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  let toastTimer = null;
  function toast(message, bad = false) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.classList.toggle("bad", bad);
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  /** Run an async action from a button or form, reporting failures on screen. */
  async function guard(action, button) {
    if (button) button.disabled = true;
    try { return await action(); } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) toast(err.message || String(err), true);
      return undefined;
    } finally { if (button) button.disabled = false; }
  }

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }
  function score(value) { return value === null || value === undefined ? "—" : Number(value).toFixed(3); }
  function badge(text, kind = text) { return el("span", { class: `badge ${kind}`, text }); }
  function table(headers, rows, caption) {
    return el("div", { class: "table-wrap" }, el("table", {},
      caption ? el("caption", { class: "muted", text: caption }) : null,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows)));
  }
  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  /** An image from an API route (cookie-authenticated) as an object URL. */
  async function imageUrl(path) {
    const response = await fetch(path, { credentials: "same-origin" });
    if (!response.ok) return null;
    return URL.createObjectURL(await response.blob());
  }
  /** A datetime-local value (local time) as an ISO string with its zone, for the API. */
  function isoFromLocal(value) { return value ? new Date(value).toISOString() : ""; }

  return { api, all, el, clear, toast, guard, time, score, badge, table, download, imageUrl,
           isoFromLocal, ApiError };
})();
window.FRVS = FRVS;
