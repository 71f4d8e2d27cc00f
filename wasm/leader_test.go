//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall/js"
	"testing"
	"time"

	"github.com/lfsync/lfsync/idb"
)

// Two clients of one database in one page elect and relay exactly as two
// tabs do: they share the Web Lock, talk over two BroadcastChannel objects
// of the same name, and use one IndexedDB database.

// deadServer is a URL nothing listens on: a leader's engine keeps
// reconnecting, so its state is never "disconnected".
const deadServer = `,"url":"ws://127.0.0.1:9/sync","reconnect":{"initial":200,"max":400}`

// openShared creates a client on database name; the database is deleted
// at cleanup, after every client closed.
func openShared(t *testing.T, name, extra string) js.Value {
	t.Helper()
	c := mustResolve(t, ns().Call("createClient", `{"database":"`+name+`"`+extra+`}`))
	t.Cleanup(func() {
		if p := c.Call("close"); p.Type() == js.TypeObject {
			waitPromise(t, p)
		}
	})
	return c
}

// sharedName returns a fresh database name, deleted at cleanup.
func sharedName(t *testing.T) string {
	name := "wasm-tabs-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(dbSeq.Add(1), 10)
	t.Cleanup(func() {
		if err := idb.Delete(context.Background(), name); err != nil {
			t.Logf("delete database %s: %v", name, err)
		}
	})
	return name
}

type tabStatus struct {
	State   string `json:"state"`
	Pending int    `json:"pending"`
	Leader  bool   `json:"leader"`
	Tabs    int    `json:"tabs"`
}

func statusOf(t *testing.T, c js.Value) tabStatus {
	t.Helper()
	var s tabStatus
	if err := json.Unmarshal([]byte(c.Call("status").String()), &s); err != nil {
		t.Fatalf("status: %v", err)
	}
	return s
}

// eventually polls cond every 20 ms until it holds, failing after 30 s
// with what and the clients' statuses.
func eventually(t *testing.T, what string, cond func() bool, clients ...js.Value) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var states []string
			for _, c := range clients {
				if s := c.Call("status"); s.Type() == js.TypeString {
					states = append(states, s.String())
				}
			}
			t.Fatalf("timed out waiting for %s; statuses %v", what, states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaders counts the clients reporting leader: true.
func leaders(t *testing.T, clients ...js.Value) int {
	n := 0
	for _, c := range clients {
		if statusOf(t, c).Leader {
			n++
		}
	}
	return n
}

func TestOneLeaderAndFollowersShowItsState(t *testing.T) {
	name := sharedName(t)
	a := openShared(t, name, deadServer)
	eventually(t, "the first client to lead", func() bool { return statusOf(t, a).Leader }, a)
	b := openShared(t, name, deadServer)
	c := openShared(t, name, deadServer)
	eventually(t, "three clients counted by each", func() bool {
		return statusOf(t, a).Tabs == 3 && statusOf(t, b).Tabs == 3 && statusOf(t, c).Tabs == 3
	}, a, b, c)
	if n := leaders(t, a, b, c); n != 1 || !statusOf(t, a).Leader {
		t.Fatalf("%d leaders, want exactly the first client", n)
	}
	// The leader's engine keeps failing to reach the dead server; the
	// followers show its state, not their own idle engines' "disconnected".
	eventually(t, "followers to show the leader's reconnecting state", func() bool {
		return statusOf(t, a).State == "reconnecting" && statusOf(t, b).State == "reconnecting" && statusOf(t, c).State == "reconnecting"
	}, a, b, c)
	if m := b.Call("metrics").String(); !json.Valid([]byte(m)) {
		t.Fatalf("metrics = %s", m)
	}
	var bm struct{ Reconnects int }
	json.Unmarshal([]byte(b.Call("metrics").String()), &bm)
	if bm.Reconnects != 0 {
		t.Fatalf("a follower's engine reconnected %d times: followers must never dial", bm.Reconnects)
	}
}

func TestWritesReachTheOtherClientsOffline(t *testing.T) {
	name := sharedName(t)
	a := openShared(t, name, `,"autoStart":false`)
	b := openShared(t, name, `,"autoStart":false`)
	results := make(chan string, 16)
	cb := js.FuncOf(func(_ js.Value, args []js.Value) any { results <- args[0].String(); return nil })
	defer cb.Release()
	h := b.Call("repository", "todos").Call("watch", "", cb)
	defer b.Call("cancel", h)
	mustResolve(t, a.Call("repository", "todos").Call("upsert", "x", `{"id":"x","title":"from A"}`))
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-results:
			var docs []struct{ ID, Title string }
			json.Unmarshal([]byte(r), &docs)
			if len(docs) == 1 && docs[0].Title == "from A" {
				eventually(t, "B to count A's pending write", func() bool { return statusOf(t, b).Pending == 1 }, a, b)
				// And back: B's delete shows in A.
				mustResolve(t, b.Call("repository", "todos").Call("delete", "x"))
				eventually(t, "A to see B's delete", func() bool {
					return mustResolve(t, a.Call("repository", "todos").Call("get", "x")).IsNull()
				}, a, b)
				return
			}
		case <-deadline:
			t.Fatal("B's watcher never saw A's write")
		}
	}
}

func TestCloseAndStopHandTheLeadOn(t *testing.T) {
	name := sharedName(t)
	a := openShared(t, name, deadServer)
	eventually(t, "A to lead", func() bool { return statusOf(t, a).Leader }, a)
	b := openShared(t, name, deadServer)
	c := openShared(t, name, deadServer)
	eventually(t, "B and C to hear A", func() bool { return statusOf(t, b).Tabs == 3 && statusOf(t, c).Tabs == 3 }, a, b, c)

	mustResolve(t, a.Call("stop"))
	eventually(t, "B or C to lead after A stopped", func() bool { return leaders(t, b, c) == 1 }, a, b, c)
	if s := statusOf(t, a); s.Leader || s.State != "stopped" {
		t.Fatalf("A after stop: %+v, want a stopped non-leader", s)
	}
	next, other := b, c
	if statusOf(t, c).Leader {
		next, other = c, b
	}
	mustResolve(t, next.Call("close"))
	eventually(t, "the last client to lead after the leader closed", func() bool { return statusOf(t, other).Leader }, other)
	mustResolve(t, a.Call("start"))
	eventually(t, "A to follow again", func() bool {
		s := statusOf(t, a)
		return !s.Leader && s.State == "reconnecting"
	}, a, other)
	if n := leaders(t, a, other); n != 1 {
		t.Fatalf("%d leaders, want 1", n)
	}
}

// A lock holder that never beats is a frozen or hung leader: the client
// takes the lock from it.
func TestSilentHolderIsStolenFrom(t *testing.T) {
	name := sharedName(t)
	stolen := make(chan string, 1)
	never := js.FuncOf(func(js.Value, []js.Value) any { return nil })
	defer never.Release()
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any { stolen <- args[0].Get("name").String(); return nil })
	defer fail.Release()
	granted := make(chan struct{})
	onGrant := js.FuncOf(func(js.Value, []js.Value) any { close(granted); return js.Global().Get("Promise").New(never) })
	defer onGrant.Release()
	js.Global().Get("navigator").Get("locks").Call("request", leaderLockPrefix+name, onGrant).Call("catch", fail)
	<-granted

	start := time.Now()
	a := openShared(t, name, `,"autoStart":true`)
	if statusOf(t, a).Leader {
		t.Fatal("A leads while another holder has the lock")
	}
	eventually(t, "A to steal the lock", func() bool { return statusOf(t, a).Leader }, a)
	if waited := time.Since(start); waited < silenceMin {
		t.Fatalf("A stole after %v, before the holder was silent for %v", waited, silenceMin)
	}
	select {
	case n := <-stolen:
		if n != "AbortError" {
			t.Fatalf("the silent holder's request failed with %s, want AbortError", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the silent holder kept its lock")
	}
}

func TestChangeAnnouncementsAreBatched(t *testing.T) {
	name := sharedName(t)
	got := make(chan tabMessage, 16)
	other := openTabs("listener", name, func(m tabMessage) { got <- m })
	defer other.close()
	sender := openTabs("sender", name, func(tabMessage) {})
	defer sender.close()
	for i := 0; i < 100; i++ {
		sender.wrote("r" + strconv.Itoa(i%3))
	}
	select {
	case m := <-got:
		if m.Type != msgChanged || len(m.Repos) != 3 {
			t.Fatalf("first message %+v, want one change of 3 repositories", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change announced")
	}
	select {
	case m := <-got:
		t.Fatalf("a second message %+v for writes made in one task", m)
	case <-time.After(300 * time.Millisecond):
	}
}

// Where Web Locks are missing, every client syncs on its own (the server
// deduplicates the shared outbox's events by id), and the channel still
// relays writes and pending counts.
func TestWithoutWebLocksEveryClientLeads(t *testing.T) {
	nav := js.Global().Get("navigator")
	desc := js.Global().Get("Object").New()
	desc.Set("value", js.Undefined())
	desc.Set("configurable", true)
	js.Global().Get("Object").Call("defineProperty", nav, "locks", desc)
	defer js.Global().Get("Reflect").Call("deleteProperty", nav, "locks")
	if !webLocks().IsUndefined() {
		t.Fatal("navigator.locks still present")
	}
	name := sharedName(t)
	a := openShared(t, name, deadServer)
	b := openShared(t, name, deadServer)
	// Both dial ("connecting" until Chromium gives up on the dead port,
	// which it may delay after earlier failures, then "reconnecting").
	eventually(t, "both clients to lead and dial", func() bool {
		sa, sb := statusOf(t, a), statusOf(t, b)
		return sa.Leader && sb.Leader && sa.State != "disconnected" && sb.State != "disconnected" && sa.Tabs == 2 && sb.Tabs == 2
	}, a, b)
	mustResolve(t, a.Call("repository", "todos").Call("upsert", "x", `{"id":"x"}`))
	eventually(t, "B to count A's write", func() bool { return statusOf(t, b).Pending == 1 }, a, b)
}

// Closing clients leaves nothing behind: no lock held or queued, and no
// goroutine of theirs.
func TestCloseLeavesNoLockOrGoroutine(t *testing.T) {
	name := sharedName(t)
	before := clientGoroutines()
	var clients []js.Value
	for i := 0; i < 3; i++ {
		clients = append(clients, mustResolve(t, ns().Call("createClient", `{"database":"`+name+`"`+deadServer+`}`)))
	}
	eventually(t, "a leader among the clients", func() bool { return leaders(t, clients...) == 1 }, clients...)
	for _, c := range clients {
		mustResolve(t, c.Call("close"))
	}
	query := func() string {
		q := mustResolve(t, js.Global().Get("navigator").Get("locks").Call("query"))
		return js.Global().Get("JSON").Call("stringify", q).String()
	}
	eventually(t, "no leader lock held or queued", func() bool { return !strings.Contains(query(), leaderLockPrefix+name) })
	eventually(t, "the clients' goroutines to end", func() bool { return clientGoroutines() <= before })
}

// clientGoroutines counts the goroutines running lfsync code other than
// tests (the runtime's own, such as its JS event handler, come and go).
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "github.com/lfsync/lfsync/") && !strings.Contains(g, "_test.go") {
			n++
		}
	}
	return n
}

// A leader that beats only when asked (a background tab whose timers the
// browser throttles) keeps the lead; once it stops answering (frozen or
// hung), the client takes over.
func TestThrottledLeaderKeepsTheLead(t *testing.T) {
	name := sharedName(t)
	// The test holds the lock, as the throttled leader's tab.
	never := js.FuncOf(func(js.Value, []js.Value) any { return nil })
	defer never.Release()
	granted := make(chan struct{})
	onGrant := js.FuncOf(func(js.Value, []js.Value) any { close(granted); return js.Global().Get("Promise").New(never) })
	defer onGrant.Release()
	ignore := js.FuncOf(func(js.Value, []js.Value) any { return nil })
	defer ignore.Release()
	js.Global().Get("navigator").Get("locks").Call("request", leaderLockPrefix+name, onGrant).Call("catch", ignore)
	<-granted

	// It answers every hello with a leader beat, and never beats by itself.
	var answering atomic.Bool
	answering.Store(true)
	ch := js.Global().Get("BroadcastChannel").New(channelName(name))
	defer ch.Call("close")
	beat, _ := json.Marshal(tabMessage{V: tabProtocol, Type: msgBeat, Tab: "throttled", Epoch: 1, Leader: true, Status: &statusDTO{State: "connected"}})
	onMessage := js.FuncOf(func(_ js.Value, args []js.Value) any {
		var m tabMessage
		if json.Unmarshal([]byte(args[0].Get("data").String()), &m) == nil && m.Type == msgHello && answering.Load() {
			ch.Call("postMessage", string(beat))
		}
		return nil
	})
	defer onMessage.Release()
	ch.Set("onmessage", onMessage)

	a := openShared(t, name, `,"autoStart":true`)
	eventually(t, "A to show the throttled leader's state", func() bool { return statusOf(t, a).State == "connected" }, a)
	deadline := time.Now().Add(2 * (silenceMin + silenceJitter + beatInterval))
	for time.Now().Before(deadline) {
		if s := statusOf(t, a); s.Leader || s.State != "connected" {
			t.Fatalf("status %+v while the throttled leader answers, want a follower showing its state", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	answering.Store(false)
	eventually(t, "A to take over from the silent leader", func() bool { return statusOf(t, a).Leader }, a)
}
