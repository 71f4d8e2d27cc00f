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

// resolveFieldMax merges two documents field by field, keeping the greater
// number; a deleted side counts as empty. It is commutative, associative and
// idempotent.
func resolveFieldMax(local, remote json.RawMessage) (json.RawMessage, error) {
	out := make(map[string]float64)
	for _, side := range []json.RawMessage{local, remote} {
		if side == nil {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(side, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			if f, ok := v.(float64); ok {
				if cur, seen := out[k]; !seen || f > cur {
					out[k] = f
				}
			}
		}
	}
	return json.Marshal(out)
}

// TestCustomMergeWritesNoEventWhenASideHoldsIt replays the start of a merge
// storm (bugs-core C3-4) on one replica: a merge that equals the remote
// document or the winning local one must not become a new local change, or
// two replicas answer each other's merges forever.
func TestCustomMergeWritesNoEventWhenASideHoldsIt(t *testing.T) {
	store := NewMemoryStore()
	c, err := NewClient(store, Options{Conflict: Custom, Resolve: resolveFieldMax})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	rs := &repoSync{name: "todos", track: newCursorTrack(0)}
	apply := func(e protocol.Event) {
		t.Helper()
		if _, err := c.applyRemote(ctx, rs, []protocol.Event{e}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() []OutboxEvent {
		t.Helper()
		p, err := store.Pending(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	doc := func() Doc {
		t.Helper()
		d, ok, err := store.Doc(ctx, "todos", "d")
		if err != nil || !ok {
			t.Fatalf("document d: %v %v", ok, err)
		}
		return d
	}
	if err := c.Repository("todos").Upsert(ctx, "d", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	// A remote change that differs from the merge: the merge is a new local
	// change stamped after the remote.
	e1 := protocol.Event{ID: "r1", Operation: protocol.OpUpdate, CreatedAt: now.Add(time.Hour), DataID: "d",
		Data: json.RawMessage(`{"id":"d","b":5}`), ServerSequence: 1}
	apply(e1)
	p := pending()
	if len(p) != 2 {
		t.Fatalf("%d pending events after a merge that differs from both sides, want 2", len(p))
	}
	merge := p[1].Event
	if !merge.CreatedAt.After(e1.CreatedAt) || string(doc().Data) != `{"a":1,"b":5,"id":"d"}` {
		t.Fatalf("merge %s at %v, document %s: want a:1,b:5 stamped after the remote", merge.Data, merge.CreatedAt, doc().Data)
	}

	// Another replica's merge of the same changes, stamped later, spelled
	// differently: nothing new to send; the remote is applied and the
	// unsent local changes it includes are superseded.
	e2 := protocol.Event{ID: "r2", Operation: protocol.OpUpdate, CreatedAt: merge.CreatedAt.Add(time.Minute), DataID: "d",
		Data: json.RawMessage(`{ "b": 5.0, "a": 1e0, "id": "d" }`), ServerSequence: 2}
	apply(e2)
	if p := pending(); len(p) != 0 {
		t.Fatalf("%d pending events after a remote change equal to the merge (first %s %s), want 0", len(p), p[0].Event.ID, p[0].Event.Data)
	}
	if d := doc(); d.Version != stampOf(e2) || d.Sequence != 2 {
		t.Fatalf("document %s version %v seq %d: want the remote change applied", d.Data, d.Version, d.Sequence)
	}
	for _, id := range []string{p[0].Event.ID, merge.ID} {
		ev, ok, err := store.Outbox(ctx, id)
		if err != nil || !ok || ev.Status != StatusFailed {
			t.Fatalf("local event %s: %+v %v %v, want superseded", id, ev, ok, err)
		}
	}

	// A local change that wins by its stamp and already holds the merge of
	// an older remote change: kept as it is, no new event.
	if err := c.Repository("todos").Upsert(ctx, "d", json.RawMessage(`{"a":7,"b":5}`)); err != nil {
		t.Fatal(err)
	}
	before := doc()
	e3 := protocol.Event{ID: "r3", Operation: protocol.OpUpdate, CreatedAt: now.Add(-time.Hour), DataID: "d",
		Data: json.RawMessage(`{"id":"d","a":2}`), ServerSequence: 3}
	apply(e3)
	if p := pending(); len(p) != 1 {
		t.Fatalf("%d pending events after an older remote change the local one absorbs, want 1", len(p))
	}
	if d := doc(); d.Version != before.Version || string(d.Data) != string(before.Data) || d.Sequence != 3 {
		t.Fatalf("document %s version %v seq %d: want the local change kept, sequence 3", d.Data, d.Version, d.Sequence)
	}

	// The same content arriving with a later stamp: the local change would
	// lose to it elsewhere, but both hold the same content, so nothing is
	// sent.
	e4 := protocol.Event{ID: "r4", Operation: protocol.OpUpdate, CreatedAt: before.Version.At.Add(time.Minute), DataID: "d",
		Data: json.RawMessage(`{"id":"d","b":5,"a":7}`), ServerSequence: 4}
	apply(e4)
	if p := pending(); len(p) != 0 {
		t.Fatalf("%d pending events after a later remote change with the local content, want 0", len(p))
	}

	// A later remote change the local one adds to: the merge equals the
	// local content but must be re-sent stamped after the remote, or the
	// other replicas keep the remote.
	if err := c.Repository("todos").Upsert(ctx, "d", json.RawMessage(`{"a":9,"b":5}`)); err != nil {
		t.Fatal(err)
	}
	e5 := protocol.Event{ID: "r5", Operation: protocol.OpUpdate, CreatedAt: doc().Version.At.Add(time.Minute), DataID: "d",
		Data: json.RawMessage(`{"id":"d","a":3}`), ServerSequence: 5}
	apply(e5)
	p = pending()
	if len(p) != 2 || !p[1].Event.CreatedAt.After(e5.CreatedAt) || string(doc().Data) != `{"a":9,"b":5,"id":"d"}` {
		t.Fatalf("%d pending events, document %s: want the local content re-sent after the remote", len(p), doc().Data)
	}
}

func TestSameJSON(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`{"x":[1,"a",null,true]}`, `{ "x" : [ 1.00, "a", null, true ] }`, true},
		{`{"x":1,"y":2}`, `{"y":2,"x":1}`, true},
		{`12345678901234567890`, `12345678901234567891`, false},
		{`1e999999999`, `1e999999998`, false},
		{`"1"`, `1`, false},
		{`[1,2]`, `[2,1]`, false},
		{`{"x":1}`, `{"x":1,"y":null}`, false},
		{`{`, `{ `, false},
	} {
		if got := sameJSON(json.RawMessage(c.a), json.RawMessage(c.b)); got != c.want {
			t.Errorf("sameJSON(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
