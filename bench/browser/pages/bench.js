// The browser half of `go run ./bench`: each function measures one thing in
// this page and returns plain numbers (milliseconds from performance.now()),
// so the Go driver's DevTools round trips are never part of a measurement.
// lfsync is used only through its public API (js/index.d.ts); the baselines
// are plain IndexedDB and plain WebSocket code doing the same work.
import { createClient } from "/index.js";

const params = new URLSearchParams(location.search);
const SYNC = params.get("sync");
const TOKEN = params.get("token");
// Every database this page opens carries the run's prefix, so contexts and
// runs never share one.
const PREFIX = params.get("prefix") || "bench-" + Math.random().toString(36).slice(2);

/** A wall-clock time in ms with sub-ms resolution, comparable across pages. */
const wall = () => performance.timeOrigin + performance.now();

/** The record every write figure uses (about 230 bytes of JSON). */
function record(i, prefix = "d") {
  return {
    id: prefix + String(i).padStart(6, "0"),
    title: "document number " + i,
    group: i % 10,
    score: (i * 7919) % 10007,
    done: i % 3 === 0,
    tags: ["bench", "g" + (i % 7)],
    body: "lorem ipsum dolor sit amet ".repeat(4),
  };
}

function records(n, prefix) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = record(i, prefix);
  return out;
}

// ---- lfsync ----------------------------------------------------------------

const clients = new Map();

/** Opens (or returns) the lfsync client called name on its own database. */
async function client(name, online) {
  let c = clients.get(name);
  if (!c) {
    c = await createClient({
      url: SYNC,
      token: TOKEN,
      database: PREFIX + "-" + name,
      autoStart: online,
      reconnect: { initial: 100, max: 1000 },
    });
    clients.set(name, c);
  }
  if (online) await c.waitSynced({ timeout: 20000 });
  return c;
}

async function closeClient(name) {
  const c = clients.get(name);
  if (c) {
    clients.delete(name);
    await c.close();
  }
}

// ---- plain IndexedDB -------------------------------------------------------

const plainDBs = new Map();

/** Opens a plain IndexedDB database with one object store "docs" keyed by id. */
function plainDB(name) {
  if (plainDBs.has(name)) return Promise.resolve(plainDBs.get(name));
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(PREFIX + "-plain-" + name, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore("docs", { keyPath: "id" });
      req.result.createObjectStore("outbox", { keyPath: "_event_id" });
    };
    req.onsuccess = () => { plainDBs.set(name, req.result); resolve(req.result); };
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error("open blocked"));
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function plainPut(db, docs) {
  const tx = db.transaction("docs", "readwrite");
  const store = tx.objectStore("docs");
  for (const d of docs) store.put(d);
  await done(tx);
}

// ---- plain WebSocket (the lfsync wire protocol, by hand) -------------------

/** A plain WebSocket to the lfsync server, authenticated, with a frame queue. */
class Plain {
  static async open() {
    const p = new Plain();
    p.ws = new WebSocket(SYNC);
    p.waiters = [];
    p.ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "ping") { p.ws.send('{"type":"pong"}'); return; }
      for (let i = 0; i < p.waiters.length; i++) {
        const w = p.waiters[i];
        if (w.match(m)) { p.waiters.splice(i, 1); w.resolve(m); return; }
      }
      if (p.onframe) p.onframe(m);
    };
    await new Promise((resolve, reject) => {
      p.ws.onopen = resolve;
      p.ws.onerror = () => reject(new Error("plain WebSocket failed to open"));
    });
    const ok = p.next((m) => m.type === "auth_success" || m.type === "error");
    p.ws.send(JSON.stringify({ type: "auth", token: TOKEN }));
    const m = await ok;
    if (m.type !== "auth_success") throw new Error("plain auth failed: " + JSON.stringify(m));
    return p;
  }
  next(match) {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
  send(m) { this.ws.send(JSON.stringify(m)); }
  close() { this.ws.close(); }
}

function event(doc) {
  return {
    _event_id: crypto.randomUUID(),
    _operation: 0,
    _created_at: new Date().toISOString(),
    _data_id: doc.id,
    _data: doc,
  };
}

// ---- the figures -----------------------------------------------------------

const B = {
  now: wall,

  /**
   * Sequential upserts into repository "writes" of client name (opened on
   * first use, offline or online); per-write latencies (ms). Call it in
   * rounds beside plainWrites, then lfsyncWritesDone.
   */
  async lfsyncWrites(name, online, from, n) {
    const c = await client(name, online);
    const repo = c.repository("writes");
    if (from === 0) for (let i = 0; i < 20; i++) await repo.upsert(record(i, "warm"));
    const lat = [];
    for (let i = from; i < from + n; i++) {
      const d = record(i);
      const t = performance.now();
      await repo.upsert(d);
      lat.push(performance.now() - t);
    }
    return lat;
  },
  async lfsyncWritesDone(name, online, n) {
    const c = clients.get(name);
    if (online) await c.waitSynced({ timeout: 60000 });
    const count = (await c.repository("writes").getAll()).length;
    await closeClient(name);
    if (count !== n + 20) throw new Error(`lfsync writes: ${count} documents, want ${n + 20}`);
    return count;
  },

  /**
   * Sequential plain IndexedDB writes, one transaction each (ms): the
   * document alone, or (withEvent) the document and an outbox event, the
   * two records an lfsync write stores.
   */
  async plainWrites(from, n, withEvent) {
    const db = await plainDB(withEvent ? "writes-event" : "writes");
    if (from === 0) for (let i = 0; i < 20; i++) await plainPut(db, [record(i, "warm")]);
    const lat = [];
    for (let i = from; i < from + n; i++) {
      const d = record(i);
      const t = performance.now();
      const tx = db.transaction(withEvent ? ["docs", "outbox"] : "docs", "readwrite");
      tx.objectStore("docs").put(d);
      if (withEvent) tx.objectStore("outbox").put(event(d));
      await done(tx);
      lat.push(performance.now() - t);
    }
    return lat;
  },

  /** n upserts issued at once: upsertMany ("many") or Promise.all of upsert ("all"); ms. */
  async lfsyncBulk(n, how) {
    const name = "bulk-" + how;
    const c = await client(name, false);
    const repo = c.repository("bulk");
    await repo.upsert(record(0, "warm"));
    const docs = records(n);
    const t = performance.now();
    if (how === "many") await repo.upsertMany(docs);
    else await Promise.all(docs.map((d) => repo.upsert(d)));
    const ms = performance.now() - t;
    const count = (await repo.getAll()).length;
    await closeClient(name);
    if (count !== n + 1) throw new Error(`lfsync bulk ${how}: ${count} documents, want ${n + 1}`);
    return ms;
  },

  /** n plain IndexedDB puts in one transaction; ms. */
  async plainBulk(n) {
    const db = await plainDB("bulk");
    await plainPut(db, [record(0, "warm")]);
    const docs = records(n);
    const t = performance.now();
    await plainPut(db, docs);
    return performance.now() - t;
  },

  // Propagation: the sender page writes, the receiver page (another browser
  // context, another database) records when its watch callback sees it.
  async propReceiver(repoName) {
    const c = await client("prop-recv", true);
    const repo = c.repository(repoName);
    B.seen = new Map();
    B.seenWaiters = new Map();
    await new Promise((ready) => {
      repo.watch(undefined, (docs) => {
        const t = wall();
        ready();
        for (const d of docs) {
          if (d.id !== "p" || B.seen.has(d.n)) continue;
          B.seen.set(d.n, t);
          const w = B.seenWaiters.get(d.n);
          if (w) { B.seenWaiters.delete(d.n); w(); }
        }
      });
    });
    return true;
  },
  propWait(n, timeoutMs) {
    if (B.seen.has(n)) return true;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`write ${n} not seen within ${timeoutMs} ms`)), timeoutMs);
      B.seenWaiters.set(n, () => { clearTimeout(timer); resolve(true); });
    });
  },
  propSeen(n) { return B.seen.get(n); },
  async propSender(repoName) {
    const c = await client("prop-send", true);
    B.propRepo = c.repository(repoName);
    await B.propRepo.upsert({ id: "warm", n: -1 });
    await c.waitSynced({ timeout: 20000 });
    return true;
  },
  async propSend(n) {
    const t = wall();
    await B.propRepo.upsert({ id: "p", n, body: "propagation probe" });
    return t;
  },

  /** Plain JS: one socket pushes an event, a second one receives the fan-out; ms per event, and the push→ack round trips. */
  async plainPropagation(n, repoName) {
    const tx = await Plain.open();
    const rx = await Plain.open();
    const synced = rx.next((m) => m.type === "sync_complete");
    rx.send({ type: "request_events", repository: repoName, afterSequence: 0, limit: 1 });
    await synced;
    const fanout = [], acks = [];
    for (let i = -20; i < n; i++) {
      const e = event({ id: "p", n: i, body: "propagation probe" });
      const got = rx.next((m) => m.type === "events" && m.events.some((x) => x._event_id === e._event_id));
      const acked = tx.next((m) => m.type === "ack" || m.type === "error");
      const t = performance.now();
      tx.send({ type: "push_event", repository: repoName, event: e });
      const a = await acked;
      const ta = performance.now();
      await got;
      const tr = performance.now();
      if (a.type !== "ack") throw new Error("plain push failed: " + JSON.stringify(a));
      if (i >= 0) { acks.push(ta - t); fanout.push(tr - t); }
    }
    tx.close(); rx.close();
    return { fanout, acks };
  },

  // Catch-up: a client syncs an empty repository, stops; Go writes n events
  // meanwhile; start() until the last document is readable.
  async catchupPrepare(repoName) {
    const c = await client("catchup", true);
    B.catchRepo = c.repository(repoName);
    await c.waitSynced({ timeout: 20000 });
    await c.stop();
    return true;
  },
  async catchupRun(n, lastId) {
    const c = clients.get("catchup");
    // Phases for the note: when each state was first reported, when
    // waitSynced resolved.
    const states = {};
    let t = performance.now();
    const off = c.onStatus((st) => { if (!(st.state in states)) states[st.state] = Math.round(performance.now() - t); });
    t = performance.now();
    await c.start();
    let doc = null, synced = 0;
    for (let tries = 0; ; tries++) {
      await c.waitSynced({ timeout: 120000 });
      if (!synced) synced = performance.now() - t;
      doc = await B.catchRepo.get(lastId);
      if (doc || tries > 2000) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - t;
    off();
    B.catchDetail = { states, synced, total: ms };
    const count = (await B.catchRepo.getAll()).length;
    await closeClient("catchup");
    if (!doc || count !== n) throw new Error(`lfsync catch-up: ${count} documents (last ${doc ? "found" : "missing"}), want ${n}`);
    return ms;
  },

  /** Plain JS: open a socket, auth, page through request_events, one IndexedDB transaction; ms. */
  async plainCatchup(n, repoName) {
    const db = await plainDB("catchup");
    const t = performance.now();
    const p = await Plain.open();
    const docs = [];
    let after = 0;
    for (;;) {
      const page = [];
      p.onframe = (m) => { if (m.type === "events" && m.repository === repoName) for (const e of m.events) page.push(e); };
      const end = p.next((m) => (m.type === "sync_complete" && m.repository === repoName) || m.type === "error");
      p.send({ type: "request_events", repository: repoName, afterSequence: after, limit: 1000 });
      const m = await end;
      if (m.type === "error") throw new Error("plain catch-up failed: " + JSON.stringify(m));
      for (const e of page) { if (e._data) docs.push(e._data); after = Math.max(after, e.serverSequence); }
      if (!m.hasMore) break;
    }
    await plainPut(db, docs);
    const ms = performance.now() - t;
    p.close();
    const tx = db.transaction("docs");
    const count = await request(tx.objectStore("docs").count());
    if (count !== n) throw new Error(`plain catch-up: ${count} documents, want ${n}`);
    return ms;
  },

  // Queries over n documents.
  async querySetup(n) {
    const c = await client("query", false);
    B.queryRepo = c.repository("q");
    await B.queryRepo.upsertMany(records(n));
    await plainPut(await plainDB("query"), records(n));
    return true;
  },
  QUERY: {
    where: [{ field: "group", op: "==", value: 3 }],
    orderBy: [{ field: "score", desc: true }],
    limit: 20,
  },
  async lfsyncGetAll(n) {
    const t = performance.now();
    const docs = await B.queryRepo.getAll();
    const ms = performance.now() - t;
    if (docs.length !== n) throw new Error(`lfsync getAll: ${docs.length} documents, want ${n}`);
    return ms;
  },
  async plainGetAll(n) {
    const db = await plainDB("query");
    const t = performance.now();
    const docs = await request(db.transaction("docs").objectStore("docs").getAll());
    const ms = performance.now() - t;
    if (docs.length !== n) throw new Error(`plain getAll: ${docs.length} documents, want ${n}`);
    return ms;
  },
  async lfsyncQuery() {
    const t = performance.now();
    const docs = await B.queryRepo.query(B.QUERY);
    const ms = performance.now() - t;
    B.checkQuery(docs);
    return ms;
  },
  async plainQuery() {
    const db = await plainDB("query");
    const t = performance.now();
    const all = await request(db.transaction("docs").objectStore("docs").getAll());
    const docs = all.filter((d) => d.group === 3).sort((a, b) => b.score - a.score).slice(0, 20);
    const ms = performance.now() - t;
    B.checkQuery(docs);
    return ms;
  },
  checkQuery(docs) {
    if (docs.length !== 20) throw new Error(`query returned ${docs.length} documents, want 20`);
    for (let i = 0; i < docs.length; i++) {
      if (docs[i].group !== 3 || (i > 0 && docs[i - 1].score < docs[i].score)) throw new Error("query result out of order or unfiltered");
    }
  },
};

window.B = B;
window.benchReady = true;
