package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// history appends a small history of four documents to ns/todos and
// returns its events, whose sequences are their index + 1:
//
//	1 a insert, 2 b insert, 3 a update, 4 c insert, 5 b delete, 6 d insert, 7 a update
func history(t *testing.T, s server.Store) []protocol.Event {
	c := newClock()
	h := []protocol.Event{
		put(t, protocol.OpInsert, "a", c.next(), `"v":1`),
		put(t, protocol.OpInsert, "b", c.next(), `"v":1`),
		put(t, protocol.OpUpdate, "a", c.next(), `"v":2`),
		put(t, protocol.OpInsert, "c", c.next(), `"v":1`),
		del(t, "b", c.next()),
		put(t, protocol.OpInsert, "d", c.next(), `"v":1`),
		put(t, protocol.OpUpdate, "a", c.next(), `"v":3`),
	}
	mustAppend(t, s, "ns", "todos", h[:2]...)
	mustAppend(t, s, "ns", "todos", h[2])
	mustAppend(t, s, "ns", "todos", h[3:]...)
	return h
}

func testLatest(t *testing.T, s server.Store) {
	ctx := context.Background()
	h := history(t, s)
	got, more, err := s.Latest(ctx, "ns", "todos", 0, 100)
	if err != nil || more {
		t.Fatalf("Latest(0, 100) = more %v, %v; want no more, no error", more, err)
	}
	checkIDs(t, "Latest(0)", got, h[3].ID, h[4].ID, h[5].ID, h[6].ID)
	for i, seq := range []int64{4, 5, 6, 7} {
		checkEvent(t, "Latest(0)", got[i], h[seq-1], seq)
	}
	if got[1].Operation != protocol.OpDelete {
		t.Fatalf("Latest(0) returned %v for deleted document b, want its delete (tombstone)", got[1].Operation)
	}
	got, more, err = s.Latest(ctx, "ns", "todos", 5, 100)
	if err != nil || more {
		t.Fatalf("Latest(5, 100) = more %v, %v", more, err)
	}
	checkIDs(t, "Latest(5)", got, h[5].ID, h[6].ID)
	// Exactly limit remaining: no more.
	got, more, err = s.Latest(ctx, "ns", "todos", 0, 4)
	if err != nil || more || len(got) != 4 {
		t.Fatalf("Latest(0, 4) = %d events, more %v, %v; want 4 and no more", len(got), more, err)
	}
	got, more, err = s.Latest(ctx, "ns", "todos", 0, 3)
	if err != nil || !more {
		t.Fatalf("Latest(0, 3) = more %v, %v; want more", more, err)
	}
	checkIDs(t, "Latest(0, 3)", got, h[3].ID, h[4].ID, h[5].ID)
	for _, after := range []int64{7, 8, 1000} {
		got, more, err = s.Latest(ctx, "ns", "todos", after, 10)
		if err != nil || more || len(got) != 0 {
			t.Fatalf("Latest(%d) = %v, more %v, %v; want nothing", after, ids(got), more, err)
		}
	}
	got, more, err = s.Latest(ctx, "ns", "missing", 0, 10)
	if err != nil || more || len(got) != 0 {
		t.Fatalf("Latest(unknown repository) = %v, more %v, %v; want nothing, no error", ids(got), more, err)
	}
}

func testLatestPaging(t *testing.T, s server.Store) {
	c := newClock()
	// 40 documents, updated in interleaved rounds; some deleted.
	last := map[string]protocol.Event{}
	var order []string
	for round := range 4 {
		var batch []protocol.Event
		for d := range 40 {
			if (d+round)%3 != 0 {
				continue
			}
			id := label("doc-%02d", d)
			e := put(t, protocol.OpUpdate, id, c.next(), label(`"round":%d`, round))
			if round == 3 && d%5 == 0 {
				e = del(t, id, c.next())
			}
			batch = append(batch, e)
		}
		for _, e := range batch {
			last[e.DataID] = e
		}
		mustAppend(t, s, "ns", "todos", batch...)
	}
	all := rangeAll(t, s, "ns", "todos")
	for _, e := range all {
		if last[e.DataID].ID == e.ID {
			order = append(order, e.ID)
		}
	}
	for _, limit := range []int{1, 2, 3, 7, len(order) - 1, len(order), len(order) + 1, 1000} {
		got := readAll(t, "Latest", limit, func(after int64, limit int) ([]protocol.Event, bool, error) {
			return s.Latest(context.Background(), "ns", "todos", after, limit)
		})
		checkIDs(t, label("Latest paged by %d", limit), got, order...)
	}
}

// sinceHistory appends documents whose latest events were created at these
// milliseconds after the clock base: b 10, a 20, c 30, d 30, e 40, and f,
// whose update carries an older time (1) than its insert (50).
func sinceHistory(t *testing.T, s server.Store) *clock {
	c := newClock()
	mustAppend(t, s, "ns", "todos",
		put(t, protocol.OpInsert, "a", c.at(0), ""),
		put(t, protocol.OpInsert, "b", c.at(10), ""),
		put(t, protocol.OpUpdate, "a", c.at(20), ""),
		put(t, protocol.OpInsert, "f", c.at(50), ""),
	)
	mustAppend(t, s, "ns", "todos",
		put(t, protocol.OpInsert, "c", c.at(30), ""),
		put(t, protocol.OpInsert, "d", c.at(30), ""),
		put(t, protocol.OpInsert, "e", c.at(40), ""),
		put(t, protocol.OpUpdate, "f", c.at(1), ""),
	)
	return c
}

func testLatestSince(t *testing.T, s server.Store) {
	ctx := context.Background()
	c := sinceHistory(t, s)
	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"f", "b", "a", "c", "d", "e"}},
		{c.at(0), []string{"f", "b", "a", "c", "d", "e"}},
		{c.at(1), []string{"b", "a", "c", "d", "e"}},
		{c.at(5), []string{"b", "a", "c", "d", "e"}},
		{c.at(20), []string{"c", "d", "e"}},
		{c.at(20).Add(500 * time.Microsecond), []string{"c", "d", "e"}},
		{c.at(29).Add(999 * time.Microsecond), []string{"c", "d", "e"}},
		{c.at(30), []string{"e"}},
		{c.at(40), nil},
		{c.at(1000), nil},
	} {
		got, more, err := s.LatestSince(ctx, "ns", "todos", tc.since, 100)
		if err != nil || more {
			t.Fatalf("LatestSince(%s) = more %v, %v", tc.since.Format(time.RFC3339Nano), more, err)
		}
		checkDocs(t, label("LatestSince(%s)", tc.since.Format(time.RFC3339Nano)), got, tc.want...)
	}
	got, _, err := s.LatestSince(ctx, "ns", "todos", c.at(20), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if latest, err := s.ByDataID(ctx, "ns", "todos", e.DataID); err != nil || latest.ID != e.ID || latest.ServerSequence != e.ServerSequence {
			t.Fatalf("LatestSince returned %s at %d for %s, ByDataID has %s at %d (%v)", e.ID, e.ServerSequence, e.DataID, latest.ID, latest.ServerSequence, err)
		}
	}
	got, more, err := s.LatestSince(ctx, "ns", "missing", time.Time{}, 10)
	if err != nil || more || len(got) != 0 {
		t.Fatalf("LatestSince(unknown repository) = %v, more %v, %v; want nothing", ids(got), more, err)
	}
}

func testLatestSincePaging(t *testing.T, s server.Store) {
	ctx := context.Background()
	c := sinceHistory(t, s)
	want := []string{"b", "a", "c", "d", "e"}
	// Limit 1 cannot page past c and d, which share a millisecond.
	for _, limit := range []int{2, 3, 4, 5, 6, 100} {
		since := c.at(5)
		var got []string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("LatestSince paged by %d does not end: %v", limit, got)
			}
			events, more, err := s.LatestSince(ctx, "ns", "todos", since, limit)
			if err != nil {
				t.Fatalf("LatestSince(limit %d) failed: %v", limit, err)
			}
			if len(events) > limit || (more && len(events) == 0) {
				t.Fatalf("LatestSince(limit %d) returned %d events, more %v", limit, len(events), more)
			}
			for _, e := range events {
				if e.CreatedAt.Before(since) || e.CreatedAt.Equal(since) {
					t.Fatalf("LatestSince(%s) returned an event created at %s", since, e.CreatedAt)
				}
				got = append(got, e.DataID)
			}
			if !more {
				break
			}
			since = events[len(events)-1].CreatedAt
		}
		if len(got) != len(want) {
			t.Fatalf("LatestSince paged by %d = %v, want %v", limit, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("LatestSince paged by %d = %v, want %v", limit, got, want)
			}
		}
	}
}

func testRange(t *testing.T, s server.Store) {
	ctx := context.Background()
	h := history(t, s)
	got, more, err := s.Range(ctx, "ns", "todos", 0, 100)
	if err != nil || more {
		t.Fatalf("Range(0, 100) = more %v, %v", more, err)
	}
	checkIDs(t, "Range(0)", got, ids(h)...)
	for i := range h {
		checkEvent(t, "Range(0)", got[i], h[i], int64(i+1))
	}
	got, more, err = s.Range(ctx, "ns", "todos", 3, 2)
	if err != nil || !more {
		t.Fatalf("Range(3, 2) = more %v, %v; want more", more, err)
	}
	checkIDs(t, "Range(3, 2)", got, h[3].ID, h[4].ID)
	got, more, err = s.Range(ctx, "ns", "todos", 5, 2)
	if err != nil || more {
		t.Fatalf("Range(5, 2) = more %v, %v; want no more", more, err)
	}
	checkIDs(t, "Range(5, 2)", got, h[5].ID, h[6].ID)
	for _, after := range []int64{7, 100} {
		got, more, err = s.Range(ctx, "ns", "todos", after, 10)
		if err != nil || more || len(got) != 0 {
			t.Fatalf("Range(%d) = %v, more %v, %v; want nothing", after, ids(got), more, err)
		}
	}
	got, more, err = s.Range(ctx, "ns", "todos", -5, 1)
	if err != nil || !more {
		t.Fatalf("Range(-5, 1) = more %v, %v; want more", more, err)
	}
	checkIDs(t, "Range(-5, 1)", got, h[0].ID)
	got, more, err = s.Range(ctx, "ns", "missing", 0, 10)
	if err != nil || more || len(got) != 0 {
		t.Fatalf("Range(unknown repository) = %v, more %v, %v; want nothing, no error", ids(got), more, err)
	}
}

func testRangePaging(t *testing.T, s server.Store) {
	c := newClock()
	var want []string
	for b := range 9 {
		batch := make([]protocol.Event, 1+b%4)
		for i := range batch {
			batch[i] = put(t, protocol.OpUpdate, label("doc-%d", i%2), c.next(), "")
			want = append(want, batch[i].ID)
		}
		mustAppend(t, s, "ns", "todos", batch...)
	}
	for _, limit := range []int{1, 2, 5, len(want) - 1, len(want), len(want) + 1} {
		got := readAll(t, "Range", limit, func(after int64, limit int) ([]protocol.Event, bool, error) {
			return s.Range(context.Background(), "ns", "todos", after, limit)
		})
		checkIDs(t, label("Range paged by %d", limit), got, want...)
	}
}

func testEvent(t *testing.T, s server.Store) {
	ctx := context.Background()
	h := history(t, s)
	for i, e := range h {
		got, err := s.Event(ctx, "ns", "todos", e.ID)
		if err != nil {
			t.Fatalf("Event(%s) failed: %v", e.ID, err)
		}
		checkEvent(t, "Event", got, e, int64(i+1))
	}
	for _, tc := range []struct{ ns, repo, id string }{
		{"ns", "todos", newID(t)},
		{"ns", "other", h[0].ID},
		{"other", "todos", h[0].ID},
	} {
		if _, err := s.Event(ctx, tc.ns, tc.repo, tc.id); !errors.Is(err, server.ErrNotFound) {
			t.Fatalf("Event(%q, %q, %q) = %v, want ErrNotFound", tc.ns, tc.repo, tc.id, err)
		}
	}
}

func testByDataID(t *testing.T, s server.Store) {
	ctx := context.Background()
	h := history(t, s)
	for dataID, idx := range map[string]int{"a": 6, "b": 4, "c": 3, "d": 5} {
		got, err := s.ByDataID(ctx, "ns", "todos", dataID)
		if err != nil {
			t.Fatalf("ByDataID(%s) failed: %v", dataID, err)
		}
		checkEvent(t, label("ByDataID(%s)", dataID), got, h[idx], int64(idx+1))
	}
	for _, tc := range []struct{ ns, repo, dataID string }{
		{"ns", "todos", "zz"},
		{"ns", "other", "a"},
		{"other", "todos", "a"},
	} {
		if _, err := s.ByDataID(ctx, tc.ns, tc.repo, tc.dataID); !errors.Is(err, server.ErrNotFound) {
			t.Fatalf("ByDataID(%q, %q, %q) = %v, want ErrNotFound", tc.ns, tc.repo, tc.dataID, err)
		}
	}
}

func testLastSequence(t *testing.T, s server.Store) {
	ctx := context.Background()
	if seq, err := s.LastSequence(ctx, "ns", "todos"); err != nil || seq != 0 {
		t.Fatalf("LastSequence(empty) = %d, %v; want 0", seq, err)
	}
	history(t, s)
	if seq, err := s.LastSequence(ctx, "ns", "todos"); err != nil || seq != 7 {
		t.Fatalf("LastSequence() = %d, %v; want 7", seq, err)
	}
	if seq, err := s.LastSequence(ctx, "other", "todos"); err != nil || seq != 0 {
		t.Fatalf("LastSequence(other namespace) = %d, %v; want 0", seq, err)
	}
}

func testRepositories(t *testing.T, s server.Store) {
	ctx := context.Background()
	if repos, err := s.Repositories(ctx, "a"); err != nil || len(repos) != 0 {
		t.Fatalf("Repositories(empty) = %+v, %v; want none", repos, err)
	}
	c := newClock()
	e := put(t, protocol.OpInsert, "x", c.next(), "")
	mustAppend(t, s, "a", "todos", e, put(t, protocol.OpInsert, "y", c.next(), ""), put(t, protocol.OpInsert, "x", c.next(), ""))
	mustAppend(t, s, "a", "todos", e)
	mustAppend(t, s, "a", "notes", put(t, protocol.OpInsert, "x", c.next(), ""), put(t, protocol.OpInsert, "y", c.next(), ""))
	mustAppend(t, s, "a", "zeta", put(t, protocol.OpInsert, "x", c.next(), ""))
	mustAppend(t, s, "b", "alpha", put(t, protocol.OpInsert, "x", c.next(), ""))
	// A failed append does not create a repository.
	bad := put(t, protocol.OpInsert, "x", c.next(), "")
	bad.ID = ""
	if _, err := s.Append(ctx, "a", "broken", []protocol.Event{bad}); err == nil {
		t.Fatal("Append(invalid event) succeeded")
	}
	repos, err := s.Repositories(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []server.RepoInfo{{Name: "notes", LastSequence: 2, Events: 2}, {Name: "todos", LastSequence: 3, Events: 3}, {Name: "zeta", LastSequence: 1, Events: 1}}
	if len(repos) != len(want) {
		t.Fatalf("Repositories(a) = %+v, want %+v", repos, want)
	}
	for i := range want {
		if repos[i] != want[i] {
			t.Fatalf("Repositories(a) = %+v, want %+v", repos, want)
		}
	}
	repos, err = s.Repositories(ctx, "b")
	if err != nil || len(repos) != 1 || repos[0] != (server.RepoInfo{Name: "alpha", LastSequence: 1, Events: 1}) {
		t.Fatalf("Repositories(b) = %+v, %v; want alpha only", repos, err)
	}
}

func testLimits(t *testing.T, s server.Store) {
	ctx := context.Background()
	history(t, s)
	for _, limit := range []int{0, -1} {
		if _, _, err := s.Latest(ctx, "ns", "todos", 0, limit); err == nil {
			t.Errorf("Latest(limit %d) succeeded, want an error", limit)
		}
		if _, _, err := s.LatestSince(ctx, "ns", "todos", time.Time{}, limit); err == nil {
			t.Errorf("LatestSince(limit %d) succeeded, want an error", limit)
		}
		if _, _, err := s.Range(ctx, "ns", "todos", 0, limit); err == nil {
			t.Errorf("Range(limit %d) succeeded, want an error", limit)
		}
	}
}
