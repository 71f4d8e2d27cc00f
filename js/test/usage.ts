// Exercises the whole public API against index.d.ts; checked by
// `npm run typecheck` (tsc --noEmit -p test), never run. The @ts-expect-error
// lines prove the types reject what the runtime rejects.
import { createClient, LfsyncError, version, type Client, type Doc, type ErrorCode, type Metrics, type Query, type Repository, type State, type Status } from "lfsync";

interface Todo {
  id: string;
  title: string;
  done: boolean;
  tags?: string[];
}

export async function usage(): Promise<void> {
  const v: string = version;
  const client: Client = await createClient({
    url: "ws://localhost:8080/sync",
    token: "t",
    headers: { "x-tenant": "acme" },
    repositories: ["todos"],
    database: "lfsync-test",
    conflict: "fieldMerge",
    reconnect: { initial: 500, max: 10_000, multiplier: 1.5, maxAttempts: 0 },
    heartbeat: { interval: 20_000, timeout: 5_000 },
    connectTimeout: 5_000,
    batchSize: 100,
    pageSize: 200,
    autoStart: false,
    refreshToken: async () => "new-token",
    onEventError: (e) => console.warn(e.repository, e.eventId, e.message),
    log: (line) => console.debug(line),
    wasmURL: new URL("./lfsync.wasm", import.meta.url),
  });
  await createClient({
    url: "ws://localhost:8080/sync",
    conflict: (local, remote) => (local && remote ? { ...remote, ...local, id: remote.id } : (local ?? remote)),
  });
  await createClient();
  // @ts-expect-error: not a strategy
  await createClient({ conflict: "newestWins" });

  const todos: Repository<Todo> = client.repository<Todo>("todos");
  const name: string = todos.name;
  await todos.upsert({ id: "t1", title: "Buy milk", done: false });
  await todos.upsert({ id: "t2", title: "Draft", done: false }, { localOnly: true });
  // @ts-expect-error: a Todo needs a title
  await todos.upsert({ id: "t3", done: true });
  await todos.upsertMany([
    { id: "t4", title: "a", done: false },
    { id: "t5", title: "b", done: true, tags: ["x"] },
  ]);
  const one: Todo | null = await todos.get("t1");
  const all: Todo[] = await todos.getAll();
  const q: Query = {
    where: [
      { field: "done", op: "==", value: false },
      { field: "tags", op: "contains", value: "x" },
      { field: "title", op: "isNotNull" },
    ],
    orderBy: [{ field: "title" }, { field: "id", desc: true }],
    limit: 20,
    offset: 0,
  };
  const open: Todo[] = await todos.query(q);
  // @ts-expect-error: unknown operator
  await todos.query({ where: [{ field: "done", op: "===", value: false }] });
  const stopAll = todos.watch((docs) => docs.forEach((d) => d.title.toUpperCase()));
  const stopOpen = todos.watch(q, (docs: Todo[]) => console.log(docs.length));
  const stopUndef = todos.watch(undefined, (docs) => console.log(docs.length));
  stopAll();
  stopOpen();
  stopUndef();
  await todos.delete("t1");
  await todos.delete("t2", { localOnly: true });

  const notes = client.repository("notes");
  const note: Doc | null = await notes.get("n1");
  if (note) console.log(note.id, note["body"]);

  const off = client.onStatus((s: Status) => {
    const st: State = s.state;
    const when: Date | null = s.lastSync;
    const leads: boolean = s.leader;
    const tabs: number = s.tabs;
    console.log(st, s.pending, when, s.lastError, leads, tabs);
  });
  off();
  const s: Status = client.status();
  const m: Metrics = client.metrics();
  console.log(s.state, s.leader, s.tabs, m.reconnects, m.queueSize, m.staleWrites, m.avgReconnectMs, m.lastConnected?.getTime());
  client.updateAuthToken("t2");
  client.updateHeaders({ "x-tenant": "other" });
  client.updateCredentials({ token: "t3", headers: { a: "b" } });
  client.updateCredentials({ token: "t4" });
  const id: string = client.clientId;
  await client.start();
  await client.waitSynced({ timeout: 5_000 });
  await client.stop();
  await client.close();

  try {
    await todos.upsert({ id: "", title: "", done: false });
  } catch (e) {
    if (e instanceof LfsyncError) {
      const code: ErrorCode = e.code;
      switch (code) {
        case "invalid":
        case "not_found":
        case "closed":
        case "quota_exceeded":
        case "unauthorized":
        case "forbidden":
        case "conflict":
        case "timeout":
        case "internal":
          console.log(e.name, e.message, code);
      }
    }
  }
  console.log(v, name, one, all, open, id);
}
