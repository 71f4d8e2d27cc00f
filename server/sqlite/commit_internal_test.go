package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// TestGroupFailureIsolated commits one group in which a request fails half
// way on a real constraint violation: its own events are all rolled back,
// the requests around it commit.
func TestGroupFailureIsolated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "group.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(id, dataID string) protocol.Event {
		return protocol.Event{ID: id, CreatedAt: time.UnixMilli(1000), DataID: dataID, Data: []byte(`{"id":"` + dataID + `"}`)}
	}
	if _, err := s.Append(ctx, "ns", "x", []protocol.Event{ev("x1", "a")}); err != nil {
		t.Fatal(err)
	}
	// Another connection takes sequence 3 of x behind the store's back, so
	// the second event of the next append to x violates the log's key.
	db := rawDB(t, path)
	if _, err := db.Exec(`INSERT INTO events (repo_id, seq, id, data_id, op, created_at_ms, data)
		SELECT id, 3, 'intruder', 'z', 0, 0, '{}' FROM repos WHERE ns = 'ns' AND name = 'x'`); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	req := func(ctx context.Context, repo string, events ...protocol.Event) *appendReq {
		return &appendReq{ctx: ctx, ns: "ns", repo: repo, events: events, done: make(chan appendResult, 1)}
	}
	group := []*appendReq{
		req(ctx, "y", ev("y1", "a"), ev("y2", "b")),
		req(ctx, "x", ev("x2", "b"), ev("x3", "c")), // x3 collides at sequence 3
		req(ctx, "z", ev("z1", "a"), ev("z1", "a")),
		req(canceled, "y", ev("y3", "c")),
		req(ctx, "y", ev("y4", "d"), ev("y1", "a")),
	}
	// The writer goroutine is idle, so the test may drive the writer's
	// connection itself.
	before := s.groups.Load()
	s.commit(group)
	if got := s.groups.Load() - before; got != 1 {
		t.Fatalf("commit committed %d transactions, want 1", got)
	}
	var results []appendResult
	for _, r := range group {
		results = append(results, <-r.done)
	}
	check := func(i int, want ...server.Appended) {
		t.Helper()
		r := results[i]
		if r.err != nil || len(r.res) != len(want) {
			t.Fatalf("request %d = %+v, %v; want %+v", i, r.res, r.err, want)
		}
		for j := range want {
			if r.res[j] != want[j] {
				t.Fatalf("request %d = %+v, want %+v", i, r.res, want)
			}
		}
	}
	check(0, server.Appended{ID: "y1", Sequence: 1, New: true}, server.Appended{ID: "y2", Sequence: 2, New: true})
	if results[1].err == nil || !strings.Contains(results[1].err.Error(), "x3") {
		t.Fatalf("request 1 = %+v, %v; want an error about x3", results[1].res, results[1].err)
	}
	check(2, server.Appended{ID: "z1", Sequence: 1, New: true}, server.Appended{ID: "z1", Sequence: 1})
	if !errors.Is(results[3].err, context.Canceled) {
		t.Fatalf("request 3 (canceled) = %+v, %v; want context.Canceled", results[3].res, results[3].err)
	}
	check(4, server.Appended{ID: "y4", Sequence: 3, New: true}, server.Appended{ID: "y1", Sequence: 1})

	// x holds its first event and the intruder, nothing of the failed request.
	all, _, err := s.Range(ctx, "ns", "x", 0, 10)
	if err != nil || eventIDs(all) != "x1 intruder" {
		t.Fatalf("Range(x) = %s, %v; want x1 intruder", eventIDs(all), err)
	}
	if _, err := s.Event(ctx, "ns", "x", "x2"); !errors.Is(err, server.ErrNotFound) {
		t.Fatalf("Event(x2) = %v, want ErrNotFound: the failed request's first event must be rolled back", err)
	}
	if seq, err := s.LastSequence(ctx, "ns", "x"); err != nil || seq != 1 {
		t.Fatalf("LastSequence(x) = %d, %v; want 1", seq, err)
	}
	if e, err := s.ByDataID(ctx, "ns", "x", "b"); !errors.Is(err, server.ErrNotFound) {
		t.Fatalf("ByDataID(x, b) = %+v, %v; want ErrNotFound", e, err)
	}
	if all, _, err = s.Range(ctx, "ns", "y", 0, 10); err != nil || eventIDs(all) != "y1 y2 y4" {
		t.Fatalf("Range(y) = %s, %v; want y1 y2 y4", eventIDs(all), err)
	}
	if all, _, err = s.Range(ctx, "ns", "z", 0, 10); err != nil || eventIDs(all) != "z1" {
		t.Fatalf("Range(z) = %s, %v; want z1", eventIDs(all), err)
	}
	// Alone in its group, the failing request fails the same way.
	alone := req(ctx, "x", ev("x2", "b"), ev("x3", "c"))
	s.commit([]*appendReq{alone})
	if r := <-alone.done; r.err == nil || !strings.Contains(r.err.Error(), "x3") {
		t.Fatalf("failing request alone = %+v, %v; want an error about x3", r.res, r.err)
	}
	if seq, err := s.LastSequence(ctx, "ns", "x"); err != nil || seq != 1 {
		t.Fatalf("LastSequence(x) after the lone failure = %d, %v; want 1", seq, err)
	}

	// The store keeps working through its writer goroutine.
	if res, err := s.Append(ctx, "ns", "y", []protocol.Event{ev("y5", "e")}); err != nil || res[0].Sequence != 4 {
		t.Fatalf("Append() after the group = %+v, %v; want sequence 4", res, err)
	}
}

// TestLateJoinersCommitWithGroup queues requests while a group commits:
// they join its transaction (one commit for all), and a failing late
// joiner fails alone when the group is run again isolated.
func TestLateJoinersCommitWithGroup(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "late.db")
	// No writer goroutine: the test drives the writer itself, and requests
	// it queues stay in the queue until commit drains them.
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(s.reqs)
		if err := s.closeDBs(); err != nil {
			t.Error(err)
		}
	}()
	ev := func(id, dataID string) protocol.Event {
		return protocol.Event{ID: id, CreatedAt: time.UnixMilli(1000), DataID: dataID, Data: []byte(`{"id":"` + dataID + `"}`)}
	}
	req := func(repo string, events ...protocol.Event) *appendReq {
		return &appendReq{ctx: ctx, ns: "ns", repo: repo, events: events, done: make(chan appendResult, 1)}
	}
	first := req("y", ev("y1", "a"))
	late := []*appendReq{req("y", ev("y2", "b")), req("z", ev("z1", "a"))}
	for _, r := range late {
		s.reqs <- r
	}
	group := s.commit([]*appendReq{first})
	if len(group) != 3 || s.groups.Load() != 1 {
		t.Fatalf("commit took %d requests in %d transactions, want 3 in 1", len(group), s.groups.Load())
	}
	for i, r := range append([]*appendReq{first}, late...) {
		if res := <-r.done; res.err != nil || len(res.res) != 1 || !res.res[0].New {
			t.Fatalf("request %d = %+v, %v; want one new event", i, res.res, res.err)
		}
	}

	// A late joiner that fails (its sequence is taken behind the store's
	// back) fails alone; the others commit.
	db := rawDB(t, path)
	if _, err := db.Exec(`INSERT INTO events (repo_id, seq, id, data_id, op, created_at_ms, data)
		SELECT id, 2, 'intruder', 'z', 0, 0, '{}' FROM repos WHERE ns = 'ns' AND name = 'z'`); err != nil {
		t.Fatal(err)
	}
	first = req("y", ev("y3", "c"))
	late = []*appendReq{req("z", ev("z2", "b")), req("y", ev("y4", "d"))}
	for _, r := range late {
		s.reqs <- r
	}
	if group := s.commit([]*appendReq{first}); len(group) != 3 {
		t.Fatalf("commit took %d requests, want 3", len(group))
	}
	if res := <-first.done; res.err != nil || res.res[0].Sequence != 3 {
		t.Fatalf("first request = %+v, %v; want sequence 3", res.res, res.err)
	}
	if res := <-late[0].done; res.err == nil || !strings.Contains(res.err.Error(), "z2") {
		t.Fatalf("failing late request = %+v, %v; want an error about z2", res.res, res.err)
	}
	if res := <-late[1].done; res.err != nil || res.res[0].Sequence != 4 {
		t.Fatalf("last request = %+v, %v; want sequence 4", res.res, res.err)
	}
	if all, _, err := s.Range(ctx, "ns", "y", 0, 10); err != nil || eventIDs(all) != "y1 y2 y3 y4" {
		t.Fatalf("Range(y) = %s, %v; want y1 y2 y3 y4", eventIDs(all), err)
	}
	if all, _, err := s.Range(ctx, "ns", "z", 0, 10); err != nil || eventIDs(all) != "z1 intruder" {
		t.Fatalf("Range(z) = %s, %v; want z1 intruder", eventIDs(all), err)
	}
}

// TestGatherTakesRequestsUpToWant checks the writer's wait for the pushers
// of the last group: it takes queued requests until it holds as many as
// asked, and takes none once its deadline has passed.
func TestGatherTakesRequestsUpToWant(t *testing.T) {
	s, err := openStore(filepath.Join(t.TempDir(), "gather.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(s.reqs)
		if err := s.closeDBs(); err != nil {
			t.Error(err)
		}
	}()
	req := func() *appendReq {
		return &appendReq{ctx: context.Background(), ns: "ns", repo: "r", done: make(chan appendResult, 1),
			events: []protocol.Event{{ID: "e", CreatedAt: time.UnixMilli(1), DataID: "d"}}}
	}
	for range 4 {
		s.reqs <- req()
	}
	group := s.gather([]*appendReq{req()}, 3, time.Now().Add(time.Minute))
	if len(group) != 3 || len(s.reqs) != 2 {
		t.Fatalf("gather took %d requests and left %d queued, want 3 and 2", len(group), len(s.reqs))
	}
	group = s.gather(group[:1], 3, time.Now().Add(-time.Second))
	if len(group) != 1 || len(s.reqs) != 2 {
		t.Fatalf("gather past its deadline took %d requests and left %d queued, want 1 and 2", len(group), len(s.reqs))
	}
}
