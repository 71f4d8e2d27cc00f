// Exercises the script-tag build's types (lfsync.global.d.ts).
import "../lfsync.global.js";

export async function globalUsage(): Promise<void> {
  const client = await window.lfsync.createClient({ url: "ws://localhost:8080/sync" });
  const m = await lfsync.ready;
  try {
    await client.repository("todos").get("t1");
  } catch (e) {
    if (lfsync.LfsyncError && e instanceof lfsync.LfsyncError) console.log(e.code);
    if (e instanceof m.LfsyncError) console.log(e.code);
  }
  const v: string = lfsync.version;
  console.log(v);
}
