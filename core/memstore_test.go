package core_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		s := core.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func BenchmarkMemoryStore(b *testing.B) {
	ctx := context.Background()
	batch := func(n, from int) *core.Batch {
		bt := &core.Batch{}
		for i := 0; i < n; i++ {
			id := strconv.Itoa(100000 + from + i)
			bt.Docs = append(bt.Docs, core.DocWrite{Repo: "todos", Doc: core.Doc{ID: id,
				Data: json.RawMessage(`{"id":"` + id + `","title":"Task ` + id + `","done":false}`)}})
		}
		return bt
	}
	b.Run("Write1000", func(b *testing.B) {
		s := core.NewMemoryStore()
		defer s.Close()
		bt := batch(1000, 0)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Write(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Docs10000", func(b *testing.B) {
		s := core.NewMemoryStore()
		defer s.Close()
		if err := s.Write(ctx, batch(10000, 0)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Docs(ctx, "todos"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
