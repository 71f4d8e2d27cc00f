package postgres_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// TestOpenConcurrently: nodes starting together on a new database migrate
// it once and all work.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	stores := make([]*postgres.Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(context.Background(), dsn)
		}()
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("Open() #%d failed: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}
	for i, s := range stores {
		res, err := s.Append(context.Background(), "ns", "todos", []protocol.Event{event(t, "d")})
		if err != nil || res[0].Sequence != int64(i+1) {
			t.Fatalf("Append() through node %d = %+v, %v; want sequence %d", i, res, err, i+1)
		}
	}
	var version int
	if err := admin(t, dsn).QueryRow(context.Background(), `SELECT version FROM lfsync_schema`).Scan(&version); err != nil || version != 1 {
		t.Fatalf("schema version = %d, %v; want 1 (one row)", version, err)
	}
}

// TestNodesAppendConcurrently: pushers on three nodes (stores) append to
// one repository, re-push each other's events and race to push the same
// new events; sequences stay gap-free and duplicate-free, every event is
// stored once and reported new once.
func TestNodesAppendConcurrently(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	nodes := []*postgres.Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	l := newLedger()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		acked  []protocol.Event
		shared = make(chan protocol.Event)
	)
	const pushers, appends = 9, 30
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := nodes[p%len(nodes)]
			r := rand.New(rand.NewPCG(uint64(p), 3))
			for i := range appends {
				var batch []protocol.Event
				switch i % 3 {
				case 0: // new events
					for range 1 + r.IntN(5) {
						batch = append(batch, event(t, label("doc-%d", r.IntN(20))))
					}
				case 1: // a re-push of any node's acked event, and a new one
					mu.Lock()
					if len(acked) > 0 {
						batch = append(batch, acked[r.IntN(len(acked))])
					}
					mu.Unlock()
					batch = append(batch, event(t, label("doc-%d", r.IntN(20))))
				case 2: // the same new event as a pusher on another node
					if p%2 == 0 {
						e := event(t, label("doc-%d", r.IntN(20)))
						select {
						case shared <- e:
						default:
						}
						batch = []protocol.Event{e}
					} else {
						select {
						case e := <-shared:
							batch = []protocol.Event{e}
						default:
							batch = []protocol.Event{event(t, "lonely")}
						}
					}
				}
				res, err := s.Append(context.Background(), "ns", "shared", batch)
				if err != nil {
					t.Errorf("pusher %d: Append() failed: %v", p, err)
					return
				}
				l.record(t, batch, res, nil)
				mu.Lock()
				acked = append(acked, batch...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, s := range nodes {
		t.Run(label("node%d", i), func(t *testing.T) { l.verify(t, s, "ns", "shared") })
	}
}

// TestNodesRaceSameEvent: two nodes push the same new event at the same
// moment; both get its one sequence and exactly one reports it new.
func TestNodesRaceSameEvent(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	a, b := open(t, dsn), open(t, dsn)
	for i := range 40 {
		e := event(t, label("doc-%d", i%7))
		var (
			wg   sync.WaitGroup
			res  [2][]server.Appended
			errs [2]error
		)
		for j, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[j], errs[j] = s.Append(context.Background(), "ns", "race", []protocol.Event{e})
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: Append() failed: %v, %v", i, errs[0], errs[1])
		}
		ra, rb := res[0][0], res[1][0]
		if ra.Sequence != int64(i+1) || rb.Sequence != ra.Sequence || ra.New == rb.New {
			t.Fatalf("round %d: nodes got %+v and %+v; want sequence %d on both, new on exactly one", i, ra, rb, i+1)
		}
	}
}
