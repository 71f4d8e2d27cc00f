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
	n    atomic.Int64
	mu   sync.Mutex
	subs []chan server.Advance
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
	if s.n.Add(1)%3 == 0 {
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

// TestWatcherFanOutAcrossNodes: clients of node B receive, in order and
// exactly once, the events pushed concurrently through node A, although
// node B learns of them only from (lossy) store notifications.
func TestWatcherFanOutAcrossNodes(t *testing.T) {
	t.Parallel()
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
	a, b := node(), node()
	t.Cleanup(func() { st.Close() })

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
