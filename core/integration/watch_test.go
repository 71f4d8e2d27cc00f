package integration_test

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server/servertest"
)

// TestInvalidateSeesAnotherTabsWrites shares one store between two clients,
// as two browser tabs share IndexedDB: only the leader is started, and it
// learns of the other tab's writes through Invalidate.
func TestInvalidateSeesAnotherTabsWrites(t *testing.T) {
	srv := servertest.Start(t)
	store := core.NewMemoryStore()
	defer store.Close()
	opts := fastOptions(srv.WSURL(), "todos")
	leader, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	follower, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	if leader.ClientID() != follower.ClientID() {
		t.Fatalf("tabs sharing a store got different client ids %s and %s", leader.ClientID(), follower.ClientID())
	}
	var mu sync.Mutex
	var last []json.RawMessage
	calls := 0
	cancel := leader.Repository("todos").Watch(core.Query{}, func(docs []json.RawMessage) {
		mu.Lock()
		last, calls = docs, calls+1
		mu.Unlock()
	})
	defer cancel()
	waitFor(t, "the initial result", func() bool { mu.Lock(); defer mu.Unlock(); return calls == 1 })
	leader.Start()
	waitSynced(t, leader)

	upsert(t, follower.Repository("todos"), "1", `{"from":"follower"}`)
	leader.Invalidate("todos")
	waitFor(t, "the follower's write in the leader's watcher", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(last) == 1
	})
	waitSynced(t, leader)
	other, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	waitSynced(t, other)
	if got := get(t, other.Repository("todos"), "1"); got["from"] != "follower" {
		t.Fatalf("the follower's write did not reach the server through the leader: %v", got)
	}
}
