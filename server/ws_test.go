package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

var (
	alice = server.Principal{User: "alice", Namespace: "acme", Read: []string{"*"}, Write: []string{"*"}}
	// reader may read everything but write nothing.
	reader = server.Principal{User: "reader", Namespace: "acme", Read: []string{"*"}, Write: []string{}}
	// todoer may only read and write "todo*".
	todoer = server.Principal{User: "todoer", Namespace: "acme", Read: []string{"todo*"}, Write: []string{"todo*"}}
	// dropbox may write "inbox" but not read it.
	dropbox = server.Principal{User: "dropbox", Namespace: "acme", Read: []string{}, Write: []string{"inbox"}}
	// mallory has the same repository names in another namespace.
	mallory = server.Principal{User: "mallory", Namespace: "evil", Read: []string{"*"}, Write: []string{"*"}}
)

func startTokens(t *testing.T, opts ...servertest.Option) *servertest.Server {
	t.Helper()
	tokens := map[string]server.Principal{"alice": alice, "reader": reader, "todoer": todoer, "mallory": mallory, "dropbox": dropbox}
	return servertest.Start(t, append([]servertest.Option{servertest.WithTokens(tokens)}, opts...)...)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := startTokens(t)

	t.Run("token", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.auth("alice")
	})
	t.Run("authorization header key", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.send(map[string]any{"type": "auth", "Authorization": "Bearer alice", "X-Other": "v"})
		c.expect(protocol.TypeAuthSuccess)
	})
	t.Run("bad token", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.send(map[string]any{"type": "auth", "token": "nope"})
		c.expectError(protocol.CodeUnauthorized)
		// The socket stays usable: a good token authenticates.
		c.auth("alice")
	})
	t.Run("missing token", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.send(map[string]any{"type": "auth"})
		c.expectError(protocol.CodeUnauthorized)
	})
	t.Run("before auth", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.send(map[string]any{"type": "push_event", "repository": "todos", "event": ev("t1", nil)})
		c.expectError(protocol.CodeUnauthorized)
		c.send(map[string]any{"type": "request_events", "repository": "todos", "afterSequence": 0})
		c.expectError(protocol.CodeUnauthorized)
		c.send(map[string]any{"type": "request_all_events"})
		c.expectError(protocol.CodeUnauthorized)
		// ping is allowed before auth.
		c.send(map[string]any{"type": "ping"})
		c.expect(protocol.TypePong)
		// Nothing was stored.
		c.auth("alice")
		if events, _ := c.request("todos", 0, 100); len(events) != 0 {
			t.Fatalf("unauthenticated push stored %d events", len(events))
		}
	})
	t.Run("failed re-auth deauthenticates", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.auth("alice")
		c.send(map[string]any{"type": "auth", "token": "wrong"})
		c.expectError(protocol.CodeUnauthorized)
		c.send(map[string]any{"type": "request_events", "repository": "todos"})
		c.expectError(protocol.CodeUnauthorized)
	})
}

func TestReauthSwapsCredentials(t *testing.T) {
	t.Parallel()
	s := startTokens(t)
	w := dial(t, s)
	w.auth("alice")

	c := dial(t, s)
	c.auth("alice")
	c.request("notes", 0, 10) // subscribes to notes
	c.request("todos", 0, 10) // and todos

	// Re-auth as todoer: may read todos, not notes.
	c.auth("todoer")
	c.send(map[string]any{"type": "push_event", "repository": "notes", "event": ev("n1", nil)})
	c.expectError(protocol.CodeForbidden)

	w.push("notes", ev("n2", nil))
	w.push("todos", ev("t2", nil))
	// The notes subscription was dropped; the todos one stays. The first
	// frame c gets is therefore the todos event.
	m := c.expect(protocol.TypeEvents)
	if m.Repository != "todos" || len(m.Events) != 1 || m.Events[0].DataID != "t2" {
		t.Fatalf("got %s %v, want the todos event only", m.Repository, ids(m.Events))
	}
	// Now as a reader: writes are forbidden, reads allowed.
	c.auth("reader")
	c.send(map[string]any{"type": "push_event", "repository": "todos", "event": ev("t3", nil)})
	c.expectError(protocol.CodeForbidden)
	events, _ := c.request("todos", 0, 10)
	if len(events) != 1 {
		t.Fatalf("reader sees %d todos, want 1", len(events))
	}
}

func TestExpiredJWT(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	s := servertest.Start(t, servertest.WithJWTSecret(secret))
	good, err := server.SignJWT(secret, server.Principal{User: "u1", Namespace: "n1", Read: []string{"todos"}, Write: []string{"todos"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := server.SignJWT(secret, server.Principal{User: "u1"}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	other, err := server.SignJWT([]byte("another secret another secret!!!"), server.Principal{User: "u1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	c.send(map[string]any{"type": "auth", "token": expired})
	c.expectError(protocol.CodeUnauthorized)
	c.send(map[string]any{"type": "auth", "token": other})
	c.expectError(protocol.CodeUnauthorized)
	c.auth(good)
	c.push("todos", ev("t1", nil))
	c.send(map[string]any{"type": "push_event", "repository": "notes", "event": ev("n1", nil)})
	c.expectError(protocol.CodeForbidden)
}

func TestPingPong(t *testing.T) {
	t.Parallel()
	// Short intervals, but a pong deadline generous enough for a loaded
	// machine: nothing here depends on speed.
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.PingInterval = 20 * time.Millisecond
		c.PongTimeout = 10 * time.Second
	}))
	t.Run("client ping", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.send(map[string]any{"type": "ping"})
		c.expect(protocol.TypePong)
	})
	t.Run("server ping answered keeps the socket", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s)
		c.auth("x")
		for range 3 {
			c.expect(protocol.TypePing)
			c.send(map[string]any{"type": "pong"})
		}
		c.send(map[string]any{"type": "ping"})
		for {
			m := c.read()
			if m.Type == protocol.TypePong {
				break
			}
			if m.Type != protocol.TypePing {
				t.Fatalf("unexpected %s", m.Type)
			}
			c.send(map[string]any{"type": "pong"})
		}
	})
}

func TestMissedPongCloses(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.PingInterval = 20 * time.Millisecond
		c.PongTimeout = 50 * time.Millisecond
	}))
	c := dial(t, s)
	c.auth("x")
	c.expect(protocol.TypePing)
	if st := c.closed(); st != websocket.StatusPolicyViolation {
		t.Fatalf("close status = %v, want policy violation (pong timeout)", st)
	}
}

func TestAuthTimeout(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.AuthTimeout = 50 * time.Millisecond }))
	c := dial(t, s)
	if st := c.closed(); st != websocket.StatusPolicyViolation {
		t.Fatalf("close status = %v, want policy violation", st)
	}
}

func TestPushAndDedup(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")

	e1 := ev("d1", map[string]any{"v": 1})
	c.send(map[string]any{"type": "push_event", "repository": "todos", "event": e1})
	ack := c.expect(protocol.TypeAck)
	id := e1["_event_id"].(string)
	if len(ack.EventIDs) != 1 || ack.EventIDs[0] != id || ack.Sequences[id] != 1 {
		t.Fatalf("ack = %+v", ack)
	}
	if got := ack.Repositories["todos"]; len(got) != 1 || got[0] != id {
		t.Fatalf("ack repositories = %v", ack.Repositories)
	}
	// A re-push is acked again with the same sequence and not stored twice.
	e2 := ev("d2", nil)
	ack = c.push("todos", e1, e2, e2)
	if len(ack.EventIDs) != 2 || ack.Sequences[id] != 1 || ack.Sequences[e2["_event_id"].(string)] != 2 {
		t.Fatalf("re-push ack = %+v", ack)
	}
	c.send(map[string]any{"type": "push_event", "repository": "todos", "event": e1})
	if ack := c.expect(protocol.TypeAck); ack.Sequences[id] != 1 {
		t.Fatalf("re-push ack = %+v", ack)
	}
	events, done := c.request("todos", 0, 100)
	if len(events) != 2 || done.LastSequence != 2 || done.HasMore {
		t.Fatalf("events %v, sync_complete %+v", ids(events), done)
	}
	// README aliases are accepted as input.
	alias := map[string]any{"eventId": "01890000-0000-7000-8000-aaaaaaaaaaaa", "operation": "insert", "createdAt": "2026-01-02T03:04:05.000Z", "data": map[string]any{"id": "d3", "x": true}}
	ack = c.push("todos", alias)
	if ack.Sequences["01890000-0000-7000-8000-aaaaaaaaaaaa"] != 3 {
		t.Fatalf("alias ack = %+v", ack)
	}
	// An empty batch is acked with nothing.
	ack = c.push("todos")
	if len(ack.EventIDs) != 0 {
		t.Fatalf("empty batch ack = %+v", ack)
	}
}

func TestRequestEventsPagingAndReduction(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	// 10 documents, each written 3 times: 30 events, 10 latest.
	for round := range 3 {
		var batch []map[string]any
		for d := range 10 {
			batch = append(batch, ev("doc"+string(rune('a'+d)), map[string]any{"round": round}))
		}
		c.push("todos", batch...)
	}
	var all []protocol.Event
	var after int64
	pages := 0
	for {
		events, done := c.request("todos", after, 4)
		pages++
		all = append(all, events...)
		if done.Repository != "todos" {
			t.Fatalf("sync_complete repository = %q", done.Repository)
		}
		after = done.LastSequence
		if !done.HasMore {
			if after != 30 {
				t.Fatalf("final lastSequence = %d, want 30", after)
			}
			break
		}
		if len(events) != 4 || after != events[3].ServerSequence {
			t.Fatalf("page of %d, lastSequence %d", len(events), after)
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(all) != 10 {
		t.Fatalf("got %d events, want the 10 latest", len(all))
	}
	for i, e := range all {
		if e.ServerSequence != int64(21+i) {
			t.Fatalf("event %d has sequence %d, want %d (latest per document, ascending)", i, e.ServerSequence, 21+i)
		}
	}
	// reduce:false returns the unreduced log.
	c.send(map[string]any{"type": "request_events", "repository": "todos", "afterSequence": 5, "limit": 1000, "reduce": false})
	m := c.expect(protocol.TypeEvents)
	if len(m.Events) != 25 || m.Events[0].ServerSequence != 6 {
		t.Fatalf("unreduced: %d events from %d", len(m.Events), m.Events[0].ServerSequence)
	}
	c.expect(protocol.TypeSyncComplete)
	// Without a limit the default page is 100; an empty page is just
	// sync_complete.
	events, done := c.request("todos", 30, 0)
	if len(events) != 0 || done.LastSequence != 30 || done.HasMore {
		t.Fatalf("after the end: %d events, %+v", len(events), done)
	}
}

func TestRequestEventsSince(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	old := ev("a", nil)
	old["_created_at"] = "2020-01-01T00:00:00.000Z"
	recent := ev("b", nil)
	recent["_created_at"] = "2026-01-01T00:00:00.000Z"
	c.push("todos", old, recent)
	c.send(map[string]any{"type": "request_events", "repository": "todos", "since": "2025-06-01T00:00:00.000Z"})
	m := c.expect(protocol.TypeEvents)
	if len(m.Events) != 1 || m.Events[0].DataID != "b" {
		t.Fatalf("since: %v", ids(m.Events))
	}
	c.expect(protocol.TypeSyncComplete)
}

func TestRequestAllEvents(t *testing.T) {
	t.Parallel()
	s := startTokens(t, servertest.WithConfig(func(c *server.Config) { c.MaxPage = 3 }))
	w := dial(t, s)
	w.auth("alice")
	for i := range 5 {
		w.push("todos", ev("t"+string(rune('0'+i)), nil))
	}
	w.push("notes", ev("n1", nil))
	w.push("secret", ev("s1", nil))

	// With a repository: every event, unreduced, paged by MaxPage.
	c := dial(t, s)
	c.auth("alice")
	c.send(map[string]any{"type": "request_all_events", "repository": "todos"})
	var got []protocol.Event
	for {
		m := c.read()
		if m.Type == protocol.TypeSyncComplete {
			if m.Repository != "todos" || m.LastSequence != 5 {
				t.Fatalf("sync_complete %+v", m)
			}
			break
		}
		if m.Type != protocol.TypeEvents || len(m.Events) > 3 {
			t.Fatalf("unexpected %s of %d events", m.Type, len(m.Events))
		}
		got = append(got, m.Events...)
	}
	if len(got) != 5 {
		t.Fatalf("got %d events, want 5", len(got))
	}

	// Without: every repository the principal may read.
	r := dial(t, s)
	r.auth("todoer")
	r.send(map[string]any{"type": "request_all_events"})
	repos := map[string]int{}
	for {
		m := r.read()
		if m.Type == protocol.TypeSyncComplete {
			if m.Repository != "" {
				t.Fatalf("sync_complete after request_all_events names %q", m.Repository)
			}
			break
		}
		repos[m.Repository] += len(m.Events)
	}
	if len(repos) != 1 || repos["todos"] != 5 {
		t.Fatalf("todoer got %v, want only todos", repos)
	}
	// And it is now subscribed to them.
	w.push("todos", ev("t9", nil))
	if m := r.expect(protocol.TypeEvents); m.Events[0].DataID != "t9" {
		t.Fatalf("fan-out after request_all_events: %v", ids(m.Events))
	}
	r.send(map[string]any{"type": "request_all_events", "repository": "secret"})
	r.expectError(protocol.CodeForbidden)

	// Without a repository it also covers repositories created later, the
	// ones the principal may read.
	a := dial(t, s)
	a.auth("alice")
	a.send(map[string]any{"type": "request_all_events"})
	for m := a.read(); m.Type != protocol.TypeSyncComplete; m = a.read() {
	}
	w.push("fresh", ev("f1", nil))
	if m := a.expect(protocol.TypeEvents); m.Repository != "fresh" || len(m.Events) != 1 || m.Events[0].DataID != "f1" {
		t.Fatalf("new repository after request_all_events: %s %v", m.Repository, ids(m.Events))
	}
	// todoer may not read it: its next frame is the pong.
	r.send(map[string]any{"type": "ping"})
	r.expect(protocol.TypePong)
}

func TestEventsReceived(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	c.send(map[string]any{"type": "events_received", "repository": "todos", "count": 3})
	// No reply: the next frame is the pong.
	c.send(map[string]any{"type": "ping"})
	c.expect(protocol.TypePong)
}

func TestForbiddenAndNamespaces(t *testing.T) {
	t.Parallel()
	s := startTokens(t)
	a := dial(t, s)
	a.auth("alice")
	a.push("todos", ev("t1", map[string]any{"owner": "alice"}))
	a.push("notes", ev("n1", nil))

	m := dial(t, s)
	m.auth("mallory")
	if events, _ := m.request("todos", 0, 100); len(events) != 0 {
		t.Fatalf("another namespace sees %d events", len(events))
	}
	ack := m.push("todos", ev("t1", map[string]any{"owner": "mallory"}))
	if seq := ack.Sequences[ack.EventIDs[0]]; seq != 1 {
		t.Fatalf("namespace evil has its own sequence; got %d", seq)
	}
	// mallory's push did not reach alice's subscribers or log.
	events, _ := a.request("todos", 0, 100)
	if len(events) != 1 || !strings.Contains(string(events[0].Data), "alice") {
		t.Fatalf("alice's todos: %v", ids(events))
	}

	tdr := dial(t, s)
	tdr.auth("todoer")
	tdr.send(map[string]any{"type": "request_events", "repository": "notes"})
	tdr.expectError(protocol.CodeForbidden)
	tdr.send(map[string]any{"type": "push_events_batch", "repository": "notes", "events": []any{ev("n2", nil)}})
	e := tdr.expectError(protocol.CodeForbidden)
	if e.Repository != "notes" {
		t.Fatalf("error repository = %q", e.Repository)
	}
	if events, _ := a.request("notes", 0, 100); len(events) != 1 {
		t.Fatalf("forbidden push stored: %d notes", len(events))
	}

	// A write-only principal's push does not subscribe it to the others'
	// events.
	d := dial(t, s)
	d.auth("dropbox")
	d.push("inbox", ev("i1", nil))
	d.send(map[string]any{"type": "request_events", "repository": "inbox"})
	d.expectError(protocol.CodeForbidden)
	r := dial(t, s)
	r.auth("reader")
	r.request("inbox", 0, 10)
	a.push("inbox", ev("i2", map[string]any{"secret": true}))
	// Once a reader got it, the fan-out has been handed out.
	r.expect(protocol.TypeEvents)
	d.send(map[string]any{"type": "ping"})
	d.expect(protocol.TypePong)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.MaxBatch = 5
		c.MaxFrameBytes = 4096
	}))
	c := dial(t, s)
	c.auth("x")
	bad := []struct {
		name, frame string
		code        protocol.Code
	}{
		{"malformed JSON", `{"type":`, protocol.CodeInvalid},
		{"not an object", `[1,2]`, protocol.CodeInvalid},
		{"unknown type", `{"type":"launch_missiles"}`, protocol.CodeInvalid},
		{"missing type", `{"repository":"todos"}`, protocol.CodeInvalid},
		{"mistyped repository", `{"type":"request_events","repository":5}`, protocol.CodeInvalid},
		{"mistyped afterSequence", `{"type":"request_events","repository":"todos","afterSequence":"x"}`, protocol.CodeInvalid},
		{"negative limit", `{"type":"request_events","repository":"todos","limit":-1}`, protocol.CodeInvalid},
		{"missing event", `{"type":"push_event","repository":"todos"}`, protocol.CodeInvalid},
		{"events not an array", `{"type":"push_events_batch","repository":"todos","events":{}}`, protocol.CodeInvalid},
		{"server-only type", `{"type":"ack","eventIds":[]}`, protocol.CodeInvalid},
		{"control character in repository", `{"type":"request_events","repository":"a\u0001b"}`, protocol.CodeInvalid},
	}
	for _, b := range bad {
		c.sendRaw(b.frame)
		m := c.read()
		if m.Type != protocol.TypeError || m.Code != b.code {
			t.Errorf("%s: got %s %q (%s), want error %q", b.name, m.Type, m.Code, m.Text, b.code)
		}
	}

	// An invalid event in a batch stores nothing.
	invalid := ev("x2", nil)
	delete(invalid, "_created_at")
	c.send(map[string]any{"type": "push_events_batch", "repository": "todos", "events": []any{ev("x1", nil), invalid}})
	c.expectError(protocol.CodeInvalid)
	// An oversized batch stores nothing.
	var six []any
	for i := range 6 {
		six = append(six, ev("big"+string(rune('0'+i)), nil))
	}
	c.send(map[string]any{"type": "push_events_batch", "repository": "todos", "events": six})
	c.expectError(protocol.CodeTooLarge)
	if events, _ := c.request("todos", 0, 100); len(events) != 0 {
		t.Fatalf("rejected batches stored %v", ids(events))
	}

	// Another connection never noticed, and this one still works.
	o := dial(t, s)
	o.auth("y")
	o.push("todos", ev("ok", nil))
	if m := c.expect(protocol.TypeEvents); m.Events[0].DataID != "ok" {
		t.Fatalf("fan-out %v", ids(m.Events))
	}
	c.push("todos", ev("ok2", nil))

	// An oversized frame closes the socket with StatusMessageTooBig.
	c.sendRaw(`{"type":"ping","pad":"` + strings.Repeat("x", 5000) + `"}`)
	if st := c.closed(); st != websocket.StatusMessageTooBig {
		t.Fatalf("close status = %v, want StatusMessageTooBig", st)
	}
	o.expect(protocol.TypeEvents) // ok2
	o.push("todos", ev("still ok", nil))
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.RatePerSecond = 0.001 // no refill during the test
		c.RateBurst = 3
	}))
	c := dial(t, s)
	c.auth("x") // token 1
	c.push("todos", ev("a", nil))
	c.push("todos", ev("b", nil))
	c.send(map[string]any{"type": "push_event", "repository": "todos", "event": ev("c", nil)})
	c.expectError(protocol.CodeRateLimited)
	// ping and pong are exempt.
	c.send(map[string]any{"type": "ping"})
	c.expect(protocol.TypePong)

	o := dial(t, s)
	o.auth("y")
	// request_events subscribes before it reads, so a live frame of b may
	// come before the reply's page too (clients drop such duplicates by
	// sequence): count distinct events.
	events, _ := o.request("todos", 0, 100)
	stored := map[string]bool{} // by document id
	for _, e := range events {
		stored[e.DataID] = true
	}
	if len(stored) != 2 || stored["c"] {
		t.Fatalf("stored %v, want a and b (the rate-limited c dropped)", stored)
	}
}

func TestOriginCheck(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.AllowedOrigins = []string{"app.example.com", "https://*.trusted.dev"}
	}))
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true}, // non-browser client
		{"http://app.example.com", true},
		{"https://x.trusted.dev", true},
		{"http://x.trusted.dev", false},
		{"https://evil.example.org", false},
		{"http://" + s.Addr(), true}, // same host
	} {
		h := make(map[string][]string)
		if tc.origin != "" {
			h["Origin"] = []string{tc.origin}
		}
		ctx := t.Context()
		ws, _, err := websocket.Dial(ctx, s.WSURL(), &websocket.DialOptions{HTTPHeader: h})
		if (err == nil) != tc.ok {
			t.Errorf("origin %q: dial err = %v, want ok=%v", tc.origin, err, tc.ok)
		}
		if ws != nil {
			ws.CloseNow()
		}
	}
}
