package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/lfsync/lfsync/core"
)

// calls runs every Store method but Close and returns their errors by name.
func calls(ctx context.Context, s core.Store) map[string]error {
	errs := map[string]error{}
	errs["Write"] = s.Write(ctx, &core.Batch{
		Docs:    []core.DocWrite{{Repo: "todos", Doc: doc("late", "late")}},
		Events:  []core.OutboxEvent{event("todos", "e-late", "late")},
		Cursors: map[string]int64{"todos": 99},
		Config:  map[string]string{"late": "1"},
	})
	_, _, errs["Doc"] = s.Doc(ctx, "todos", "a")
	_, errs["Docs"] = s.Docs(ctx, "todos")
	_, errs["Pending"] = s.Pending(ctx, 0)
	_, errs["PendingCount"] = s.PendingCount(ctx)
	_, errs["Acked"] = s.Acked(ctx, 0)
	_, _, errs["Outbox"] = s.Outbox(ctx, "e1")
	_, errs["Cursor"] = s.Cursor(ctx, "todos")
	_, _, errs["Config"] = s.Config(ctx, "clientId")
	return errs
}

func testCancelledContext(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}}, Events: []core.OutboxEvent{event("todos", "e1", "a")}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range calls(ctx, s) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	// The cancelled write stored nothing; the store still works.
	mustNoDoc(t, s, "todos", "late")
	mustNoOutbox(t, s, "e-late")
	if c := mustCursor(t, s, "todos"); c != 0 {
		t.Fatalf("Cursor = %d after a cancelled write, want 0", c)
	}
	if v, ok := mustConfig(t, s, "late"); ok {
		t.Fatalf("Config(late) = %q after a cancelled write, want unset", v)
	}
	mustDoc(t, s, "todos", "a")
	if n := mustPendingCount(t, s); n != 1 {
		t.Fatalf("PendingCount = %d, want 1", n)
	}
}

func testClose(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: doc("a", "a")}}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, err := range calls(context.Background(), s) {
		if !errors.Is(err, core.ErrClosed) {
			t.Errorf("%s after Close = %v, want core.ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil && !errors.Is(err, core.ErrClosed) {
		t.Fatalf("second Close = %v, want nil or core.ErrClosed", err)
	}
}
