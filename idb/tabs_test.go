//go:build js && wasm

package idb_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core"
)

// TestTabsOnOneDatabase: two engine clients on two connections to one
// database, as two tabs, write the same documents concurrently. Each
// document must end as its latest write by stamp (the one every replica
// picks): a write computed from a read the other tab overtook would carry
// an older stamp and still overwrite, unless the store's generation check
// makes the engine recompute it. Every write's event is in the outbox once,
// with distinct orders, and both tabs count all of them.
func TestTabsOnOneDatabase(t *testing.T) {
	name := dbName(t.Name())
	ctx := context.Background()
	var tabs []*core.Client
	for range 2 {
		c, err := core.NewClient(open(t, name), core.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		tabs = append(tabs, c)
	}
	const writes = 30
	var wg sync.WaitGroup
	for i, c := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range writes {
				id := "d" + strconv.Itoa(k%3)
				data := []byte(`{"tab":` + strconv.Itoa(i) + `,"k":` + strconv.Itoa(k) + `}`)
				if err := c.Repository("todos").Upsert(ctx, id, data); err != nil {
					t.Errorf("tab %d: Upsert(%s): %v", i, id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	store := tabs[0].Store()
	evs, err := store.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2*writes {
		t.Fatalf("%d pending events, want %d", len(evs), 2*writes)
	}
	latest := map[string]core.OutboxEvent{}
	for i, e := range evs {
		if i > 0 && e.Order <= evs[i-1].Order {
			t.Fatalf("orders %d then %d: not increasing", evs[i-1].Order, e.Order)
		}
		l, ok := latest[e.Event.DataID]
		if c := e.Event.CreatedAt.Compare(l.Event.CreatedAt); !ok || c > 0 || c == 0 && e.Event.ID > l.Event.ID {
			latest[e.Event.DataID] = e
		}
	}
	for id, e := range latest {
		d, ok, err := store.Doc(ctx, "todos", id)
		if err != nil || !ok {
			t.Fatalf("Doc(%s) = %v, %v", id, ok, err)
		}
		if d.Version.EventID != e.Event.ID {
			t.Fatalf("%s holds the write of event %s, but event %s is later by stamp: a write computed from a stale read overwrote it", id, d.Version.EventID, e.Event.ID)
		}
	}
	for i, c := range tabs {
		c.Invalidate("todos")
		if p := c.Status().Pending; p != 2*writes {
			t.Fatalf("tab %d: Pending = %d, want %d", i, p, 2*writes)
		}
	}
	t.Logf("stale writes recomputed: %d and %d", tabs[0].Metrics().StaleWrites, tabs[1].Metrics().StaleWrites)
}
