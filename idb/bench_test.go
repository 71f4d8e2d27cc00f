//go:build js && wasm

package idb_test

import (
	"context"
	"encoding/json"
	"strconv"
	"syscall/js"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
)

var benchData = json.RawMessage(`{"id":"t1","title":"Buy milk","done":false,"tags":["home","shop"],"priority":3}`)

func benchDoc(i int) core.DocWrite {
	id := "doc-" + strconv.Itoa(i)
	return core.DocWrite{Repo: "todos", Doc: core.Doc{ID: id, Data: benchData,
		Version: core.Stamp{At: time.UnixMilli(1_767_225_600_000).UTC(), EventID: "ev-" + id}}}
}

// BenchmarkWriteDoc is the local write latency floor: one document per
// transaction, sequential. Compare with BenchmarkPlainJSPut.
func BenchmarkWriteDoc(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	batches := make([]core.Batch, b.N)
	for i := range batches {
		batches[i] = core.Batch{Docs: []core.DocWrite{benchDoc(i)}}
	}
	b.ResetTimer()
	for i := range batches {
		if err := s.Write(ctx, &batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite is a local upsert as the engine writes it: a document and
// its outbox event in one transaction.
func BenchmarkWrite(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	batches := make([]core.Batch, b.N)
	for i := range batches {
		d := benchDoc(i)
		e := event("ev-" + strconv.Itoa(i))
		e.Event.Data = benchData
		batches[i] = core.Batch{Docs: []core.DocWrite{d}, Events: []core.OutboxEvent{e}}
	}
	b.ResetTimer()
	for i := range batches {
		if err := s.Write(ctx, &batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteGuarded is BenchmarkWrite as the engine now writes it: with
// a precondition on the repository's generation (checked and advanced in
// the same transaction).
func BenchmarkWriteGuarded(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	batches := make([]core.Batch, b.N)
	for i := range batches {
		d := benchDoc(i)
		e := event("ev-" + strconv.Itoa(i))
		e.Event.Data = benchData
		batches[i] = core.Batch{Docs: []core.DocWrite{d}, Events: []core.OutboxEvent{e}, Expect: map[string]uint64{"todos": uint64(i)}}
	}
	b.ResetTimer()
	for i := range batches {
		if err := s.Write(ctx, &batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteExpectDoc is BenchmarkWrite guarded by the document as
// read (here: absent), as a follower tab writes.
func BenchmarkWriteExpectDoc(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	batches := make([]core.Batch, b.N)
	for i := range batches {
		d := benchDoc(i)
		e := event("ev-" + strconv.Itoa(i))
		e.Event.Data = benchData
		batches[i] = core.Batch{Docs: []core.DocWrite{d}, Events: []core.OutboxEvent{e},
			ExpectDocs: []core.DocExpect{{Repo: "todos", ID: d.Doc.ID}}}
	}
	b.ResetTimer()
	for i := range batches {
		if err := s.Write(ctx, &batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite1000Docs writes 1,000 documents in one batch.
func BenchmarkWrite1000Docs(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	batch := &core.Batch{Docs: make([]core.DocWrite, 1000)}
	for i := range batch.Docs {
		batch.Docs[i] = benchDoc(i)
	}
	b.ResetTimer()
	for range b.N {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteConcurrent has 16 writers at once, committed in groups.
func BenchmarkWriteConcurrent(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	b.SetParallelism(16)
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n++
			if err := s.Write(ctx, &core.Batch{Docs: []core.DocWrite{benchDoc(int(n))}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDocs1000 reads a repository of 1,000 documents.
func BenchmarkDocs1000(b *testing.B) {
	s := open(b, dbName(b.Name()))
	ctx := context.Background()
	batch := &core.Batch{Docs: make([]core.DocWrite, 1000)}
	for i := range batch.Docs {
		batch.Docs[i] = benchDoc(i)
	}
	if err := s.Write(ctx, batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		docs, err := s.Docs(ctx, "todos")
		if err != nil || len(docs) != 1000 {
			b.Fatal(len(docs), err)
		}
	}
}

// plainJS is the baseline: the same puts written in JavaScript, timed in
// JavaScript. (eval is fine in a test; the store itself never evaluates JS.)
// perTx 0 means an upsert as idb writes one: read the outbox record and
// the order counter, then put the document, the outbox record and the
// counter, in one transaction over the same schema.
const plainJS = `(async (name, n, perTx, value) => {
  const db = await new Promise((ok, fail) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => {
      const d = r.result;
      d.createObjectStore("documents");
      d.createObjectStore("outbox", {keyPath: "id"}).createIndex("status_order", ["status", "order"]);
      d.createObjectStore("meta");
    };
    r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error);
  });
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    await new Promise((ok, fail) => {
      const tx = db.transaction(["documents", "outbox", "meta"], "readwrite");
      tx.oncomplete = ok; tx.onabort = () => fail(tx.error);
      const st = tx.objectStore("documents");
      if (perTx > 0) {
        for (let j = 0; j < perTx; j++) st.put(value, ["todos", "doc-" + (i * perTx + j)]);
        return;
      }
      const ob = tx.objectStore("outbox"), meta = tx.objectStore("meta"), id = "ev-" + i;
      const existing = ob.get(id), counter = meta.get("outboxOrder");
      counter.onsuccess = () => {
        if (existing.result) return;
        const order = (counter.result || 0) + 1;
        st.put(value, ["todos", "doc-" + i]);
        ob.put({id, order, status: 0, error: "", repo: "todos", event: value});
        meta.put(order, "outboxOrder");
      };
    });
  }
  const ms = performance.now() - start;
  db.close();
  await new Promise((ok) => { const r = indexedDB.deleteDatabase(name); r.onsuccess = ok; r.onerror = ok; });
  return ms;
})`

func runPlainJS(b *testing.B, perTx int) {
	var record []byte
	d := benchDoc(0)
	record, _ = json.Marshal(d.Doc)
	fn := js.Global().Call("eval", plainJS)
	done := make(chan float64, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any { done <- args[0].Float(); return nil })
	defer then.Release()
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any { done <- -1; return nil })
	defer fail.Release()
	b.ResetTimer()
	fn.Invoke(dbName(b.Name()), b.N, perTx, string(record)).Call("then", then, fail)
	ms := <-done
	b.StopTimer()
	if ms < 0 {
		b.Fatal("plain JS benchmark failed")
	}
	b.ReportMetric(ms*1e6/float64(b.N), "js-ns/op")
}

// BenchmarkPlainJSUpsert: BenchmarkWrite's transaction from JavaScript.
func BenchmarkPlainJSUpsert(b *testing.B) { runPlainJS(b, 0) }

// BenchmarkPlainJSPut: one put per transaction from JavaScript.
func BenchmarkPlainJSPut(b *testing.B) { runPlainJS(b, 1) }

// BenchmarkPlainJSPut1000: 1,000 puts in one transaction from JavaScript.
func BenchmarkPlainJSPut1000(b *testing.B) { runPlainJS(b, 1000) }
