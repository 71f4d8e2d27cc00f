package servertest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/servertest"
)

func TestStartStopRestartWithDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := servertest.Start(t, servertest.WithDir(dir))
	ev := protocol.Event{ID: "e1", DataID: "d1", Data: []byte(`{"id":"d1"}`), CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := s.Store().Append(context.Background(), "default", "todos", []protocol.Event{ev}); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(s.URL() + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s.Stop()
	s.Stop() // idempotent
	if s.Store() != nil || s.Connections() != 0 {
		t.Fatal("a stopped server still has a store or connections")
	}
	if _, err := http.Get(s.URL() + "/api/health"); err == nil {
		t.Fatal("a stopped server answers")
	}
	s.Restart()
	if n, err := s.Store().LastSequence(context.Background(), "default", "todos"); err != nil || n != 1 {
		t.Fatalf("after restart: last sequence %d, %v", n, err)
	}
	s.Stop()

	// Another Start on the same directory opens the same database.
	s2 := servertest.Start(t, servertest.WithDir(dir))
	if n, err := s2.Store().LastSequence(context.Background(), "default", "todos"); err != nil || n != 1 {
		t.Fatalf("second start: last sequence %d, %v", n, err)
	}
}
