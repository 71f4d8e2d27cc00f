// app.js drives the lfsync todo demo: one repository ("todos") rendered from a
// live query, a connection badge and a pending-changes indicator. It expects
// lfsync.global.js to have defined window.lfsync.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);

  // window.app is the test hook: the end-to-end tests read the client and the
  // repository from it. ready turns true after the first render.
  const app = (window.app = { client: null, todos: null, ready: false, error: null });

  const $ = (sel) => document.querySelector(sel);
  const el = {
    main: $("#app"),
    form: $("#new-todo"),
    title: $("#new-title"),
    add: $("#add"),
    error: $("#error"),
    list: $("#todo-list"),
    empty: $("#empty"),
    count: $("#count"),
    clear: $("#clear-completed"),
    toggleAll: $("#toggle-all"),
    status: $("#status"),
    statusText: $("#status .badge-text"),
    pending: $("#pending"),
    clientID: $("#client-id"),
    tabRole: $("#tab-role"),
    template: $("#todo-item"),
    filters: Array.from(document.querySelectorAll(".filter")),
  };

  const FILTERS = {
    all: () => true,
    active: (t) => !t.done,
    done: (t) => !!t.done,
  };

  let filter = filterFromHash();
  let docs = []; // every todo, in display order, from the live query
  let byID = new Map(); // id -> todo
  const items = new Map(); // id -> <li>
  let editing = null; // id of the todo being renamed
  let lastStatus = null;

  // ---- helpers ----

  function newID() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  function filterFromHash() {
    const f = location.hash.replace(/^#\/?/, "");
    return Object.hasOwn(FILTERS, f) ? f : "all";
  }

  let errorTimer = 0;
  function showError(what, err) {
    const code = err && err.code ? ` (${err.code})` : "";
    const msg = err && err.message ? err.message : String(err);
    el.error.textContent = `${what}: ${msg}${code}`;
    el.error.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { el.error.hidden = true; }, 8000);
  }

  // write runs one repository write and reports a failure to the person
  // using the page; the pending indicator follows from the status.
  async function write(what, fn) {
    try {
      await fn();
    } catch (err) {
      console.error(`lfsync demo: ${what} failed`, err);
      showError(`Could not ${what}`, err);
    }
    refreshStatus();
  }

  // ---- status ----

  const BADGES = {
    connected: ["ok", "Connected"],
    connecting: ["busy", "Connecting…"],
    authenticating: ["busy", "Connecting…"],
    reconnecting: ["warn", "Reconnecting…"],
    disconnected: ["off", "Offline"],
    stopped: ["off", "Offline"],
    unauthorized: ["bad", "Unauthorized"],
  };

  function renderStatus(s) {
    if (!s) return;
    lastStatus = s;
    let [tone, label] = BADGES[s.state] || ["off", s.state];
    if (!navigator.onLine && s.state !== "connected" && s.state !== "unauthorized") {
      [tone, label] = ["off", "Offline"];
    }
    el.status.dataset.state = s.state;
    el.status.dataset.tone = tone;
    el.statusText.textContent = label;
    const when = s.lastSync ? new Date(s.lastSync) : null;
    el.status.title = [
      s.lastError ? `Last error: ${s.lastError}` : "",
      when && !Number.isNaN(when.getTime()) ? `Last synced ${when.toLocaleTimeString()}` : "",
    ].filter(Boolean).join("\n");

    // One tab of the origin holds the connection; the others share it.
    const tabs = s.tabs || 1;
    el.tabRole.dataset.leader = String(!!s.leader);
    el.tabRole.textContent = s.leader
      ? (tabs > 1 ? `this tab syncs for ${tabs} tabs` : "this tab syncs")
      : `synced through another tab (${tabs} open)`;

    const n = s.pending || 0;
    el.pending.dataset.pending = String(n);
    if (n > 0) {
      el.pending.textContent = `${plural(n, "change", "changes")} waiting to sync`;
    } else if (s.state === "connected") {
      el.pending.textContent = "All changes synced";
    } else {
      el.pending.textContent = "Saved on this device";
    }
  }

  function refreshStatus() {
    if (!app.client) return;
    Promise.resolve(app.client.status()).then(renderStatus, () => {});
  }

  // ---- list ----

  function createItem(id) {
    const li = el.template.content.firstElementChild.cloneNode(true);
    li.dataset.id = id;
    const toggle = li.querySelector(".toggle");
    const title = li.querySelector(".title");
    const input = li.querySelector(".edit");
    toggle.id = `toggle-${id}`;

    toggle.addEventListener("change", () => {
      const t = byID.get(id);
      if (!t) return;
      write("update the todo", () =>
        app.todos.upsert({ ...t, done: toggle.checked, updatedAt: Date.now() }));
    });
    title.addEventListener("dblclick", () => startEdit(id));
    li.querySelector(".edit-btn").addEventListener("click", () => startEdit(id));
    li.querySelector(".delete-btn").addEventListener("click", () => {
      // Move focus somewhere sensible before the row disappears.
      const next = li.nextElementSibling || li.previousElementSibling;
      (next ? next.querySelector(".toggle") : el.title).focus();
      write("delete the todo", () => app.todos.delete(id));
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        finishEdit(id, true);
      } else if (e.key === "Escape") {
        e.preventDefault();
        finishEdit(id, false);
      }
    });
    input.addEventListener("blur", () => finishEdit(id, true));
    return li;
  }

  function updateItem(li, t) {
    const toggle = li.querySelector(".toggle");
    const title = li.querySelector(".title");
    const text = String(t.title ?? "");
    li.classList.toggle("done", !!t.done);
    toggle.checked = !!t.done;
    toggle.setAttribute("aria-label", `${t.done ? "Mark as not done" : "Mark as done"}: ${text}`);
    if (title.textContent !== text) title.textContent = text;
    li.querySelector(".edit-btn").setAttribute("aria-label", `Rename: ${text}`);
    li.querySelector(".edit-btn").title = "Rename";
    li.querySelector(".delete-btn").setAttribute("aria-label", `Delete: ${text}`);
    li.querySelector(".delete-btn").title = "Delete";
  }

  function startEdit(id) {
    const li = items.get(id);
    const t = byID.get(id);
    if (!li || !t) return;
    if (editing && editing !== id) finishEdit(editing, true);
    editing = id;
    li.classList.add("editing");
    const input = li.querySelector(".edit");
    input.hidden = false;
    input.value = String(t.title ?? "");
    input.setAttribute("aria-label", `New title for: ${input.value}`);
    input.focus();
    input.select();
  }

  function finishEdit(id, save) {
    if (editing !== id) return;
    editing = null;
    const li = items.get(id);
    const t = byID.get(id);
    if (!li) return;
    const input = li.querySelector(".edit");
    const value = input.value.trim();
    const hadFocus = document.activeElement === input;
    li.classList.remove("editing");
    input.hidden = true;
    // Keep keyboard users on the row, on the checkbox: Enter does nothing
    // there, so the Enter that saved cannot reopen the editor.
    if (hadFocus) li.querySelector(".toggle").focus({ preventScroll: true });
    if (!save || !t || value === t.title) return;
    if (value === "") {
      write("delete the todo", () => app.todos.delete(id));
    } else {
      write("rename the todo", () => app.todos.upsert({ ...t, title: value, updatedAt: Date.now() }));
    }
  }

  function render() {
    const visible = docs.filter(FILTERS[filter]);
    const keep = new Set(visible.map((t) => t.id));
    for (const [id, li] of items) {
      if (!keep.has(id)) {
        if (editing === id) editing = null;
        li.remove();
        items.delete(id);
      }
    }
    let prev = null;
    for (const t of visible) {
      let li = items.get(t.id);
      if (!li) {
        li = createItem(t.id);
        items.set(t.id, li);
      }
      updateItem(li, t);
      const want = prev ? prev.nextElementSibling : el.list.firstElementChild;
      if (want !== li) el.list.insertBefore(li, want);
      prev = li;
    }

    const left = docs.filter((t) => !t.done).length;
    const done = docs.length - left;
    el.count.textContent = `${plural(left, "item", "items")} left`;
    el.count.dataset.total = String(docs.length);
    el.clear.disabled = done === 0;
    el.clear.textContent = done ? `Clear completed (${done})` : "Clear completed";
    el.toggleAll.disabled = docs.length === 0;
    el.toggleAll.textContent = docs.length > 0 && left === 0 ? "Mark all active" : "Mark all done";
    el.empty.hidden = visible.length > 0;
    el.empty.textContent = docs.length === 0
      ? "Nothing here yet. Add your first todo above."
      : filter === "done" ? "Nothing completed yet." : "All done. Nice!";
    for (const b of el.filters) b.setAttribute("aria-pressed", String(b.dataset.filter === filter));
  }

  function setFilter(f) {
    filter = Object.hasOwn(FILTERS, f) ? f : "all";
    const hash = filter === "all" ? "" : `#/${filter}`;
    if (location.hash !== hash) history.replaceState(null, "", hash || location.pathname + location.search);
    render();
  }

  // ---- wiring ----

  el.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const title = el.title.value.trim();
    if (!title) return;
    el.title.value = "";
    const now = Date.now();
    write("add the todo", () =>
      app.todos.upsert({ id: newID(), title, done: false, createdAt: now, updatedAt: now }));
  });

  for (const b of el.filters) b.addEventListener("click", () => setFilter(b.dataset.filter));
  window.addEventListener("hashchange", () => setFilter(filterFromHash()));

  el.clear.addEventListener("click", () => {
    const done = docs.filter((t) => t.done);
    write("clear completed todos", () => Promise.all(done.map((t) => app.todos.delete(t.id))));
  });

  el.toggleAll.addEventListener("click", () => {
    const target = docs.some((t) => !t.done);
    const now = Date.now();
    const changed = docs.filter((t) => !!t.done !== target).map((t) => ({ ...t, done: target, updatedAt: now }));
    if (changed.length) write("update the todos", () => app.todos.upsertMany(changed));
  });

  window.addEventListener("online", () => renderStatus(lastStatus));
  window.addEventListener("offline", () => renderStatus(lastStatus));

  async function start() {
    if (!window.lfsync || typeof window.lfsync.createClient !== "function") {
      throw new Error("lfsync.global.js did not load");
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const options = {
      url: `${scheme}//${location.host}/sync`,
      repositories: ["todos"],
      database: params.get("db") || "lfsync-todos",
    };
    const token = params.get("token");
    if (token) options.token = token;

    const client = await window.lfsync.createClient(options);
    const todos = client.repository("todos");
    app.client = client;
    app.todos = todos;

    client.onStatus(renderStatus);
    refreshStatus();
    el.clientID.textContent = String(client.clientId || "—");

    todos.watch({ orderBy: [{ field: "createdAt" }, { field: "id" }] }, (result) => {
      docs = Array.isArray(result) ? result : [];
      byID = new Map(docs.map((t) => [t.id, t]));
      render();
      refreshStatus();
      if (!app.ready) {
        app.ready = true;
        el.main.setAttribute("aria-busy", "false");
        el.title.disabled = false;
        el.add.disabled = false;
        el.title.focus();
      }
    });
  }

  render();
  start().catch((err) => {
    app.error = String(err && err.message ? err.message : err);
    el.status.dataset.state = "error";
    el.status.dataset.tone = "bad";
    el.statusText.textContent = "Error";
    showError("Could not start the sync engine", err);
    clearTimeout(errorTimer);
    console.error("lfsync demo: failed to start", err);
  });
})();
