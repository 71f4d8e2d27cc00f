package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// event returns a new update event of document doc.
func event(t testing.TB, doc string) protocol.Event {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("failed to make an event id: %v", err)
	}
	return protocol.Event{
		ID: id.String(), Operation: protocol.OpUpdate, CreatedAt: time.Now(), DataID: doc,
		Data: []byte(`{"id":"` + doc + `"}`),
	}
}

// admin connects to dsn for statements a test runs beside the stores.
func admin(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("failed to connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// terminate ends the database's backends other than conn's own whose
// application_name matches like (a LIKE pattern) and returns how many.
func terminate(t testing.TB, conn *pgx.Conn, like string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE $1`, like).Scan(&n)
	if err != nil {
		t.Fatalf("failed to terminate backends: %v", err)
	}
	return n
}

// ledger records acknowledged appends from several goroutines and stores.
type ledger struct {
	mu     sync.Mutex
	seq    map[string]int64 // event id -> acked sequence
	news   map[string]int   // event id -> acks reporting it new
	failed []protocol.Event // events of failed appends
	errs   map[string]int   // errors of failed appends, counted
}

func newLedger() *ledger {
	return &ledger{seq: map[string]int64{}, news: map[string]int{}, errs: map[string]int{}}
}

// record adds one Append's outcome.
func (l *ledger) record(t testing.TB, events []protocol.Event, res []server.Appended, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed = append(l.failed, events...)
		l.errs[err.Error()]++
		return
	}
	if len(res) != len(events) {
		t.Errorf("Append(%d events) returned %d results", len(events), len(res))
		return
	}
	for i, r := range res {
		id := events[i].ID
		if r.ID != id {
			t.Errorf("Append()[%d].ID = %s, want %s", i, r.ID, id)
		}
		if old, ok := l.seq[id]; ok && old != r.Sequence {
			t.Errorf("event %s acked at sequence %d and at %d", id, old, r.Sequence)
		}
		l.seq[id] = r.Sequence
		if r.New {
			l.news[id]++
		}
	}
}

// verify checks the repository against the ledger: sequences 1..N, each
// acked event stored once at its acked sequence and reported new exactly
// once, events of failed appends stored only if some other append acked
// them, and nothing stored that was never acked.
func (l *ledger) verify(t testing.TB, s server.Store, ns, repo string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	stored := map[string]int64{}
	var after int64
	for {
		events, more, err := s.Range(context.Background(), ns, repo, after, 1000)
		if err != nil {
			t.Fatalf("Range() failed: %v", err)
		}
		for _, e := range events {
			if e.ServerSequence != after+1 {
				t.Fatalf("Range() has sequence %d after %d: sequences must run 1..N without gap or duplicate", e.ServerSequence, after)
			}
			after = e.ServerSequence
			if _, dup := stored[e.ID]; dup {
				t.Fatalf("event %s is stored twice", e.ID)
			}
			stored[e.ID] = e.ServerSequence
		}
		if !more {
			break
		}
	}
	for id, seq := range l.seq {
		if got, ok := stored[id]; !ok || got != seq {
			t.Fatalf("acked event %s (sequence %d) is stored at %d (0: missing)", id, seq, got)
		}
		if l.news[id] != 1 {
			t.Fatalf("event %s was reported new %d times, want once", id, l.news[id])
		}
	}
	if len(stored) != len(l.seq) {
		for _, e := range l.failed {
			if _, acked := l.seq[e.ID]; !acked {
				if _, ok := stored[e.ID]; ok {
					t.Fatalf("event %s of a failed Append is stored: an error must mean nothing was stored", e.ID)
				}
			}
		}
		t.Fatalf("Range() holds %d events, %d were acked", len(stored), len(l.seq))
	}
	if seq, err := s.LastSequence(context.Background(), ns, repo); err != nil || seq != after {
		t.Fatalf("LastSequence() = %d, %v; want %d", seq, err, after)
	}
}

func label(format string, args ...any) string { return fmt.Sprintf(format, args...) }
