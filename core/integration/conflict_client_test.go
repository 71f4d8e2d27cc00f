package integration_test

import (
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server/servertest"
)

// pair starts two clients with the same strategy on one server, both
// holding the document todos/1 = base.
func pair(t *testing.T, strategy core.ConflictStrategy, resolve core.ResolveFunc, base string) (a, b *core.Client, bstore *core.MemoryStore) {
	t.Helper()
	srv := servertest.Start(t)
	opts := fastOptions(srv.WSURL(), "todos")
	opts.Conflict = strategy
	opts.Resolve = resolve
	a, _ = newClient(t, opts)
	b, bstore = newClient(t, opts)
	upsert(t, a.Repository("todos"), "1", base)
	waitSynced(t, a, b)
	if get(t, b.Repository("todos"), "1") == nil {
		t.Fatal("b did not receive the base document")
	}
	return a, b, bstore
}

// concurrently makes a and b edit offline, then brings a online first and
// b second.
func concurrently(t *testing.T, a, b *core.Client, editA, editB func()) {
	t.Helper()
	a.Stop()
	b.Stop()
	editA()
	editB()
	a.Start()
	waitSynced(t, a)
	b.Start()
	waitSynced(t, b, a, b)
}

func TestFieldMergeKeepsBothFieldsThroughTheServer(t *testing.T) {
	a, b, _ := pair(t, core.FieldMerge, nil, `{"title":"a","done":false}`)
	concurrently(t, a, b,
		func() { upsert(t, a.Repository("todos"), "1", `{"title":"renamed","done":false}`) },
		func() { upsert(t, b.Repository("todos"), "1", `{"title":"a","done":true}`) })
	for name, c := range map[string]*core.Client{"a": a, "b": b} {
		got := get(t, c.Repository("todos"), "1")
		if got["title"] != "renamed" || got["done"] != true {
			t.Errorf("%s holds %v, want both edits", name, got)
		}
	}
}

func TestLastWriteWinsOlderUpdateDoesNotResurrect(t *testing.T) {
	a, b, _ := pair(t, core.LastWriteWins, nil, `{"v":0}`)
	concurrently(t, a, b,
		func() {},
		func() {})
	b.Stop()
	upsert(t, b.Repository("todos"), "1", `{"v":"older update"}`)
	if err := a.Repository("todos").Delete(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, a)
	b.Start()
	waitSynced(t, b, a)
	if got := get(t, a.Repository("todos"), "1"); got != nil {
		t.Errorf("a: the older update resurrected the document: %v", got)
	}
	if got := get(t, b.Repository("todos"), "1"); got != nil {
		t.Errorf("b: the older update survived a later delete: %v", got)
	}
}

func TestServerWinsSupersedesUnsentLocalChange(t *testing.T) {
	a, b, bstore := pair(t, core.ServerWins, nil, `{"v":0}`)
	var bEvent string
	concurrently(t, a, b,
		func() { upsert(t, a.Repository("todos"), "1", `{"v":"a"}`) },
		func() {
			upsert(t, b.Repository("todos"), "1", `{"v":"b"}`)
			p, _ := bstore.Pending(context.Background(), 0)
			bEvent = p[0].Event.ID
		})
	for name, c := range map[string]*core.Client{"a": a, "b": b} {
		if got := get(t, c.Repository("todos"), "1"); got["v"] != "a" {
			t.Errorf("%s holds %v, want the server's first write v=a", name, got)
		}
	}
	ev, ok, err := bstore.Outbox(context.Background(), bEvent)
	if err != nil || !ok || ev.Status != core.StatusFailed || ev.Error == "" {
		t.Fatalf("b's superseded event: %+v %v %v, want failed with a reason", ev, ok, err)
	}
}

func TestServerWinsOrdersInFlightChangesBySequence(t *testing.T) {
	a, b, _ := pair(t, core.ServerWins, nil, `{"v":0}`)
	// Both online: each write is pushed at once; whichever the server
	// sequences last must win on both replicas.
	upsert(t, a.Repository("todos"), "1", `{"v":"a"}`)
	upsert(t, b.Repository("todos"), "1", `{"v":"b"}`)
	waitSynced(t, a, b, a)
	ga, gb := get(t, a.Repository("todos"), "1"), get(t, b.Repository("todos"), "1")
	if ga["v"] != gb["v"] {
		t.Fatalf("replicas differ under serverWins: a %v, b %v", ga, gb)
	}
}

func TestClientWinsKeepsPendingLocalChange(t *testing.T) {
	a, b, _ := pair(t, core.ClientWins, nil, `{"v":0}`)
	concurrently(t, a, b,
		func() { upsert(t, a.Repository("todos"), "1", `{"v":"a"}`) },
		func() { upsert(t, b.Repository("todos"), "1", `{"v":"b"}`) })
	// b had a pending change when a's arrived: b keeps its own and sends
	// it, and a (nothing pending) takes it.
	for name, c := range map[string]*core.Client{"a": a, "b": b} {
		if got := get(t, c.Repository("todos"), "1"); got["v"] != "b" {
			t.Errorf("%s holds %v, want b's change kept", name, got)
		}
	}
}

func TestCustomResolveMergesAndSyncsTheResult(t *testing.T) {
	resolve := func(local, remote json.RawMessage) (json.RawMessage, error) {
		var l, r struct {
			Tags []string `json:"tags"`
		}
		_ = json.Unmarshal(local, &l)
		_ = json.Unmarshal(remote, &r)
		set := map[string]bool{}
		for _, s := range append(l.Tags, r.Tags...) {
			set[s] = true
		}
		var tags []string
		for s := range set {
			tags = append(tags, s)
		}
		sort.Strings(tags)
		return json.Marshal(map[string]any{"tags": tags})
	}
	a, b, _ := pair(t, core.Custom, resolve, `{"tags":["base"]}`)
	concurrently(t, a, b,
		func() { upsert(t, a.Repository("todos"), "1", `{"tags":["base","a"]}`) },
		func() { upsert(t, b.Repository("todos"), "1", `{"tags":["base","b"]}`) })
	for name, c := range map[string]*core.Client{"a": a, "b": b} {
		got, _, _ := c.Repository("todos").Get(context.Background(), "1")
		if string(got) != `{"id":"1","tags":["a","b","base"]}` {
			t.Errorf("%s holds %s, want the merged tags", name, got)
		}
	}
}
