// Package storetest is the conformance suite every core.Store passes: the
// memory store natively, the IndexedDB store in a browser under
// GOOS=js GOARCH=wasm. It uses no filesystem, no subprocesses and no timing,
// and runs in a couple of seconds.
//
// The rules it checks, beyond the doc comments of core.Store:
//   - Write validates the whole batch with core.ValidateBatch first; an
//     invalid batch returns an error wrapping core.ErrInvalidBatch and stores
//     nothing, not even its valid parts.
//   - Orders are strictly increasing in insertion order, across writes and
//     repositories, and never reused (not even after Remove).
//   - An event whose id the outbox holds is left as it is; once removed, the
//     same id may be added again and gets a new Order.
//   - A status update never moves a StatusOK event, sets Error to the
//     update's Error, and ignores ids the outbox does not hold.
//   - Pending returns StatusPending events only (not failed ones).
//   - Acked returns StatusOK events only (not pending or failed ones), by
//     Order, not by id or insertion batch.
//   - Docs of an unknown repository is empty, not an error.
//   - A cancelled context makes every method but Close return the context's
//     error; after Close every method but Close returns core.ErrClosed, and
//     closing again returns nil or core.ErrClosed.
//   - Stored values are copies: changing a slice or map given to Write or
//     returned by a read does not change the store.
//   - Generations and preconditions follow the rules in generation.go, on
//     one handle and on two handles of one store (RunShared, and
//     RunPersistent with a second open of the same name).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

// Run runs the conformance suite. open returns a new, empty store for each
// subtest; the suite closes it (closing it again in t.Cleanup is fine).
func Run(t *testing.T, open func(t *testing.T) core.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s core.Store)
	}{
		{"Empty", testEmpty},
		{"Docs", testDocs},
		{"DocsOrderedByID", testDocsOrderedByID},
		{"Repositories", testRepositories},
		{"Tombstones", testTombstones},
		{"DocsAndEventsInOneWrite", testDocsAndEventsInOneWrite},
		{"Atomicity", testAtomicity},
		{"EmptyBatch", testEmptyBatch},
		{"OutboxEvent", testOutboxEvent},
		{"PendingOrder", testPendingOrder},
		{"PendingLimit", testPendingLimit},
		{"DuplicateEvent", testDuplicateEvent},
		{"Statuses", testStatuses},
		{"AckBeforeStatus", testAckBeforeStatus},
		{"Remove", testRemove},
		{"Acked", testAcked},
		{"Cursors", testCursors},
		{"Config", testConfig},
		{"Copies", testCopies},
		{"LargeBatch", testLargeBatch},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CancelledContext", testCancelledContext},
		{"Close", testClose},
		{"Generations", testGenerations},
		{"StaleWritesNothing", testStaleWritesNothing},
		{"DocPreconditions", testDocPreconditions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tt.fn(t, s)
		})
	}
	// Without a second handle, the shared cases run on one: concurrent
	// writers through one handle must obey the same rules.
	RunShared(t, open, func(_ *testing.T, s core.Store) core.Store { return s })
}

func testEmpty(t *testing.T, s core.Store) {
	mustNoDoc(t, s, "todos", "a")
	mustNoOutbox(t, s, "e1")
	checkEmpty(t, s, "todos", "clientId")
}

func testDocs(t *testing.T, s core.Store) {
	d := doc("a", "first")
	d.Version = core.Stamp{At: baseTime.Add(1500 * time.Millisecond), EventID: "ev-1"}
	d.Fields = map[string]core.Stamp{
		"title": {At: baseTime, EventID: "ev-0"},
		"done":  {At: baseTime.Add(time.Second), EventID: "ev-1"},
	}
	d.Sequence = 42
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: d}}})
	checkDoc(t, mustDoc(t, s, "todos", "a"), d)

	// A second write replaces the document.
	d2 := doc("a", "second")
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: d2}}})
	checkDoc(t, mustDoc(t, s, "todos", "a"), d2)
	docs := mustDocs(t, s, "todos")
	if len(docs) != 1 {
		t.Fatalf("Docs = %v, want [a]", docIDs(docs))
	}
	checkDoc(t, docs[0], d2)
	mustNoDoc(t, s, "todos", "b")
}

func testDocsOrderedByID(t *testing.T, s core.Store) {
	for _, ids := range [][]string{{"b", "a10"}, {"c", "a2", "A"}, {"a", "é", "a1"}} {
		var b core.Batch
		for _, id := range ids {
			b.Docs = append(b.Docs, core.DocWrite{Repo: "todos", Doc: doc(id, id)})
		}
		mustWrite(t, s, &b)
	}
	want := []string{"A", "a", "a1", "a10", "a2", "b", "c", "é"} // byte order
	if got := docIDs(mustDocs(t, s, "todos")); !equalStrings(got, want) {
		t.Fatalf("Docs ids = %q, want %q", got, want)
	}
	for _, d := range mustDocs(t, s, "todos") {
		checkDoc(t, d, doc(d.ID, d.ID))
	}
}

func testRepositories(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{
		{Repo: "todos", Doc: doc("x", "todo")},
		{Repo: "notes", Doc: doc("x", "note")},
		{Repo: "notes", Doc: doc("y", "note y")},
	}})
	checkDoc(t, mustDoc(t, s, "todos", "x"), doc("x", "todo"))
	checkDoc(t, mustDoc(t, s, "notes", "x"), doc("x", "note"))
	mustNoDoc(t, s, "todos", "y")
	if got := docIDs(mustDocs(t, s, "todos")); !equalStrings(got, []string{"x"}) {
		t.Fatalf("Docs(todos) = %q, want [x]", got)
	}
	if got := docIDs(mustDocs(t, s, "notes")); !equalStrings(got, []string{"x", "y"}) {
		t.Fatalf("Docs(notes) = %q, want [x y]", got)
	}
	if got := mustDocs(t, s, "other"); len(got) != 0 {
		t.Fatalf("Docs(other) = %q, want none", docIDs(got))
	}
}

func testTombstones(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}, {Repo: "todos", Doc: doc("b", "b")}}})
	tomb := core.Doc{ID: "a", Deleted: true, Version: core.Stamp{At: baseTime.Add(time.Minute), EventID: "ev-del"}, Sequence: 7}
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: tomb}}})
	checkDoc(t, mustDoc(t, s, "todos", "a"), tomb)
	docs := mustDocs(t, s, "todos")
	if got := docIDs(docs); !equalStrings(got, []string{"a", "b"}) {
		t.Fatalf("Docs = %q, want [a b] with a tombstone", got)
	}
	checkDoc(t, docs[0], tomb)

	// A tombstone for a document never seen is stored too.
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: core.Doc{ID: "z", Deleted: true}}}})
	checkDoc(t, mustDoc(t, s, "todos", "z"), core.Doc{ID: "z", Deleted: true})

	// A document can come back after a tombstone (the engine decides when).
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("a", "again")}}})
	checkDoc(t, mustDoc(t, s, "todos", "a"), doc("a", "again"))
}

func testDocsAndEventsInOneWrite(t *testing.T, s core.Store) {
	e := event("todos", "e1", "a")
	mustWrite(t, s, &core.Batch{
		Docs:    []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}},
		Events:  []core.OutboxEvent{e},
		Cursors: map[string]int64{"todos": 9},
		Config:  map[string]string{"clientId": "c1"},
	})
	checkDoc(t, mustDoc(t, s, "todos", "a"), doc("a", "a"))
	checkOutbox(t, mustOutbox(t, s, "e1"), e)
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e1"}) {
		t.Fatalf("Pending = %q, want [e1]", got)
	}
	if c := mustCursor(t, s, "todos"); c != 9 {
		t.Fatalf("Cursor = %d, want 9", c)
	}
	if v, ok := mustConfig(t, s, "clientId"); !ok || v != "c1" {
		t.Fatalf("Config(clientId) = %q, %v; want c1", v, ok)
	}
}

func testAtomicity(t *testing.T, s core.Store) {
	// Something stored before must survive every refused batch unchanged.
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "keep", Doc: doc("k", "kept")}}})

	noCreatedAt := event("todos", "e-bad", "a")
	noCreatedAt.Event.CreatedAt = time.Time{}
	badStatus := event("todos", "e-bad", "a")
	badStatus.Status = core.Status(9)
	noRepo := event("", "e-bad", "a")
	noID := event("todos", "", "a")
	noDataID := event("todos", "e-bad", "")
	bad := []struct {
		name  string
		apply func(b *core.Batch)
	}{
		{"DocWithoutRepo", func(b *core.Batch) { b.Docs = append(b.Docs, core.DocWrite{Doc: doc("a", "a")}) }},
		{"DocWithoutID", func(b *core.Batch) { b.Docs = append(b.Docs, core.DocWrite{Repo: "todos", Doc: doc("", "a")}) }},
		{"DocWithoutData", func(b *core.Batch) {
			b.Docs = append(b.Docs, core.DocWrite{Repo: "todos", Doc: core.Doc{ID: "nodata"}})
		}},
		{"EventWithoutID", func(b *core.Batch) { b.Events = append(b.Events, noID) }},
		{"EventWithoutRepo", func(b *core.Batch) { b.Events = append(b.Events, noRepo) }},
		{"EventWithoutDocID", func(b *core.Batch) { b.Events = append(b.Events, noDataID) }},
		{"EventWithoutTime", func(b *core.Batch) { b.Events = append(b.Events, noCreatedAt) }},
		{"EventWithUnknownStatus", func(b *core.Batch) { b.Events = append(b.Events, badStatus) }},
		{"StatusWithoutID", func(b *core.Batch) { b.Statuses = append(b.Statuses, core.StatusUpdate{Status: core.StatusOK}) }},
		{"UnknownStatus", func(b *core.Batch) {
			b.Statuses = append(b.Statuses, core.StatusUpdate{EventID: "e1", Status: core.Status(-1)})
		}},
		{"NegativeCursor", func(b *core.Batch) { b.Cursors["notes"] = -1 }},
		{"CursorWithoutRepo", func(b *core.Batch) { b.Cursors[""] = 1 }},
		{"EmptyConfigKey", func(b *core.Batch) { b.Config[""] = "x" }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			// Valid parts first, then the bad element.
			b := &core.Batch{
				Docs:     []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}, {Repo: "keep", Doc: doc("k", "replaced")}},
				Events:   []core.OutboxEvent{event("todos", "e1", "a")},
				Statuses: []core.StatusUpdate{{EventID: "e1", Status: core.StatusFailed, Error: "x"}},
				Remove:   []string{"e0"},
				Cursors:  map[string]int64{"todos": 5},
				Config:   map[string]string{"clientId": "c1"},
			}
			tt.apply(b)
			err := s.Write(context.Background(), b)
			if err == nil {
				t.Fatal("Write of an invalid batch succeeded")
			}
			if !errors.Is(err, core.ErrInvalidBatch) {
				t.Fatalf("Write = %v, want an error wrapping core.ErrInvalidBatch", err)
			}
			if verr := core.ValidateBatch(b); verr == nil {
				t.Fatalf("core.ValidateBatch accepts the batch the store refused with %v", err)
			}
			mustNoDoc(t, s, "todos", "a")
			mustNoOutbox(t, s, "e1")
			checkEmpty(t, s, "todos", "clientId")
			checkDoc(t, mustDoc(t, s, "keep", "k"), doc("k", "kept"))
		})
	}
}

func testEmptyBatch(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{})
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{}, Cursors: map[string]int64{}, Config: map[string]string{}})
	checkEmpty(t, s, "todos", "clientId")
}

func testOutboxEvent(t *testing.T, s core.Store) {
	upd := core.OutboxEvent{
		Repo: "todos",
		Event: protocol.Event{
			ID:        "e-upd",
			Operation: protocol.OpUpdate,
			CreatedAt: baseTime.Add(123 * time.Millisecond),
			DataID:    "a",
			Data:      json.RawMessage(`{"id":"a","title":"t","n":1.5,"tags":["x"],"nested":{"k":null}}`),
			Meta:      json.RawMessage(`{"fields":{"title":"2026-01-01T00:00:00.123Z"}}`),
		},
		Status: core.StatusPending,
	}
	del := core.OutboxEvent{
		Repo:  "notes",
		Event: protocol.Event{ID: "e-del", Operation: protocol.OpDelete, CreatedAt: baseTime, DataID: "b", ServerSequence: 3},
	}
	failed := event("todos", "e-failed", "c")
	failed.Status = core.StatusFailed
	failed.Error = "rejected: too large"
	done := event("todos", "e-ok", "d")
	done.Status = core.StatusOK
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{upd, del, failed, done}})

	evs := []core.OutboxEvent{upd, del, failed, done}
	got := make([]core.OutboxEvent, len(evs))
	for i, e := range evs {
		got[i] = mustOutbox(t, s, e.Event.ID)
		checkOutbox(t, got[i], e)
	}
	checkOrders(t, got)
	if n := mustPendingCount(t, s); n != 2 {
		t.Fatalf("PendingCount = %d, want 2 (failed and acked events are not pending)", n)
	}
	if ids := eventIDs(mustPending(t, s, 0)); !equalStrings(ids, []string{"e-upd", "e-del"}) {
		t.Fatalf("Pending = %q, want [e-upd e-del]", ids)
	}
}

func testPendingOrder(t *testing.T, s core.Store) {
	// Several writes, each with events of several repositories.
	var want []string
	for w := 0; w < 5; w++ {
		var b core.Batch
		for i := 0; i < 4; i++ {
			repo := []string{"todos", "notes", "tags"}[(w+i)%3]
			id := "e" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
			b.Events = append(b.Events, event(repo, id, "d"+strconv.Itoa(i)))
			want = append(want, id)
		}
		mustWrite(t, s, &b)
	}
	evs := mustPending(t, s, 0)
	if got := eventIDs(evs); !equalStrings(got, want) {
		t.Fatalf("Pending = %q, want %q", got, want)
	}
	checkOrders(t, evs)
	for _, e := range evs {
		if e.Status != core.StatusPending {
			t.Fatalf("Pending returned %s", showOutbox(e))
		}
		checkOutbox(t, mustOutbox(t, s, e.Event.ID), e)
	}
	if n := mustPendingCount(t, s); n != len(want) {
		t.Fatalf("PendingCount = %d, want %d", n, len(want))
	}
}

func testPendingLimit(t *testing.T, s core.Store) {
	var b core.Batch
	for i := 0; i < 10; i++ {
		b.Events = append(b.Events, event("todos", "e"+strconv.Itoa(i), "a"))
	}
	// Non-pending events in front must not count against the limit.
	b.Statuses = []core.StatusUpdate{{EventID: "e0", Status: core.StatusOK}, {EventID: "e1", Status: core.StatusFailed}}
	mustWrite(t, s, &b)
	for _, tt := range []struct {
		limit int
		want  []string
	}{
		{1, []string{"e2"}},
		{3, []string{"e2", "e3", "e4"}},
		{8, []string{"e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}},
		{100, []string{"e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}},
		{0, []string{"e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}},
		{-1, []string{"e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}},
	} {
		if got := eventIDs(mustPending(t, s, tt.limit)); !equalStrings(got, tt.want) {
			t.Fatalf("Pending(%d) = %q, want %q", tt.limit, got, tt.want)
		}
	}
}

func testDuplicateEvent(t *testing.T, s core.Store) {
	first := event("todos", "e1", "a")
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{first, event("todos", "e2", "b")}})
	before := mustOutbox(t, s, "e1")

	// The same id again, with other contents and another status, in a later
	// write and twice in one write: the stored event stays as it is.
	again := event("notes", "e1", "zzz")
	again.Status = core.StatusFailed
	again.Error = "other"
	again.Event.Operation = protocol.OpDelete
	again.Event.Data = nil
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{again, event("todos", "e3", "c")}})
	checkOutbox(t, mustOutbox(t, s, "e1"), before)

	inBatch := event("todos", "e4", "d")
	inBatch2 := event("todos", "e4", "other")
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{inBatch, inBatch2}})
	checkOutbox(t, mustOutbox(t, s, "e4"), inBatch)

	evs := mustPending(t, s, 0)
	if got := eventIDs(evs); !equalStrings(got, []string{"e1", "e2", "e3", "e4"}) {
		t.Fatalf("Pending = %q, want [e1 e2 e3 e4]", got)
	}
	checkOrders(t, evs)
	if n := mustPendingCount(t, s); n != 4 {
		t.Fatalf("PendingCount = %d, want 4", n)
	}
}

func testStatuses(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{
		event("todos", "e1", "a"), event("todos", "e2", "b"), event("todos", "e3", "c"),
	}})
	orders := map[string]int64{}
	for _, id := range []string{"e1", "e2", "e3"} {
		orders[id] = mustOutbox(t, s, id).Order
	}
	check := func(id string, status core.Status, errText string) {
		t.Helper()
		e := mustOutbox(t, s, id)
		if e.Status != status || e.Error != errText || e.Order != orders[id] {
			t.Fatalf("Outbox(%q) = %s, want status %d, error %q, order %d", id, showOutbox(e), status, errText, orders[id])
		}
	}

	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{
		{EventID: "e1", Status: core.StatusFailed, Error: "rejected"},
		{EventID: "unknown", Status: core.StatusOK}, // ignored
	}})
	check("e1", core.StatusFailed, "rejected")
	mustNoOutbox(t, s, "unknown")
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e2", "e3"}) {
		t.Fatalf("Pending = %q, want [e2 e3]", got)
	}
	if n := mustPendingCount(t, s); n != 2 {
		t.Fatalf("PendingCount = %d, want 2", n)
	}

	// Back to pending: the event keeps its place.
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{{EventID: "e1", Status: core.StatusPending}}})
	check("e1", core.StatusPending, "")
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e1", "e2", "e3"}) {
		t.Fatalf("Pending = %q, want [e1 e2 e3]", got)
	}

	// Acked, then any other status is ignored.
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{{EventID: "e2", Status: core.StatusOK}}})
	check("e2", core.StatusOK, "")
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{
		{EventID: "e2", Status: core.StatusFailed, Error: "late failure"},
		{EventID: "e2", Status: core.StatusPending},
	}})
	check("e2", core.StatusOK, "")
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e1", "e3"}) {
		t.Fatalf("Pending = %q, want [e1 e3]", got)
	}
	if n := mustPendingCount(t, s); n != 2 {
		t.Fatalf("PendingCount = %d, want 2", n)
	}

	// An event added and updated in the same batch; updates apply in order.
	mustWrite(t, s, &core.Batch{
		Events: []core.OutboxEvent{event("todos", "e4", "d")},
		Statuses: []core.StatusUpdate{
			{EventID: "e4", Status: core.StatusFailed, Error: "first"},
			{EventID: "e4", Status: core.StatusOK},
			{EventID: "e4", Status: core.StatusPending},
		},
	})
	e4 := mustOutbox(t, s, "e4")
	if e4.Status != core.StatusOK || e4.Error != "" || e4.Order <= orders["e3"] {
		t.Fatalf("Outbox(e4) = %s, want acked with an Order above %d", showOutbox(e4), orders["e3"])
	}
	if n := mustPendingCount(t, s); n != 2 {
		t.Fatalf("PendingCount = %d, want 2", n)
	}
}

func testAckBeforeStatus(t *testing.T, s core.Store) {
	// The engine marks an event in flight after the server already acked it
	// (the ack raced the status write): the ack wins.
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", "e1", "a"), event("todos", "e2", "b")}})
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{{EventID: "e1", Status: core.StatusOK}}})
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{{EventID: "e1", Status: core.StatusPending}}})
	if e := mustOutbox(t, s, "e1"); e.Status != core.StatusOK {
		t.Fatalf("Outbox(e1) = %s, want acked", showOutbox(e))
	}
	// A retried insert of the same event does not resurrect it either.
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", "e1", "a")}})
	if e := mustOutbox(t, s, "e1"); e.Status != core.StatusOK {
		t.Fatalf("Outbox(e1) = %s after re-adding, want acked", showOutbox(e))
	}
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e2"}) {
		t.Fatalf("Pending = %q, want [e2]", got)
	}
	if n := mustPendingCount(t, s); n != 1 {
		t.Fatalf("PendingCount = %d, want 1", n)
	}
}

func testRemove(t *testing.T, s core.Store) {
	var b core.Batch
	for i := 0; i < 6; i++ {
		b.Events = append(b.Events, event("todos", "e"+strconv.Itoa(i), "a"))
	}
	b.Statuses = []core.StatusUpdate{{EventID: "e0", Status: core.StatusOK}, {EventID: "e1", Status: core.StatusFailed}}
	mustWrite(t, s, &b)
	maxOrder := mustOutbox(t, s, "e5").Order

	mustWrite(t, s, &core.Batch{Remove: []string{"e0", "e1", "e3", "never-added"}})
	for _, id := range []string{"e0", "e1", "e3"} {
		mustNoOutbox(t, s, id)
	}
	mustOutbox(t, s, "e2")
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e2", "e4", "e5"}) {
		t.Fatalf("Pending = %q, want [e2 e4 e5]", got)
	}
	if n := mustPendingCount(t, s); n != 3 {
		t.Fatalf("PendingCount = %d, want 3", n)
	}

	// A removed id is gone: adding it again makes a new event at the end,
	// and status updates to removed ids are ignored.
	mustWrite(t, s, &core.Batch{
		Events:   []core.OutboxEvent{event("todos", "e3", "a")},
		Statuses: []core.StatusUpdate{{EventID: "e0", Status: core.StatusPending}},
	})
	mustNoOutbox(t, s, "e0")
	if e := mustOutbox(t, s, "e3"); e.Order <= maxOrder || e.Status != core.StatusPending {
		t.Fatalf("re-added Outbox(e3) = %s, want pending with an Order above %d", showOutbox(e), maxOrder)
	}
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"e2", "e4", "e5", "e3"}) {
		t.Fatalf("Pending = %q, want [e2 e4 e5 e3]", got)
	}

	// Added and removed in one batch: not stored.
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", "e9", "a")}, Remove: []string{"e9"}})
	mustNoOutbox(t, s, "e9")

	// Removing everything empties the outbox; Orders are not reused.
	last := mustOutbox(t, s, "e3").Order
	mustWrite(t, s, &core.Batch{Remove: []string{"e2", "e3", "e4", "e5"}})
	if n := mustPendingCount(t, s); n != 0 {
		t.Fatalf("PendingCount = %d, want 0", n)
	}
	if evs := mustPending(t, s, 0); len(evs) != 0 {
		t.Fatalf("Pending = %q, want none", eventIDs(evs))
	}
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("todos", "e10", "a")}})
	if e := mustOutbox(t, s, "e10"); e.Order <= last {
		t.Fatalf("Outbox(e10) = %s after emptying the outbox, want an Order above %d", showOutbox(e), last)
	}
}

func testAcked(t *testing.T, s core.Store) {
	if got := mustAcked(t, s, 0); len(got) != 0 {
		t.Fatalf("Acked of an empty outbox = %q, want none", got)
	}
	// Ids run against Order (z9 is oldest) so that sorting by id is wrong.
	var b core.Batch
	for i := 9; i >= 0; i-- {
		b.Events = append(b.Events, event("todos", "z"+strconv.Itoa(i), "a"))
	}
	mustWrite(t, s, &b)
	mustWrite(t, s, &core.Batch{Events: []core.OutboxEvent{event("notes", "a0", "n")}})
	// Acked in an order unlike Order; z5 fails, z4 and z0 stay pending.
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{
		{EventID: "a0", Status: core.StatusOK},
		{EventID: "z1", Status: core.StatusOK},
		{EventID: "z8", Status: core.StatusOK},
		{EventID: "z5", Status: core.StatusFailed, Error: "rejected"},
		{EventID: "z9", Status: core.StatusOK},
		{EventID: "z3", Status: core.StatusOK},
	}})
	mustWrite(t, s, &core.Batch{Statuses: []core.StatusUpdate{
		{EventID: "z6", Status: core.StatusOK},
		{EventID: "z7", Status: core.StatusOK},
		{EventID: "z2", Status: core.StatusOK},
		{EventID: "z8", Status: core.StatusPending}, // ignored: acked is final
	}})
	// Removed acked events are gone.
	mustWrite(t, s, &core.Batch{Remove: []string{"z7", "z3"}})
	all := []string{"z9", "z8", "z6", "z2", "z1", "a0"}
	for _, tt := range []struct {
		limit int
		want  []string
	}{
		{1, all[:1]},
		{4, all[:4]},
		{6, all},
		{100, all},
		{0, all},
		{-1, all},
	} {
		if got := mustAcked(t, s, tt.limit); !equalStrings(got, tt.want) {
			t.Fatalf("Acked(%d) = %q, want %q", tt.limit, got, tt.want)
		}
	}
	if got := eventIDs(mustPending(t, s, 0)); !equalStrings(got, []string{"z4", "z0"}) {
		t.Fatalf("Pending = %q, want [z4 z0]", got)
	}

	// Acked in the batch that adds them, after older acked events: by Order.
	mustWrite(t, s, &core.Batch{
		Events:   []core.OutboxEvent{event("todos", "b1", "a"), event("todos", "b0", "a")},
		Statuses: []core.StatusUpdate{{EventID: "b0", Status: core.StatusOK}, {EventID: "b1", Status: core.StatusOK}, {EventID: "z0", Status: core.StatusOK}},
	})
	want := []string{"z9", "z8", "z6", "z2", "z1", "z0", "a0", "b1", "b0"}
	if got := mustAcked(t, s, 0); !equalStrings(got, want) {
		t.Fatalf("Acked(0) = %q, want %q", got, want)
	}
	mustWrite(t, s, &core.Batch{Remove: want})
	if got := mustAcked(t, s, 0); len(got) != 0 {
		t.Fatalf("Acked after removing every acked event = %q, want none", got)
	}
}
