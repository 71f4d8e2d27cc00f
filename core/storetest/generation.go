package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core"
)

// The generation rules the suite checks (see core.Store.Generation and
// core.Batch.Expect):
//   - a repository never written is at generation 0;
//   - every successful Write that puts documents of a repository advances
//     its generation by exactly one, however many documents it puts; other
//     repositories and writes without documents leave it as it is;
//   - a Write whose Expect names a generation a repository does not have
//     fails with an error matching core.ErrStale and stores nothing of the
//     batch (documents, events, statuses, removals, cursors, config);
//   - a batch with only a precondition checks it and writes nothing;
//   - a Write whose ExpectDocs names a document as absent that exists, or
//     as a state it no longer has (data, tombstone, version, field stamps or
//     sequence differ: core.SameDoc), fails with core.ErrStale and stores
//     nothing; changes to other documents do not matter;
//   - every handle of one store (two browser tabs on one IndexedDB
//     database) sees the same generations, so a write computed from a read
//     another handle overtook fails; outbox events appended through either
//     handle get distinct, increasing Orders and every handle's Pending sees
//     them all.

func mustGeneration(t testing.TB, s core.Store, repo string) uint64 {
	t.Helper()
	g, err := s.Generation(context.Background(), repo)
	if err != nil {
		t.Fatalf("Generation(%q): %v", repo, err)
	}
	return g
}

func mustStale(t testing.TB, s core.Store, b *core.Batch) {
	t.Helper()
	err := s.Write(context.Background(), b)
	if !errors.Is(err, core.ErrStale) {
		t.Fatalf("Write with a stale precondition = %v, want core.ErrStale", err)
	}
}

func testGenerations(t *testing.T, s core.Store) {
	if g := mustGeneration(t, s, "todos"); g != 0 {
		t.Fatalf("Generation of an unknown repository = %d, want 0", g)
	}
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}, {Repo: "todos", Doc: doc("b", "b")}}})
	if g := mustGeneration(t, s, "todos"); g != 1 {
		t.Fatalf("Generation after a write of two documents = %d, want 1", g)
	}
	// Writes without documents of a repository leave its generation.
	mustWrite(t, s, &core.Batch{
		Docs:    []core.DocWrite{{Repo: "notes", Doc: doc("n", "n")}},
		Events:  []core.OutboxEvent{event("todos", "e1", "a")},
		Cursors: map[string]int64{"todos": 3},
		Config:  map[string]string{"k": "v"},
	})
	if g := mustGeneration(t, s, "todos"); g != 1 {
		t.Fatalf("Generation after a write without its documents = %d, want 1", g)
	}
	if g := mustGeneration(t, s, "notes"); g != 1 {
		t.Fatalf("Generation(notes) = %d, want 1", g)
	}
	// A matching precondition lets the write through, which advances only
	// the repositories whose documents it puts.
	b := &core.Batch{
		Docs:   []core.DocWrite{{Repo: "todos", Doc: doc("a", "a2")}},
		Expect: map[string]uint64{"todos": 1, "notes": 1},
	}
	mustWrite(t, s, b)
	if g := mustGeneration(t, s, "todos"); g != 2 {
		t.Fatalf("Generation after a guarded write = %d, want 2", g)
	}
	if g := mustGeneration(t, s, "notes"); g != 1 {
		t.Fatalf("Generation(notes) after a write expecting it = %d, want 1", g)
	}
	if next := b.NextGenerations(); next["todos"] != 2 || next["notes"] != 1 {
		t.Fatalf("NextGenerations = %v, want todos:2 notes:1", next)
	}
	// A precondition-only batch checks and writes nothing.
	mustWrite(t, s, &core.Batch{Expect: map[string]uint64{"todos": 2, "other": 0}})
	mustStale(t, s, &core.Batch{Expect: map[string]uint64{"todos": 1}})
	if g := mustGeneration(t, s, "todos"); g != 2 {
		t.Fatalf("Generation after precondition-only batches = %d, want 2", g)
	}
}

func testStaleWritesNothing(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{
		Docs:   []core.DocWrite{{Repo: "todos", Doc: doc("a", "before")}},
		Events: []core.OutboxEvent{event("todos", "e1", "a"), event("todos", "e2", "a")},
	})
	mustStale(t, s, &core.Batch{
		Docs:     []core.DocWrite{{Repo: "todos", Doc: doc("a", "after")}, {Repo: "notes", Doc: doc("n", "n")}},
		Events:   []core.OutboxEvent{event("todos", "e3", "a")},
		Statuses: []core.StatusUpdate{{EventID: "e1", Status: core.StatusOK}},
		Remove:   []string{"e2"},
		Cursors:  map[string]int64{"todos": 9},
		Config:   map[string]string{"k": "v"},
		Expect:   map[string]uint64{"notes": 0, "todos": 0}, // todos is at 1
	})
	checkDoc(t, mustDoc(t, s, "todos", "a"), doc("a", "before"))
	mustNoDoc(t, s, "notes", "n")
	mustNoOutbox(t, s, "e3")
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e1", "e2"}) {
		t.Fatalf("Pending after a stale write = %q, want [e1 e2]", got)
	}
	if c := mustCursor(t, s, "todos"); c != 0 {
		t.Fatalf("Cursor after a stale write = %d, want 0", c)
	}
	if _, ok := mustConfig(t, s, "k"); ok {
		t.Fatalf("Config(k) is set after a stale write")
	}
	if g, n := mustGeneration(t, s, "todos"), mustGeneration(t, s, "notes"); g != 1 || n != 0 {
		t.Fatalf("generations after a stale write = %d, %d, want 1, 0", g, n)
	}
	// An invalid batch fails as invalid even with a stale precondition.
	err := s.Write(context.Background(), &core.Batch{Config: map[string]string{"": "x"}, Expect: map[string]uint64{"todos": 7}})
	if !errors.Is(err, core.ErrInvalidBatch) {
		t.Fatalf("Write of an invalid batch = %v, want ErrInvalidBatch", err)
	}
	if err := s.Write(context.Background(), &core.Batch{Expect: map[string]uint64{"": 0}}); !errors.Is(err, core.ErrInvalidBatch) {
		t.Fatalf("Write expecting repository \"\" = %v, want ErrInvalidBatch", err)
	}
}

func testDocPreconditions(t *testing.T, s core.Store) {
	a := doc("a", "a")
	a.Fields = map[string]core.Stamp{"title": {At: baseTime, EventID: "ev-a"}}
	a.Sequence = 4
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: a}}})
	read := mustDoc(t, s, "todos", "a")
	// As read: the write goes through, whatever else changed meanwhile.
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("other", "x")}}})
	a2 := doc("a", "a2")
	mustWrite(t, s, &core.Batch{
		Docs:       []core.DocWrite{{Repo: "todos", Doc: a2}},
		ExpectDocs: []core.DocExpect{{Repo: "todos", ID: "a", Exists: true, Doc: read}, {Repo: "todos", ID: "new", Exists: false}},
	})
	checkDoc(t, mustDoc(t, s, "todos", "a"), a2)
	// Each way a document can differ from what was read is stale.
	seqOnly := a2
	seqOnly.Sequence = 9
	fieldOnly := a2
	fieldOnly.Fields = map[string]core.Stamp{"title": {At: baseTime, EventID: "ev-other"}}
	tomb := a2
	tomb.Deleted, tomb.Data = true, nil
	for name, e := range map[string]core.DocExpect{
		"old state":      {Repo: "todos", ID: "a", Exists: true, Doc: read},
		"absent":         {Repo: "todos", ID: "a", Exists: false},
		"sequence":       {Repo: "todos", ID: "a", Exists: true, Doc: seqOnly},
		"field stamps":   {Repo: "todos", ID: "a", Exists: true, Doc: fieldOnly},
		"tombstone":      {Repo: "todos", ID: "a", Exists: true, Doc: tomb},
		"missing exists": {Repo: "todos", ID: "nope", Exists: true, Doc: a2},
		"other repo":     {Repo: "notes", ID: "a", Exists: true, Doc: a2},
	} {
		err := s.Write(context.Background(), &core.Batch{
			Docs:       []core.DocWrite{{Repo: "todos", Doc: doc("a", "lost")}},
			Events:     []core.OutboxEvent{event("todos", "e-"+name, "a")},
			Cursors:    map[string]int64{"todos": 5},
			ExpectDocs: []core.DocExpect{e},
		})
		if !errors.Is(err, core.ErrStale) {
			t.Fatalf("Write expecting %s = %v, want core.ErrStale", name, err)
		}
		mustNoOutbox(t, s, "e-"+name)
	}
	checkDoc(t, mustDoc(t, s, "todos", "a"), a2)
	if c := mustCursor(t, s, "todos"); c != 0 {
		t.Fatalf("Cursor after stale writes = %d, want 0", c)
	}
	if err := s.Write(context.Background(), &core.Batch{ExpectDocs: []core.DocExpect{{Repo: "todos"}}}); !errors.Is(err, core.ErrInvalidBatch) {
		t.Fatalf("Write expecting a document without id = %v, want ErrInvalidBatch", err)
	}
}

// testSharedGenerations: a write through one handle makes a precondition
// read through the other stale.
func testSharedGenerations(t *testing.T, a, b core.Store) {
	gen := mustGeneration(t, b, "todos")
	mustWrite(t, a, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("x", "from a")}}})
	if g := mustGeneration(t, b, "todos"); g != gen+1 {
		t.Fatalf("Generation through the other handle = %d, want %d", g, gen+1)
	}
	mustStale(t, b, &core.Batch{
		Docs:   []core.DocWrite{{Repo: "todos", Doc: doc("x", "from b")}},
		Events: []core.OutboxEvent{event("todos", "eb", "x")},
		Expect: map[string]uint64{"todos": gen},
	})
	checkDoc(t, mustDoc(t, a, "todos", "x"), doc("x", "from a"))
	mustNoOutbox(t, a, "eb")
	// Read again, write again: it goes through and both handles see it.
	mustWrite(t, b, &core.Batch{
		Docs:   []core.DocWrite{{Repo: "todos", Doc: doc("x", "from b")}},
		Expect: map[string]uint64{"todos": gen + 1},
	})
	checkDoc(t, mustDoc(t, a, "todos", "x"), doc("x", "from b"))
	if g := mustGeneration(t, a, "todos"); g != gen+2 {
		t.Fatalf("Generation = %d, want %d", g, gen+2)
	}
}

// testSharedOutbox: events appended through both handles, interleaved, get
// distinct increasing Orders, and both handles see all of them.
func testSharedOutbox(t *testing.T, a, b core.Store) {
	var want []string
	for i := range 6 {
		s, id := a, "a"+strconv.Itoa(i)
		if i%2 == 1 {
			s, id = b, "b"+strconv.Itoa(i)
		}
		mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", id, "x")}})
		want = append(want, id)
	}
	for _, s := range []core.Store{a, b} {
		evs := mustPending(t, s, 0)
		if got := eventIDs(evs); !equalStrings(got, want) {
			t.Fatalf("Pending = %q, want %q", got, want)
		}
		checkOrders(t, evs)
		if n := mustPendingCount(t, s); n != len(want) {
			t.Fatalf("PendingCount = %d, want %d", n, len(want))
		}
	}
	// A status set through one handle is seen through the other.
	mustWrite(t, b, &core.Batch{Statuses: []core.StatusUpdate{{EventID: "a0", Status: core.StatusOK}}})
	if got := mustAcked(t, a, 0); !equalStrings(got, []string{"a0"}) {
		t.Fatalf("Acked through the other handle = %q, want [a0]", got)
	}
}

// testSharedIncrements: both handles increment one counter document
// concurrently by read-modify-write guarded with Expect (the repository's
// generation) or ExpectDocs (the document as read), re-reading on ErrStale:
// no increment is lost.
func testSharedIncrements(t *testing.T, a, b core.Store) {
	t.Run("Generation", func(t *testing.T) { sharedIncrements(t, a, b, false) })
	t.Run("Document", func(t *testing.T) { sharedIncrements(t, a, b, true) })
}

func sharedIncrements(t *testing.T, a, b core.Store, byDoc bool) {
	repo := "counter"
	if byDoc {
		repo = "counter-doc"
	}
	const perHandle = 15
	ctx := context.Background()
	increment := func(s core.Store) error {
		for {
			gen, err := s.Generation(ctx, repo)
			if err != nil {
				return err
			}
			n := 0
			d, ok, err := s.Doc(ctx, repo, "c")
			if err != nil {
				return err
			}
			if ok {
				var v struct{ N int }
				if err := json.Unmarshal(d.Data, &v); err != nil {
					return err
				}
				n = v.N
			}
			batch := &core.Batch{
				Docs: []core.DocWrite{{Repo: repo, Doc: core.Doc{ID: "c", Data: json.RawMessage(`{"N":` + strconv.Itoa(n+1) + `}`),
					Version: core.Stamp{At: baseTime, EventID: strconv.Itoa(n + 1)}}}},
			}
			if byDoc {
				batch.ExpectDocs = []core.DocExpect{{Repo: repo, ID: "c", Exists: ok, Doc: d}}
			} else {
				batch.Expect = map[string]uint64{repo: gen}
			}
			err = s.Write(ctx, batch)
			if !errors.Is(err, core.ErrStale) {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []core.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perHandle {
				if err := increment(s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	d := mustDoc(t, a, repo, "c")
	if want := `{"N":` + strconv.Itoa(2*perHandle) + `}`; !jsonEqual(d.Data, []byte(want)) {
		t.Fatalf("counter = %s, want %s (an increment was lost)", d.Data, want)
	}
	if g := mustGeneration(t, b, repo); g != 2*perHandle {
		t.Fatalf("Generation(%s) = %d, want %d", repo, g, 2*perHandle)
	}
}

// sharedTests are the cases run on two handles of one store.
var sharedTests = []struct {
	name string
	fn   func(t *testing.T, a, b core.Store)
}{
	{"Generations", testSharedGenerations},
	{"Outbox", testSharedOutbox},
	{"Increments", testSharedIncrements},
}

// RunShared runs the cases for two handles of one store. open returns a new,
// empty store; share returns a second handle of the store it is given (a
// second connection to the same database, or, for a store that has no such
// thing, the store itself). The suite closes both.
func RunShared(t *testing.T, open func(t *testing.T) core.Store, share func(t *testing.T, s core.Store) core.Store) {
	for _, tt := range sharedTests {
		t.Run("Shared/"+tt.name, func(t *testing.T) {
			a := open(t)
			defer a.Close()
			b := share(t, a)
			if b != a {
				defer b.Close()
			}
			tt.fn(t, a, b)
		})
	}
}
