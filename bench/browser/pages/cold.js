// Cold start: the time from navigation start (performance's time origin)
// until the page can read and write: lfsync's createClient resolved, or,
// for the plain baseline, an IndexedDB database opened.
const params = new URLSearchParams(location.search);
const db = params.get("db") || "cold-" + Math.random().toString(36).slice(2);

async function lfsync() {
  const { createClient } = await import("/index.js");
  const imported = performance.now();
  const client = await createClient({ url: params.get("sync"), token: params.get("token"), database: db, repositories: ["cold"] });
  const ready = performance.now();
  const wasm = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/lfsync.wasm"));
  window.coldDetail = { imported, wasmFetched: wasm ? wasm.responseEnd : -1, ready };
  await client.repository("cold").getAll();
  return { ready, client };
}

async function plain() {
  await new Promise((resolve, reject) => {
    const req = indexedDB.open(db, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("docs", { keyPath: "id" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return { ready: performance.now() };
}

(params.get("mode") === "plain" ? plain() : lfsync()).then(
  (r) => { window.coldReady = r.ready; window.coldClient = r.client; },
  (e) => { window.coldError = String(e && e.stack || e); },
);
