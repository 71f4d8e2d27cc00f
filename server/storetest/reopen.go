package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// RunReopen runs the durability suite. database makes a new, empty database
// for one test and returns open, which opens that same database each time it
// is called (after the previous store was closed) and registers the store's
// Close with t.Cleanup.
func RunReopen(t *testing.T, database func(t *testing.T) (open func(t *testing.T) server.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) server.Store)
	}{
		{"Durable", testDurable},
		{"CloseFinishesQueuedAppends", testCloseFinishesQueued},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, database(t))
		})
	}
}

func testDurable(t *testing.T, open func(t *testing.T) server.Store) {
	ctx := context.Background()
	s := open(t)
	h := history(t, s)
	c := newClock()
	other := []protocol.Event{put(t, protocol.OpInsert, "x", c.next(), ""), del(t, "x", c.next())}
	other[1].Meta = []byte(`{"k":"v"}`)
	mustAppend(t, s, "other", "notes", other...)
	reposBefore, err := s.Repositories(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() failed: %v", err)
	}

	s = open(t)
	all := rangeAll(t, s, "ns", "todos")
	checkIDs(t, "Range after reopen", all, ids(h)...)
	for i := range h {
		checkEvent(t, "Range after reopen", all[i], h[i], int64(i+1))
	}
	notes := rangeAll(t, s, "other", "notes")
	checkIDs(t, "Range(other) after reopen", notes, ids(other)...)
	for i := range other {
		checkEvent(t, "Range(other) after reopen", notes[i], other[i], int64(i+1))
	}
	checkIDs(t, "Latest after reopen", latestAll(t, s, "ns", "todos"), h[3].ID, h[4].ID, h[5].ID, h[6].ID)
	repos, err := s.Repositories(ctx, "ns")
	if err != nil || len(repos) != len(reposBefore) || repos[0] != reposBefore[0] {
		t.Fatalf("Repositories() after reopen = %+v, %v; want %+v", repos, err, reposBefore)
	}
	// Deduplication and sequences continue across the reopen.
	next := put(t, protocol.OpInsert, "z", c.next(), "")
	res := mustAppend(t, s, "ns", "todos", h[2], next)
	if res[0] != (server.Appended{ID: h[2].ID, Sequence: 3}) || res[1] != (server.Appended{ID: next.ID, Sequence: 8, New: true}) {
		t.Fatalf("Append(re-push, new) after reopen = %+v, want sequence 3 not new, 8 new", res)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() failed: %v", err)
	}
	s = open(t)
	if seq, err := s.LastSequence(ctx, "ns", "todos"); err != nil || seq != 8 {
		t.Fatalf("LastSequence() after second reopen = %d, %v; want 8", seq, err)
	}
}

func testCloseFinishesQueued(t *testing.T, open func(t *testing.T) server.Store) {
	s := open(t)
	l := newLedger()
	var (
		wg      sync.WaitGroup
		acks    atomic.Int64
		started = make(chan struct{})
		once    sync.Once
	)
	for p := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClock()
			for i := 0; ; i++ {
				batch := []protocol.Event{put(t, protocol.OpInsert, label("p%d-%d", p, i%5), c.next(), "")}
				res, err := s.Append(context.Background(), "ns", "todos", batch)
				if err != nil {
					return // closed: this append and later ones are refused
				}
				l.record(t, batch, res)
				if acks.Add(1) >= 60 {
					once.Do(func() { close(started) })
				}
			}
		}()
	}
	<-started
	if err := s.Close(); err != nil {
		t.Errorf("Close() while appending failed: %v", err)
	}
	wg.Wait()
	// Every acked append survives; nothing half-written appears.
	s = open(t)
	l.verify(t, s, "ns", "todos", false)
}
