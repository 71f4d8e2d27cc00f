package server_test

import (
	"fmt"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// BenchmarkPushAck measures one connection pushing batches of 100 events and
// waiting for each ack (SQLite, durable commits), with one subscriber
// receiving the fan-out.
func BenchmarkPushAck(b *testing.B) {
	s := servertest.Start(b, servertest.WithConfig(func(c *server.Config) { c.SendQueue = 1 << 16 }))
	w, r := dial(b, s), dial(b, s)
	w.auth("w")
	r.auth("r")
	r.request("bench", 0, 1)
	go func() {
		for {
			if _, err := r.readBytes(); err != nil {
				return
			}
		}
	}()
	batch := make([]map[string]any, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j] = ev(fmt.Sprint("doc", j), map[string]any{"i": i})
		}
		if ack := w.push("bench", batch...); len(ack.EventIDs) != len(batch) {
			b.Fatalf("ack of %d", len(ack.EventIDs))
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRequestEvents measures a catch-up page of 500 documents.
func BenchmarkRequestEvents(b *testing.B) {
	s := servertest.Start(b)
	c := dial(b, s)
	c.auth("x")
	for k := 0; k < 5; k++ {
		batch := make([]map[string]any, 100)
		for j := range batch {
			batch[j] = ev(fmt.Sprint("doc", k*100+j), map[string]any{"title": "some title"})
		}
		c.push("bench", batch...)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		events, done := c.request("bench", 0, 500)
		if len(events) != 500 || done.Type != protocol.TypeSyncComplete {
			b.Fatalf("%d events", len(events))
		}
	}
}
