// Package storetest is the conformance suite every server.Store backend
// passes: Run checks the documented semantics of each method on fresh
// stores, RunReopen checks durability across a close and reopen of the same
// database.
//
// Semantics the suite pins beyond the server.Store doc comments:
//   - Append of an empty batch stores nothing and succeeds; a batch with any
//     invalid event (protocol.Event.Validate, Data or Meta not valid JSON) or
//     an empty repository name stores nothing and fails.
//   - A re-pushed event keeps its stored content; its input is ignored.
//   - A limit below 1 is an error.
//   - CreatedAt is stored at millisecond precision (truncated).
//   - LatestSince returns the latest event of each document whose latest
//     event was created after since, ascending by creation time then
//     sequence; a page cut by limit does not end inside a millisecond that
//     continues on the next page unless the whole page is that millisecond.
//   - The empty namespace is a namespace like any other.
//   - An Append whose context ends may fail or succeed, but once it has
//     returned it changes nothing more (no late write).
//   - Every method of a closed store returns an error; a second Close does
//     not panic.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// Run runs the conformance suite. open returns a new, empty store on every
// call and registers its Close with t.Cleanup; the suite may close a store
// itself, so Close must tolerate a second call.
func Run(t *testing.T, open func(t *testing.T) server.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s server.Store)
	}{
		{"AppendAssignsSequences", testAppendAssignsSequences},
		{"AppendEmpty", testAppendEmpty},
		{"AppendInvalidStoresNothing", testAppendInvalidStoresNothing},
		{"AppendDeduplicates", testAppendDeduplicates},
		{"AppendIgnoresInputSequence", testAppendIgnoresInputSequence},
		{"AppendLargeBatch", testAppendLargeBatch},
		{"SequencesPerRepository", testSequencesPerRepository},
		{"ConcurrentAppends", testConcurrentAppends},
		{"Latest", testLatest},
		{"LatestPaging", testLatestPaging},
		{"LatestSince", testLatestSince},
		{"LatestSincePaging", testLatestSincePaging},
		{"Range", testRange},
		{"RangePaging", testRangePaging},
		{"Event", testEvent},
		{"ByDataID", testByDataID},
		{"LastSequence", testLastSequence},
		{"Repositories", testRepositories},
		{"Limits", testLimits},
		{"NamespaceIsolation", testNamespaceIsolation},
		{"RoundTrip", testRoundTrip},
		{"CanceledContext", testCanceledContext},
		{"CancelDuringAppends", testCancelDuringAppends},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// clock hands out creation times one millisecond apart.
type clock struct {
	base time.Time
	n    int
}

func newClock() *clock {
	return &clock{base: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// next returns the next creation time.
func (c *clock) next() time.Time {
	c.n++
	return c.base.Add(time.Duration(c.n) * time.Millisecond)
}

// at returns the creation time ms milliseconds after the clock's base.
func (c *clock) at(ms int) time.Time {
	return c.base.Add(time.Duration(ms) * time.Millisecond)
}

// newID returns a fresh UUIDv7 string.
func newID(t testing.TB) string {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("failed to make an event id: %v", err)
	}
	return id.String()
}

// put returns an insert or update event of document dataID at time at.
func put(t testing.TB, op protocol.Operation, dataID string, at time.Time, fields string) protocol.Event {
	data := `{"id":` + quote(dataID)
	if fields != "" {
		data += "," + fields
	}
	data += "}"
	return protocol.Event{ID: newID(t), Operation: op, CreatedAt: at, DataID: dataID, Data: json.RawMessage(data)}
}

// del returns a delete event of document dataID at time at.
func del(t testing.TB, dataID string, at time.Time) protocol.Event {
	return protocol.Event{ID: newID(t), Operation: protocol.OpDelete, CreatedAt: at, DataID: dataID}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// mustAppend appends events and fails the test on error or on a result of
// the wrong length.
func mustAppend(t testing.TB, s server.Store, ns, repo string, events ...protocol.Event) []server.Appended {
	t.Helper()
	res, err := s.Append(context.Background(), ns, repo, events)
	if err != nil {
		t.Fatalf("Append(%q, %q, %d events) failed: %v", ns, repo, len(events), err)
	}
	if len(res) != len(events) {
		t.Fatalf("Append(%q, %q, %d events) returned %d results", ns, repo, len(events), len(res))
	}
	for i, r := range res {
		if r.ID != events[i].ID {
			t.Fatalf("Append(%q, %q)[%d].ID = %q, want %q", ns, repo, i, r.ID, events[i].ID)
		}
	}
	return res
}

// readAll pages through read with the given limit and returns every event,
// failing the test when the pages overlap, run backwards or misreport more.
func readAll(t testing.TB, name string, limit int, read func(after int64, limit int) ([]protocol.Event, bool, error)) []protocol.Event {
	t.Helper()
	var all []protocol.Event
	var after int64
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("%s: paging does not end", name)
		}
		events, more, err := read(after, limit)
		if err != nil {
			t.Fatalf("%s(after=%d, limit=%d) failed: %v", name, after, limit, err)
		}
		if len(events) > limit {
			t.Fatalf("%s(after=%d, limit=%d) returned %d events", name, after, limit, len(events))
		}
		for _, e := range events {
			if e.ServerSequence <= after {
				t.Fatalf("%s(after=%d) returned sequence %d, not after the cursor or not ascending", name, after, e.ServerSequence)
			}
			after = e.ServerSequence
		}
		all = append(all, events...)
		if !more {
			return all
		}
		if len(events) == 0 {
			t.Fatalf("%s(after=%d, limit=%d) returned no events but more", name, after, limit)
		}
	}
}

// rangeAll returns every event of a repository, unreduced.
func rangeAll(t testing.TB, s server.Store, ns, repo string) []protocol.Event {
	t.Helper()
	return readAll(t, "Range", 1000, func(after int64, limit int) ([]protocol.Event, bool, error) {
		return s.Range(context.Background(), ns, repo, after, limit)
	})
}

// latestAll returns the latest event of every document of a repository.
func latestAll(t testing.TB, s server.Store, ns, repo string) []protocol.Event {
	t.Helper()
	return readAll(t, "Latest", 1000, func(after int64, limit int) ([]protocol.Event, bool, error) {
		return s.Latest(context.Background(), ns, repo, after, limit)
	})
}

// ids returns the event ids of events.
func ids(events []protocol.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// dataIDs returns the document ids of events.
func dataIDs(events []protocol.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.DataID
	}
	return out
}

// sameJSON reports whether a and b hold the same JSON value (numbers
// compared by value, objects regardless of key order); both empty counts as
// the same.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) == 0
	}
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return sameValue(x, y)
}

// sameValue compares two decoded JSON values.
func sameValue(x, y any) bool {
	switch x := x.(type) {
	case json.Number:
		y, ok := y.(json.Number)
		if !ok {
			return false
		}
		rx, okx := new(big.Rat).SetString(x.String())
		ry, oky := new(big.Rat).SetString(y.String())
		return okx && oky && rx.Cmp(ry) == 0
	case map[string]any:
		y, ok := y.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := y.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return x == y // string, bool, nil
}

// checkEvent fails the test unless got is want as stored at sequence seq.
func checkEvent(t testing.TB, where string, got, want protocol.Event, seq int64) {
	t.Helper()
	wantAt := want.CreatedAt.Truncate(time.Millisecond)
	switch {
	case got.ID != want.ID:
		t.Errorf("%s: ID = %q, want %q", where, got.ID, want.ID)
	case got.ServerSequence != seq:
		t.Errorf("%s: event %s ServerSequence = %d, want %d", where, want.ID, got.ServerSequence, seq)
	case got.Operation != want.Operation:
		t.Errorf("%s: event %s Operation = %v, want %v", where, want.ID, got.Operation, want.Operation)
	case got.DataID != want.DataID:
		t.Errorf("%s: event %s DataID = %q, want %q", where, want.ID, got.DataID, want.DataID)
	case !got.CreatedAt.Equal(wantAt):
		t.Errorf("%s: event %s CreatedAt = %s, want %s", where, want.ID, got.CreatedAt.Format(time.RFC3339Nano), wantAt.Format(time.RFC3339Nano))
	case !sameJSON(got.Data, want.Data):
		t.Errorf("%s: event %s Data = %s, want %s", where, want.ID, got.Data, want.Data)
	case !sameJSON(got.Meta, want.Meta):
		t.Errorf("%s: event %s Meta = %s, want %s", where, want.ID, got.Meta, want.Meta)
	}
}

// checkIDs fails the test unless got holds exactly the events named want, in
// order.
func checkIDs(t testing.TB, where string, got []protocol.Event, want ...string) {
	t.Helper()
	if g := ids(got); !reflect.DeepEqual(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("%s = %v, want %v", where, g, want)
	}
}

// checkDocs fails the test unless got holds the documents named want, in
// order.
func checkDocs(t testing.TB, where string, got []protocol.Event, want ...string) {
	t.Helper()
	if g := dataIDs(got); !reflect.DeepEqual(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("%s = documents %v, want %v", where, g, want)
	}
}

func label(format string, args ...any) string { return fmt.Sprintf(format, args...) }
