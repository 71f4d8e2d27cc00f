package core_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

// readCounter is a MemoryStore that counts the reads an engine makes of it.
type readCounter struct {
	*core.MemoryStore
	mu                sync.Mutex
	doc, docs, gens   int
	docIDs, docsRepos []string
}

func (s *readCounter) Doc(ctx context.Context, repo, id string) (core.Doc, bool, error) {
	s.mu.Lock()
	s.doc++
	s.docIDs = append(s.docIDs, id)
	s.mu.Unlock()
	return s.MemoryStore.Doc(ctx, repo, id)
}

func (s *readCounter) Docs(ctx context.Context, repo string) ([]core.Doc, error) {
	s.mu.Lock()
	s.docs++
	s.docsRepos = append(s.docsRepos, repo)
	s.mu.Unlock()
	return s.MemoryStore.Docs(ctx, repo)
}

func (s *readCounter) Generation(ctx context.Context, repo string) (uint64, error) {
	s.mu.Lock()
	s.gens++
	s.mu.Unlock()
	return s.MemoryStore.Generation(ctx, repo)
}

// counts returns the Doc, Docs and Generation reads so far.
func (s *readCounter) counts() (doc, docs, gens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc, s.docs, s.gens
}

// clientOn makes a client over store, closed when the test ends.
func clientOn(t *testing.T, store core.Store, opts core.Options) *core.Client {
	t.Helper()
	c, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// twoClients returns two clients on one MemoryStore (two tabs), the first
// reading through a readCounter.
func twoClients(t *testing.T, opts core.Options) (*core.Client, *core.Client, *readCounter) {
	t.Helper()
	mem := core.NewMemoryStore()
	t.Cleanup(func() { mem.Close() })
	rc := &readCounter{MemoryStore: mem}
	return clientOn(t, rc, opts), clientOn(t, mem, opts), rc
}

func upsert(t *testing.T, c *core.Client, repo, id, data string) {
	t.Helper()
	if err := c.Repository(repo).Upsert(context.Background(), id, json.RawMessage(data)); err != nil {
		t.Fatalf("upsert %s/%s: %v", repo, id, err)
	}
}

func TestSingleClientLocalWritesReadNoDocuments(t *testing.T) {
	c, _, rc := twoClients(t, core.Options{})
	ctx := context.Background()
	todos := c.Repository("todos")
	for i := range 20 {
		upsert(t, c, "todos", "t"+strconv.Itoa(i), `{"n":`+strconv.Itoa(i)+`}`)
	}
	upsert(t, c, "todos", "t3", `{"n":33}`)
	if err := todos.Delete(ctx, "t4"); err != nil {
		t.Fatal(err)
	}
	upsert(t, c, "todos", "t4", `{"n":44}`)
	puts := make([]core.Put, 40)
	for i := range puts {
		puts[i] = core.Put{ID: "b" + strconv.Itoa(i), Data: json.RawMessage(`{"bulk":true}`)}
	}
	if err := todos.UpsertMany(ctx, puts); err != nil {
		t.Fatal(err)
	}
	doc, docs, gens := rc.counts()
	if doc != 0 || docs != 0 {
		t.Fatalf("local writes read the store: %d Doc reads (%v), %d Docs reads, want none", doc, rc.docIDs, docs)
	}
	if gens != 1 {
		t.Fatalf("%d Generation reads, want 1 (the first write's)", gens)
	}
	// What was written is what the store holds, computed from the right
	// previous documents.
	d, ok, _ := rc.MemoryStore.Doc(ctx, "todos", "t4")
	if !ok || d.Deleted || string(d.Data) != `{"id":"t4","n":44}` {
		t.Fatalf("t4 = %+v, %v", d, ok)
	}
	ev, ok, _ := rc.MemoryStore.Outbox(ctx, d.Version.EventID)
	if !ok || ev.Event.Operation != protocol.OpInsert {
		t.Fatalf("event of t4 over its tombstone = %+v, want an insert", ev.Event)
	}
	d, _, _ = rc.MemoryStore.Doc(ctx, "todos", "t3")
	if ev, _, _ := rc.MemoryStore.Outbox(ctx, d.Version.EventID); ev.Event.Operation != protocol.OpUpdate {
		t.Fatalf("event of t3's second write = %q, want update", ev.Event.Operation)
	}
	if n, _ := rc.MemoryStore.PendingCount(ctx); n != 20+3+40 {
		t.Fatalf("PendingCount = %d, want %d", n, 20+3+40)
	}
	// A read of the whole repository after the client's own writes is
	// served from memory once the generation is confirmed.
	all, err := todos.GetAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 60 {
		t.Fatalf("GetAll = %d documents, want 60", len(all))
	}
	if _, docs, _ := rc.counts(); docs != 0 {
		t.Fatalf("GetAll after own writes read the repository %d times, want 0", docs)
	}
}

func TestLocalWriteOverExistingRepositoryReadsEachDocumentOnce(t *testing.T) {
	c, other, rc := twoClients(t, core.Options{})
	upsert(t, other, "todos", "a", `{"v":1}`)
	upsert(t, other, "todos", "b", `{"v":1}`)
	for i := range 5 {
		upsert(t, c, "todos", "a", `{"v":`+strconv.Itoa(10+i)+`}`)
	}
	if doc, docs, _ := rc.counts(); doc != 1 || docs != 0 {
		t.Fatalf("%d Doc reads, %d Docs reads for 5 writes of one document, want 1 and 0", doc, docs)
	}
}

func TestOtherClientsWritesAreNotLostThroughTheCache(t *testing.T) {
	c, other, rc := twoClients(t, core.Options{Conflict: core.FieldMerge})
	ctx := context.Background()
	upsert(t, c, "todos", "x", `{"a":1,"b":1}`)
	upsert(t, c, "todos", "y", `{"v":1}`)
	// The other tab changes field b of x and deletes y; this client is not
	// told (no Invalidate) and still caches x and y as it wrote them.
	upsert(t, other, "todos", "x", `{"a":1,"b":2}`)
	if err := other.Repository("todos").Delete(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	upsert(t, other, "todos", "z", `{"v":1}`)
	theirs, _, _ := rc.MemoryStore.Doc(ctx, "todos", "x")
	// Writes computed from the cache would restamp b and update a live y.
	upsert(t, c, "todos", "x", `{"a":2,"b":2}`)
	upsert(t, c, "todos", "y", `{"v":2}`)
	x, _, _ := rc.MemoryStore.Doc(ctx, "todos", "x")
	if string(x.Data) != `{"a":2,"b":2,"id":"x"}` && string(x.Data) != `{"id":"x","a":2,"b":2}` {
		t.Fatalf("x = %s", x.Data)
	}
	if x.Fields["b"].EventID != theirs.Fields["b"].EventID {
		t.Fatalf("field b of x stamped %q, want the other client's %q (its write was overwritten from a stale cache)", x.Fields["b"].EventID, theirs.Fields["b"].EventID)
	}
	if x.Fields["a"].EventID != x.Version.EventID {
		t.Fatalf("field a of x stamped %q, want this write's %q", x.Fields["a"].EventID, x.Version.EventID)
	}
	y, _, _ := rc.MemoryStore.Doc(ctx, "todos", "y")
	if ev, _, _ := rc.MemoryStore.Outbox(ctx, y.Version.EventID); ev.Event.Operation != protocol.OpInsert {
		t.Fatalf("write of y over the other client's delete = %q, want insert", ev.Event.Operation)
	}
	if _, ok := y.Fields["_deleted"]; !ok && len(y.Fields) < 2 {
		t.Fatalf("y fields %v lost the other client's delete", y.Fields)
	}
	z, ok, _ := rc.MemoryStore.Doc(ctx, "todos", "z")
	if !ok || string(z.Data) != `{"id":"z","v":1}` {
		t.Fatalf("z = %+v, %v: the other client's write was lost", z, ok)
	}
	if n := c.Metrics().StaleWrites; n != 1 {
		t.Fatalf("StaleWrites = %d, want 1 (the first write after the other client's)", n)
	}
	if n, _ := rc.MemoryStore.PendingCount(ctx); n != 7 {
		t.Fatalf("PendingCount = %d, want 7 (every write of both clients)", n)
	}
}

func TestDeleteOfAnotherClientsNewDocument(t *testing.T) {
	c, other, _ := twoClients(t, core.Options{})
	ctx := context.Background()
	upsert(t, c, "todos", "a", `{"v":1}`)
	// The other client creates b; this client, not told, caches the whole
	// repository without b, and yet deletes it.
	upsert(t, other, "todos", "b", `{"v":1}`)
	if err := c.Repository("todos").Delete(ctx, "b"); err != nil {
		t.Fatalf("Delete of the other client's new document = %v", err)
	}
	if err := c.Repository("todos").Delete(ctx, "b"); core.Code(err) != core.CodeNotFound {
		t.Fatalf("Delete of a deleted document = %v, want not found", err)
	}
	if err := c.Repository("todos").Delete(ctx, "nope"); core.Code(err) != core.CodeNotFound {
		t.Fatalf("Delete of an absent document = %v, want not found", err)
	}
	if b, _, _ := c.Repository("todos").Get(ctx, "b"); b != nil {
		t.Fatalf("b = %s after its delete", b)
	}
}

func TestQuerySeesOtherClientsWrites(t *testing.T) {
	c, other, rc := twoClients(t, core.Options{})
	ctx := context.Background()
	todos := c.Repository("todos")
	upsert(t, c, "todos", "a", `{"done":false}`)
	q := core.Query{Where: []core.Condition{{Field: "done", Op: "==", Value: json.RawMessage(`false`)}}}
	ids := func() []string {
		t.Helper()
		docs, err := todos.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range docs {
			var v struct{ ID string }
			if err := json.Unmarshal(d, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v.ID)
		}
		return out
	}
	if got := ids(); len(got) != 1 {
		t.Fatalf("query = %v, want [a]", got)
	}
	// Another client writes; this one is not told: the generation check
	// finds the repository changed.
	upsert(t, other, "todos", "b", `{"done":false}`)
	if got := ids(); len(got) != 2 || got[1] != "b" {
		t.Fatalf("query after the other client's write = %v, want [a b]", got)
	}
	_, before, _ := rc.counts()
	if got := ids(); len(got) != 2 {
		t.Fatalf("query again = %v, want [a b]", got)
	}
	if _, after, _ := rc.counts(); after != before {
		t.Fatalf("an unchanged repository was read again (%d Docs reads, want %d)", after, before)
	}
	// Told with Invalidate, too.
	if err := other.Repository("todos").Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	c.Invalidate("todos")
	if got := ids(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("query after the other client's delete and Invalidate = %v, want [b]", got)
	}
	// And this client's next write over the other's delete is an insert.
	upsert(t, c, "todos", "a", `{"done":true}`)
	a, _, _ := rc.MemoryStore.Doc(ctx, "todos", "a")
	if ev, _, _ := rc.MemoryStore.Outbox(ctx, a.Version.EventID); ev.Event.Operation != protocol.OpInsert {
		t.Fatalf("write of a over the other client's delete = %q, want insert", ev.Event.Operation)
	}
	all, err := todos.GetAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || string(all[0]) != `{"done":true,"id":"a"}` && string(all[0]) != `{"id":"a","done":true}` {
		t.Fatalf("GetAll = %s", all)
	}
}
