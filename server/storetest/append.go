package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

func testAppendAssignsSequences(t *testing.T, s server.Store) {
	c := newClock()
	batch := []protocol.Event{
		put(t, protocol.OpInsert, "a", c.next(), `"n":1`),
		put(t, protocol.OpInsert, "b", c.next(), `"n":2`),
		put(t, protocol.OpUpdate, "a", c.next(), `"n":3`),
	}
	res := mustAppend(t, s, "ns", "todos", batch...)
	for i, r := range res {
		if r.Sequence != int64(i+1) || !r.New {
			t.Fatalf("Append()[%d] = %+v, want sequence %d, new", i, r, i+1)
		}
	}
	one := put(t, protocol.OpInsert, "c", c.next(), "")
	if res := mustAppend(t, s, "ns", "todos", one); res[0].Sequence != 4 || !res[0].New {
		t.Fatalf("second Append() = %+v, want sequence 4, new", res[0])
	}
	all := rangeAll(t, s, "ns", "todos")
	checkIDs(t, "Range", all, batch[0].ID, batch[1].ID, batch[2].ID, one.ID)
	for i, e := range all {
		checkEvent(t, "Range", e, append(batch, one)[i], int64(i+1))
	}
	if seq, err := s.LastSequence(context.Background(), "ns", "todos"); err != nil || seq != 4 {
		t.Fatalf("LastSequence() = %d, %v; want 4", seq, err)
	}
}

func testAppendEmpty(t *testing.T, s server.Store) {
	for _, events := range [][]protocol.Event{nil, {}} {
		res, err := s.Append(context.Background(), "ns", "todos", events)
		if err != nil || len(res) != 0 {
			t.Fatalf("Append(%d events) = %v, %v; want nothing, no error", len(events), res, err)
		}
	}
	if seq, err := s.LastSequence(context.Background(), "ns", "todos"); err != nil || seq != 0 {
		t.Fatalf("LastSequence() after empty appends = %d, %v; want 0", seq, err)
	}
	e := put(t, protocol.OpInsert, "a", newClock().next(), "")
	if res := mustAppend(t, s, "ns", "todos", e); res[0].Sequence != 1 {
		t.Fatalf("first event after empty appends got sequence %d, want 1", res[0].Sequence)
	}
}

func testAppendInvalidStoresNothing(t *testing.T, s server.Store) {
	ctx := context.Background()
	c := newClock()
	invalid := map[string]func(e *protocol.Event){
		"no id":             func(e *protocol.Event) { e.ID = "" },
		"long id":           func(e *protocol.Event) { e.ID = strings.Repeat("x", protocol.MaxIDLength+1) },
		"no document id":    func(e *protocol.Event) { e.DataID = "" },
		"long document id":  func(e *protocol.Event) { e.DataID = strings.Repeat("d", protocol.MaxIDLength+1) },
		"unknown operation": func(e *protocol.Event) { e.Operation = 7 },
		"no creation time":  func(e *protocol.Event) { e.CreatedAt = time.Time{} },
		"insert no data":    func(e *protocol.Event) { e.Data = nil },
		"data not JSON":     func(e *protocol.Event) { e.Data = json.RawMessage(`{"id":`) },
		"meta not JSON":     func(e *protocol.Event) { e.Meta = json.RawMessage(`{oops}`) },
		"negative sequence": func(e *protocol.Event) { e.ServerSequence = -1 },
	}
	for name, spoil := range invalid {
		good1 := put(t, protocol.OpInsert, "a", c.next(), "")
		bad := put(t, protocol.OpInsert, "b", c.next(), "")
		spoil(&bad)
		good2 := put(t, protocol.OpInsert, "c", c.next(), "")
		if res, err := s.Append(ctx, "ns", "todos", []protocol.Event{good1, bad, good2}); err == nil {
			t.Errorf("Append(batch with %s) = %v, want an error", name, res)
		}
		if _, err := s.Event(ctx, "ns", "todos", good1.ID); !errors.Is(err, server.ErrNotFound) {
			t.Errorf("after Append(batch with %s) failed, Event(first valid event) = %v, want ErrNotFound", name, err)
		}
	}
	e := put(t, protocol.OpInsert, "a", c.next(), "")
	if res, err := s.Append(ctx, "ns", "", []protocol.Event{e}); err == nil {
		t.Errorf("Append(empty repository name) = %v, want an error", res)
	}
	if got := rangeAll(t, s, "ns", "todos"); len(got) != 0 {
		t.Fatalf("after failed appends Range() = %v, want nothing", ids(got))
	}
	if seq, err := s.LastSequence(ctx, "ns", "todos"); err != nil || seq != 0 {
		t.Fatalf("after failed appends LastSequence() = %d, %v; want 0", seq, err)
	}
	if res := mustAppend(t, s, "ns", "todos", e); res[0].Sequence != 1 || !res[0].New {
		t.Fatalf("first valid Append() after failures = %+v, want sequence 1, new", res[0])
	}
}

func testAppendDeduplicates(t *testing.T, s server.Store) {
	c := newClock()
	e1 := put(t, protocol.OpInsert, "a", c.next(), `"v":1`)
	e2 := put(t, protocol.OpInsert, "b", c.next(), `"v":2`)
	mustAppend(t, s, "ns", "todos", e1, e2)

	// A re-push returns the stored sequence and keeps the stored content.
	again := e1
	again.Data = json.RawMessage(`{"id":"a","v":"changed"}`)
	if res := mustAppend(t, s, "ns", "todos", again); res[0].Sequence != 1 || res[0].New {
		t.Fatalf("re-push = %+v, want sequence 1, not new", res[0])
	}
	// A batch mixing a re-push and new events.
	e3 := put(t, protocol.OpUpdate, "a", c.next(), `"v":3`)
	res := mustAppend(t, s, "ns", "todos", e2, e3)
	if res[0] != (server.Appended{ID: e2.ID, Sequence: 2}) || res[1] != (server.Appended{ID: e3.ID, Sequence: 3, New: true}) {
		t.Fatalf("mixed batch = %+v, want [%s at 2 not new, %s at 3 new]", res, e2.ID, e3.ID)
	}
	// The same event twice inside one batch is stored once.
	e4 := put(t, protocol.OpInsert, "c", c.next(), `"v":4`)
	e5 := put(t, protocol.OpInsert, "d", c.next(), `"v":5`)
	res = mustAppend(t, s, "ns", "todos", e4, e4, e5, e1)
	want := []server.Appended{{ID: e4.ID, Sequence: 4, New: true}, {ID: e4.ID, Sequence: 4}, {ID: e5.ID, Sequence: 5, New: true}, {ID: e1.ID, Sequence: 1}}
	for i := range want {
		if res[i] != want[i] {
			t.Fatalf("batch with an inner duplicate = %+v, want %+v", res, want)
		}
	}
	all := rangeAll(t, s, "ns", "todos")
	checkIDs(t, "Range", all, e1.ID, e2.ID, e3.ID, e4.ID, e5.ID)
	checkEvent(t, "Range after re-push", all[0], e1, 1)
	repos, err := s.Repositories(context.Background(), "ns")
	if err != nil || len(repos) != 1 || repos[0] != (server.RepoInfo{Name: "todos", LastSequence: 5, Events: 5}) {
		t.Fatalf("Repositories() = %+v, %v; want todos with 5 events up to 5", repos, err)
	}
}

func testAppendIgnoresInputSequence(t *testing.T, s server.Store) {
	e := put(t, protocol.OpInsert, "a", newClock().next(), "")
	e.ServerSequence = 99
	if res := mustAppend(t, s, "ns", "todos", e); res[0].Sequence != 1 {
		t.Fatalf("Append(event claiming sequence 99) = %+v, want sequence 1", res[0])
	}
	got, err := s.Event(context.Background(), "ns", "todos", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEvent(t, "Event", got, e, 1)
}

func testAppendLargeBatch(t *testing.T, s server.Store) {
	c := newClock()
	const n = 2500
	batch := make([]protocol.Event, n)
	for i := range batch {
		batch[i] = put(t, protocol.OpInsert, label("doc-%d", i%700), c.next(), label(`"i":%d`, i))
	}
	for i, r := range mustAppend(t, s, "ns", "todos", batch...) {
		if r.Sequence != int64(i+1) || !r.New {
			t.Fatalf("Append(%d events)[%d] = %+v, want sequence %d, new", n, i, r, i+1)
		}
	}
	if got := rangeAll(t, s, "ns", "todos"); len(got) != n {
		t.Fatalf("Range() returned %d events, want %d", len(got), n)
	}
	if got := latestAll(t, s, "ns", "todos"); len(got) != 700 {
		t.Fatalf("Latest() returned %d documents, want 700", len(got))
	}
}

func testSequencesPerRepository(t *testing.T, s server.Store) {
	c := newClock()
	type target struct{ ns, repo string }
	targets := []target{{"a", "todos"}, {"a", "notes"}, {"b", "todos"}, {"", "todos"}}
	stored := map[target][]string{}
	for round := range 5 {
		for i, tg := range targets {
			batch := make([]protocol.Event, 1+(round+i)%3)
			for j := range batch {
				batch[j] = put(t, protocol.OpInsert, label("d%d", j), c.next(), "")
			}
			res := mustAppend(t, s, tg.ns, tg.repo, batch...)
			for j, r := range res {
				if want := int64(len(stored[tg]) + 1); r.Sequence != want || !r.New {
					t.Fatalf("Append(%q, %q) round %d [%d] = %+v, want sequence %d, new", tg.ns, tg.repo, round, j, r, want)
				}
				stored[tg] = append(stored[tg], r.ID)
			}
		}
	}
	for _, tg := range targets {
		checkIDs(t, label("Range(%q, %q)", tg.ns, tg.repo), rangeAll(t, s, tg.ns, tg.repo), stored[tg]...)
	}
}
