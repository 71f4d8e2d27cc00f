package postgres_test

import (
	"context"
	"math"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// TestRangeCursorEdges: Range bounds its page by the cursor (sequences are
// dense), so cursors below 1 and near the int64 limit must still page
// correctly.
func TestRangeCursorEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, pgtest.NewDB(t))
	var batch []protocol.Event
	for range 5 {
		batch = append(batch, event(t, "d"))
	}
	if _, err := s.Append(ctx, "ns", "r", batch); err != nil {
		t.Fatal(err)
	}
	for _, after := range []int64{-3, math.MinInt64} {
		got, more, err := s.Range(ctx, "ns", "r", after, 2)
		if err != nil || !more || len(got) != 2 || got[0].ServerSequence != 1 {
			t.Fatalf("Range(after=%d, limit=2) = %d events, more %v, %v; want sequences 1-2 and more", after, len(got), more, err)
		}
		got, more, err = s.Range(ctx, "ns", "r", after, 5)
		if err != nil || more || len(got) != 5 {
			t.Fatalf("Range(after=%d, limit=5) = %d events, more %v, %v; want all 5, no more", after, len(got), more, err)
		}
	}
	for _, limit := range []int{1, math.MaxInt32} {
		got, more, err := s.Range(ctx, "ns", "r", math.MaxInt64-1, limit)
		if err != nil || more || len(got) != 0 {
			t.Fatalf("Range(after=MaxInt64-1, limit=%d) = %d events, more %v, %v; want nothing", limit, len(got), more, err)
		}
	}
}
