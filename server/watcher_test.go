package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/sqlite"
)

// sharedStore is one real SQLite store shared by two server nodes in one
// process. It implements server.Watcher the way a multi-node store does:
// every append is announced to every node, and some announcements are lost.
type sharedStore struct {
	*sqlite.Store
	n        atomic.Int64
	lossless bool        // lose no notification unless muted (set before use)
	mute     atomic.Bool // lose every notification
	mu       sync.Mutex
	subs     []chan server.Advance
}

func (s *sharedStore) Append(ctx context.Context, ns, repo string, events []protocol.Event) ([]server.Appended, error) {
	res, err := s.Store.Append(ctx, ns, repo, events)
	if err != nil {
		return res, err
	}
	var max int64
	for _, r := range res {
		max = r.Sequence
	}
	if (s.n.Add(1)%3 == 0 && !s.lossless) || s.mute.Load() {
		return res, nil // lost notification
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- server.Advance{Namespace: ns, Repository: repo, Sequence: max}:
		default: // a full channel loses it too
		}
	}
	return res, nil
}

func (s *sharedStore) Watch(ctx context.Context) (<-chan server.Advance, error) {
	ch := make(chan server.Advance, 16)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch, nil
}

var _ server.Watcher = (*sharedStore)(nil)

// twoNodes starts two server nodes on one lossy sharedStore and returns
// their WebSocket URLs.
func twoNodes(t *testing.T) (a, b string) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	shared := &sharedStore{Store: st}
	node := func() string {
		srv, err := server.New(server.Config{Store: shared, Verifier: server.OpenVerifier(), WatchPoll: 50 * time.Millisecond, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			srv.Shutdown(context.Background())
			hs.Close()
		})
		return "ws" + strings.TrimPrefix(hs.URL, "http") + "/sync"
	}
	a, b = node(), node()
	t.Cleanup(func() { st.Close() })
	return a, b
}

// TestWatcherFanOutAcrossNodes: clients of node B receive, in order and
// exactly once, the events pushed concurrently through node A, although
// node B learns of them only from (lossy) store notifications.
func TestWatcherFanOutAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)

	const writers, perWriter = 4, 30
	var readers []*client
	for range 3 {
		r := dialURL(t, b, nil)
		r.auth("r")
		r.request("todos", 0, 10)
		readers = append(readers, r)
	}
	var wg sync.WaitGroup
	for w := range writers {
		c := dialURL(t, a, nil)
		c.auth("w")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				c.send(map[string]any{"type": "push_event", "repository": "todos", "event": ev(fmt.Sprint(w, "-", i), nil)})
				for {
					m := c.read()
					if m.Type == protocol.TypeAck {
						break
					}
					if m.Type != protocol.TypeEvents { // other writers' events
						t.Errorf("writer %d: got %s %s", w, m.Type, m.Text)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for i, r := range readers {
		var next int64 = 1
		for next <= writers*perWriter {
			m := r.expect(protocol.TypeEvents)
			for _, e := range m.Events {
				if e.ServerSequence != next {
					t.Fatalf("reader %d: got sequence %d, want %d", i, e.ServerSequence, next)
				}
				next++
			}
		}
	}
}

// laggingStore hides one sequence from Range for a while, as a shared log
// does when a later commit becomes visible before an earlier one.
type laggingStore struct {
	*sqlite.Store
	hide   int64
	hidden atomic.Int64 // Range calls that hid it
	limit  int64
}

func (s *laggingStore) Range(ctx context.Context, ns, repo string, after int64, limit int) ([]protocol.Event, bool, error) {
	events, more, err := s.Store.Range(ctx, ns, repo, after, limit)
	if err != nil || s.hidden.Load() >= s.limit {
		return events, more, err
	}
	for i, e := range events {
		if e.ServerSequence == s.hide {
			s.hidden.Add(1)
			return append(events[:i:i], events[i+1:]...), more, nil
		}
	}
	return events, more, err
}

// TestFanOutWaitsForAHiddenSequence: fan-out never skips a sequence that
// is late to become visible; it delivers in order once it appears.
func TestFanOutWaitsForAHiddenSequence(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "lag.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ls := &laggingStore{Store: st, hide: 2, limit: 3}
	srv, err := server.New(server.Config{Store: ls, Verifier: server.OpenVerifier(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		hs.Close()
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/sync"
	r := dialURL(t, url, nil)
	r.auth("r")
	r.request("todos", 0, 10)
	w := dialURL(t, url, nil)
	w.auth("w")
	for i := range 4 {
		w.push("todos", ev(fmt.Sprint("d", i), nil))
	}
	var got []int64
	for len(got) < 4 {
		for _, e := range r.expect(protocol.TypeEvents).Events {
			got = append(got, e.ServerSequence)
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("got sequences %v, want [1 2 3 4]", got)
	}
	if ls.hidden.Load() == 0 {
		t.Fatal("the sequence was never hidden; the test did not test anything")
	}
}

// TestWatcherNewSubscriberGetsOnlyNewEvents: a node that lost every
// notification while its repository had no subscriber does not replay the
// missed events to the next subscriber as live fan-out (its catch-up has
// them); it sends only what is appended after.
func TestWatcherNewSubscriberGetsOnlyNewEvents(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	shared := &sharedStore{Store: st, lossless: true}
	node := func() (*server.Server, string) {
		// A long poll: only notifications and the subscription itself
		// move node B's broadcaster.
		srv, err := server.New(server.Config{Store: shared, Verifier: server.OpenVerifier(), WatchPoll: time.Hour, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			srv.Shutdown(context.Background())
			hs.Close()
		})
		return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + "/sync"
	}
	_, a := node()
	srvB, b := node()

	w := dialURL(t, a, nil)
	w.auth("w")
	w.push("todos", ev("first", nil))

	// A subscriber on B makes B's broadcaster, then leaves.
	r1 := dialURL(t, b, nil)
	r1.auth("r1")
	r1.request("todos", 0, 10)
	r1.ws.CloseNow()
	for srvB.Connections() != 0 {
		time.Sleep(5 * time.Millisecond)
	}

	// Node B hears of none of these.
	shared.mute.Store(true)
	for i := range 20 {
		w.push("todos", ev(fmt.Sprint("missed-", i), nil))
	}
	shared.mute.Store(false)

	r2 := dialURL(t, b, nil)
	r2.auth("r2")
	got, done := r2.request("todos", 0, 100)
	if len(got) != 21 || done.LastSequence != 21 {
		t.Fatalf("catch-up: %d events up to %d, want 21 up to 21", len(got), done.LastSequence)
	}
	// The next notification reaches B: r2 gets exactly the new event.
	w.push("todos", ev("new", nil))
	m := r2.expect(protocol.TypeEvents)
	if len(m.Events) != 1 || m.Events[0].ServerSequence != 22 {
		t.Fatalf("live fan-out after catch-up sent sequences %v, want [22]", seqs(m.Events))
	}
}

func seqs(events []protocol.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.ServerSequence
	}
	return out
}

// TestRequestAllAcrossNodes: a client of node B that asked for every
// repository (request_all_events without one) receives the events of
// repositories created through node A, although node B learns of them only
// from lossy notifications and its poll.
func TestRequestAllAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)

	r := dialURL(t, b, nil)
	r.auth("r")
	r.send(map[string]any{"type": "request_all_events"})
	for m := r.read(); m.Type != protocol.TypeSyncComplete; m = r.read() {
	}
	w := dialURL(t, a, nil)
	w.auth("w")
	want := map[string]bool{}
	for i := range 6 { // every third notification is lost
		repo := fmt.Sprint("repo", i)
		w.push(repo, ev("d"+repo, nil))
		want[repo] = true
	}
	got := map[string]int{}
	for len(got) < len(want) {
		m := r.expect(protocol.TypeEvents)
		if !want[m.Repository] {
			t.Fatalf("events of unexpected repository %q", m.Repository)
		}
		got[m.Repository] += len(m.Events)
	}
	for repo, n := range got {
		if n != 1 {
			t.Fatalf("%s: %d events, want 1 (got %v)", repo, n, got)
		}
	}
}
