package storetest

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core"
)

func testLargeBatch(t *testing.T, s core.Store) {
	const nDocs, nEvents = 3000, 500
	b := &core.Batch{Cursors: map[string]int64{"todos": nDocs}}
	for i := nDocs - 1; i >= 0; i-- { // reverse order: the store sorts
		b.Docs = append(b.Docs, core.DocWrite{Repo: "todos", Doc: doc(pad(i), "title "+strconv.Itoa(i))})
	}
	for i := 0; i < nEvents; i++ {
		b.Events = append(b.Events, event("todos", "e"+pad(i), pad(i)))
	}
	mustWrite(t, s, b)

	docs := mustDocs(t, s, "todos")
	if len(docs) != nDocs {
		t.Fatalf("Docs returned %d documents, want %d", len(docs), nDocs)
	}
	for i, d := range docs {
		if d.ID != pad(i) {
			t.Fatalf("Docs[%d].ID = %q, want %q", i, d.ID, pad(i))
		}
	}
	checkDoc(t, docs[1234], doc(pad(1234), "title 1234"))
	evs := mustPending(t, s, 0)
	if len(evs) != nEvents {
		t.Fatalf("Pending returned %d events, want %d", len(evs), nEvents)
	}
	for i, e := range evs {
		if e.Event.ID != "e"+pad(i) {
			t.Fatalf("Pending[%d] = %q, want %q", i, e.Event.ID, "e"+pad(i))
		}
	}
	checkOrders(t, evs)
	if n := mustPendingCount(t, s); n != nEvents {
		t.Fatalf("PendingCount = %d, want %d", n, nEvents)
	}
}

// pad renders i with leading zeros so ids sort numerically.
func pad(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}

func testConcurrentWriters(t *testing.T, s core.Store) {
	const writers, writes = 4, 20
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		repo := "repo" + strconv.Itoa(w)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				id := repo + "-" + pad(i)
				b := &core.Batch{
					Docs:    []core.DocWrite{{Repo: repo, Doc: doc(id+"a", "x")}, {Repo: repo, Doc: doc(id+"b", "x")}},
					Events:  []core.OutboxEvent{event(repo, id+"-1", id+"a"), event(repo, id+"-2", id+"b")},
					Cursors: map[string]int64{repo: int64(i + 1)},
					Config:  map[string]string{"last-" + repo: id},
				}
				if err := s.Write(ctx, b); err != nil {
					t.Errorf("writer %s: Write: %v", repo, err)
					return
				}
			}
		}()
		go func() { // a reader alongside each writer
			defer wg.Done()
			for i := 0; i < writes; i++ {
				if _, err := s.Docs(ctx, repo); err != nil {
					t.Errorf("reader %s: Docs: %v", repo, err)
					return
				}
				evs, err := s.Pending(ctx, 0)
				if err != nil {
					t.Errorf("reader %s: Pending: %v", repo, err)
					return
				}
				for j := 1; j < len(evs); j++ {
					if evs[j].Order <= evs[j-1].Order {
						t.Errorf("reader %s: Pending not by Order mid-write", repo)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	evs := mustPending(t, s, 0)
	if len(evs) != writers*writes*2 {
		t.Fatalf("Pending returned %d events, want %d", len(evs), writers*writes*2)
	}
	checkOrders(t, evs)
	// Each writer's events appear in the order it wrote them, its two events
	// of one batch next to each other.
	next := map[string]int{}
	for i := 0; i < len(evs); i++ {
		e := evs[i]
		n := next[e.Repo]
		want := e.Repo + "-" + pad(n/2) + "-" + strconv.Itoa(n%2+1)
		if e.Event.ID != want {
			t.Fatalf("Pending[%d] = %q, want %q (the writer's next event)", i, e.Event.ID, want)
		}
		if n%2 == 1 && evs[i-1].Event.ID != e.Repo+"-"+pad(n/2)+"-1" {
			t.Fatalf("Pending[%d] = %q does not follow its batch mate; got %q before it", i, e.Event.ID, evs[i-1].Event.ID)
		}
		next[e.Repo] = n + 1
	}
	for w := 0; w < writers; w++ {
		repo := "repo" + strconv.Itoa(w)
		if docs := mustDocs(t, s, repo); len(docs) != writes*2 {
			t.Fatalf("Docs(%q) returned %d documents, want %d", repo, len(docs), writes*2)
		}
		if c := mustCursor(t, s, repo); c != writes {
			t.Fatalf("Cursor(%q) = %d, want %d", repo, c, writes)
		}
		if v, _ := mustConfig(t, s, "last-"+repo); v != repo+"-"+pad(writes-1) {
			t.Fatalf("Config(last-%s) = %q, want %q", repo, v, repo+"-"+pad(writes-1))
		}
	}
}
