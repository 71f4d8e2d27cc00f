package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

func testNamespaceIsolation(t *testing.T, s server.Store) {
	ctx := context.Background()
	c := newClock()
	shared := put(t, protocol.OpInsert, "doc", c.next(), `"owner":"one"`)
	onlyOne := put(t, protocol.OpInsert, "mine", c.next(), "")
	mustAppend(t, s, "one", "todos", shared, onlyOne)
	// The same event id in another namespace is a different event.
	if res := mustAppend(t, s, "two", "todos", shared); res[0].Sequence != 1 || !res[0].New {
		t.Fatalf("Append(same event, other namespace) = %+v, want sequence 1, new", res[0])
	}
	// And in another repository of the same namespace.
	if res := mustAppend(t, s, "one", "notes", shared); res[0].Sequence != 1 || !res[0].New {
		t.Fatalf("Append(same event, other repository) = %+v, want sequence 1, new", res[0])
	}
	checkIDs(t, "Range(two)", rangeAll(t, s, "two", "todos"), shared.ID)
	checkIDs(t, "Latest(two)", latestAll(t, s, "two", "todos"), shared.ID)
	got, _, err := s.LatestSince(ctx, "two", "todos", time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, "LatestSince(two)", got, shared.ID)
	if _, err := s.Event(ctx, "two", "todos", onlyOne.ID); !errors.Is(err, server.ErrNotFound) {
		t.Fatalf("Event(two, event of one) = %v, want ErrNotFound", err)
	}
	if _, err := s.ByDataID(ctx, "two", "todos", "mine"); !errors.Is(err, server.ErrNotFound) {
		t.Fatalf("ByDataID(two, document of one) = %v, want ErrNotFound", err)
	}
	if seq, err := s.LastSequence(ctx, "two", "todos"); err != nil || seq != 1 {
		t.Fatalf("LastSequence(two) = %d, %v; want 1", seq, err)
	}
	repos, err := s.Repositories(ctx, "two")
	if err != nil || len(repos) != 1 || repos[0] != (server.RepoInfo{Name: "todos", LastSequence: 1, Events: 1}) {
		t.Fatalf("Repositories(two) = %+v, %v; want todos with 1 event", repos, err)
	}
	checkIDs(t, "Range(one)", rangeAll(t, s, "one", "todos"), shared.ID, onlyOne.ID)
}

func testRoundTrip(t *testing.T, s server.Store) {
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
	full := protocol.Event{
		ID:        newID(t),
		Operation: protocol.OpInsert,
		CreatedAt: at,
		DataID:    "doc-ü",
		Data: json.RawMessage(`{"id":"doc-ü","title":"Milch \"kaufen\" 🥛\n","n":12345678901234567890,` +
			`"f":1.5e-7,"nested":{"list":[1,"two",null,true,{"x":[]}]},"empty":{}}`),
		Meta: json.RawMessage(`{"stamps":{"title":"2026-03-04T04:06:07.891Z"},"v":2}`),
	}
	update := protocol.Event{ID: newID(t), Operation: protocol.OpUpdate, CreatedAt: at.Add(time.Millisecond),
		DataID: "42", Data: json.RawMessage(`{"id":42,"done":false}`)}
	tomb := protocol.Event{ID: newID(t), Operation: protocol.OpDelete, CreatedAt: at.Add(2 * time.Millisecond),
		DataID: "gone", Meta: json.RawMessage(`{"by":"me"}`)}
	want := []protocol.Event{full, update, tomb}
	for i, r := range mustAppend(t, s, "ns", "todos", want...) {
		if r.Sequence != int64(i+1) {
			t.Fatalf("Append()[%d] = %+v, want sequence %d", i, r, i+1)
		}
	}
	all, _, err := s.Range(ctx, "ns", "todos", 0, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("Range() = %d events, %v", len(all), err)
	}
	latest, _, err := s.Latest(ctx, "ns", "todos", 0, 10)
	if err != nil || len(latest) != 3 {
		t.Fatalf("Latest() = %d events, %v", len(latest), err)
	}
	since, _, err := s.LatestSince(ctx, "ns", "todos", time.Time{}, 10)
	if err != nil || len(since) != 3 {
		t.Fatalf("LatestSince() = %d events, %v", len(since), err)
	}
	for i, w := range want {
		seq := int64(i + 1)
		checkEvent(t, "Range", all[i], w, seq)
		checkEvent(t, "Latest", latest[i], w, seq)
		checkEvent(t, "LatestSince", since[i], w, seq)
		e, err := s.Event(ctx, "ns", "todos", w.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkEvent(t, "Event", e, w, seq)
		e, err = s.ByDataID(ctx, "ns", "todos", w.DataID)
		if err != nil {
			t.Fatal(err)
		}
		checkEvent(t, "ByDataID", e, w, seq)
	}
	// The wire form of a stored event is the wire form of the input, plus
	// its sequence.
	b, err := json.Marshal(all[0])
	if err != nil {
		t.Fatalf("failed to encode a stored event: %v", err)
	}
	var back protocol.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("failed to decode a stored event's wire form %s: %v", b, err)
	}
	checkEvent(t, "wire form", back, full, 1)
	if got := protocol.FormatTime(all[0].CreatedAt); got != "2026-03-04T04:06:07.891Z" {
		t.Fatalf("stored CreatedAt on the wire = %s, want 2026-03-04T04:06:07.891Z", got)
	}
}

func testCanceledContext(t *testing.T, s server.Store) {
	history(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := put(t, protocol.OpInsert, "new", time.Now(), "")
	if _, err := s.Append(ctx, "ns", "todos", []protocol.Event{e}); err == nil {
		t.Error("Append(canceled context) succeeded")
	}
	if _, _, err := s.Latest(ctx, "ns", "todos", 0, 10); err == nil {
		t.Error("Latest(canceled context) succeeded")
	}
	if _, _, err := s.LatestSince(ctx, "ns", "todos", time.Time{}, 10); err == nil {
		t.Error("LatestSince(canceled context) succeeded")
	}
	if _, _, err := s.Range(ctx, "ns", "todos", 0, 10); err == nil {
		t.Error("Range(canceled context) succeeded")
	}
	if _, err := s.Event(ctx, "ns", "todos", e.ID); err == nil || errors.Is(err, server.ErrNotFound) {
		t.Errorf("Event(canceled context) = %v, want a cancellation error", err)
	}
	if _, err := s.ByDataID(ctx, "ns", "todos", "a"); err == nil {
		t.Error("ByDataID(canceled context) succeeded")
	}
	if _, err := s.LastSequence(ctx, "ns", "todos"); err == nil {
		t.Error("LastSequence(canceled context) succeeded")
	}
	if _, err := s.Repositories(ctx, "ns"); err == nil {
		t.Error("Repositories(canceled context) succeeded")
	}
	// Nothing was stored and the store still works.
	if seq, err := s.LastSequence(context.Background(), "ns", "todos"); err != nil || seq != 7 {
		t.Fatalf("LastSequence() after canceled calls = %d, %v; want 7", seq, err)
	}
	if res := mustAppend(t, s, "ns", "todos", e); res[0].Sequence != 8 || !res[0].New {
		t.Fatalf("Append() after canceled calls = %+v, want sequence 8, new", res[0])
	}
}

func testClosed(t *testing.T, s server.Store) {
	ctx := context.Background()
	history(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() failed: %v", err)
	}
	e := put(t, protocol.OpInsert, "new", time.Now(), "")
	if _, err := s.Append(ctx, "ns", "todos", []protocol.Event{e}); err == nil {
		t.Error("Append() after Close succeeded")
	}
	if _, _, err := s.Latest(ctx, "ns", "todos", 0, 10); err == nil {
		t.Error("Latest() after Close succeeded")
	}
	if _, _, err := s.LatestSince(ctx, "ns", "todos", time.Time{}, 10); err == nil {
		t.Error("LatestSince() after Close succeeded")
	}
	if _, _, err := s.Range(ctx, "ns", "todos", 0, 10); err == nil {
		t.Error("Range() after Close succeeded")
	}
	if _, err := s.Event(ctx, "ns", "todos", e.ID); err == nil || errors.Is(err, server.ErrNotFound) {
		t.Errorf("Event() after Close = %v, want an error other than ErrNotFound", err)
	}
	if _, err := s.ByDataID(ctx, "ns", "todos", "a"); err == nil {
		t.Error("ByDataID() after Close succeeded")
	}
	if _, err := s.LastSequence(ctx, "ns", "todos"); err == nil {
		t.Error("LastSequence() after Close succeeded")
	}
	if _, err := s.Repositories(ctx, "ns"); err == nil {
		t.Error("Repositories() after Close succeeded")
	}
	_ = s.Close() // a second Close may report an error but must not panic
}
