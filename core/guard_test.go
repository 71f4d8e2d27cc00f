package core

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// interleavedStore is a MemoryStore through which another writer can be
// made to write between a client's reads and its guarded write: what a
// second tab does when it commits first.
type interleavedStore struct {
	*MemoryStore
	mu     sync.Mutex
	before func() // run before each Write with a precondition, while set
}

func (s *interleavedStore) Write(ctx context.Context, b *Batch) error {
	s.mu.Lock()
	f := s.before
	s.mu.Unlock()
	if f != nil && (len(b.Expect) > 0 || len(b.ExpectDocs) > 0) {
		f()
	}
	return s.MemoryStore.Write(ctx, b)
}

func (s *interleavedStore) interleave(f func()) {
	s.mu.Lock()
	s.before = f
	s.mu.Unlock()
}

// tabs returns two clients on one memory store, the first writing through
// an interleavedStore.
func tabs(t *testing.T, opts Options) (*Client, *Client, *interleavedStore) {
	t.Helper()
	mem := NewMemoryStore()
	is := &interleavedStore{MemoryStore: mem}
	a, err := NewClient(is, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewClient(mem, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close(); mem.Close() })
	return a, b, is
}

func TestCatchUpCacheSeesOtherClientsWrites(t *testing.T) {
	c, other, _ := tabs(t, Options{})
	ctx := context.Background()
	store := c.Store()
	rs := &repoSync{name: "todos", track: newCursorTrack(0), requesting: true}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := c.applyRemote(ctx, rs, page("a", 20, 1, old), nil, nil); err != nil {
		t.Fatal(err)
	}
	if rs.cache == nil {
		t.Fatal("a large catch-up page did not fill the cache")
	}
	// Another tab writes a3 between pages and does not tell this client.
	if err := other.Repository("todos").Upsert(ctx, "a3", json.RawMessage(`{"v":"other tab"}`)); err != nil {
		t.Fatal(err)
	}
	stale := page("b", 20, 21, old)
	older := page("a", 4, 38, old.Add(time.Hour))[3] // an update of a3 older than the other tab's
	older.ServerSequence = 41
	stale = append(stale, older)
	if _, err := c.applyRemote(ctx, rs, stale, nil, nil); err != nil {
		t.Fatal(err)
	}
	d, _, _ := store.Doc(ctx, "todos", "a3")
	if string(d.Data) != `{"id":"a3","v":"other tab"}` {
		t.Fatalf("a3 = %s: a page applied against the cache undid another tab's write", d.Data)
	}
	if docs, _ := store.Docs(ctx, "todos"); len(docs) != 40 {
		t.Fatalf("%d documents, want 40", len(docs))
	}
	if cur, _ := store.Cursor(ctx, "todos"); cur != 41 {
		t.Fatalf("cursor %d, want 41", cur)
	}
	if n := c.Metrics().StaleWrites; n != 1 {
		t.Fatalf("StaleWrites = %d, want 1", n)
	}
}

func TestLocalWriteRecomputedAfterStale(t *testing.T) {
	c, _, is := tabs(t, Options{})
	ctx := context.Background()
	todos := c.Repository("todos")
	if err := todos.Upsert(ctx, "x", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	// Between this client's read of x and its write, the leader tab applies
	// a remote change of x stamped an hour ahead.
	ahead := Stamp{At: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond), EventID: "remote-1"}
	var once sync.Once
	is.interleave(func() {
		once.Do(func() {
			err := is.MemoryStore.Write(ctx, &Batch{Docs: []DocWrite{{Repo: "todos", Doc: Doc{
				ID: "x", Data: json.RawMessage(`{"id":"x","v":"remote"}`), Version: ahead, Sequence: 7,
			}}}})
			if err != nil {
				t.Error(err)
			}
		})
	})
	if err := todos.Upsert(ctx, "x", json.RawMessage(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	d, _, _ := c.Store().Doc(ctx, "todos", "x")
	if string(d.Data) != `{"id":"x","v":2}` {
		t.Fatalf("x = %s, want the local write", d.Data)
	}
	// Computed from the stale read, the write would be stamped before the
	// remote change: every other replica would keep the remote one.
	if !d.Version.At.After(ahead.At) || d.Sequence != 7 {
		t.Fatalf("x version %v seq %d: not recomputed over the remote change (%v, seq 7)", d.Version.At, d.Sequence, ahead.At)
	}
	ev, ok, _ := c.Store().Outbox(ctx, d.Version.EventID)
	if !ok || !ev.Event.CreatedAt.Equal(d.Version.At) {
		t.Fatalf("outbox event of the write = %+v, %v", ev, ok)
	}
	if n := c.Metrics().StaleWrites; n != 1 {
		t.Fatalf("StaleWrites = %d, want 1", n)
	}
	if p := c.Status().Pending; p != 2 {
		t.Fatalf("Pending = %d, want 2", p)
	}
}

func TestStaleRetriesAreBounded(t *testing.T) {
	c, other, is := tabs(t, Options{})
	ctx := context.Background()
	// Another writer overtakes every attempt, on the same document.
	is.interleave(func() {
		if err := other.Repository("todos").Upsert(ctx, "x", json.RawMessage(`{"v":0}`)); err != nil {
			t.Error(err)
		}
	})
	err := c.Repository("todos").Upsert(ctx, "x", json.RawMessage(`{"v":1}`))
	if !errors.Is(err, ErrStale) || Code(err) != CodeConflict {
		t.Fatalf("Upsert overtaken every time = %v (code %q), want ErrStale, code conflict", err, Code(err))
	}
	if n := c.Metrics().StaleWrites; n != staleAttempts {
		t.Fatalf("StaleWrites = %d, want %d", n, staleAttempts)
	}
	if d, _, _ := c.Store().Doc(ctx, "todos", "x"); string(d.Data) != `{"id":"x","v":0}` {
		t.Fatalf("x = %s: written by a write that failed", d.Data)
	}
	if n, _ := c.Store().PendingCount(ctx); n != staleAttempts {
		t.Fatalf("PendingCount = %d, want the other writer's %d only", n, staleAttempts)
	}
	if p := c.Status().Pending; p != 0 {
		t.Fatalf("Pending = %d, want 0 (the failed write added nothing)", p)
	}
	// Once the other writer stops, writes go through again.
	is.interleave(nil)
	if err := c.Repository("todos").Upsert(ctx, "x", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
}

func TestLocalRetryIgnoresOtherDocuments(t *testing.T) {
	c, other, is := tabs(t, Options{})
	ctx := context.Background()
	todos := c.Repository("todos")
	// A remote apply leaves this client's generation cached.
	rs := &repoSync{name: "todos", track: newCursorTrack(0)}
	if _, err := c.applyRemote(ctx, rs, page("r", 1, 1, time.Now()), nil, nil); err != nil {
		t.Fatal(err)
	}
	// Another tab writes other documents before every write of this one.
	n := 0
	is.interleave(func() {
		n++
		if err := other.Repository("todos").Upsert(ctx, "y"+strconv.Itoa(n), json.RawMessage(`{"v":0}`)); err != nil {
			t.Error(err)
		}
	})
	for i := range 5 {
		if err := todos.Upsert(ctx, "x", json.RawMessage(`{"v":`+strconv.Itoa(i)+`}`)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// Only the first write, guarded by the cached generation, was refused;
	// its retry and the later writes check just document x.
	if s := c.Metrics().StaleWrites; s != 1 {
		t.Fatalf("StaleWrites = %d, want 1", s)
	}
	if d, _, _ := c.Store().Doc(ctx, "todos", "x"); string(d.Data) != `{"id":"x","v":4}` {
		t.Fatalf("x = %s", d.Data)
	}
}

func TestRemoteRetryIgnoresOtherDocuments(t *testing.T) {
	c, other, is := tabs(t, Options{})
	ctx := context.Background()
	n := 0
	is.interleave(func() {
		n++
		if err := other.Repository("todos").Upsert(ctx, "y"+strconv.Itoa(n), json.RawMessage(`{"v":0}`)); err != nil {
			t.Error(err)
		}
	})
	rs := &repoSync{name: "todos", track: newCursorTrack(0), requesting: true}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for p := range 3 {
		if _, err := c.applyRemote(ctx, rs, page("p"+strconv.Itoa(p)+"-", 20, int64(20*p+1), old), nil, nil); err != nil {
			t.Fatalf("page %d: %v", p, err)
		}
	}
	// Each page's first attempt, guarded by the generation, is refused; its
	// retry checks only the documents it writes.
	if s := c.Metrics().StaleWrites; s != 3 {
		t.Fatalf("StaleWrites = %d, want 3", s)
	}
	docs, _ := c.Store().Docs(ctx, "todos")
	if len(docs) != 60+n {
		t.Fatalf("%d documents, want %d", len(docs), 60+n)
	}
	if cur, _ := c.Store().Cursor(ctx, "todos"); cur != 60 {
		t.Fatalf("cursor %d, want 60", cur)
	}
}

func TestInvalidateRecountsAndDropsGenerations(t *testing.T) {
	c, other, _ := tabs(t, Options{})
	ctx := context.Background()
	if err := c.Repository("todos").Upsert(ctx, "x", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"y", "z"} {
		if err := other.Repository("todos").Upsert(ctx, id, json.RawMessage(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	if p := c.Status().Pending; p != 1 {
		t.Fatalf("Pending before Invalidate = %d, want 1", p)
	}
	c.Invalidate("todos")
	if p := c.Status().Pending; p != 3 {
		t.Fatalf("Pending after Invalidate = %d, want 3 (every tab's events)", p)
	}
	// The generation is read afresh: the next write is not refused.
	if err := c.Repository("todos").Upsert(ctx, "x", json.RawMessage(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if n := c.Metrics().StaleWrites; n != 0 {
		t.Fatalf("StaleWrites = %d, want 0 after Invalidate", n)
	}
}

func TestOnChangeReportsOwnWritesOnly(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	got := make(chan string, 8)
	cancel := c.OnChange(func(repo string) { got <- repo })
	defer cancel()
	if err := c.Repository("notes").Upsert(ctx, "x", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if repo := <-got; repo != "notes" {
		t.Fatalf("OnChange(%q), want notes", repo)
	}
	c.Invalidate("todos")
	// A write after the Invalidate is reported; the Invalidate was not.
	if err := c.Repository("notes").Upsert(ctx, "y", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if repo := <-got; repo != "notes" {
		t.Fatalf("OnChange(%q) after Invalidate(todos), want notes", repo)
	}
}

// countingStore counts Generation reads.
type countingStore struct {
	*MemoryStore
	mu    sync.Mutex
	reads int
}

func (s *countingStore) Generation(ctx context.Context, repo string) (uint64, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.MemoryStore.Generation(ctx, repo)
}

func TestOneClientReadsTheGenerationOnce(t *testing.T) {
	cs := &countingStore{MemoryStore: NewMemoryStore()}
	c, err := NewClient(cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cs.Close() })
	ctx := context.Background()
	rs := &repoSync{name: "todos", track: newCursorTrack(0), requesting: true}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		if err := c.Repository("todos").Upsert(ctx, "x", json.RawMessage(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.applyRemote(ctx, rs, page("p"+strconv.Itoa(i)+"-", 20, int64(20*i+1), old), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Alone on its store, the client knows each generation its writes
	// leave: one read, at the first write.
	if cs.reads != 1 {
		t.Fatalf("Generation read %d times for 20 writes, want 1", cs.reads)
	}
	if n := c.Metrics().StaleWrites; n != 0 {
		t.Fatalf("StaleWrites = %d, want 0", n)
	}
}
