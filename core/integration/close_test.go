package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server/servertest"
)

// engineGoroutines counts goroutines running code of the core package
// (tests excluded).
func engineGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var dump strings.Builder
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "lfsync/lfsync/core.") && !strings.Contains(s, "core_test.") && !strings.Contains(s, "testing.tRunner") {
			n++
			dump.WriteString(s)
			dump.WriteString("\n\n")
		}
	}
	return n, dump.String()
}

func TestCloseReleasesEveryGoroutine(t *testing.T) {
	srv := servertest.Start(t)
	base, _ := engineGoroutines()
	store := core.NewMemoryStore()
	defer store.Close()
	c, err := core.NewClient(store, fastOptions(srv.WSURL(), "todos"))
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	r := c.Repository("todos")
	cancel := r.Watch(core.Query{}, func([]json.RawMessage) {})
	defer cancel()
	c.OnStatus(func(core.SyncStatus) {})
	upsert(t, r, "1", `{"v":1}`)
	waitSynced(t, c)
	if n, _ := engineGoroutines(); n <= base {
		t.Fatalf("no engine goroutines while running (%d, base %d): the check cannot see them", n, base)
	}
	// Stop and Start again, then Close while a reconnect may be pending.
	c.Stop()
	c.Start()
	srv.CloseConnections()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		n, dump := engineGoroutines()
		if n <= base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d engine goroutines left after Close (base %d):\n%s", n, base, dump)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.WaitSynced(context.Background()); core.Code(err) != core.CodeClosed {
		t.Fatalf("WaitSynced after Close: %v", err)
	}
}
