package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestOfflineWriteSurvivesReload writes while the sync server is down (the
// page itself still loads, as from a CDN), reloads the page, finds the write
// still there and still pending, and sees it reach the server once the
// server is back on the same port and database.
func TestOfflineWriteSurvivesReload(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	p := openDemo(t, sharedBrowser(t), "page", srv.URL()+"/")
	p.waitSynced()
	before := p.addTodoUI("Written online")
	srv.waitDoc(t, "todos", before, nil)

	srv.Stop()
	p.waitDisconnected()
	id := p.addTodoUI("Written offline")
	p.waitPending(1)
	// The person using the page sees both: no connection, one unsynced change.
	waitFor[bool](p, syncTimeout, "the badge and the pending indicator to show the offline change",
		`(() => { const b = document.querySelector("#status"), q = document.querySelector("#pending");
			return b.dataset.state !== "connected" && /Reconnecting|Offline|Connecting/.test(b.textContent) &&
				q.dataset.pending === "1" && q.textContent.includes("1 change waiting"); })()`,
		`document.querySelector(".sync").innerText`)

	// Reload while the server is still down: IndexedDB holds the todo and
	// the outbox still holds its change.
	p.navigate(srv.URL() + "/")
	p.waitDemo()
	p.waitRow("Written offline")
	p.waitRow("Written online")
	if got := p.clientStatus(); got.Pending < 1 || got.State == "connected" {
		t.Fatalf("after reload with the server down: status %+v, want a pending change and no connection", got)
	}

	srv.Restart()
	p.waitSynced()
	srv.waitDoc(t, "todos", id, func(d todo) bool { return d.Title == "Written offline" })
	if _, ok := srv.doc(t, "todos", before); !ok {
		t.Fatal("server lost the online write")
	}
	if n := len(p.todos()); n != 2 {
		t.Fatalf("page stores %d todos after sync, want 2", n)
	}
}

// TestKilledBrowserKeepsPendingWrites writes while the server is down, kills
// Chromium with SIGKILL (no clean shutdown), relaunches it on the same
// profile, finds the write still pending, and sees it sync once the server
// returns.
func TestKilledBrowserKeepsPendingWrites(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	profile := t.TempDir()
	b1 := newBrowser(t, profile)
	p := openDemo(t, b1, "before-kill", srv.URL()+"/")
	p.waitSynced()

	srv.Stop()
	p.waitDisconnected()
	// upsert resolves once IndexedDB committed: that is the durability
	// promise under test.
	const id = "killed-browser-todo"
	eval[any](p, `window.app.todos.upsert({id: "`+id+`", title: "Survives a crash", done: false, createdAt: Date.now()}).then(() => true)`)
	p.waitRow("Survives a crash")
	p.waitPending(1)
	p.ignoreConsole() // the tab dies with the browser
	b1.kill(t)

	b2 := newBrowser(t, profile)
	q := openDemo(t, b2, "after-kill", srv.URL()+"/")
	if got := q.waitRow("Survives a crash"); got != id {
		t.Fatalf("row has id %q, want %q", got, id)
	}
	if got := q.clientStatus(); got.Pending < 1 {
		t.Fatalf("after the relaunch: status %+v, want the write still pending", got)
	}

	srv.Restart()
	srv.waitDoc(t, "todos", id, func(d todo) bool { return d.Title == "Survives a crash" })
	q.waitSynced()
}

// TestServerRestartAndCatchUp restarts the server under a live page, which
// must reconnect and keep syncing; then, with the page closed, a few
// thousand todos arrive through the REST batch endpoint, and the reopened
// page catches up on all of them.
func TestServerRestartAndCatchUp(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	p := openDemo(t, sharedBrowser(t), "page", srv.URL()+"/")
	p.waitSynced()
	reconnects := eval[int](p, `(async () => (await window.app.client.metrics()).reconnects || 0)()`)

	srv.Restart()
	waitFor[bool](p, syncTimeout, "a reconnect after the server restart",
		`(async () => (await window.app.client.metrics()).reconnects > `+strconv.Itoa(reconnects)+` && (await window.app.client.status()).state === "connected")()`, statusDiag)
	id := p.addTodoUI("After the restart")
	srv.waitDoc(t, "todos", id, nil)
	p.waitSynced()

	// Close the page, then write while nobody listens.
	p.navigate("about:blank")
	const n = 3000
	todos := make([]todo, n)
	for i := range todos {
		todos[i] = todo{ID: fmt.Sprintf("bulk-%05d", i), Title: fmt.Sprintf("Bulk todo %d", i)}
	}
	srv.pushTodos(t, todos)

	p.navigate(srv.URL() + "/")
	p.waitDemo()
	start := time.Now()
	waitFor[bool](p, 4*syncTimeout, strconv.Itoa(n+1)+" todos in the store",
		`(async () => (await window.app.todos.getAll()).length === `+strconv.Itoa(n+1)+`)()`,
		`(async () => "stored " + (await window.app.todos.getAll()).length)()`)
	t.Logf("caught up on %d events in %v", n, time.Since(start).Round(time.Millisecond))
	p.waitSynced()
	// The list renders them (the live query fired after the catch-up).
	waitFor[bool](p, syncTimeout, "the list to show every todo",
		`document.querySelector("#count").dataset.total === "`+strconv.Itoa(n+1)+`" && document.querySelectorAll("#todo-list li").length === `+strconv.Itoa(n+1),
		`document.querySelector("#count").textContent`)
	got := byID(p.todos())
	for _, want := range []todo{todos[0], todos[n/2], todos[n-1]} {
		if g := got[want.ID]; g.Title != want.Title {
			t.Fatalf("stored %s = %+v, want title %q", want.ID, g, want.Title)
		}
	}
}
