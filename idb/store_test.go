//go:build js && wasm

package idb_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"syscall/js"
	"testing"
	"time"

	goidb "github.com/hack-pad/go-indexeddb/idb"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/core/storetest"
	"github.com/lfsync/lfsync/idb"
)

// runID keeps database names of this run apart from those of earlier runs
// in the same browser profile.
var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// dbName returns a database name unique to this run.
func dbName(name string) string { return "lfsync-test-" + runID + "-" + name }

// open opens the database name and registers its closing and deletion.
func open(t testing.TB, name string) *idb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := idb.Open(ctx, name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	t.Cleanup(func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := idb.Delete(ctx, name); err != nil {
			t.Errorf("Delete(%q): %v", name, err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.RunPersistent(t, func(t *testing.T, name string) core.Store {
		return open(t, dbName(name))
	})
}

func TestVersionChangeCloses(t *testing.T) {
	name := dbName(t.Name())
	s := open(t, name)
	ctx := context.Background()
	if err := s.Write(ctx, &core.Batch{Config: map[string]string{"k": "v"}}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Deleting the database fires versionchange on the open connection: the
	// store must close itself, or Delete would stay blocked.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := idb.Delete(dctx, name); err != nil {
		t.Fatalf("Delete with an open store: %v", err)
	}
	_, _, err := s.Config(ctx, "k")
	if !errors.Is(err, idb.ErrVersionChange) || !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Config after versionchange = %v, want ErrVersionChange matching core.ErrClosed", err)
	}
	err = s.Write(ctx, &core.Batch{Config: map[string]string{"k": "w"}})
	if !errors.Is(err, idb.ErrVersionChange) {
		t.Fatalf("Write after versionchange = %v, want ErrVersionChange", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Cursor(ctx, "r"); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Cursor after Close = %v, want core.ErrClosed", err)
	}
}

func TestTwoConnections(t *testing.T) {
	name := dbName(t.Name())
	a, b := open(t, name), open(t, name)
	ctx := context.Background()
	mustWrite(t, a, &core.Batch{Events: []core.OutboxEvent{event("e1")}})
	mustWrite(t, b, &core.Batch{Events: []core.OutboxEvent{event("e2"), event("e1")}})
	evs, err := a.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The order counter lives in the database, so connections (tabs) share it.
	if len(evs) != 2 || evs[0].Event.ID != "e1" || evs[1].Event.ID != "e2" || evs[1].Order <= evs[0].Order {
		t.Fatalf("Pending = %+v, want e1 then e2 with increasing orders", evs)
	}
}

func TestConcurrentWrites(t *testing.T) {
	s := open(t, dbName(t.Name()))
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "e" + strconv.Itoa(i)
			b := &core.Batch{
				Docs:    []core.DocWrite{{Repo: "todos", Doc: core.Doc{ID: "d" + strconv.Itoa(i), Data: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)}}},
				Events:  []core.OutboxEvent{event(id), event("shared")},
				Cursors: map[string]int64{"todos": int64(i)},
			}
			if i%2 == 1 { // acknowledge the previous writer's event, maybe in the same group
				b.Statuses = []core.StatusUpdate{{EventID: "e" + strconv.Itoa(i-1), Status: core.StatusOK}}
			}
			errs <- s.Write(ctx, b)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	docs, err := s.Docs(ctx, "todos")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != n {
		t.Fatalf("Docs = %d documents, want %d", len(docs), n)
	}
	seen := map[int64]bool{}
	total := 0
	for i := range n {
		e, ok, err := s.Outbox(ctx, "e"+strconv.Itoa(i))
		if err != nil || !ok {
			t.Fatalf("Outbox(e%d) = %v, %v", i, ok, err)
		}
		if seen[e.Order] {
			t.Fatalf("Order %d assigned twice", e.Order)
		}
		seen[e.Order] = true
		total++
	}
	if _, ok, _ := s.Outbox(ctx, "shared"); !ok {
		t.Fatal("Outbox(shared) not found")
	}
	pending, err := s.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	count, err := s.PendingCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if count != len(pending) {
		t.Fatalf("PendingCount = %d, Pending has %d", count, len(pending))
	}
	for i := 1; i < len(pending); i++ {
		if pending[i].Order <= pending[i-1].Order {
			t.Fatalf("Pending not by order: %d after %d", pending[i].Order, pending[i-1].Order)
		}
	}
	// 64 events plus "shared"; each odd writer acked an even one's event
	// if that was written first, so between n/2+1 and n+1 stay pending.
	if len(pending) < n/2+1 || len(pending) > n+1 {
		t.Fatalf("Pending = %d events, want %d..%d", len(pending), n/2+1, n+1)
	}
}

func TestExceptionError(t *testing.T) {
	newEx := func(msg, name string) js.Value { return js.Global().Get("DOMException").New(msg, name) }
	quota := idb.ExceptionError(newEx("quota is full", "QuotaExceededError"))
	if !errors.Is(quota, core.ErrQuotaExceeded) || !errors.Is(quota, goidb.NewDOMException("QuotaExceededError")) {
		t.Fatalf("QuotaExceededError = %v, want a match for core.ErrQuotaExceeded and go-indexeddb's DOMException", quota)
	}
	if got, want := quota.Error(), "QuotaExceededError: quota is full"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	other := idb.ExceptionError(newEx("no", "ConstraintError"))
	var ex *idb.Exception
	if errors.Is(other, core.ErrQuotaExceeded) || !errors.As(other, &ex) || ex.Name != "ConstraintError" || ex.Message != "no" {
		t.Fatalf("ConstraintError = %#v", other)
	}
	if typeErr := idb.ExceptionError(js.Global().Get("TypeError").New("bad")); typeErr.Error() != "TypeError: bad" {
		t.Fatalf("TypeError = %v", typeErr)
	}
	if err := idb.ExceptionError(js.Null()); err != nil {
		t.Fatalf("ExceptionError(null) = %v, want nil", err)
	}
}

func TestInvalidData(t *testing.T) {
	s := open(t, dbName(t.Name()))
	err := s.Write(context.Background(), &core.Batch{Docs: []core.DocWrite{{Repo: "r", Doc: core.Doc{ID: "a", Data: json.RawMessage(`{"a":`)}}}})
	if !errors.Is(err, core.ErrInvalidBatch) {
		t.Fatalf("Write of invalid JSON = %v, want core.ErrInvalidBatch", err)
	}
}

func TestDataKeptVerbatim(t *testing.T) {
	s := open(t, dbName(t.Name()))
	ctx := context.Background()
	data := json.RawMessage("{\"a\": \"<b>&\\u00e9\",\n \"n\": 1.50}")
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	d := core.Doc{ID: "x\u2028\"\\\x01\xff", Data: data, Version: core.Stamp{At: at, EventID: "ev"},
		Fields: map[string]core.Stamp{"a\n": {At: at, EventID: "f"}}, Sequence: 1 << 52}
	ev := event("e1")
	ev.Event.CreatedAt = at
	ev.Event.Meta = json.RawMessage(`{ "fields" : {"a":1} }`)
	ev.Event.ServerSequence = 7
	ev.Error = "boom"
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "r", Doc: d}}, Events: []core.OutboxEvent{ev}})
	got, ok, err := s.Doc(ctx, "r", d.ID)
	if err != nil || !ok {
		t.Fatalf("Doc = %v, %v", ok, err)
	}
	if got.ID != "x\u2028\"\\\x01\ufffd" || string(got.Data) != string(data) || !got.Version.At.Equal(at) ||
		got.Fields["a\n"].EventID != "f" || got.Sequence != 1<<52 {
		t.Fatalf("Doc = %+v, want data %s kept byte for byte", got, data)
	}
	e, ok, err := s.Outbox(ctx, "e1")
	if err != nil || !ok {
		t.Fatalf("Outbox = %v, %v", ok, err)
	}
	if !e.Event.CreatedAt.Equal(at) || string(e.Event.Meta) != string(ev.Event.Meta) || e.Event.ServerSequence != 7 ||
		e.Error != "boom" || string(e.Event.Data) != string(ev.Event.Data) || e.Order != 1 {
		t.Fatalf("Outbox = %+v, want %+v with nanoseconds and meta verbatim", e, ev)
	}
}

func mustWrite(t testing.TB, s core.Store, b *core.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func event(id string) core.OutboxEvent {
	return core.OutboxEvent{Repo: "todos", Event: protocol.Event{
		ID: id, Operation: protocol.OpInsert, CreatedAt: time.UnixMilli(1_767_225_600_000).UTC(),
		DataID: "d", Data: json.RawMessage(`{"id":"d"}`),
	}}
}

// TestGroupChecksEachPrecondition: writes racing on one connection, all
// computed from the same generation, are committed together in groups; each
// batch's precondition is checked against what the batches before it
// leave, so exactly one lands and the others fail with ErrStale, leaving
// nothing. Half carry outbox events (checked before writing), half only
// documents (checked as the writes are issued, undone by aborting).
func TestGroupChecksEachPrecondition(t *testing.T) {
	s := open(t, dbName(t.Name()))
	ctx := context.Background()
	for round, withEvents := range []bool{true, false} {
		gen, err := s.Generation(ctx, "todos")
		if err != nil {
			t.Fatal(err)
		}
		const writers = 8
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := "r" + strconv.Itoa(round) + "-w" + strconv.Itoa(i)
				b := &core.Batch{
					Docs:   []core.DocWrite{{Repo: "todos", Doc: core.Doc{ID: id, Data: json.RawMessage(`{"id":"` + id + `"}`)}}},
					Expect: map[string]uint64{"todos": gen},
				}
				if withEvents {
					b.Events = []core.OutboxEvent{event("ev-" + id)}
				}
				errs[i] = s.Write(ctx, b)
			}()
		}
		wg.Wait()
		landed := 0
		for i, err := range errs {
			id := "r" + strconv.Itoa(round) + "-w" + strconv.Itoa(i)
			_, ok, rerr := s.Doc(ctx, "todos", id)
			if rerr != nil {
				t.Fatal(rerr)
			}
			switch {
			case err == nil && ok:
				landed++
			case errors.Is(err, core.ErrStale) && !ok:
				if _, found, _ := s.Outbox(ctx, "ev-"+id); found {
					t.Fatalf("round %d: the outbox holds the event of stale write %d", round, i)
				}
			default:
				t.Fatalf("round %d: write %d returned %v, document stored %v", round, i, err, ok)
			}
		}
		if landed != 1 {
			t.Fatalf("round %d: %d writes landed, want exactly 1", round, landed)
		}
		if g, err := s.Generation(ctx, "todos"); err != nil || g != gen+1 {
			t.Fatalf("round %d: Generation = %d, %v; want %d", round, g, err, gen+1)
		}
	}
}
