package storetest

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

var nameSeq atomic.Int64

// RunPersistent runs Run, the shared cases on two handles opened under one
// name (see RunShared), and then the reopen suite against a store that
// persists. open(t, name) opens the store called name; opening a name again
// after Close must see everything written before. The suite passes a new name
// to every subtest, unique within the process ("storetest-1",
// "storetest-2", ...); open should qualify it when names may collide across
// runs (IndexedDB databases outlive a test binary) and delete the store in
// t.Cleanup.
func RunPersistent(t *testing.T, open func(t *testing.T, name string) core.Store) {
	t.Run("Store", func(t *testing.T) {
		Run(t, func(t *testing.T) core.Store { return open(t, newName()) })
	})
	// Two handles: the store opened twice under one name, as two tabs do.
	var mu sync.Mutex
	names := map[core.Store]string{}
	RunShared(t, func(t *testing.T) core.Store {
		name := newName()
		s := open(t, name)
		mu.Lock()
		names[s] = name
		mu.Unlock()
		return s
	}, func(t *testing.T, s core.Store) core.Store {
		mu.Lock()
		name := names[s]
		mu.Unlock()
		return open(t, name)
	})
	tests := []struct {
		name string
		fn   func(t *testing.T, reopen func() core.Store)
	}{
		{"Everything", testReopenEverything},
		{"OrderKeepsIncreasing", testReopenOrder},
		{"RefusedWrite", testReopenRefusedWrite},
		{"Separate", nil},
	}
	for _, tt := range tests {
		t.Run("Reopen/"+tt.name, func(t *testing.T) {
			name := newName()
			if tt.fn == nil {
				testReopenSeparate(t, open, name)
				return
			}
			var s core.Store
			reopen := func() core.Store {
				t.Helper()
				if s != nil {
					if err := s.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
				}
				s = open(t, name)
				return s
			}
			defer func() {
				if s != nil {
					s.Close()
				}
			}()
			tt.fn(t, reopen)
		})
	}
}

func newName() string { return "storetest-" + strconv.FormatInt(nameSeq.Add(1), 10) }

func testReopenEverything(t *testing.T, reopen func() core.Store) {
	s := reopen()
	live := doc("a", "alive")
	live.Version = core.Stamp{At: baseTime.Add(2 * time.Second), EventID: "ev-a"}
	live.Fields = map[string]core.Stamp{"title": {At: baseTime.Add(time.Second), EventID: "ev-t"}}
	live.Sequence = 17
	tomb := core.Doc{ID: "b", Deleted: true, Version: core.Stamp{At: baseTime, EventID: "ev-b"}, Sequence: 18}
	note := doc("n", "note")
	upd := event("todos", "e1", "a")
	upd.Event.Operation = protocol.OpUpdate
	upd.Event.Meta = json.RawMessage(`{"fields":{"title":1}}`)
	failed := event("notes", "e2", "n")
	acked := event("todos", "e3", "a")
	del := core.OutboxEvent{Repo: "todos", Event: protocol.Event{ID: "e4", Operation: protocol.OpDelete, CreatedAt: baseTime, DataID: "b"}}
	gone := event("todos", "e5", "a")
	mustWrite(t, s, &core.Batch{
		Docs:    []core.DocWrite{{Repo: "todos", Doc: live}, {Repo: "todos", Doc: tomb}, {Repo: "notes", Doc: note}},
		Events:  []core.OutboxEvent{upd, failed, acked, del, gone},
		Cursors: map[string]int64{"todos": 18, "notes": 4},
		Config:  map[string]string{"clientId": "c1"},
	})
	mustWrite(t, s, &core.Batch{
		Statuses: []core.StatusUpdate{{EventID: "e2", Status: core.StatusFailed, Error: "rejected"}, {EventID: "e3", Status: core.StatusOK}},
		Remove:   []string{"e5"},
	})
	want := map[string]core.OutboxEvent{}
	for _, id := range []string{"e1", "e2", "e3", "e4"} {
		want[id] = mustOutbox(t, s, id)
	}

	s = reopen()
	checkDoc(t, mustDoc(t, s, "todos", "a"), live)
	checkDoc(t, mustDoc(t, s, "todos", "b"), tomb)
	checkDoc(t, mustDoc(t, s, "notes", "n"), note)
	if got := docIDs(mustDocs(t, s, "todos")); !equalStrings(got, []string{"a", "b"}) {
		t.Fatalf("Docs(todos) = %q, want [a b]", got)
	}
	for id, w := range want {
		checkOutbox(t, mustOutbox(t, s, id), w)
	}
	mustNoOutbox(t, s, "e5")
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e1", "e4"}) {
		t.Fatalf("Pending = %q, want [e1 e4]", got)
	}
	if n := mustPendingCount(t, s); n != 2 {
		t.Fatalf("PendingCount = %d, want 2", n)
	}
	for repo, c := range map[string]int64{"todos": 18, "notes": 4, "tags": 0} {
		if got := mustCursor(t, s, repo); got != c {
			t.Fatalf("Cursor(%q) = %d, want %d", repo, got, c)
		}
	}
	if v, ok := mustConfig(t, s, "clientId"); !ok || v != "c1" {
		t.Fatalf("Config(clientId) = %q, %v; want c1", v, ok)
	}

	// The reopened store keeps working by the same rules.
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{{EventID: "e3", Status: core.StatusPending}}, Remove: []string{"e1"}})
	if e := mustOutbox(t, s, "e3"); e.Status != core.StatusOK {
		t.Fatalf("Outbox(e3) = %s after reopen, want still acked", showOutbox(e))
	}
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e4"}) {
		t.Fatalf("Pending = %q, want [e4]", got)
	}
}

func testReopenOrder(t *testing.T, reopen func() core.Store) {
	s := reopen()
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", "e1", "a"), event("todos", "e2", "a"), event("todos", "e3", "a")}})
	last := mustOutbox(t, s, "e3").Order
	mustWrite(t, s, &core.Batch{Remove: []string{"e1", "e2", "e3"}})

	s = reopen()
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", "e4", "a"), event("todos", "e5", "a")}})
	evs := mustPending(t, s, 0)
	if got := eventIDs(evs); !equalStrings(got, []string{"e4", "e5"}) {
		t.Fatalf("Pending = %q, want [e4 e5]", got)
	}
	if evs[0].Order <= last {
		t.Fatalf("after reopen Order %d follows %d; Orders must keep increasing across reopen", evs[0].Order, last)
	}
	checkOrders(t, evs)
}

func testReopenRefusedWrite(t *testing.T, reopen func() core.Store) {
	s := reopen()
	err := s.Write(context.Background(), &core.Batch{
		Docs:    []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}, {Repo: "todos", Doc: doc("", "no id")}},
		Events:  []core.OutboxEvent{event("todos", "e1", "a")},
		Cursors: map[string]int64{"todos": 3},
		Config:  map[string]string{"clientId": "c1"},
	})
	if err == nil {
		t.Fatal("Write of an invalid batch succeeded")
	}
	s = reopen()
	mustNoDoc(t, s, "todos", "a")
	mustNoOutbox(t, s, "e1")
	checkEmpty(t, s, "todos", "clientId")
}

func testReopenSeparate(t *testing.T, open func(t *testing.T, name string) core.Store, name string) {
	a := open(t, name)
	defer a.Close()
	b := open(t, newName())
	defer b.Close()
	mustWrite(t, a, &core.Batch{
		Docs:    []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}},
		Events:  []core.OutboxEvent{event("todos", "e1", "a")},
		Cursors: map[string]int64{"todos": 3},
		Config:  map[string]string{"clientId": "c1"},
	})
	mustNoDoc(t, b, "todos", "a")
	mustNoOutbox(t, b, "e1")
	checkEmpty(t, b, "todos", "clientId")
}
