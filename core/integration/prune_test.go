package integration_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server/servertest"
)

// keptAcked is how many acked events the engine keeps in the outbox
// (core's pruneAfter).
const keptAcked = 2048

// TestAckedEventsOfEarlierSessionsArePruned checks that acked events a
// previous client left in the store are pruned by the next client on that
// store: at once down to keptAcked when it opens, and then by the usual
// pruning as its own events are acked.
func TestAckedEventsOfEarlierSessionsArePruned(t *testing.T) {
	srv := servertest.Start(t)
	store := core.NewMemoryStore()
	t.Cleanup(func() { store.Close() })
	opts := fastOptions(srv.WSURL(), "todos")
	ctx := context.Background()

	// Session 1 leaves more acked events than are kept, but fewer than make
	// it prune by itself.
	c1 := openClient(t, store, opts)
	putDocs(t, c1, "s1-", keptAcked+100)
	waitSynced(t, c1)
	first := mustAcked(t, store)
	if len(first) != keptAcked+100 {
		t.Fatalf("after session 1, %d acked events in the outbox, want %d", len(first), keptAcked+100)
	}
	if err := c1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Session 2 prunes the oldest at once, keeping the newest keptAcked.
	c2 := openClient(t, store, opts)
	if got := mustAcked(t, store); !slices.Equal(got, first[100:]) {
		t.Fatalf("after opening session 2, %d acked events kept (first %q), want the newest %d (first %q)",
			len(got), got[:min(1, len(got))], keptAcked, first[100])
	}
	for _, id := range first[:100] {
		if _, ok, err := store.Outbox(ctx, id); err != nil || ok {
			t.Fatalf("Outbox(%s) = %v, %v: an event beyond the kept ones is still stored", id, ok, err)
		}
	}

	// Session 2's own acks prune the events left by session 1 too.
	putDocs(t, c2, "s2-", keptAcked+1)
	waitSynced(t, c2)
	got := mustAcked(t, store)
	if len(got) != keptAcked {
		t.Fatalf("after session 2, %d acked events in the outbox, want %d", len(got), keptAcked)
	}
	for _, id := range first {
		if slices.Contains(got, id) {
			t.Fatalf("session 1's acked event %s is still in the outbox", id)
		}
	}
	docs, err := store.Docs(ctx, "todos")
	if err != nil || len(docs) != 2*keptAcked+101 {
		t.Fatalf("todos holds %d documents (%v), want %d: pruning touched documents", len(docs), err, 2*keptAcked+101)
	}
}

// openClient makes a started client over store, closed at the end of the
// test (closing it earlier is fine).
func openClient(t *testing.T, store core.Store, opts core.Options) *core.Client {
	t.Helper()
	c, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.Start()
	return c
}

// putDocs writes n new documents, prefix0 .. prefix<n-1>, in one UpsertMany.
func putDocs(t *testing.T, c *core.Client, prefix string, n int) {
	t.Helper()
	puts := make([]core.Put, n)
	for i := range puts {
		puts[i] = core.Put{ID: prefix + strconv.Itoa(i), Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)}
	}
	if err := c.Repository("todos").UpsertMany(context.Background(), puts); err != nil {
		t.Fatalf("UpsertMany: %v", err)
	}
}

func mustAcked(t *testing.T, store core.Store) []string {
	t.Helper()
	ids, err := store.Acked(context.Background(), 0)
	if err != nil {
		t.Fatalf("Acked: %v", err)
	}
	return ids
}
