//go:build js && wasm

package idb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

// await waits for a JS promise.
func await(t *testing.T, promise js.Value) js.Value {
	t.Helper()
	ch := make(chan [2]js.Value, 1)
	ok := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- [2]js.Value{args[0], js.Null()}; return nil })
	defer ok.Release()
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- [2]js.Value{js.Undefined(), args[0]}; return nil })
	defer fail.Release()
	promise.Call("then", ok, fail)
	r := <-ch
	if !r[1].IsNull() {
		t.Fatalf("promise rejected: %v", exceptionError(r[1]))
	}
	return r[0]
}

// smallBucket opens a storage bucket with a tiny quota and returns its
// IDBFactory: a real QuotaExceededError without DevTools.
func smallBucket(t *testing.T, quota int) js.Value {
	buckets := js.Global().Get("navigator").Get("storageBuckets")
	if !buckets.Truthy() {
		t.Fatal("navigator.storageBuckets is not available (Chromium 122+ has it)")
	}
	name := "q" + strconv.FormatInt(time.Now().UnixNano(), 36)
	bucket := await(t, buckets.Call("open", name, map[string]any{"quota": quota}))
	t.Cleanup(func() { await(t, buckets.Call("delete", name)) })
	return bucket.Get("indexedDB")
}

// bigDoc returns a document padded with size random hex digits: the browser
// compresses values, so repeated bytes would not fill the quota.
func bigDoc(id string, size int) core.DocWrite {
	pad := make([]byte, size/2)
	rand.Read(pad)
	return core.DocWrite{Repo: "todos", Doc: core.Doc{ID: id,
		Data: json.RawMessage(`{"pad":"` + hex.EncodeToString(pad) + `"}`)}}
}

// TestQuotaExceeded fills a small storage bucket: the write that does not
// fit fails with an error matching core.ErrQuotaExceeded and stores nothing;
// what was stored before stays, and the store keeps working.
func TestQuotaExceeded(t *testing.T) {
	factory := smallBucket(t, 256<<10)
	ctx := context.Background()
	s, err := openIn(ctx, factory, "quota")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Write(ctx, &core.Batch{Docs: []core.DocWrite{bigDoc("small", 1000)}, Config: map[string]string{"k": "v"}}); err != nil {
		t.Fatalf("small Write: %v", err)
	}
	err = s.Write(ctx, &core.Batch{Docs: []core.DocWrite{bigDoc("big", 1<<20)}, Events: []core.OutboxEvent{outboxEvent("e1")}})
	if !errors.Is(err, core.ErrQuotaExceeded) {
		t.Fatalf("Write over quota = %v, want core.ErrQuotaExceeded", err)
	}
	if !strings.HasPrefix(err.Error(), "idb: failed to write batch: QuotaExceededError") {
		t.Fatalf("error = %q, want it to name the DOMException", err)
	}
	if _, ok, err := s.Doc(ctx, "todos", "big"); err != nil || ok {
		t.Fatalf("Doc(big) = %v, %v; want not stored", ok, err)
	}
	if _, ok, err := s.Outbox(ctx, "e1"); err != nil || ok {
		t.Fatalf("Outbox(e1) = %v, %v; want not stored", ok, err)
	}
	if _, ok, err := s.Doc(ctx, "todos", "small"); err != nil || !ok {
		t.Fatalf("Doc(small) = %v, %v; want kept", ok, err)
	}
	if err := s.Write(ctx, &core.Batch{Events: []core.OutboxEvent{outboxEvent("e2")}}); err != nil {
		t.Fatalf("Write after quota error: %v", err)
	}
	if e, _, err := s.Outbox(ctx, "e2"); err != nil || e.Order != 1 {
		t.Fatalf("Outbox(e2) = %+v, %v; want Order 1 (the failed write assigned none)", e, err)
	}
}

// TestGroupRetry commits a group in which one batch exceeds the quota: the
// group's transaction fails, each batch is retried alone, and only the bad
// one fails.
func TestGroupRetry(t *testing.T) {
	factory := smallBucket(t, 256<<10)
	ctx := context.Background()
	s, err := openIn(ctx, factory, "group")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	batches := []*core.Batch{
		{Docs: []core.DocWrite{bigDoc("a", 100)}, Events: []core.OutboxEvent{outboxEvent("e1")}},
		{Docs: []core.DocWrite{bigDoc("big", 1<<20)}, Events: []core.OutboxEvent{outboxEvent("e2")}},
		{Docs: []core.DocWrite{bigDoc("c", 100)}, Events: []core.OutboxEvent{outboxEvent("e3")}},
	}
	group := make([]*pendingWrite, len(batches))
	for i, b := range batches {
		p, err := prepare(b)
		if err != nil {
			t.Fatal(err)
		}
		group[i] = &pendingWrite{p: p, done: make(chan error, 1)}
	}
	s.mu.Lock()
	s.queue = group
	s.writing = true
	s.mu.Unlock()
	if !s.commitQueued() {
		t.Fatal("commitQueued found nothing queued")
	}
	s.mu.Lock()
	s.writing = false
	s.mu.Unlock()
	for i, w := range group {
		err := <-w.done
		if bad := i == 1; bad != errors.Is(err, core.ErrQuotaExceeded) || !bad && err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	for _, id := range []string{"a", "c"} {
		if _, ok, err := s.Doc(ctx, "todos", id); err != nil || !ok {
			t.Fatalf("Doc(%s) = %v, %v; want stored", id, ok, err)
		}
	}
	pending, err := s.Pending(ctx, 0)
	if err != nil || len(pending) != 2 || pending[0].Event.ID != "e1" || pending[1].Event.ID != "e3" || pending[1].Order <= pending[0].Order {
		t.Fatalf("Pending = %+v, %v; want e1, e3 by order", pending, err)
	}
}

func outboxEvent(id string) core.OutboxEvent {
	return core.OutboxEvent{Repo: "todos", Event: protocol.Event{ID: id, Operation: protocol.OpInsert,
		CreatedAt: time.UnixMilli(1_767_225_600_000).UTC(), DataID: "d", Data: json.RawMessage(`{"id":"d"}`)}}
}
