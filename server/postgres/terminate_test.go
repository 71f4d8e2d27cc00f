package postgres_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/postgres"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// backendPID waits until a backend named app runs other than not, and
// returns its pid.
func backendPID(t *testing.T, conn *pgx.Conn, app string, not int32) int32 {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a deadlock guard
	for {
		var pid int32
		err := conn.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND pid <> $2 LIMIT 1`, app, not).Scan(&pid)
		if err == nil {
			return pid
		}
		if err != pgx.ErrNoRows {
			t.Fatalf("failed to look for backend %q: %v", app, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backend %q appeared", app)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchSurvivesTerminatedConnections: Watch reconnects when its LISTEN
// connection is terminated, and when every connection of both nodes is,
// and still reports the other node's appends.
func TestWatchSurvivesTerminatedConnections(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	// An hour between polls: advances come from notifications and from
	// the catch-up poll after a reconnect.
	a, b := open(t, dsn, postgres.WithPollInterval(time.Hour)), open(t, dsn)
	conn := admin(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch() failed: %v", err)
	}
	old := backendPID(t, conn, "lfsync watcher", 0)
	if n := terminate(t, conn, "lfsync watcher"); n != 1 {
		t.Fatalf("terminated %d watcher backends, want 1", n)
	}
	backendPID(t, conn, "lfsync watcher", old) // reconnected
	res, err := b.Append(context.Background(), "ns", "todos", []protocol.Event{event(t, "d")})
	if err != nil {
		t.Fatal(err)
	}
	watchFor(t, ch, "ns", "todos", res[0].Sequence)

	// Every connection of both nodes: pools, notifiers, the watcher.
	old = backendPID(t, conn, "lfsync watcher", 0)
	terminate(t, conn, "%")
	res, err = b.Append(context.Background(), "ns", "todos", []protocol.Event{event(t, "d")})
	if err != nil {
		t.Fatalf("Append() after its node's connections were terminated failed: %v", err)
	}
	if res[0].Sequence != 2 {
		t.Fatalf("Append() after termination got sequence %d, want 2", res[0].Sequence)
	}
	watchFor(t, ch, "ns", "todos", 2)
	backendPID(t, conn, "lfsync watcher", old)
}

// TestAppendSurvivesTerminatedConnections: pushers on two nodes append
// while every backend is terminated again and again. An Append either
// succeeds or stores nothing; failed events pushed again are stored once;
// sequences stay gap-free.
func TestAppendSurvivesTerminatedConnections(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	nodes := []*postgres.Store{open(t, dsn), open(t, dsn)}
	conn := admin(t, dsn)

	// A single Append right after its pool's connections died.
	if _, err := nodes[0].Append(context.Background(), "ns", "todos", []protocol.Event{event(t, "d")}); err != nil {
		t.Fatal(err)
	}
	terminate(t, conn, "%")
	if _, err := nodes[0].Append(context.Background(), "ns", "todos", []protocol.Event{event(t, "d")}); err != nil {
		t.Fatalf("Append() after its pool's connections were terminated failed: %v", err)
	}
	if _, err := nodes[0].Append(context.Background(), "ns", "todos", []protocol.Event{event(t, "d")}); err != nil {
		t.Fatalf("second Append() after termination failed: %v", err)
	}

	l := newLedger()
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		killed  atomic.Int64
		killing sync.WaitGroup
	)
	killing.Add(1)
	go func() {
		defer killing.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			killed.Add(int64(terminate(t, conn, "%")))
		}
	}()
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := nodes[p%2]
			r := rand.New(rand.NewPCG(uint64(p), 11))
			for range 25 {
				batch := make([]protocol.Event, 1+r.IntN(4))
				for i := range batch {
					batch[i] = event(t, label("doc-%d", r.IntN(10)))
				}
				res, err := s.Append(context.Background(), "ns", "stress", batch)
				l.record(t, batch, res, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	killing.Wait()
	t.Logf("terminated %d backends; %d events failed: %v", killed.Load(), len(l.failed), l.errs)
	// Failed appends stored nothing: pushing them again stores each once.
	failed := l.failed
	l.failed = nil
	for _, e := range failed {
		res, err := nodes[0].Append(context.Background(), "ns", "stress", []protocol.Event{e})
		if err != nil {
			t.Fatalf("re-pushing a failed event failed: %v", err)
		}
		l.record(t, []protocol.Event{e}, res, nil)
	}
	l.verify(t, nodes[1], "ns", "stress")
}
