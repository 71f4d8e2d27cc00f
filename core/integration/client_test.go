package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// waitLimit bounds every wait; reaching it is a failure, not a measurement.
const waitLimit = 20 * time.Second

var everyone = server.Principal{User: "u", Read: []string{"*"}, Write: []string{"*"}}

// fastOptions are options with short delays, so tests that reconnect do not
// idle.
func fastOptions(url string, repos ...string) core.Options {
	return core.Options{
		URL:            url,
		Repositories:   repos,
		Reconnect:      core.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		ConnectTimeout: 5 * time.Second,
	}
}

// newClient makes a started client over a fresh memory store, closed at
// the end of the test.
func newClient(t *testing.T, opts core.Options) (*core.Client, *core.MemoryStore) {
	t.Helper()
	store := core.NewMemoryStore()
	c, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		store.Close()
	})
	c.Start()
	return c, store
}

func waitSynced(t *testing.T, clients ...*core.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, c := range clients {
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatalf("WaitSynced: %v (status %+v)", err, c.Status())
		}
	}
}

// waitFor polls cond until it holds or the wait limit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func upsert(t *testing.T, r *core.Repository, id, data string) {
	t.Helper()
	if err := r.Upsert(context.Background(), id, json.RawMessage(data)); err != nil {
		t.Fatalf("Upsert(%s): %v", id, err)
	}
}

func get(t *testing.T, r *core.Repository, id string) map[string]any {
	t.Helper()
	raw, ok, err := r.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if !ok {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("Get(%s) returned %s: %v", id, raw, err)
	}
	return m
}

func all(t *testing.T, r *core.Repository) string {
	t.Helper()
	docs, err := r.GetAll(context.Background())
	if err != nil {
		t.Fatalf("GetAll: %v", err)
	}
	parts := make([]string, len(docs))
	for i, d := range docs {
		parts[i] = string(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// statusLog records every state a client reports.
type statusLog struct {
	mu     sync.Mutex
	states []core.State
}

func recordStatus(c *core.Client) *statusLog {
	l := &statusLog{}
	c.OnStatus(func(s core.SyncStatus) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if n := len(l.states); n == 0 || l.states[n-1] != s.State {
			l.states = append(l.states, s.State)
		}
	})
	return l
}

func (l *statusLog) has(st core.State) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.states {
		if s == st {
			return true
		}
	}
	return false
}

func (l *statusLog) list() []core.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]core.State(nil), l.states...)
}

func TestClientConnectsOnlyAfterAuthSuccess(t *testing.T) {
	srv := servertest.Start(t, servertest.WithTokens(map[string]server.Principal{"good": everyone}))
	store := core.NewMemoryStore()
	opts := fastOptions(srv.WSURL(), "todos")
	opts.Token = "good"
	c, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := recordStatus(c)
	c.Start()
	waitSynced(t, c)
	waitFor(t, "the connected state in the status stream", func() bool { return log.has(core.StateConnected) })
	states := log.list()
	authIdx, connIdx := -1, -1
	for i, s := range states {
		if s == core.StateAuthenticating && authIdx < 0 {
			authIdx = i
		}
		if s == core.StateConnected && connIdx < 0 {
			connIdx = i
		}
	}
	if authIdx < 0 || connIdx < authIdx {
		t.Fatalf("states %v: connected must follow authenticating", states)
	}
	if got := c.Status().State; got != core.StateConnected {
		t.Fatalf("state %s, want connected", got)
	}
	if m := c.Metrics(); m.LastConnected.IsZero() {
		t.Fatalf("metrics did not record the connection: %+v", m)
	}
}

func TestTwoClientsConvergeBothWays(t *testing.T) {
	srv := servertest.Start(t)
	a, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	b, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	ta, tb := a.Repository("todos"), b.Repository("todos")
	upsert(t, ta, "1", `{"title":"from a"}`)
	upsert(t, tb, "2", `{"title":"from b"}`)
	waitSynced(t, a, b, a)
	if ga, gb := all(t, ta), all(t, tb); ga != gb {
		t.Fatalf("replicas differ:\na: %s\nb: %s", ga, gb)
	}
	if got := get(t, tb, "1"); got["title"] != "from a" || got["id"] != "1" {
		t.Fatalf("b holds %v for 1", got)
	}
	if got := get(t, ta, "2"); got["title"] != "from b" {
		t.Fatalf("a holds %v for 2", got)
	}
	// Concurrent updates of the same document end the same on both sides.
	upsert(t, ta, "1", `{"title":"a2"}`)
	upsert(t, tb, "1", `{"title":"b2"}`)
	waitSynced(t, a, b, a)
	if ga, gb := all(t, ta), all(t, tb); ga != gb {
		t.Fatalf("replicas differ after concurrent updates:\na: %s\nb: %s", ga, gb)
	}
}

func TestDeleteSyncsAsTombstone(t *testing.T) {
	srv := servertest.Start(t)
	a, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	b, bstore := newClient(t, fastOptions(srv.WSURL(), "todos"))
	ta, tb := a.Repository("todos"), b.Repository("todos")
	upsert(t, ta, "1", `{"title":"x"}`)
	waitSynced(t, a, b)
	if get(t, tb, "1") == nil {
		t.Fatal("b did not receive the document")
	}
	if err := ta.Delete(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, a, b)
	if got := get(t, tb, "1"); got != nil {
		t.Fatalf("delete did not sync: b still holds %v", got)
	}
	d, ok, err := bstore.Doc(context.Background(), "todos", "1")
	if err != nil || !ok || !d.Deleted {
		t.Fatalf("b holds no tombstone: %+v %v %v", d, ok, err)
	}
	if err := ta.Delete(context.Background(), "1"); core.Code(err) != core.CodeNotFound {
		t.Fatalf("deleting a deleted document: %v, want not_found", err)
	}
}

func TestOfflineWritesQueueAndFlushOnReconnect(t *testing.T) {
	srv := servertest.Start(t)
	a, astore := newClient(t, fastOptions(srv.WSURL(), "todos"))
	b, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	waitSynced(t, a, b)
	srv.Stop()
	waitFor(t, "a to notice the server is gone", func() bool { return a.Status().State != core.StateConnected })
	ta := a.Repository("todos")
	for _, id := range []string{"1", "2", "3"} {
		upsert(t, ta, id, `{"offline":true}`)
	}
	if n, _ := astore.PendingCount(context.Background()); n != 3 {
		t.Fatalf("pending %d while offline, want 3", n)
	}
	waitFor(t, "the status to count 3 pending", func() bool { return a.Status().Pending == 3 })
	srv.Restart()
	waitSynced(t, a, b, a)
	if got := all(t, b.Repository("todos")); got != all(t, ta) || !strings.Contains(got, `"id":"3"`) {
		t.Fatalf("b holds %s after reconnect, a holds %s", got, all(t, ta))
	}
	if a.Status().Pending != 0 {
		waitFor(t, "pending to drop to 0", func() bool { return a.Status().Pending == 0 })
	}
	if m := a.Metrics(); m.Reconnects < 1 || m.EventsAcked < 3 {
		t.Fatalf("metrics %+v: want a reconnect and 3 acks", m)
	}
}

func TestPendingEventsSurviveRestartOfTheClient(t *testing.T) {
	srv := servertest.Start(t)
	store := core.NewMemoryStore()
	defer store.Close()
	opts := fastOptions(srv.WSURL(), "todos")
	c1, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Never started: the write stays in the store's outbox.
	upsert(t, c1.Repository("todos"), "1", `{"v":1}`)
	id := c1.ClientID()
	c1.Close()
	c2, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.ClientID() != id {
		t.Fatalf("client id %s after restart, want the persisted %s", c2.ClientID(), id)
	}
	c2.Start()
	waitSynced(t, c2)
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 10)
	if err != nil || len(events) != 1 || events[0].DataID != "1" {
		t.Fatalf("server holds %v (%v), want the one event written before the restart", events, err)
	}
}

func TestUnackedEventsResentWithoutDuplicates(t *testing.T) {
	srv := servertest.Start(t)
	a, astore := newClient(t, fastOptions(srv.WSURL(), "todos"))
	b, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	waitSynced(t, a, b)
	srv.DropAcks(1)
	upsert(t, a.Repository("todos"), "1", `{"v":1}`)
	waitSynced(t, a, b)
	if n, _ := astore.PendingCount(context.Background()); n != 0 {
		t.Fatalf("%d events still pending", n)
	}
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("server stored %d events (%v), want exactly 1", len(events), err)
	}
	if m := a.Metrics(); m.Reconnects < 1 || m.EventsSent < 2 {
		t.Fatalf("metrics %+v: want a reconnect and the event sent twice", m)
	}
	if got := get(t, b.Repository("todos"), "1"); got["v"] != 1.0 {
		t.Fatalf("b holds %v", got)
	}
}

func TestReauthWithoutReconnect(t *testing.T) {
	srv := servertest.Start(t, servertest.WithTokens(map[string]server.Principal{"t1": everyone, "t2": everyone}))
	opts := fastOptions(srv.WSURL(), "todos")
	opts.Token = "t1"
	c, _ := newClient(t, opts)
	log := recordStatus(c)
	waitSynced(t, c)
	c.UpdateToken("t2")
	upsert(t, c.Repository("todos"), "1", `{"v":1}`)
	waitSynced(t, c)
	if m := c.Metrics(); m.Reconnects != 0 {
		t.Fatalf("re-auth reconnected: %+v", m)
	}
	// A bad token sent on the live socket is rejected: proof the client
	// re-authenticated in place.
	c.UpdateCredentials("nope", map[string]string{"X-Tenant": "a"})
	waitFor(t, "the unauthorized state", func() bool { return log.has(core.StateUnauthorized) })
	if m := c.Metrics(); m.Reconnects != 0 {
		t.Fatalf("rejected re-auth counted as reconnect before new credentials: %+v", m)
	}
	c.UpdateToken("t1")
	waitSynced(t, c)
}

func TestBadTokenIsUnauthorizedAndRefreshed(t *testing.T) {
	srv := servertest.Start(t, servertest.WithTokens(map[string]server.Principal{"fresh": everyone}))
	var calls atomic.Int32
	opts := fastOptions(srv.WSURL(), "todos")
	opts.Token = "stale"
	opts.RefreshToken = func(ctx context.Context) (string, error) {
		calls.Add(1)
		return "fresh", nil
	}
	store := core.NewMemoryStore()
	c, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := recordStatus(c)
	c.Start()
	waitSynced(t, c)
	if calls.Load() != 1 {
		t.Fatalf("RefreshToken called %d times, want 1", calls.Load())
	}
	if !log.has(core.StateUnauthorized) {
		t.Fatalf("states %v never showed unauthorized", log.list())
	}
}

func TestBadTokenWithoutRefreshWaitsForNewCredentials(t *testing.T) {
	srv := servertest.Start(t, servertest.WithTokens(map[string]server.Principal{"good": everyone}))
	opts := fastOptions(srv.WSURL(), "todos")
	opts.Token = "bad"
	c, _ := newClient(t, opts)
	waitFor(t, "the unauthorized state", func() bool { return c.Status().State == core.StateUnauthorized })
	if s := c.Status(); !strings.Contains(s.LastError, "unauthorized") && !strings.Contains(s.LastError, "rejected") {
		t.Fatalf("lastError %q does not say why", s.LastError)
	}
	c.UpdateToken("good")
	waitSynced(t, c)
}

func TestWatchFiresOnLocalAndRemoteChanges(t *testing.T) {
	srv := servertest.Start(t)
	a, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	b, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	var mu sync.Mutex
	var results [][]json.RawMessage
	q := core.Query{Where: []core.Condition{{Field: "done", Op: "==", Value: json.RawMessage("false")}}}
	cancel := a.Repository("todos").Watch(q, func(docs []json.RawMessage) {
		mu.Lock()
		results = append(results, docs)
		mu.Unlock()
	})
	defer cancel()
	last := func() (int, []json.RawMessage) {
		mu.Lock()
		defer mu.Unlock()
		if len(results) == 0 {
			return 0, nil
		}
		return len(results), results[len(results)-1]
	}
	waitFor(t, "the initial result", func() bool { n, _ := last(); return n >= 1 })
	if _, r := last(); len(r) != 0 {
		t.Fatalf("initial result %s, want empty", r)
	}
	upsert(t, a.Repository("todos"), "1", `{"done":false}`)
	waitFor(t, "the local change", func() bool { _, r := last(); return len(r) == 1 })
	upsert(t, b.Repository("todos"), "2", `{"done":false}`)
	waitFor(t, "the remote change", func() bool { _, r := last(); return len(r) == 2 })
	// A change outside the result does not call the watcher again.
	n, _ := last()
	upsert(t, a.Repository("todos"), "3", `{"done":true}`)
	waitSynced(t, a, b, a)
	upsert(t, a.Repository("todos"), "1", `{"done":true}`)
	waitFor(t, "the document leaving the result", func() bool { _, r := last(); return len(r) == 1 })
	if m, _ := last(); m != n+1 {
		t.Fatalf("watcher called %d times after an unrelated change, want %d", m-n, 1)
	}
	cancel()
	upsert(t, a.Repository("todos"), "4", `{"done":false}`)
	waitSynced(t, a)
	if m, _ := last(); m != n+1 {
		t.Fatalf("watcher called after cancel")
	}
}

func TestStatusAndMetricsMove(t *testing.T) {
	srv := servertest.Start(t)
	c, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	waitSynced(t, c)
	before := c.Metrics()
	upsert(t, c.Repository("todos"), "1", `{"v":1}`)
	waitSynced(t, c)
	after := c.Metrics()
	if after.EventsSent <= before.EventsSent || after.EventsAcked <= before.EventsAcked ||
		after.BytesSent <= before.BytesSent || after.BytesReceived <= before.BytesReceived {
		t.Fatalf("metrics did not move: before %+v after %+v", before, after)
	}
	if s := c.Status(); s.LastSync.IsZero() || s.State != core.StateConnected {
		t.Fatalf("status %+v", s)
	}
	srv.CloseConnections()
	waitFor(t, "a reconnect", func() bool { return c.Metrics().Reconnects >= 1 })
	waitSynced(t, c)
	if m := c.Metrics(); m.LastDisconnected.IsZero() || m.AvgReconnect <= 0 {
		t.Fatalf("metrics after reconnect %+v", m)
	}
	c.Stop()
	if s := c.Status(); s.State != core.StateStopped {
		t.Fatalf("state after Stop %s", s.State)
	}
}

func TestLocalOnlyWritesDoNotSync(t *testing.T) {
	srv := servertest.Start(t)
	a, astore := newClient(t, fastOptions(srv.WSURL(), "todos"))
	b, _ := newClient(t, fastOptions(srv.WSURL(), "todos"))
	if err := a.Repository("todos").Upsert(context.Background(), "local", json.RawMessage(`{"x":1}`), core.LocalOnly()); err != nil {
		t.Fatal(err)
	}
	upsert(t, a.Repository("todos"), "shared", `{"x":2}`)
	waitSynced(t, a, b)
	if get(t, a.Repository("todos"), "local") == nil {
		t.Fatal("local-only document not written")
	}
	if get(t, b.Repository("todos"), "local") != nil {
		t.Fatal("local-only document synced")
	}
	if get(t, b.Repository("todos"), "shared") == nil {
		t.Fatal("shared document did not sync")
	}
	if n, _ := astore.PendingCount(context.Background()); n != 0 {
		t.Fatalf("pending %d", n)
	}
}

func TestInvalidInputHasCodes(t *testing.T) {
	c, err := core.NewClient(core.NewMemoryStore(), core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := c.Repository("todos")
	ctx := context.Background()
	long := strings.Repeat("x", protocol.MaxIDLength+1)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"array data", r.Upsert(ctx, "1", json.RawMessage(`[1]`)), core.CodeInvalid},
		{"string data", r.Upsert(ctx, "1", json.RawMessage(`"x"`)), core.CodeInvalid},
		{"nil data", r.Upsert(ctx, "1", nil), core.CodeInvalid},
		{"broken json", r.Upsert(ctx, "1", json.RawMessage(`{"a":`)), core.CodeInvalid},
		{"empty id", r.Upsert(ctx, "", json.RawMessage(`{}`)), core.CodeInvalid},
		{"long id", r.Upsert(ctx, long, json.RawMessage(`{}`)), core.CodeInvalid},
		{"delete missing", r.Delete(ctx, "nope"), core.CodeNotFound},
		{"bad repo", c.Repository("").Upsert(ctx, "1", json.RawMessage(`{}`)), core.CodeInvalid},
		{"bad query", func() error {
			_, err := r.Query(ctx, core.Query{Where: []core.Condition{{Field: "a", Op: "~"}}})
			return err
		}(), core.CodeInvalid},
	}
	for _, tc := range cases {
		if got := core.Code(tc.err); got != tc.want {
			t.Errorf("%s: error %v has code %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
	if _, err := core.NewClient(core.NewMemoryStore(), core.Options{Conflict: core.Custom}); core.Code(err) != core.CodeInvalid {
		t.Errorf("custom without Resolve: %v", err)
	}
	if core.Code(core.ErrQuotaExceeded) != core.CodeQuotaExceeded || core.Code(errors.New("x")) != core.CodeInternal {
		t.Errorf("quota/internal codes wrong")
	}
	c.Close()
	if err := r.Upsert(ctx, "1", json.RawMessage(`{}`)); core.Code(err) != core.CodeClosed {
		t.Errorf("write after Close: %v", err)
	}
}

func TestLocalReadsAndWrites(t *testing.T) {
	c, err := core.NewClient(core.NewMemoryStore(), core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := c.Repository("todos")
	ctx := context.Background()
	if err := r.UpsertMany(ctx, []core.Put{
		{ID: "b", Data: json.RawMessage(`{"n":2,"id":"ignored"}`)},
		{ID: "a", Data: json.RawMessage(`{"n":1}`)},
		{ID: "b", Data: json.RawMessage(`{"n":3}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if got := all(t, r); got != `[{"id":"a","n":1},{"id":"b","n":3}]` {
		t.Fatalf("GetAll %s", got)
	}
	res, err := r.Query(ctx, core.Query{OrderBy: []core.Order{{Field: "n", Desc: true}}, Limit: 1})
	if err != nil || len(res) != 1 || !strings.Contains(string(res[0]), `"n":3`) {
		t.Fatalf("Query %s %v", res, err)
	}
	if n, _ := c.Store().PendingCount(ctx); n != 3 {
		t.Fatalf("UpsertMany of 3 puts made %d outbox events", n)
	}
	if err := r.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := all(t, r); got != `[{"id":"b","n":3}]` {
		t.Fatalf("GetAll after delete %s", got)
	}
	upsert(t, r, "a", `{"n":9}`)
	pending, _ := c.Store().Pending(ctx, 0)
	ops := make([]string, len(pending))
	for i, p := range pending {
		ops[i] = p.Event.DataID + ":" + p.Event.Operation.String()
	}
	if got := strings.Join(ops, " "); got != "b:insert a:insert b:update a:delete a:insert" {
		t.Fatalf("outbox operations %q", got)
	}
	sort.Strings(ops)
}

func TestPendingCountFollowsTheOutbox(t *testing.T) {
	srv := servertest.Start(t)
	store := core.NewMemoryStore()
	defer store.Close()
	pre, err := core.NewClient(store, fastOptions(srv.WSURL(), "todos"))
	if err != nil {
		t.Fatal(err)
	}
	upsert(t, pre.Repository("todos"), "0", `{}`)
	pre.Close()
	c, err := core.NewClient(store, fastOptions(srv.WSURL(), "todos"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Status().Pending; got != 1 {
		t.Fatalf("pending %d at start, want the 1 left in the store", got)
	}
	r := c.Repository("todos")
	upsert(t, r, "1", `{}`)
	if err := r.UpsertMany(context.Background(), []core.Put{{ID: "2", Data: json.RawMessage(`{}`)}, {ID: "3", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Upsert(context.Background(), "4", json.RawMessage(`{}`), core.LocalOnly()); err != nil {
		t.Fatal(err)
	}
	if got := c.Status().Pending; got != 4 {
		t.Fatalf("pending %d after 3 synced writes and a local-only one, want 4", got)
	}
	c.Start()
	waitSynced(t, c)
	if got := c.Status().Pending; got != 0 {
		t.Fatalf("pending %d after sync, want 0", got)
	}
	if m := c.Metrics(); m.QueueSize != 0 {
		t.Fatalf("queue size %d", m.QueueSize)
	}
}

func TestExpiredTokenIsRefreshedWithoutLosingWrites(t *testing.T) {
	secret := []byte("test-secret-test-secret-test-secret")
	srv := servertest.Start(t, servertest.WithJWTSecret(secret))
	short, err := server.SignJWT(secret, everyone, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var refreshed atomic.Int32
	opts := fastOptions(srv.WSURL(), "todos")
	opts.Token = short
	opts.RefreshToken = func(context.Context) (string, error) {
		refreshed.Add(1)
		return server.SignJWT(secret, everyone, time.Hour)
	}
	store := core.NewMemoryStore()
	c, err := core.NewClient(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := recordStatus(c)
	c.Start()
	waitSynced(t, c)
	// Let the token expire (JWT times have one-second precision).
	time.Sleep(2100 * time.Millisecond)
	upsert(t, c.Repository("todos"), "1", `{"after":"expiry"}`)
	waitSynced(t, c)
	if refreshed.Load() == 0 || !log.has(core.StateUnauthorized) {
		t.Fatalf("refresh calls %d, states %v: the expired token was not refreshed", refreshed.Load(), log.list())
	}
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("server holds %d events (%v), want the write made after expiry", len(events), err)
	}
}
