package e2e

import (
	"testing"
)

// TestBadTokenIsUnauthorized runs the server with static tokens: the demo
// opened with a wrong token reports "unauthorized" (badge and status) and
// receives none of the data that exists on the server, while a page with the
// right token does.
func TestBadTokenIsUnauthorized(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{tokens: map[string]string{"good-token": "alice"}})
	srv.pushTodos(t, []todo{{ID: "secret-1", Title: "Only for alice"}})

	br := sharedBrowser(t)
	bad := openDemo(t, br, "bad-token", srv.URL()+"/?token=wrong-token")
	bad.waitState("unauthorized")
	waitFor[bool](bad, syncTimeout, "the badge to say unauthorized",
		`document.querySelector("#status").dataset.state === "unauthorized" && document.querySelector("#status").textContent.includes("Unauthorized")`,
		`document.querySelector("#status").outerHTML`)

	// The good page proves the data is there to be had: once it has it, the
	// bad page has had every chance to receive it too.
	good := openDemo(t, br, "good-token", srv.URL()+"/?token=good-token")
	good.waitSynced()
	good.waitRow("Only for alice")

	if got := bad.todos(); len(got) != 0 {
		t.Fatalf("unauthorized page stores %d todos: %+v", len(got), got)
	}
	if got := bad.clientStatus(); got.State != "unauthorized" {
		t.Fatalf("unauthorized page's status changed to %+v", got)
	}

	// A write from the unauthorized page stays local.
	eval[any](bad, `window.app.todos.upsert({id: "intruder", title: "Should not sync", done: false, createdAt: Date.now()}).then(() => true)`)
	bad.waitPending(1)
	marker := good.addTodoUI("Marker after the intrusion attempt")
	srv.waitDoc(t, "todos", marker, nil)
	if _, ok := srv.doc(t, "todos", "intruder"); ok {
		t.Fatal("the server accepted a write from a client with a bad token")
	}
}
