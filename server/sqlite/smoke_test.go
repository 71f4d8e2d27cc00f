package sqlite_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/sqlite"
)

func TestAppendLatestRange(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "lfsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	evs := []protocol.Event{
		{ID: "e1", Operation: protocol.OpInsert, CreatedAt: now, DataID: "d1", Data: json.RawMessage(`{"id":"d1"}`)},
		{ID: "e2", Operation: protocol.OpInsert, CreatedAt: now, DataID: "d2", Data: json.RawMessage(`{"id":"d2"}`)},
		{ID: "e3", Operation: protocol.OpDelete, CreatedAt: now, DataID: "d1"},
	}
	res, err := s.Append(ctx, "ns", "todos", evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.ID != evs[i].ID || r.Sequence != int64(i+1) || !r.New {
			t.Fatalf("Append()[%d] = %+v, want %s at %d, new", i, r, evs[i].ID, i+1)
		}
	}
	if res, err = s.Append(ctx, "ns", "todos", evs[:1]); err != nil || res[0].Sequence != 1 || res[0].New {
		t.Fatalf("re-push = %+v, %v; want sequence 1, not new", res, err)
	}
	latest, more, err := s.Latest(ctx, "ns", "todos", 0, 10)
	if err != nil || more || len(latest) != 2 || latest[0].ID != "e2" || latest[1].ID != "e3" {
		t.Fatalf("Latest() = %v, %v, %v; want e2, e3", latest, more, err)
	}
	all, more, err := s.Range(ctx, "ns", "todos", 0, 2)
	if err != nil || !more || len(all) != 2 || all[0].ID != "e1" || all[1].ID != "e2" {
		t.Fatalf("Range() = %v, %v, %v; want e1, e2 and more", all, more, err)
	}
}
