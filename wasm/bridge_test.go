//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall/js"
	"testing"
	"time"

	"github.com/lfsync/lfsync/idb"
)

// These tests drive the runtime the way the JS package does: through the
// functions on globalThis.__lfsync and the objects they return, over the
// real IndexedDB store, in a browser:
//
//	GOOS=js GOARCH=wasm go test -exec=$PWD/bin/wasmbrowsertest ./wasm/...

func TestMain(m *testing.M) {
	register()
	m.Run()
}

var dbSeq atomic.Int64

// newClient creates a client without a server on a fresh database, closed
// and deleted at cleanup.
func newClient(t *testing.T, extra string) js.Value {
	t.Helper()
	name := "wasm-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(dbSeq.Add(1), 10)
	opts := `{"database":"` + name + `"` + extra + `}`
	c := mustResolve(t, ns().Call("createClient", opts))
	t.Cleanup(func() {
		// A test may have closed it already: its methods are released
		// then and answer undefined.
		if p := c.Call("close"); p.Type() == js.TypeObject {
			waitPromise(t, p)
		}
		if err := idb.Delete(context.Background(), name); err != nil {
			t.Logf("delete database %s: %v", name, err)
		}
	})
	return c
}

func ns() js.Value { return js.Global().Get(namespace) }

// waitPromise waits for a promise and returns its value or its rejection reason.
func waitPromise(t *testing.T, p js.Value) (value, reason js.Value) {
	t.Helper()
	if p.Type() != js.TypeObject || p.Get("then").Type() != js.TypeFunction {
		t.Fatalf("got %s, want a Promise", p.Type())
	}
	type outcome struct{ v, r js.Value }
	ch := make(chan outcome, 1)
	ok := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- outcome{v: arg(args, 0), r: js.Undefined()}; return nil })
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- outcome{v: js.Undefined(), r: arg(args, 0)}; return nil })
	defer ok.Release()
	defer fail.Release()
	p.Call("then", ok, fail)
	select {
	case o := <-ch:
		return o.v, o.r
	case <-time.After(20 * time.Second):
		t.Fatal("promise did not settle within 20s")
	}
	return js.Undefined(), js.Undefined()
}

func mustResolve(t *testing.T, p js.Value) js.Value {
	t.Helper()
	v, r := waitPromise(t, p)
	if !r.IsUndefined() {
		t.Fatalf("rejected: %s (code %s)", r.Get("message"), r.Get("code"))
	}
	return v
}

// rejectCode returns the code of a rejection, failing if p resolves or the
// reason is not an Error.
func rejectCode(t *testing.T, p js.Value) string {
	t.Helper()
	_, r := waitPromise(t, p)
	if r.IsUndefined() {
		t.Fatal("resolved, want a rejection")
	}
	if !r.InstanceOf(js.Global().Get("Error")) {
		t.Fatalf("rejected with %s, want an Error", r.Type())
	}
	return r.Get("code").String()
}

func TestCRUDThroughTheBridge(t *testing.T) {
	c := newClient(t, `,"autoStart":false`)
	repo := c.Call("repository", "todos")
	if got := repo.Get("name").String(); got != "todos" {
		t.Fatalf("repository name = %q", got)
	}
	if !c.Call("repository", "todos").Equal(repo) {
		t.Fatal("repository(name) returned a new object for the same name")
	}
	mustResolve(t, repo.Call("upsert", "a", `{"id":"a","title":"A","done":false}`))
	mustResolve(t, repo.Call("upsertMany", `["b","c"]`, `[{"id":"b","title":"B","done":true},{"id":"c","title":"C","done":false}]`))

	got := mustResolve(t, repo.Call("get", "a"))
	var doc map[string]any
	if err := json.Unmarshal([]byte(got.String()), &doc); err != nil || doc["title"] != "A" || doc["id"] != "a" {
		t.Fatalf("get(a) = %s (%v)", got, err)
	}
	if v := mustResolve(t, repo.Call("get", "zz")); !v.IsNull() {
		t.Fatalf("get(missing) = %v, want null", v)
	}
	all := mustResolve(t, repo.Call("getAll"))
	var docs []map[string]any
	if err := json.Unmarshal([]byte(all.String()), &docs); err != nil || len(docs) != 3 {
		t.Fatalf("getAll = %s (%v)", all, err)
	}
	q := mustResolve(t, repo.Call("query", `{"where":[{"field":"done","op":"==","value":false}],"orderBy":[{"field":"title","desc":true}]}`))
	if got, want := q.String(), `[{"done":false,"id":"c","title":"C"},{"done":false,"id":"a","title":"A"}]`; !sameJSON(got, want) {
		t.Fatalf("query = %s, want %s", got, want)
	}
	mustResolve(t, repo.Call("delete", "a"))
	if v := mustResolve(t, repo.Call("get", "a")); !v.IsNull() {
		t.Fatalf("get after delete = %v, want null", v)
	}
	// localOnly writes do not reach the outbox.
	before := pending(t, c)
	mustResolve(t, repo.Call("upsert", "l", `{"id":"l"}`, true))
	if after := pending(t, c); after != before {
		t.Fatalf("pending after a localOnly upsert = %d, want %d", after, before)
	}
}

// pending reads status().pending once the engine's recount has settled.
func pending(t *testing.T, c js.Value) int {
	t.Helper()
	var s struct{ Pending int }
	prev := -1
	for i := 0; i < 50; i++ {
		if err := json.Unmarshal([]byte(c.Call("status").String()), &s); err != nil {
			t.Fatal(err)
		}
		if s.Pending == prev {
			return s.Pending
		}
		prev = s.Pending
		time.Sleep(20 * time.Millisecond)
	}
	return s.Pending
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestRejectionsCarryCodes(t *testing.T) {
	c := newClient(t, `,"autoStart":false`)
	repo := c.Call("repository", "r")
	for _, tc := range []struct {
		name string
		p    func() js.Value
		want string
	}{
		{"upsert with a number id", func() js.Value { return repo.Call("upsert", 5, `{}`) }, "invalid"},
		{"upsert with no document", func() js.Value { return repo.Call("upsert", "x") }, "invalid"},
		{"upsert of an array", func() js.Value { return repo.Call("upsert", "x", `[1]`) }, "invalid"},
		{"upsert of broken JSON", func() js.Value { return repo.Call("upsert", "x", `{"id":`) }, "invalid"},
		{"upsert with a bad localOnly", func() js.Value { return repo.Call("upsert", "x", `{"id":"x"}`, "yes") }, "invalid"},
		{"upsertMany with mismatched ids", func() js.Value { return repo.Call("upsertMany", `["a"]`, `[]`) }, "invalid"},
		{"upsertMany with broken JSON", func() js.Value { return repo.Call("upsertMany", `[`, `[]`) }, "invalid"},
		{"get with an empty id", func() js.Value { return repo.Call("get", "") }, "invalid"},
		{"query with an unknown op", func() js.Value { return repo.Call("query", `{"where":[{"field":"a","op":"~"}]}`) }, "invalid"},
		{"query that is not JSON", func() js.Value { return repo.Call("query", `{`) }, "invalid"},
		{"delete of a missing document", func() js.Value { return repo.Call("delete", "nope") }, "not_found"},
		{"createClient without options", func() js.Value { return ns().Call("createClient") }, "invalid"},
		{"createClient with a bad strategy", func() js.Value { return ns().Call("createClient", `{"conflict":"newest"}`) }, "invalid"},
		{"createClient custom without a function", func() js.Value { return ns().Call("createClient", `{"conflict":"custom"}`) }, "invalid"},
		{"createClient with a negative backoff", func() js.Value { return ns().Call("createClient", `{"reconnect":{"initial":-1}}`) }, "invalid"},
		{"createClient with numeric headers", func() js.Value { return ns().Call("createClient", `{"headers":{"a":1}}`) }, "invalid"},
	} {
		if got := rejectCode(t, tc.p()); got != tc.want {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.want)
		}
	}
	// Synchronous methods return the Error instead of throwing.
	for _, tc := range []struct {
		name string
		v    js.Value
	}{
		{"repository(5)", c.Call("repository", 5)},
		{"repository(\"\")", c.Call("repository", "")},
		{"watch with a bad query", repo.Call("watch", `{"where":[{"field":"a","op":"~"}]}`, js.Global().Get("Object"))},
		{"watch without a callback", repo.Call("watch", "")},
		{"onStatus without a callback", c.Call("onStatus", 1)},
		{"updateAuthToken(1)", c.Call("updateAuthToken", 1)},
		{"updateHeaders(not JSON)", c.Call("updateHeaders", "{")},
	} {
		if !tc.v.InstanceOf(js.Global().Get("Error")) || tc.v.Get("code").String() != "invalid" {
			t.Errorf("%s = %v, want an Error with code invalid", tc.name, tc.v)
		}
	}
}

func TestWatchEmitsWholeResultsAndStops(t *testing.T) {
	c := newClient(t, `,"autoStart":false`)
	repo := c.Call("repository", "w")
	got := make(chan string, 16)
	cb := js.FuncOf(func(_ js.Value, args []js.Value) any { got <- args[0].String(); return nil })
	defer cb.Release()
	h := repo.Call("watch", `{"orderBy":[{"field":"id"}]}`, cb)
	if h.Type() != js.TypeNumber {
		t.Fatalf("watch returned %v, want a handle", h)
	}
	next := func(want string) {
		t.Helper()
		for {
			select {
			case s := <-got:
				if sameJSON(s, want) {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no emission %s within 10s", want)
			}
		}
	}
	next(`[]`)
	mustResolve(t, repo.Call("upsertMany", `["b","a"]`, `[{"id":"b"},{"id":"a"}]`))
	next(`[{"id":"a"},{"id":"b"}]`)
	c.Call("cancel", h)
	c.Call("cancel", h) // twice is harmless
	// A second watcher sees "c" in the same pass of the engine's watch
	// goroutine that would have delivered it to a stale first watcher.
	seen := make(chan string, 16)
	cb2 := js.FuncOf(func(_ js.Value, args []js.Value) any { seen <- args[0].String(); return nil })
	defer cb2.Release()
	h2 := repo.Call("watch", `{"orderBy":[{"field":"id"}]}`, cb2)
	defer c.Call("cancel", h2)
	mustResolve(t, repo.Call("upsert", "c", `{"id":"c"}`))
	for s := ""; !strings.Contains(s, `"c"`); {
		select {
		case s = <-seen:
		case <-time.After(10 * time.Second):
			t.Fatal("the second watcher did not see c within 10s")
		}
	}
	for len(got) > 0 {
		if s := <-got; strings.Contains(s, `"c"`) {
			t.Fatalf("emission after cancel: %s", s)
		}
	}
}

func TestStatusAndMetricsAreJSON(t *testing.T) {
	c := newClient(t, `,"autoStart":false,"url":"ws://127.0.0.1:9/sync"`)
	var s struct {
		State    string `json:"state"`
		Pending  *int   `json:"pending"`
		LastSync string `json:"lastSync"`
	}
	if err := json.Unmarshal([]byte(c.Call("status").String()), &s); err != nil || s.State != "disconnected" || s.Pending == nil || s.LastSync != "" {
		t.Fatalf("status = %s (%v)", c.Call("status"), err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(c.Call("metrics").String()), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reconnects", "eventsSent", "eventsReceived", "eventsAcked", "bytesSent", "bytesReceived", "failedSends", "queueSize", "avgReconnectMs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics lack %s: %v", k, m)
		}
	}
	if id := c.Call("clientId"); id.Type() != js.TypeString || id.String() == "" {
		t.Fatalf("clientId = %v", id)
	}
	states := make(chan string, 16)
	cb := js.FuncOf(func(_ js.Value, args []js.Value) any {
		var s struct{ State string }
		json.Unmarshal([]byte(args[0].String()), &s)
		states <- s.State
		return nil
	})
	defer cb.Release()
	h := c.Call("onStatus", cb)
	mustResolve(t, c.Call("start"))
	select {
	case st := <-states:
		if st != "connecting" && st != "reconnecting" {
			t.Errorf("first state after start = %s", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no status change after start")
	}
	mustResolve(t, c.Call("stop"))
	c.Call("cancel", h)
	if code := rejectCode(t, c.Call("waitSynced", 50)); code != "timeout" {
		t.Fatalf("waitSynced while stopped: code %s, want timeout", code)
	}
}

func TestConflictFunctionCrossesAsJSON(t *testing.T) {
	var calls []string
	resolve := js.FuncOf(func(_ js.Value, args []js.Value) any {
		calls = append(calls, args[0].String()+"|"+args[1].Type().String())
		return `{"merged":true}`
	})
	defer resolve.Release()
	hooks := js.Global().Get("Object").New()
	hooks.Set("resolve", resolve)
	opts, _, _, err := parseOptions(`{"conflict":"custom"}`, hooks)
	if err != nil {
		t.Fatal(err)
	}
	out, err := opts.Resolve(json.RawMessage(`{"id":"a"}`), nil)
	if err != nil || string(out) != `{"merged":true}` {
		t.Fatalf("Resolve = %s, %v", out, err)
	}
	if len(calls) != 1 || calls[0] != `{"id":"a"}|null` {
		t.Fatalf("conflict function saw %q", calls)
	}
	throws := js.Global().Get("Function").New(`throw new Error("boom")`)
	hooks.Set("resolve", throws)
	if opts, _, _, err = parseOptions(`{}`, hooks); err != nil {
		t.Fatal(err)
	}
	if _, err := opts.Resolve(json.RawMessage(`{}`), json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Resolve with a throwing function: %v", err)
	}
	hooks.Set("resolve", js.Undefined())
	hooks.Set("refreshToken", js.Global().Get("Function").New(`return Promise.resolve("fresh")`))
	if opts, _, _, err = parseOptions(`{}`, hooks); err != nil {
		t.Fatal(err)
	}
	if tok, err := opts.RefreshToken(context.Background()); err != nil || tok != "fresh" {
		t.Fatalf("RefreshToken = %q, %v", tok, err)
	}
	hooks.Set("refreshToken", js.Global().Get("Function").New(`return Promise.reject(new Error("no session"))`))
	if opts, _, _, err = parseOptions(`{}`, hooks); err != nil {
		t.Fatal(err)
	}
	if _, err := opts.RefreshToken(context.Background()); err == nil || !strings.Contains(err.Error(), "no session") {
		t.Fatalf("RefreshToken with a rejecting function: %v", err)
	}
}

func TestClosedClientRejects(t *testing.T) {
	c := newClient(t, `,"autoStart":false`)
	repo := c.Call("repository", "r")
	get := repo.Get("get")
	// A call already made when close starts fails with code closed.
	pending := repo.Call("getAll")
	mustResolve(t, c.Call("close"))
	if _, r := waitPromise(t, pending); !r.IsUndefined() && r.Get("code").String() != "closed" {
		t.Fatalf("call racing close rejected with %s", r.Get("code"))
	}
	// The methods are released js.Funcs now: calling one only logs "call
	// to released function" and answers undefined, which is why the JS
	// package checks its closed flag first.
	if v := get.Invoke("a"); !v.IsUndefined() {
		t.Fatalf("a released method answered %v", v)
	}
}
