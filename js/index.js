// lfsync: local-first sync for web pages. The engine is Go compiled to
// WebAssembly (lfsync.wasm); this module loads it once per page and wraps
// the global it registers (globalThis.__lfsync) in Client and Repository
// classes. Data crosses the boundary as JSON strings, parsed once per call.

export const version = "0.1.0";

/** The error every lfsync Promise rejects with; `code` says what kind. */
export class LfsyncError extends Error {
  constructor(message, code = "internal") {
    super(message);
    this.name = "LfsyncError";
    this.code = code;
  }
}

const RUNTIME = Symbol.for("lfsync.runtime");
const STRATEGIES = ["lastWriteWins", "serverWins", "clientWins", "fieldMerge"];

/**
 * Creates a client: loads the runtime on first use, opens the IndexedDB
 * database and, unless autoStart is false, joins the database's leader
 * election: of all the tabs of the origin with the database open, one (the
 * leader) syncs over its WebSocket; the others share the database and show
 * the leader's status (docs/multitab.md).
 */
export async function createClient(options = {}) {
  if (options === null || typeof options !== "object") {
    throw new LfsyncError("options must be an object", "invalid");
  }
  const rt = await runtime(options.wasmURL);
  const { conflict, refreshToken, onEventError, log, wasmURL, ...rest } = options;
  const hooks = {};
  if (typeof conflict === "function") {
    rest.conflict = "custom";
    hooks.resolve = (local, remote) => {
      const merged = conflict(parse(local), parse(remote));
      return merged === undefined ? undefined : JSON.stringify(merged);
    };
  } else if (conflict !== undefined) {
    if (!STRATEGIES.includes(conflict)) {
      const hint = conflict === "custom" ? ": pass the merge function itself as conflict" : "";
      throw new LfsyncError(`unknown conflict strategy ${JSON.stringify(conflict)}${hint}`, "invalid");
    }
    rest.conflict = conflict;
  }
  if (refreshToken !== undefined) {
    if (typeof refreshToken !== "function") throw new LfsyncError("refreshToken must be a function", "invalid");
    hooks.refreshToken = refreshToken;
  }
  if (onEventError !== undefined) {
    if (typeof onEventError !== "function") throw new LfsyncError("onEventError must be a function", "invalid");
    hooks.onEventError = (repo, eventId, message) => defer(() => onEventError({ repository: repo, eventId, message }));
  }
  if (log !== undefined) {
    if (typeof log !== "function") throw new LfsyncError("log must be a function", "invalid");
    hooks.log = (line) => defer(() => log(line));
  }
  const go = await rt.call(() => rt.ns.createClient(JSON.stringify(rest), hooks));
  return new Client(rt, go);
}

/** A sync client over one IndexedDB database. */
export class Client {
  #rt;
  #go;
  #closed = false;
  #repos = new Map();

  constructor(rt, go) {
    this.#rt = rt;
    this.#go = go;
  }

  /** The replica's id, persisted in the database. */
  get clientId() {
    return this.#sync(() => this.#go.clientId());
  }

  /** The repository called name; asking for it adds it to the synced set. */
  repository(name) {
    let repo = this.#repos.get(name);
    if (!repo) {
      repo = new Repository(this.#rt, this.#sync(() => this.#go.repository(name)), this.#go, () => this.#closed);
      this.#repos.set(name, repo);
    }
    return repo;
  }

  /** Joins the leader election (idempotent): syncs when this tab leads. */
  start() {
    return this.#async(() => this.#go.start());
  }

  /** Leaves the election (a leader hands its connection to another tab); local reads and writes keep working. */
  stop() {
    return this.#async(() => this.#go.stop());
  }

  /** Stops syncing, ends every watcher and listener, and closes the database. */
  close() {
    if (this.#closed) return Promise.resolve();
    const p = this.#async(() => this.#go.close());
    this.#closed = true;
    this.#repos.clear();
    return p;
  }

  /** Resolves once the leader is connected, caught up, and the outbox is empty. */
  waitSynced(options = {}) {
    return this.#async(() => this.#go.waitSynced(options.timeout ?? 0));
  }

  /** Calls listener with every status change; returns the function that stops it. */
  onStatus(listener) {
    if (typeof listener !== "function") throw new LfsyncError("listener must be a function", "invalid");
    let live = true;
    const handle = this.#sync(() =>
      this.#go.onStatus((json) => defer(() => live && listener(parseStatus(json)))),
    );
    return () => {
      if (!live) return;
      live = false;
      if (!this.#closed && !this.#rt.dead) this.#go.cancel(handle);
    };
  }

  /** The current status. */
  status() {
    return parseStatus(this.#sync(() => this.#go.status()));
  }

  /** The engine's counters. */
  metrics() {
    const m = JSON.parse(this.#sync(() => this.#go.metrics()));
    m.lastConnected = m.lastConnected ? new Date(m.lastConnected) : null;
    m.lastDisconnected = m.lastDisconnected ? new Date(m.lastDisconnected) : null;
    return m;
  }

  /** Replaces the token sent in the auth frame; reconnects if needed. */
  updateAuthToken(token) {
    this.#sync(() => this.#go.updateAuthToken(token));
  }

  /** Replaces the headers spread into the auth frame. */
  updateHeaders(headers) {
    this.#sync(() => this.#go.updateHeaders(JSON.stringify(headers ?? {})));
  }

  /** Replaces token and headers at once. */
  updateCredentials({ token, headers } = {}) {
    this.#sync(() => this.#go.updateCredentials(token, JSON.stringify(headers ?? {})));
  }

  #sync(fn) {
    if (this.#closed) throw new LfsyncError("lfsync: client is closed", "closed");
    return this.#rt.sync(fn);
  }

  #async(fn) {
    if (this.#closed) return Promise.reject(new LfsyncError("lfsync: client is closed", "closed"));
    return this.#rt.call(fn);
  }
}

/** A named collection of JSON documents, each with a string id. */
export class Repository {
  #rt;
  #go;
  #client;
  #closed;

  constructor(rt, go, client, closed) {
    this.#rt = rt;
    this.#go = go;
    this.#client = client;
    this.#closed = closed;
  }

  get name() {
    return this.#go.name;
  }

  /** Inserts or replaces a document; resolves once IndexedDB committed it. */
  upsert(doc, options) {
    const err = checkDoc(doc);
    if (err) return Promise.reject(err);
    return this.#async(() => this.#go.upsert(doc.id, JSON.stringify(doc), localOnly(options)));
  }

  /** Inserts or replaces several documents in one atomic write. */
  upsertMany(docs, options) {
    if (!Array.isArray(docs)) return Promise.reject(new LfsyncError("documents must be an array", "invalid"));
    const ids = new Array(docs.length);
    for (let i = 0; i < docs.length; i++) {
      const err = checkDoc(docs[i]);
      if (err) return Promise.reject(err);
      ids[i] = docs[i].id;
    }
    return this.#async(() => this.#go.upsertMany(JSON.stringify(ids), JSON.stringify(docs), localOnly(options)));
  }

  /** The document with this id, or null. */
  async get(id) {
    return parse(await this.#async(() => this.#go.get(id)));
  }

  /** Every document, ordered by id. */
  async getAll() {
    return JSON.parse(await this.#async(() => this.#go.getAll()));
  }

  /** The documents matching query. */
  async query(query) {
    return JSON.parse(await this.#async(() => this.#go.query(queryJSON(query))));
  }

  /**
   * Calls callback with the result of query (all documents when omitted),
   * once at first and again whenever it changes. Returns the function that
   * stops watching.
   */
  watch(query, callback) {
    if (typeof query === "function" && callback === undefined) [query, callback] = [undefined, query];
    if (typeof callback !== "function") throw new LfsyncError("callback must be a function", "invalid");
    if (this.#closed()) throw new LfsyncError("lfsync: client is closed", "closed");
    let live = true;
    const handle = this.#rt.sync(() =>
      this.#go.watch(queryJSON(query), (json) => defer(() => live && callback(JSON.parse(json)))),
    );
    return () => {
      if (!live) return;
      live = false;
      if (!this.#closed() && !this.#rt.dead) this.#client.cancel(handle);
    };
  }

  /** Deletes a document (it stays as a tombstone until synced). */
  delete(id, options) {
    return this.#async(() => this.#go.delete(id, localOnly(options)));
  }

  #async(fn) {
    if (this.#closed()) return Promise.reject(new LfsyncError("lfsync: client is closed", "closed"));
    return this.#rt.call(fn);
  }
}

function checkDoc(doc) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return new LfsyncError("a document must be an object", "invalid");
  }
  if (typeof doc.id !== "string" || doc.id === "") {
    return new LfsyncError("a document needs a non-empty string id", "invalid");
  }
  return null;
}

function localOnly(options) {
  return options?.localOnly === true;
}

function queryJSON(query) {
  return query === undefined || query === null ? "" : JSON.stringify(query);
}

function parse(json) {
  return json === null || json === undefined ? null : JSON.parse(json);
}

function parseStatus(json) {
  const s = JSON.parse(json);
  s.lastSync = s.lastSync ? new Date(s.lastSync) : null;
  s.lastError ??= null;
  return s;
}

// defer runs a user callback outside the Go call that delivered it, so the
// callback may call back into the client, and its exceptions surface as
// uncaught errors instead of reaching Go.
function defer(fn) {
  queueMicrotask(fn);
}

function toError(e) {
  if (e instanceof LfsyncError) return e;
  return new LfsyncError(e?.message ?? String(e), typeof e?.code === "string" ? e.code : "internal");
}

// runtime returns the page's runtime, loading it on first use. A runtime
// that failed to load or has crashed is replaced on the next call.
function runtime(wasmURL) {
  let rt = globalThis[RUNTIME];
  if (!rt) {
    rt = load(wasmURL);
    globalThis[RUNTIME] = rt;
    rt.catch(() => {
      if (globalThis[RUNTIME] === rt) delete globalThis[RUNTIME];
    });
  }
  return rt;
}

async function load(wasmURL) {
  // wasm_exec.js is a classic script that only assigns globalThis.Go, so it
  // evaluates as a module too. It must be the one built with lfsync.wasm.
  await import(new URL("./wasm_exec.js", import.meta.url).href);
  const go = new globalThis.Go();
  const instance = await instantiate(wasmURL ?? new URL("./lfsync.wasm", import.meta.url), go.importObject);
  globalThis.__lfsync = { Error: LfsyncError };
  const rt = new Runtime(go);
  const self = globalThis[RUNTIME];
  go.run(instance).then(
    () => rt.crash("lfsync: the wasm runtime exited"),
    (e) => rt.crash(`lfsync: the wasm runtime crashed: ${e?.message ?? e}`),
  ).finally(() => {
    if (globalThis[RUNTIME] === self) delete globalThis[RUNTIME];
  });
  // go.run has run main until it blocked, so the global is registered.
  const ns = globalThis.__lfsync;
  if (typeof ns?.createClient !== "function") throw new LfsyncError("lfsync.wasm did not register its runtime", "internal");
  if (ns.version !== version) console.warn(`lfsync: index.js is ${version} but lfsync.wasm is ${ns.version}`);
  rt.ns = ns;
  return rt;
}

async function instantiate(url, imports) {
  const resp = await fetch(url);
  if (!resp.ok) throw new LfsyncError(`failed to fetch ${url}: HTTP ${resp.status}`, "internal");
  // instantiateStreaming insists on Content-Type application/wasm; fall back
  // to a buffer when the server says otherwise.
  const type = resp.headers.get("content-type") ?? "";
  if (typeof WebAssembly.instantiateStreaming === "function" && type.startsWith("application/wasm")) {
    return (await WebAssembly.instantiateStreaming(resp, imports)).instance;
  }
  return (await WebAssembly.instantiate(await resp.arrayBuffer(), imports)).instance;
}

// Runtime is the running Go program; it rejects every pending and later call
// once the program has exited.
class Runtime {
  ns = null;
  dead = null;
  #pending = new Set();

  constructor(go) {
    // The Go instance, for diagnostics (its _values table shows leaked JS
    // references).
    this.go = go;
  }

  crash(message) {
    if (this.dead) return;
    this.dead = new LfsyncError(message, "internal");
    console.error(message);
    for (const reject of this.#pending) reject(this.dead);
    this.#pending.clear();
  }

  sync(fn) {
    if (this.dead) throw this.dead;
    const v = fn();
    if (v instanceof Error) throw toError(v);
    return v;
  }

  call(fn) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.#pending.add(reject);
      const done = () => this.#pending.delete(reject);
      let p;
      try {
        p = fn();
      } catch (e) {
        done();
        reject(toError(e));
        return;
      }
      p.then(
        (v) => {
          done();
          resolve(v);
        },
        (e) => {
          done();
          reject(toError(e));
        },
      );
    });
  }
}
