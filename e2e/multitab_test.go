package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	lifecycle "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/lfsync/lfsync/core/protocol"
)

// The multi-tab tests open several tabs of the demo in ONE browser context
// (one profile: shared IndexedDB, Web Locks and BroadcastChannels), as a
// person with the app open in several tabs. One tab leads and owns the
// only WebSocket; the server's own count (/api/health "connections") says
// how many sockets there are.

// openTabGroup opens a browser context of its own on the shared browser,
// with an idle first tab that owns the context (closing the others never
// disposes of it), and the demo at url in n tabs of it.
func openTabGroup(t *testing.T, url string, names ...string) []*page {
	t.Helper()
	return openTabGroupWith(t, url, "", names...)
}

// openTabGroupWith is openTabGroup with a script run in every tab before
// the page's own.
func openTabGroupWith(t *testing.T, url, initScript string, names ...string) []*page {
	t.Helper()
	anchor := sharedBrowser(t).newPage(t, "context")
	pages := make([]*page, len(names))
	for i, name := range names {
		p := anchor.newTab(t, name)
		if initScript != "" {
			ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
			_, err := chromedp.Call(ctx, lifecycle.AddScriptToEvaluateOnNewDocument, lifecycle.AddScriptToEvaluateOnNewDocumentParams{Source: initScript})
			cancel()
			if err != nil {
				t.Fatalf("%s: failed to add the init script: %v", name, err)
			}
		}
		p.navigate(url)
		p.waitDemo()
		pages[i] = p
	}
	return pages
}

// tabState is what a tab's client reports.
type tabState struct {
	State   string `json:"state"`
	Pending int    `json:"pending"`
	Leader  bool   `json:"leader"`
	Tabs    int    `json:"tabs"`
}

func (p *page) tabState() tabState {
	p.t.Helper()
	return eval[tabState](p, `window.app.client.status()`)
}

// waitLeader waits until exactly one of pages leads, with a connected
// engine, and every page counts them all and shows "connected"; it
// returns the leader.
func waitLeader(t *testing.T, pages ...*page) *page {
	t.Helper()
	deadline := time.Now().Add(syncTimeout)
	for {
		var leader *page
		leaders, ok := 0, true
		var seen []string
		for _, p := range pages {
			s := p.tabState()
			seen = append(seen, fmt.Sprintf("%s=%+v", p.name, s))
			if s.Leader {
				leaders++
				leader = p
			}
			ok = ok && s.State == "connected" && s.Tabs == len(pages)
		}
		if ok && leaders == 1 {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single connected leader among the tabs after %v: %s", syncTimeout, strings.Join(seen, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connections returns the server's count of live WebSocket connections.
func (s *testServer) connections(t *testing.T) int {
	t.Helper()
	code, body := s.api(t, http.MethodGet, "/api/health", nil)
	var h struct {
		Connections *int `json:"connections"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Connections == nil {
		t.Fatalf("GET /api/health: %d %s", code, body)
	}
	return *h.Connections
}

// settleConnections polls the server until it counts want connections
// ten times in a row (a second), failing after syncTimeout with the counts
// seen.
func (s *testServer) settleConnections(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(syncTimeout)
	var seen []int
	for streak := 0; streak < 10; {
		n := s.connections(t)
		if len(seen) == 0 || seen[len(seen)-1] != n {
			seen = append(seen, n)
		}
		if n == want {
			streak++
		} else {
			streak = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("server: WebSocket connections did not settle at %d within %v; counts seen in turn: %v", want, syncTimeout, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// events returns every event the server stores for repo, unreduced, in
// sequence order.
func (s *testServer) events(t *testing.T, repo string) []protocol.Event {
	t.Helper()
	var all []protocol.Event
	var seq int64
	for {
		code, body := s.api(t, http.MethodGet, "/api/events/"+url.PathEscape(repo)+"?reduce=false&limit=1000&seq="+strconv.FormatInt(seq, 10), nil)
		var pg struct {
			Events       []protocol.Event `json:"events"`
			HasMore      bool             `json:"hasMore"`
			LastSequence int64            `json:"lastSequence"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &pg) != nil {
			t.Fatalf("GET /api/events/%s: %d %s", repo, code, body)
		}
		all = append(all, pg.Events...)
		if !pg.HasMore || len(pg.Events) == 0 {
			return all
		}
		seq = pg.LastSequence
	}
}

// writeTodos upserts n todos with ids prefix-0..n-1 through the page's
// repository, all at once, and resolves when IndexedDB committed them all.
func writeTodosExpr(prefix string, n int) string {
	return `Promise.all(Array.from({length: ` + strconv.Itoa(n) + `}, (_, i) => window.app.todos.upsert({id: ` + js(prefix) + ` + i, title: ` + js(prefix) + ` + " " + i, done: false, createdAt: Date.now(), updatedAt: Date.now()}))).then(() => true)`
}

// TestTabsSeeEachOthersWritesOffline: with the sync server down, a todo
// added in one tab shows in the other's live list at once, both ways, and
// both count the same pending changes; once the server is back, the leader
// pushes both.
func TestTabsSeeEachOthersWritesOffline(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	tabs := openTabGroup(t, srv.URL()+"/", "tab-A", "tab-B")
	a, b := tabs[0], tabs[1]
	waitLeader(t, a, b)

	srv.Stop()
	a.waitDisconnected()
	b.waitDisconnected()
	idA := a.addTodoUI("Written offline in A")
	if got := b.waitRow("Written offline in A"); got != idA {
		t.Fatalf("B shows the todo with id %q, A made %q", got, idA)
	}
	idB := b.addTodoUI("Written offline in B")
	if got := a.waitRow("Written offline in B"); got != idB {
		t.Fatalf("A shows the todo with id %q, B made %q", got, idB)
	}
	a.waitPending(2)
	b.waitPending(2)
	for _, p := range tabs {
		if s := p.tabState(); s.Pending != 2 || s.State == "connected" {
			t.Fatalf("%s offline: %+v, want 2 pending and no connection", p.name, s)
		}
	}

	// waitSynced, asked while offline, resolves in both tabs once the
	// leader synced (a follower's is answered by the leader).
	for _, p := range tabs {
		eval[bool](p, `(window.synced = window.app.client.waitSynced({timeout: 60000}).then(() => "synced", (e) => e.code), true)`)
	}
	srv.Restart()
	waitLeader(t, a, b)
	srv.waitDoc(t, "todos", idA, nil)
	srv.waitDoc(t, "todos", idB, nil)
	for _, p := range tabs {
		if got := eval[string](p, `window.synced`); got != "synced" {
			t.Fatalf("%s: waitSynced ended with %q", p.name, got)
		}
	}
	// The leader's acks reach the follower too: both show nothing pending.
	a.waitSynced()
	b.waitSynced()
	srv.settleConnections(t, 1)
}

// TestClosingTheLeaderTabHandsOverTheSocket: three tabs share one
// WebSocket; closing the leader's tab hands it to another tab, and the
// server counts one connection before and after. A write made in a
// follower just before the close reaches the server once.
func TestClosingTheLeaderTabHandsOverTheSocket(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	tabs := openTabGroup(t, srv.URL()+"/", "tab-A", "tab-B", "tab-C")
	leader := waitLeader(t, tabs...)
	srv.settleConnections(t, 1)

	var rest []*page
	for _, p := range tabs {
		if p != leader {
			rest = append(rest, p)
		}
	}
	// The page says which tab holds the connection.
	const role = `document.querySelector("#tab-role").textContent`
	waitFor[bool](leader, syncTimeout, "the leader tab to say it syncs for 3 tabs", role+` === "this tab syncs for 3 tabs"`, role)
	waitFor[bool](rest[0], syncTimeout, "a follower tab to say another tab syncs", role+` === "synced through another tab (3 open)"`, role)

	id := rest[0].addTodoUI("Written just before the leader closed")
	closed := time.Now()
	leader.close()
	next := waitLeader(t, rest...)
	t.Logf("handover after closing the leader tab: %s connected as the new leader %v after the close",
		next.name, time.Since(closed).Round(time.Millisecond))
	srv.settleConnections(t, 1)

	srv.waitDoc(t, "todos", id, nil)
	other := rest[0]
	if other == next {
		other = rest[1]
	}
	id2 := other.addTodoUI("Written after the handover")
	srv.waitDoc(t, "todos", id2, nil)
	for _, p := range rest {
		p.waitSynced()
	}
	count := map[string]int{}
	for _, e := range srv.events(t, "todos") {
		count[e.DataID]++
	}
	if count[id] != 1 || count[id2] != 1 {
		t.Fatalf("server holds %d events of the todo written before the close and %d of the one after, want 1 each", count[id], count[id2])
	}
}

// TestRacingWritesFromThreeTabsReachTheServerOnce: three tabs write at the
// same time; every write reaches the server exactly once.
func TestRacingWritesFromThreeTabsReachTheServerOnce(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	tabs := openTabGroup(t, srv.URL()+"/", "tab-A", "tab-B", "tab-C")
	waitLeader(t, tabs...)

	const perTab = 25
	var wg sync.WaitGroup
	errs := make([]error, len(tabs))
	for i, p := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = tryEval[bool](p, writeTodosExpr("race-"+p.name+"-", perTab))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: writing todos failed: %v", tabs[i].name, err)
		}
	}
	want := len(tabs) * perTab
	for _, p := range tabs {
		p.waitSynced()
		waitFor[bool](p, syncTimeout, strconv.Itoa(want)+" todos in the list",
			`document.querySelector("#count").dataset.total === "`+strconv.Itoa(want)+`"`, `document.querySelector("#count").textContent`)
	}
	events := srv.events(t, "todos")
	count := map[string]int{}
	ids := map[string]bool{}
	for _, e := range events {
		count[e.DataID]++
		if ids[e.ID] {
			t.Fatalf("server stores event %s twice", e.ID)
		}
		ids[e.ID] = true
	}
	for _, p := range tabs {
		for i := 0; i < perTab; i++ {
			if id := "race-" + p.name + "-" + strconv.Itoa(i); count[id] != 1 {
				t.Fatalf("server holds %d events of %s, want 1", count[id], id)
			}
		}
	}
	if len(events) != want {
		t.Fatalf("server holds %d events, want %d", len(events), want)
	}
	srv.settleConnections(t, 1)
}

// TestFrozenLeaderTabDoesNotStallSync freezes the leader's tab with CDP
// (Page.setWebLifecycleState frozen, as Chrome does to background tabs):
// another tab takes over, and the writes of the remaining tabs reach the
// server and a second browser. Thawed, the old leader follows.
func TestFrozenLeaderTabDoesNotStallSync(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	tabs := openTabGroup(t, srv.URL()+"/", "tab-A", "tab-B", "tab-C")
	other := openDemo(t, sharedBrowser(t), "other-browser", srv.URL()+"/")
	leader := waitLeader(t, tabs...)
	other.waitSynced()
	srv.settleConnections(t, 2)

	var rest []*page
	for _, p := range tabs {
		if p != leader {
			rest = append(rest, p)
		}
	}
	frozen := time.Now()
	setLifecycle(t, leader, lifecycle.SetWebLifecycleStateStateFrozen)
	next := waitLeaderAmong(t, rest)
	t.Logf("handover after freezing the leader tab: %s connected as the new leader %v after the freeze",
		next.name, time.Since(frozen).Round(time.Millisecond))

	idB := rest[0].addTodoUI("Written in B while the leader is frozen")
	idC := rest[1].addTodoUI("Written in C while the leader is frozen")
	srv.waitDoc(t, "todos", idB, nil)
	srv.waitDoc(t, "todos", idC, nil)
	other.waitRow("Written in B while the leader is frozen")
	other.waitRow("Written in C while the leader is frozen")
	for _, p := range rest {
		p.waitSynced()
	}

	// Thawed, the old leader steps down (its lock is gone) and follows:
	// one leader, one socket for the tabs, and it sees what was written.
	setLifecycle(t, leader, lifecycle.SetWebLifecycleStateStateActive)
	waitLeader(t, tabs...)
	leader.waitRow("Written in C while the leader is frozen")
	srv.settleConnections(t, 2)
}

// waitLeaderAmong waits until one of pages leads with a connected engine
// (the others may not count a frozen tab yet).
func waitLeaderAmong(t *testing.T, pages []*page) *page {
	t.Helper()
	deadline := time.Now().Add(syncTimeout)
	for {
		for _, p := range pages {
			if s := p.tabState(); s.Leader && s.State == "connected" {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tab took over within %v", syncTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setLifecycle freezes or thaws a tab through CDP.
func setLifecycle(t *testing.T, p *page, state lifecycle.SetWebLifecycleStateState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, lifecycle.SetWebLifecycleState, lifecycle.SetWebLifecycleStateParams{State: state}); err != nil {
		t.Fatalf("%s: failed to set the lifecycle state %s: %v", p.name, state, err)
	}
}

// TestHungLeaderTabIsReplaced blocks the leader tab's main thread (a long
// script: no heartbeat, no events, but the lock, the page and its socket
// stay): after a few seconds of silence another tab steals the lock and
// syncs; when the script ends, the old leader finds its lock stolen and
// steps down, leaving one socket.
func TestHungLeaderTabIsReplaced(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	tabs := openTabGroup(t, srv.URL()+"/", "tab-A", "tab-B")
	leader := waitLeader(t, tabs...)
	follower := tabs[0]
	if follower == leader {
		follower = tabs[1]
	}
	srv.settleConnections(t, 1)

	const hang = 8 * time.Second
	hung := time.Now()
	eval[bool](leader, `(setTimeout(() => { const end = Date.now() + `+strconv.Itoa(int(hang.Milliseconds()))+`; while (Date.now() < end); }, 0), true)`)
	waitLeaderAmong(t, []*page{follower})
	t.Logf("handover after the leader tab hung: %s connected as the new leader %v after the hang began",
		follower.name, time.Since(hung).Round(time.Millisecond))
	id := follower.addTodoUI("Written while the leader hangs")
	srv.waitDoc(t, "todos", id, nil)

	// The hung tab answers again once its script ends: one leader, one
	// socket, and it shows the write.
	if d := time.Until(hung.Add(hang)); d > 0 {
		time.Sleep(d)
	}
	if got := waitLeader(t, tabs...); got != follower {
		t.Fatalf("%s leads after the hang ended, want %s (the old leader must step down)", got.name, follower.name)
	}
	leader.waitRow("Written while the leader hangs")
	srv.settleConnections(t, 1)
}

// TestTabsWithoutWebLocksOrBroadcastChannel runs two tabs of a browser
// that has neither (as old Safari): each tab syncs on its own socket, the
// tabs relay their writes over localStorage events, and the server stores
// every write once although both tabs push the shared outbox.
func TestTabsWithoutWebLocksOrBroadcastChannel(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	const strip = `Object.defineProperty(navigator, "locks", {value: undefined, configurable: true}); delete window.BroadcastChannel;`
	tabs := openTabGroupWith(t, srv.URL()+"/", strip, "tab-A", "tab-B")
	a, b := tabs[0], tabs[1]
	for _, p := range tabs {
		if got := eval[string](p, `typeof BroadcastChannel + " " + typeof navigator.locks`); got != "undefined undefined" {
			t.Fatalf("%s: BroadcastChannel and navigator.locks are %s, want both undefined", p.name, got)
		}
	}
	deadline := time.Now().Add(syncTimeout)
	for {
		sa, sb := a.tabState(), b.tabState()
		if sa.Leader && sb.Leader && sa.State == "connected" && sb.State == "connected" && sa.Tabs == 2 && sb.Tabs == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tabs did not both lead and count each other: A %+v, B %+v", sa, sb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.settleConnections(t, 2)

	srv.Stop()
	a.waitDisconnected()
	b.waitDisconnected()
	idA := a.addTodoUI("Relayed by storage events")
	if got := b.waitRow("Relayed by storage events"); got != idA {
		t.Fatalf("B shows id %q, A made %q", got, idA)
	}
	b.waitPending(1)
	srv.Restart()
	a.waitSynced()
	b.waitSynced()
	count := map[string]int{}
	for _, e := range srv.events(t, "todos") {
		count[e.DataID]++
	}
	if count[idA] != 1 {
		t.Fatalf("server holds %d events of the todo both tabs pushed, want 1", count[idA])
	}
}
