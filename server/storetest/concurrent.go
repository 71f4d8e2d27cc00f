package storetest

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// ledger records every Appended result of concurrent appends and checks
// that they agree with each other and with the store.
type ledger struct {
	mu     sync.Mutex
	seq    map[string]int64 // event id -> sequence
	news   map[string]int   // event id -> results with New set
	events map[string]protocol.Event
	acked  []protocol.Event // events of successful appends, for re-pushes
}

func newLedger() *ledger {
	return &ledger{seq: map[string]int64{}, news: map[string]int{}, events: map[string]protocol.Event{}}
}

// record adds the results of one successful Append of events.
func (l *ledger) record(t testing.TB, events []protocol.Event, res []server.Appended) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(res) != len(events) {
		t.Errorf("Append(%d events) returned %d results", len(events), len(res))
		return
	}
	for i, r := range res {
		e := events[i]
		if r.ID != e.ID {
			t.Errorf("Append()[%d].ID = %q, want %q", i, r.ID, e.ID)
			continue
		}
		if seq, ok := l.seq[e.ID]; ok && seq != r.Sequence {
			t.Errorf("event %s acked at sequence %d and at %d", e.ID, seq, r.Sequence)
		}
		l.seq[e.ID] = r.Sequence
		l.events[e.ID] = e
		if r.New {
			l.news[e.ID]++
		}
		l.acked = append(l.acked, e)
	}
}

// pick returns a random acked event, if any.
func (l *ledger) pick(r *rand.Rand) (protocol.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) == 0 {
		return protocol.Event{}, false
	}
	return l.acked[r.IntN(len(l.acked))], true
}

// verify checks the repository against the ledger: sequences exactly
// 1..N, every acked event stored once at its acked sequence, reported new
// at most once, and Latest holding the last event of every document.
// exact requires every stored event to have been acked.
func (l *ledger) verify(t testing.TB, s server.Store, ns, repo string, exact bool) []protocol.Event {
	t.Helper()
	all := rangeAll(t, s, ns, repo)
	stored := map[string]int64{}
	lastOfDoc := map[string]protocol.Event{}
	for i, e := range all {
		if e.ServerSequence != int64(i+1) {
			t.Fatalf("Range()[%d] has sequence %d, want %d: sequences must run 1..N without gap or duplicate", i, e.ServerSequence, i+1)
		}
		if _, dup := stored[e.ID]; dup {
			t.Fatalf("event %s is stored twice", e.ID)
		}
		stored[e.ID] = e.ServerSequence
		lastOfDoc[e.DataID] = e
	}
	for id, seq := range l.seq {
		got, ok := stored[id]
		if !ok {
			t.Fatalf("acked event %s (sequence %d) is not stored", id, seq)
		}
		if got != seq {
			t.Fatalf("acked event %s has sequence %d in Range, %d in its ack", id, got, seq)
		}
		if l.news[id] > 1 {
			t.Fatalf("event %s was reported new %d times", id, l.news[id])
		}
	}
	if exact {
		if len(stored) != len(l.seq) {
			t.Fatalf("Range() holds %d events, %d were acked", len(stored), len(l.seq))
		}
		for id := range l.seq {
			if l.news[id] != 1 {
				t.Fatalf("event %s was reported new %d times, want once", id, l.news[id])
			}
		}
	}
	if seq, err := s.LastSequence(context.Background(), ns, repo); err != nil || seq != int64(len(all)) {
		t.Fatalf("LastSequence() = %d, %v; want %d", seq, err, len(all))
	}
	latest := latestAll(t, s, ns, repo)
	if len(latest) != len(lastOfDoc) {
		t.Fatalf("Latest() returned %d documents, want %d", len(latest), len(lastOfDoc))
	}
	for _, e := range latest {
		if want := lastOfDoc[e.DataID]; e.ID != want.ID {
			t.Fatalf("Latest() has event %s for document %s, want its last event %s", e.ID, e.DataID, want.ID)
		}
	}
	return all
}

func testConcurrentAppends(t *testing.T, s server.Store) {
	const (
		pushers = 20
		appends = 120
	)
	l := newLedger()
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 42))
			c := newClock()
			for i := range appends {
				var batch []protocol.Event
				switch i % 4 {
				case 0, 1: // one new event
					batch = []protocol.Event{put(t, protocol.OpUpdate, label("doc-%d", r.IntN(30)), c.next(), label(`"p":%d`, p))}
				case 2: // a batch of new events, sometimes with an inner duplicate
					for range 1 + r.IntN(6) {
						batch = append(batch, put(t, protocol.OpInsert, label("doc-%d", r.IntN(30)), c.next(), ""))
					}
					if r.IntN(3) == 0 {
						batch = append(batch, batch[0])
					}
				case 3: // a re-push of any pusher's acked event, plus a new one
					if old, ok := l.pick(r); ok {
						batch = append(batch, old)
					}
					batch = append(batch, del(t, label("doc-%d", r.IntN(30)), c.next()))
				}
				res, err := s.Append(context.Background(), "ns", "shared", batch)
				if err != nil {
					t.Errorf("pusher %d: Append() failed: %v", p, err)
					return
				}
				l.record(t, batch, res)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	all := l.verify(t, s, "ns", "shared", true)
	repos, err := s.Repositories(context.Background(), "ns")
	if err != nil || len(repos) != 1 || repos[0].LastSequence != int64(len(all)) || repos[0].Events != int64(len(all)) {
		t.Fatalf("Repositories() = %+v, %v; want shared with %d events", repos, err, len(all))
	}
}

func testCancelDuringAppends(t *testing.T, s server.Store) {
	const pushers = 10
	l := newLedger()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []protocol.Event
	)
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 7))
			c := newClock()
			for range 40 {
				batch := []protocol.Event{put(t, protocol.OpInsert, label("doc-%d", r.IntN(20)), c.next(), "")}
				if r.IntN(2) == 0 {
					batch = append(batch, put(t, protocol.OpInsert, label("doc-%d", r.IntN(20)), c.next(), ""))
				}
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(2) == 0 {
					cancel() // some canceled before the call, some racing with it
				} else {
					go cancel()
				}
				res, err := s.Append(ctx, "ns", "todos", batch)
				cancel()
				if err != nil {
					mu.Lock()
					failed = append(failed, batch...)
					mu.Unlock()
					continue
				}
				l.record(t, batch, res)
			}
		}()
	}
	wg.Wait()
	l.verify(t, s, "ns", "todos", false)
	// Failed appends may or may not have been stored; pushing them again
	// stores each exactly once.
	for _, e := range failed {
		res, err := s.Append(context.Background(), "ns", "todos", []protocol.Event{e})
		if err != nil {
			t.Fatalf("re-pushing an event whose append was canceled failed: %v", err)
		}
		l.record(t, []protocol.Event{e}, res)
	}
	all := l.verify(t, s, "ns", "todos", false)
	if len(all) != len(l.seq) {
		t.Fatalf("after re-pushing canceled events Range() holds %d events, %d were acked", len(all), len(l.seq))
	}
}
