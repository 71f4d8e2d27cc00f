package core

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// page makes n remote insert events for documents prefix0..prefixN-1 with
// sequences from seq.
func page(prefix string, n int, seq int64, at time.Time) []protocol.Event {
	out := make([]protocol.Event, n)
	for i := range out {
		id := prefix + strconv.Itoa(i)
		out[i] = protocol.Event{
			ID: "ev-" + id + "-" + strconv.FormatInt(seq, 10), Operation: protocol.OpInsert, CreatedAt: at,
			DataID: id, Data: json.RawMessage(`{"id":"` + id + `","v":` + strconv.FormatInt(seq, 10) + `}`),
			ServerSequence: seq,
		}
		seq++
	}
	return out
}

func newTestClient(t testing.TB) (*Client, *MemoryStore) {
	store := NewMemoryStore()
	c, err := NewClient(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); store.Close() })
	return c, store
}

func TestCatchUpCacheSeesLocalWritesBetweenPages(t *testing.T) {
	c, store := newTestClient(t)
	ctx := context.Background()
	rs := &repoSync{name: "todos", track: newCursorTrack(0), requesting: true}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	p1 := page("a", 20, 1, old)
	if _, err := c.applyRemote(ctx, rs, p1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if rs.cache == nil {
		t.Fatal("a large catch-up page did not fill the cache")
	}
	// A local write between pages, then a later page with an event on the
	// same document that is older than the local write.
	if err := c.Repository("todos").Upsert(ctx, "a3", json.RawMessage(`{"v":"local"}`)); err != nil {
		t.Fatal(err)
	}
	p2 := page("b", 20, 21, old)
	stale := protocol.Event{ID: "ev-stale", Operation: protocol.OpUpdate, CreatedAt: old.Add(time.Hour), DataID: "a3",
		Data: json.RawMessage(`{"id":"a3","v":"remote"}`), ServerSequence: 41}
	if _, err := c.applyRemote(ctx, rs, append(p2, stale), nil, nil); err != nil {
		t.Fatal(err)
	}
	d, _, _ := store.Doc(ctx, "todos", "a3")
	if string(d.Data) != `{"id":"a3","v":"local"}` {
		t.Fatalf("a3 = %s: a page applied against a stale cache undid the local write", d.Data)
	}
	if cur, _ := store.Cursor(ctx, "todos"); cur != 41 {
		t.Fatalf("cursor %d, want 41", cur)
	}
	// Without local writes the next page uses the cache, and its results
	// land in the store.
	p3 := page("c", 20, 42, old)
	if _, err := c.applyRemote(ctx, rs, p3, nil, nil); err != nil {
		t.Fatal(err)
	}
	docs, _ := store.Docs(ctx, "todos")
	if len(docs) != 60 {
		t.Fatalf("%d documents, want 60", len(docs))
	}
}

// BenchmarkApplyCatchUp applies a 10,000-event first sync in pages of 500.
func BenchmarkApplyCatchUp(b *testing.B) {
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var pages [][]protocol.Event
	for p := 0; p < 20; p++ {
		pages = append(pages, page("p"+strconv.Itoa(p)+"-", 500, int64(p*500+1), old))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, _ := newTestClient(b)
		rs := &repoSync{name: "todos", track: newCursorTrack(0), requesting: true}
		b.StartTimer()
		for _, p := range pages {
			if _, err := c.applyRemote(context.Background(), rs, p, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestServerWinsAppliesOwnEventsInServerOrder replays a reconnect: two local
// changes were sent in an earlier session and stored (acks lost), a remote
// change was sequenced before them, and the catch-up brings all three.
func TestServerWinsAppliesOwnEventsInServerOrder(t *testing.T) {
	store := NewMemoryStore()
	c, err := NewClient(store, Options{Conflict: ServerWins})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	r := c.Repository("todos")
	if err := r.Upsert(ctx, "d", json.RawMessage(`{"v":"mine"}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	mine, _ := store.Pending(ctx, 0)
	upsert, del := mine[0].Event, mine[1].Event
	upsert.ServerSequence, del.ServerSequence = 6, 7
	remote := protocol.Event{ID: "remote", Operation: protocol.OpUpdate, CreatedAt: time.Now(), DataID: "d",
		Data: json.RawMessage(`{"id":"d","v":"remote"}`), ServerSequence: 5}
	rs := &repoSync{name: "todos", track: newCursorTrack(4)}
	if _, err := c.applyRemote(ctx, rs, []protocol.Event{remote, upsert, del}, nil, nil); err != nil {
		t.Fatal(err)
	}
	d, _, _ := store.Doc(ctx, "todos", "d")
	if !d.Deleted || d.Sequence != 7 {
		t.Fatalf("document %s deleted=%v seq=%d: want the delete the server sequenced last", d.Data, d.Deleted, d.Sequence)
	}
	// The same events one frame at a time end the same way.
	store2 := NewMemoryStore()
	c2, _ := NewClient(store2, Options{Conflict: ServerWins})
	defer c2.Close()
	r2 := c2.Repository("todos")
	_ = r2.Upsert(ctx, "d", json.RawMessage(`{"v":"x"}`))
	rs2 := &repoSync{name: "todos", track: newCursorTrack(4)}
	for _, e := range []protocol.Event{remote, upsert, del} {
		if _, err := c2.applyRemote(ctx, rs2, []protocol.Event{e}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	d2, _, _ := store2.Doc(ctx, "todos", "d")
	if !d2.Deleted || d2.Sequence != 7 {
		t.Fatalf("one frame at a time: %s deleted=%v seq=%d", d2.Data, d2.Deleted, d2.Sequence)
	}
}
