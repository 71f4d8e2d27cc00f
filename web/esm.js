// esm.js: the smallest lfsync page, loading the engine as an ES module.
import { createClient } from "./index.js";

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);

// window.esmApp is the test hook; ready turns true after the first render.
const esmApp = (window.esmApp = { client: null, notes: null, ready: false, error: null });

const LABELS = {
  connected: ["ok", "Connected"],
  connecting: ["busy", "Connecting…"],
  authenticating: ["busy", "Connecting…"],
  reconnecting: ["warn", "Reconnecting…"],
  unauthorized: ["bad", "Unauthorized"],
};

function renderStatus(s) {
  const [tone, label] = LABELS[s.state] || ["off", "Offline"];
  $("#status").dataset.state = s.state;
  $("#status").dataset.tone = tone;
  $("#status .badge-text").textContent = s.pending ? `${label} · ${s.pending} pending` : label;
}

function renderNotes(notes) {
  const list = $("#notes");
  list.replaceChildren(...notes.map((n) => {
    const li = document.createElement("li");
    li.className = "todo";
    li.dataset.id = n.id;
    const span = document.createElement("span");
    span.className = "title";
    span.textContent = n.text;
    li.append(span);
    return li;
  }));
  $("#empty").hidden = notes.length > 0;
}

function showError(err) {
  $("#error").textContent = `${err.message || err}${err.code ? ` (${err.code})` : ""}`;
  $("#error").hidden = false;
}

try {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const client = await createClient({
    url: `${scheme}//${location.host}/sync`,
    repositories: ["notes"],
    database: params.get("db") || "lfsync-notes",
    ...(params.get("token") ? { token: params.get("token") } : {}),
  });
  const notes = client.repository("notes");
  esmApp.client = client;
  esmApp.notes = notes;
  client.onStatus(renderStatus);
  renderStatus(client.status());

  notes.watch({ orderBy: [{ field: "createdAt" }, { field: "id" }] }, (docs) => {
    renderNotes(docs);
    if (!esmApp.ready) {
      esmApp.ready = true;
      $("#app").setAttribute("aria-busy", "false");
      $("#note-text").disabled = false;
      $("#add-note").disabled = false;
    }
  });

  $("#new-note").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("#note-text").value.trim();
    if (!text) return;
    $("#note-text").value = "";
    try {
      await notes.upsert({ id: crypto.randomUUID(), text, createdAt: Date.now() });
    } catch (err) {
      showError(err);
      console.error("lfsync esm example: failed to add the note", err);
    }
  });
} catch (err) {
  esmApp.error = String(err && err.message ? err.message : err);
  $("#status").dataset.state = "error";
  $("#status").dataset.tone = "bad";
  $("#status .badge-text").textContent = "Error";
  showError(err);
  console.error("lfsync esm example: failed to start", err);
}
