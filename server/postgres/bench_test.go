package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// durableCluster starts a cluster with PostgreSQL's durability defaults
// (fsync on, unlike NewDB's) for b, so that figures compare with SQLite's
// synchronous=FULL.
func durableCluster(b *testing.B) *pgtest.Cluster {
	dir, err := os.MkdirTemp("", "lfsync-pgbench-")
	if err != nil {
		b.Fatal(err)
	}
	c, err := pgtest.Start(context.Background(), dir)
	if err != nil {
		os.RemoveAll(dir)
		if os.Getenv("CI") != "true" {
			b.Skip(err)
		}
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := c.Stop(); err != nil {
			b.Error(err)
		}
		os.RemoveAll(dir)
	})
	return c
}

// BenchmarkAppend measures ingest with concurrent pushers, each appending
// batches of events to one shared repository through one node and waiting
// for every ack (as server/sqlite's BenchmarkAppend does).
func BenchmarkAppend(b *testing.B) {
	c := durableCluster(b)
	n := 0
	for _, bc := range []struct{ pushers, batch int }{
		{1, 1}, {10, 1}, {100, 1}, {10, 50}, {100, 10},
	} {
		b.Run(fmt.Sprintf("pushers=%d/batch=%d", bc.pushers, bc.batch), func(b *testing.B) {
			n++
			dsn, err := c.CreateDB(context.Background(), "bench"+strconv.Itoa(n))
			if err != nil {
				b.Fatal(err)
			}
			benchAppend(b, dsn, bc.pushers, bc.batch)
		})
	}
}

func benchAppend(b *testing.B, dsn string, pushers, batch int) {
	s := open(b, dsn)
	ctx := context.Background()
	created := time.Now()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events := make([]protocol.Event, batch)
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				for i := range events {
					id := uuid.Must(uuid.NewV7()).String()
					doc := "doc-" + strconv.FormatInt((n*int64(batch)+int64(i))%5000, 10)
					events[i] = protocol.Event{
						ID: id, Operation: protocol.OpUpdate, CreatedAt: created, DataID: doc,
						Data: []byte(`{"id":"` + doc + `","title":"Buy milk and some bread","done":false,"n":` + strconv.FormatInt(n, 10) + `}`),
					}
				}
				if _, err := s.Append(ctx, "bench", "todos", events); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("Append failed: %v", err)
	}
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "events/s")
	if st := s.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Events)/float64(st.Commits), "events/commit")
	}
}
