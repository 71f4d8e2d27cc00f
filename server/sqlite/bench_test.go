package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lfsync/lfsync/core/protocol"
)

// BenchmarkAppend measures ingest with concurrent pushers, each appending
// batches of events to one shared repository and waiting for every ack.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct{ pushers, batch int }{
		{1, 1}, {10, 1}, {100, 1}, {10, 50}, {100, 10},
	} {
		b.Run(fmt.Sprintf("pushers=%d/batch=%d", bc.pushers, bc.batch), func(b *testing.B) {
			benchAppend(b, bc.pushers, bc.batch)
		})
	}
}

func benchAppend(b *testing.B, pushers, batch int) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	created := time.Now()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
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
					id := uuid.Must(uuid.NewV7()).String() // time-ordered, as clients make them
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
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("Append failed: %v", err)
	}
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*batch), "µs-cpu/event")
	if st := s.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Events)/float64(st.Commits), "events/commit")
	}
}

// BenchmarkRead measures catch-up reads of a 50,000-event log of 5,000
// documents in pages of 500: Latest (the reduced request_events path) and
// Range (fan-out and full catch-up).
func BenchmarkRead(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "read.db"))
	ctx := context.Background()
	created := time.Now()
	const events, docs, page = 50000, 5000, 500
	batch := make([]protocol.Event, 0, 1000)
	for i := range events {
		doc := "doc-" + strconv.Itoa(i%docs)
		batch = append(batch, protocol.Event{
			ID: "e-" + strconv.Itoa(i), Operation: protocol.OpUpdate, CreatedAt: created, DataID: doc,
			Data: []byte(`{"id":"` + doc + `","title":"Buy milk and some bread","done":false}`),
		})
		if len(batch) == cap(batch) {
			if _, err := s.Append(ctx, "bench", "todos", batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for _, bc := range []struct {
		name string
		read func(after int64) ([]protocol.Event, bool, error)
	}{
		{"Latest", func(after int64) ([]protocol.Event, bool, error) { return s.Latest(ctx, "bench", "todos", after, page) }},
		{"Range", func(after int64) ([]protocol.Event, bool, error) { return s.Range(ctx, "bench", "todos", after, page) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			read := 0
			var after int64
			for b.Loop() {
				got, more, err := bc.read(after)
				if err != nil {
					b.Fatal(err)
				}
				read += len(got)
				after = got[len(got)-1].ServerSequence
				if !more {
					after = 0
				}
			}
			b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
