package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/servertest"
)

// Scenario tests: the engine against the real server, one sync situation
// each, checked with the audit of harness_test.go (nothing lost, nothing
// duplicated, every replica identical).

const repoTodos = "todos"

// TestScenarioTwoClientsConverge syncs upserts and deletes both ways.
func TestScenarioTwoClientsConverge(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos})
	nodes := []*node{a, b}

	want := make(replica)
	for i := range 5 {
		id := fmt.Sprintf("a%d", i)
		want[id] = a.put(repoTodos, id, map[string]any{"title": "from a", "n": i})
		id = fmt.Sprintf("b%d", i)
		want[id] = b.put(repoTodos, id, map[string]any{"title": "from b", "n": i})
	}
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, b, repoTodos, want)

	// Each side deletes and updates the other's documents.
	a.del(repoTodos, "b1")
	b.del(repoTodos, "a1")
	delete(want, "a1")
	delete(want, "b1")
	want["a2"] = b.put(repoTodos, "a2", map[string]any{"title": "edited by b", "done": true})
	want["b2"] = a.put(repoTodos, "b2", map[string]any{"title": "edited by a", "done": false})
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, a, repoTodos, want)
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioManyClientsConverge has four clients write at the same time,
// to their own documents and to shared ones.
func TestScenarioManyClientsConverge(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	var nodes []*node
	for i := range 4 {
		nodes = append(nodes, newNode(t, srv, fmt.Sprintf("c%d", i), []string{repoTodos}))
	}
	w := startWriters(t, nodes, repoTodos, 40, time.Millisecond)
	w.wait(t)
	waitConverged(t, srv, nodes, repoTodos)
	requireLWW(t, srv, nodes, repoTodos)
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioRepositoryAddedLater syncs two repositories, one of which a
// client starts to sync only later through Client.Repository: it catches up
// on what was written before and keeps the repositories apart.
func TestScenarioRepositoryAddedLater(t *testing.T) {
	t.Parallel()
	const notes = "notes"
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos, notes})
	nodes := []*node{a, b}
	wantTodos, wantNotes := make(replica), make(replica)
	for i := range 3 {
		id := fmt.Sprintf("x%d", i) // the same ids in both repositories
		wantNotes[id] = b.put(notes, id, map[string]any{"text": "note", "n": i})
		wantTodos[id] = b.put(repoTodos, id, map[string]any{"title": "todo", "n": i})
	}
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, a, repoTodos, wantTodos)

	// a starts syncing notes now.
	a.c().Repository(notes)
	waitConverged(t, srv, nodes, repoTodos, notes)
	requireReplica(t, a, notes, wantNotes)
	wantNotes["from-a"] = a.put(notes, "from-a", map[string]any{"text": "a's note"})
	a.del(notes, "x0")
	delete(wantNotes, "x0")
	waitConverged(t, srv, nodes, repoTodos, notes)
	requireReplica(t, b, notes, wantNotes)
	requireReplica(t, b, repoTodos, wantTodos)
	requireClean(t, srv, nodes, repoTodos, notes)
}

// TestScenarioOfflineWritesFlushOnReconnect writes while the server is down:
// the writes are readable at once, queue, and reach everyone once the
// server is back.
func TestScenarioOfflineWritesFlushOnReconnect(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos})
	nodes := []*node{a, b}
	for i := range 5 {
		a.put(repoTodos, fmt.Sprintf("d%d", i), map[string]any{"v": i})
	}
	waitConverged(t, srv, nodes, repoTodos)

	srv.Stop()
	for i := range 20 {
		doc := a.put(repoTodos, fmt.Sprintf("a-off-%d", i), map[string]any{"v": i})
		if got, ok := a.get(repoTodos, fmt.Sprintf("a-off-%d", i)); !ok || got[writeToken] != doc[writeToken] {
			t.Fatalf("offline write a-off-%d not readable locally: got %v (exists %v)", i, got, ok)
		}
		b.put(repoTodos, fmt.Sprintf("b-off-%d", i), map[string]any{"v": i})
	}
	a.del(repoTodos, "d0")
	b.del(repoTodos, "d1")
	waitPending(t, a, 21)
	srv.Restart()
	waitConverged(t, srv, nodes, repoTodos)
	if _, ok := b.get(repoTodos, "d0"); ok {
		t.Fatal("b: d0 deleted offline by a still exists")
	}
	if _, ok := b.get(repoTodos, "a-off-19"); !ok {
		t.Fatal("b: a's offline write a-off-19 is missing")
	}
	if p := a.c().Status().Pending; p != 0 {
		t.Fatalf("a: Status().Pending = %d after sync, want 0", p)
	}
	requireLWW(t, srv, nodes, repoTodos)
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioRestartWithPendingSendsOnce closes a client with offline
// writes queued and opens a new one on the same store (a process restart):
// the queued writes are sent, each exactly once.
func TestScenarioRestartWithPendingSendsOnce(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos})
	nodes := []*node{a, b}
	a.waitSynced()

	srv.Stop()
	want := make(replica)
	for i := range 30 {
		id := fmt.Sprintf("p%d", i)
		want[id] = a.put(repoTodos, id, map[string]any{"v": i})
	}
	a.restart()
	waitPending(t, a, 30)
	a.restart() // twice, before the server is back
	srv.Restart()
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, b, repoTodos, want)
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioRestartWithUnackedPushSendsOnce restarts a client whose push
// the server committed but never acked: the new client pushes the same
// event again and the server stores it once.
func TestScenarioRestartWithUnackedPushSendsOnce(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos})
	nodes := []*node{a, b}
	waitConverged(t, srv, nodes, repoTodos)

	// Every ack is dropped: the event lands on the server but a can never
	// learn it.
	srv.DropAcks(1 << 30)
	doc := a.put(repoTodos, "x", map[string]any{"title": "committed, never acked"})
	awaitCond(t, "the server to store a's event", func() string {
		log, _ := serverLog(t, srv, repoTodos)
		for _, e := range log {
			if e.DataID == "x" {
				return ""
			}
		}
		return "event for x not on the server yet"
	})
	a.closeClient()
	evs := a.store.created(repoTodos)
	if len(evs) != 1 {
		t.Fatalf("a created %d events for one write, want 1", len(evs))
	}
	if f := a.store.fate(evs[0].Event.ID); f != "pending" {
		t.Fatalf("a's event is %s although every ack was dropped", f)
	}
	srv.Restart() // a new server process: no more dropped acks
	a.open()
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, b, repoTodos, replica{"x": doc})
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioServerRestartMidStream restarts the server three times while
// three clients keep writing.
func TestScenarioServerRestartMidStream(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, srv, fmt.Sprintf("c%d", i), []string{repoTodos}))
	}
	w := startWriters(t, nodes, repoTodos, 60, 3*time.Millisecond)
	for range 3 {
		w.waitProgress(t, 15)
		srv.Restart()
	}
	w.wait(t)
	waitConverged(t, srv, nodes, repoTodos)
	requireLWW(t, srv, nodes, repoTodos)
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioServerClosesSockets drops every socket again and again while
// clients write.
func TestScenarioServerClosesSockets(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, srv, fmt.Sprintf("c%d", i), []string{repoTodos}))
	}
	w := startWriters(t, nodes, repoTodos, 60, 2*time.Millisecond)
	closes := 0
	for !w.done() {
		srv.CloseConnections()
		closes++
		time.Sleep(15 * time.Millisecond) // pacing, not an assertion
	}
	w.wait(t)
	t.Logf("closed every socket %d times", closes)
	waitConverged(t, srv, nodes, repoTodos)
	requireLWW(t, srv, nodes, repoTodos)
	requireClean(t, srv, nodes, repoTodos)
	var reconnects int64
	for _, n := range nodes {
		reconnects += n.c().Metrics().Reconnects
	}
	if reconnects == 0 {
		t.Fatal("no client reconnected although the server closed every socket")
	}
}

// TestScenarioDroppedAcks has the server commit pushes and close the socket
// instead of acking: the client re-pushes, the server stores nothing twice
// and each event ends acked.
func TestScenarioDroppedAcks(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos})
	nodes := []*node{a, b}
	waitConverged(t, srv, nodes, repoTodos)

	srv.DropAcks(3)
	want := make(replica)
	for i := range 10 {
		id := fmt.Sprintf("d%d", i)
		want[id] = a.put(repoTodos, id, map[string]any{"v": i})
		a.waitSynced()
	}
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, b, repoTodos, want)
	requireClean(t, srv, nodes, repoTodos)
	for _, e := range a.store.created(repoTodos) {
		if f := a.store.fate(e.Event.ID); f != "acked" && f != "removed" {
			t.Errorf("event %s for %s is %s, want acked", e.Event.ID, e.Event.DataID, f)
		}
	}
	if r := a.c().Metrics().Reconnects; r < 1 {
		t.Fatalf("a reconnected %d times, want >= 1: the dropped acks did not close its socket", r)
	}
}

// TestScenarioCatchUpAfterOffline brings back a client that missed
// thousands of events, in pages, and checks that its cursor persists: a new
// client on the same store pulls only what is new.
func TestScenarioCatchUpAfterOffline(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos}, withPageSize(100))
	b := newNode(t, srv, "b", []string{repoTodos}, withBatchSize(200))
	nodes := []*node{a, b}
	waitConverged(t, srv, nodes, repoTodos)

	a.c().Stop()
	const total = 1000
	want := make(replica)
	for start := 0; start < total; start += 250 {
		puts := make([]core.Put, 0, 250)
		for i := start; i < start+250; i++ {
			id := fmt.Sprintf("doc-%04d", i)
			doc := map[string]any{"n": float64(i), writeToken: fmt.Sprintf("bulk-%d", i)}
			want[id] = doc
			puts = append(puts, core.Put{ID: id, Data: mustMarshal(t, doc)})
		}
		if err := b.repo(repoTodos).UpsertMany(context.Background(), puts); err != nil {
			t.Fatalf("b: UpsertMany: %v", err)
		}
	}
	for i := 0; i < total; i += 20 {
		id := fmt.Sprintf("doc-%04d", i)
		if i%40 == 0 {
			b.del(repoTodos, id)
			delete(want, id)
		} else {
			want[id] = b.put(repoTodos, id, map[string]any{"n": float64(i), "edited": true})
		}
	}
	b.waitSynced()
	a.c().Start()
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, a, repoTodos, want)
	if got := a.c().Metrics().EventsReceived; got < int64(len(want)) {
		t.Fatalf("a: Metrics().EventsReceived = %d after catching up on %d documents", got, len(want))
	}

	// A restarted client resumes from its persisted cursor.
	a.closeClient()
	for i := range 5 {
		id := fmt.Sprintf("new-%d", i)
		want[id] = b.put(repoTodos, id, map[string]any{"n": i})
	}
	b.waitSynced()
	a.open()
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, a, repoTodos, want)
	if got := a.c().Metrics().EventsReceived; got < 5 || got >= total/2 {
		t.Fatalf("a: Metrics().EventsReceived = %d after a restart with 5 new events, want 5 or a few more: "+
			"the client re-pulled instead of resuming from its cursor", got)
	}
	requireClean(t, srv, nodes, repoTodos)
}

// TestScenarioDeleteNotResurrected deletes a document while another client
// holds an older offline update of it: the late update loses everywhere.
func TestScenarioDeleteNotResurrected(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	b := newNode(t, srv, "b", []string{repoTodos})
	nodes := []*node{a, b}
	a.put(repoTodos, "d", map[string]any{"title": "original"})
	keep := a.put(repoTodos, "k", map[string]any{"title": "kept"})
	waitConverged(t, srv, nodes, repoTodos)

	b.c().Stop()
	b.put(repoTodos, "d", map[string]any{"title": "older offline update"})
	stampGap()
	a.del(repoTodos, "d")
	a.waitSynced()
	b.c().Start()
	waitConverged(t, srv, nodes, repoTodos)
	for _, n := range nodes {
		if doc, ok := n.get(repoTodos, "d"); ok {
			t.Fatalf("%s: deleted document d resurrected by an older update: %v", n.name, doc)
		}
	}
	requireReplica(t, a, repoTodos, replica{"k": keep})
	requireLWW(t, srv, nodes, repoTodos)
	requireClean(t, srv, nodes, repoTodos)

	// A client that starts from zero sees the same.
	c := newNode(t, srv, "c", []string{repoTodos})
	waitConverged(t, srv, append(nodes, c), repoTodos)
	if doc, ok := c.get(repoTodos, "d"); ok {
		t.Fatalf("c: deleted document d resurrected on catch-up: %v", doc)
	}
}

// stampGap lets the wall clock pass the millisecond stamps of writes made so
// far, so the next write is later by time, not only by event id.
func stampGap() { time.Sleep(3 * time.Millisecond) }

// TestScenarioLateOlderEventLoses has the server sequence an event after a
// newer one of the same document (a writer whose push was late): live
// clients and a client that catches up later both keep the newer one, and a
// newer delete is not undone by an older update.
func TestScenarioLateOlderEventLoses(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	a.waitSynced()
	raw := dialRaw(t, srv)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	raw.push(repoTodos,
		newEvent(t, protocol.OpInsert, "u", t0.Add(2*time.Second), map[string]any{"title": "newer"}),
		newEvent(t, protocol.OpUpdate, "u", t0.Add(time.Second), map[string]any{"title": "older, sequenced later"}),
	)
	raw.push(repoTodos,
		newEvent(t, protocol.OpInsert, "d", t0, map[string]any{"title": "inserted"}),
		newEvent(t, protocol.OpDelete, "d", t0.Add(3*time.Second), nil),
		newEvent(t, protocol.OpUpdate, "d", t0.Add(2*time.Second), map[string]any{"title": "older update after the delete"}),
	)
	c := newNode(t, srv, "c", []string{repoTodos})
	nodes := []*node{a, c}
	waitConverged(t, srv, nodes, repoTodos)
	want := replica{"u": {"title": "newer"}}
	for _, n := range nodes {
		requireReplica(t, n, repoTodos, want)
	}
}

// TestScenarioTieBreakIsDeterministic sends two writes of one document with
// the same creation time: every replica, live or catching up, keeps the one
// with the greater event id, whatever order the server sequenced them in.
func TestScenarioTieBreakIsDeterministic(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos})
	a.waitSynced()
	raw := dialRaw(t, srv)
	at := time.Now().UTC().Truncate(time.Millisecond)
	want := make(replica)
	for i, greaterFirst := range []bool{true, false} {
		id := fmt.Sprintf("tie%d", i)
		lo := newEvent(t, protocol.OpUpdate, id, at, map[string]any{"title": "lower id"})
		hi := newEvent(t, protocol.OpUpdate, id, at, map[string]any{"title": "greater id"})
		if lo.ID > hi.ID {
			lo.ID, hi.ID = hi.ID, lo.ID
		}
		if greaterFirst {
			raw.push(repoTodos, hi, lo)
		} else {
			raw.push(repoTodos, lo, hi)
		}
		want[id] = map[string]any{"title": "greater id"}
	}
	c := newNode(t, srv, "c", []string{repoTodos})
	nodes := []*node{a, c}
	waitConverged(t, srv, nodes, repoTodos)
	for _, n := range nodes {
		requireReplica(t, n, repoTodos, want)
	}
}

// TestScenarioWeirdEventsDoNotBlock injects valid but unusual events
// straight into the server, as a foreign client could: they must neither
// stop the stream nor make replicas differ, live or catching up.
func TestScenarioWeirdEventsDoNotBlock(t *testing.T) {
	for _, strategy := range []core.ConflictStrategy{core.LastWriteWins, core.FieldMerge} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			testWeirdEvents(t, strategy)
		})
	}
}

func testWeirdEvents(t *testing.T, strategy core.ConflictStrategy) {
	srv := startServer(t)
	a := newNode(t, srv, "a", []string{repoTodos}, withConflict(strategy))
	b := newNode(t, srv, "b", []string{repoTodos}, withConflict(strategy))
	a.put(repoTodos, "before", map[string]any{"title": "before"})
	waitConverged(t, srv, []*node{a, b}, repoTodos)

	now := time.Now().UTC().Truncate(time.Millisecond)
	deep := map[string]any{"leaf": true}
	for range 60 {
		deep = map[string]any{"n": deep}
	}
	weird := []protocol.Event{
		// data.id disagrees with the document id.
		newEvent(t, protocol.OpInsert, "mismatch", now, map[string]any{"id": "someone-else", "title": "mismatch"}),
		// An update and a delete of documents never inserted.
		newEvent(t, protocol.OpUpdate, "never-inserted", now, map[string]any{"title": "update first"}),
		newEvent(t, protocol.OpDelete, "never-existed", now, nil),
		// Odd ids: unicode, slashes, dots, spaces, the longest allowed.
		newEvent(t, protocol.OpInsert, "ünï cødé/../x?#%", now, map[string]any{"title": "odd id"}),
		newEvent(t, protocol.OpInsert, strings.Repeat("L", protocol.MaxIDLength), now, map[string]any{"title": "long id"}),
		// Odd values: deep nesting, extreme numbers, escapes, empty keys.
		newEvent(t, protocol.OpInsert, "values", now, map[string]any{
			"deep": deep, "big": 1e308, "neg": -1.5e-300, "int": float64(1 << 53), "empty": map[string]any{},
			"list": []any{nil, true, "x", 1.0, []any{}}, "": "empty key", "quote\"key": "line\nbreak\u2028\t\\",
			"null": nil,
		}),
		// A creation time far in the future, then an ordinary update.
		newEvent(t, protocol.OpInsert, "future", now.AddDate(900, 0, 0), map[string]any{"title": "from the future"}),
		// Epoch zero.
		newEvent(t, protocol.OpInsert, "epoch", time.UnixMilli(0).UTC(), map[string]any{"title": "1970"}),
	}
	// Field-merge metadata that is not what the engine writes.
	for i, meta := range []string{
		`{"fields":5}`,
		`{"fields":{"title":{"at":"not a time","id":""}}}`,
		`{"fields":{"title":{"at":"2001-01-01T00:00:00.000Z","id":"x"},"ghost":{"at":"2001-01-01T00:00:00.000Z","id":"x"}}}`,
		`{"other":[1,2,3]}`,
	} {
		e := newEvent(t, protocol.OpInsert, fmt.Sprintf("meta%d", i), now, map[string]any{"title": "odd meta"})
		e.Meta = json.RawMessage(meta)
		weird = append(weird, e)
	}
	raw := dialRaw(t, srv)
	for _, e := range weird {
		raw.push(repoTodos, e) // one by one: a rejected batch hides the others
	}
	var injected []string
	for _, e := range weird {
		injected = append(injected, e.ID)
	}
	// The README's spelling through the REST mirror: eventId, a named
	// operation, epoch milliseconds, the id inside data.
	readmeID := newEventID(t)
	restPost(t, srv, repoTodos, fmt.Sprintf(`{"eventId":%q,"operation":"insert","createdAt":%d,"data":{"id":"rest-readme","title":"via REST"}}`,
		readmeID, now.UnixMilli()))
	injected = append(injected, readmeID)

	// The stream keeps flowing both ways, and a write over the future
	// document still syncs.
	b.put(repoTodos, "after", map[string]any{"title": "after"})
	a.put(repoTodos, "future", map[string]any{"title": "rewritten"})
	c := newNode(t, srv, "c", []string{repoTodos}, withConflict(strategy))
	nodes := []*node{a, b, c}
	waitConverged(t, srv, nodes, repoTodos)
	for _, n := range nodes {
		got := n.snapshot(repoTodos)
		for _, id := range []string{"before", "after", "mismatch", "never-inserted", "values", "ünï cødé/../x?#%", "epoch", "meta0", "meta3", "rest-readme"} {
			if _, ok := got[id]; !ok {
				t.Errorf("%s: document %q is missing", n.name, id)
			}
		}
		if doc := got["future"]; doc["title"] != "rewritten" {
			t.Errorf("%s: future = %v, want the later local rewrite", n.name, doc)
		}
		if _, ok := got["never-existed"]; ok {
			t.Errorf("%s: a delete created document never-existed", n.name)
		}
		if !reflect.DeepEqual(got["values"], decodeObject(t, weird[5].Data)) {
			t.Errorf("%s: values = %s, want %s", n.name, mustJSON(got["values"]), weird[5].Data)
		}
	}
	if strategy == core.LastWriteWins {
		requireLWW(t, srv, nodes, repoTodos)
	}
	if a := audit(t, srv, repoTodos, nodes, injected...); !a.ok() {
		t.Fatalf("%s", a)
	}
}

// waitPending waits until the client's status counts want pending events.
func waitPending(t testing.TB, n *node, want int) {
	t.Helper()
	awaitCond(t, n.name+"'s status to count the queued writes", func() string {
		if p := n.c().Status().Pending; p != want {
			return fmt.Sprintf("Status().Pending = %d, want %d", p, want)
		}
		return ""
	})
}

// requireReplica fails the test unless the node's repository holds exactly
// want.
func requireReplica(t testing.TB, n *node, repo string, want replica) {
	t.Helper()
	if d := diffReplicas(want, n.snapshot(repo)); d != "" {
		t.Fatalf("%s: %s differs from what was written (want vs got):\n%s", n.name, repo, d)
	}
}

// requireLWW fails the test unless every replica holds what last-write-wins
// makes of the server's log.
func requireLWW(t testing.TB, srv *servertest.Server, nodes []*node, repo string) {
	t.Helper()
	log, _ := serverLog(t, srv, repo)
	want := expectedState(t, log, true)
	for _, n := range nodes {
		if d := diffReplicas(want, n.snapshot(repo)); d != "" {
			t.Fatalf("%s: %s differs from the last-write-wins outcome of the server's log (want vs got):\n%s", n.name, repo, d)
		}
	}
}

func mustMarshal(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// writers runs one writing goroutine per node.
type writers struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	errs     []error
	progress int
	finished chan struct{}
	halt     chan struct{} // closed to end the writers early
	haltOnce sync.Once
}

// startWriters starts one goroutine per node making count writes to repo:
// mostly upserts of the node's own documents and of shared ones, and
// deletes of its own, with pause between writes.
func startWriters(t testing.TB, nodes []*node, repo string, count int, pause time.Duration) *writers {
	w := &writers{finished: make(chan struct{}), halt: make(chan struct{})}
	for i, n := range nodes {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			live := make(map[string]bool)
			for k := range count {
				select {
				case <-w.halt:
					return
				default:
				}
				var err error
				switch r := rng.IntN(10); {
				case r < 2:
					id := fmt.Sprintf("shared-%d", rng.IntN(5))
					_, err = n.tryPut(repo, id, map[string]any{"by": n.name, "k": k})
				case r < 3 && len(live) > 0:
					for id := range live {
						err = n.tryDel(repo, id)
						delete(live, id)
						break
					}
				default:
					id := fmt.Sprintf("%s-%d", n.name, rng.IntN(15))
					_, err = n.tryPut(repo, id, map[string]any{"by": n.name, "k": k, "done": rng.IntN(2) == 0})
					live[id] = true
				}
				w.mu.Lock()
				w.progress++
				if err != nil {
					w.errs = append(w.errs, err)
				}
				w.mu.Unlock()
				if err != nil {
					return
				}
				time.Sleep(pause)
			}
		}()
	}
	go func() { w.wg.Wait(); close(w.finished) }()
	return w
}

// count returns the number of writes made so far.
func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress
}

// stop ends the writers after their current write.
func (w *writers) stop() { w.haltOnce.Do(func() { close(w.halt) }) }

// done reports whether every writer finished.
func (w *writers) done() bool {
	select {
	case <-w.finished:
		return true
	default:
		return false
	}
}

// waitProgress waits until the writers made n more writes, or finished.
func (w *writers) waitProgress(t testing.TB, n int) {
	t.Helper()
	w.mu.Lock()
	target := w.progress + n
	w.mu.Unlock()
	awaitCond(t, "writers to make progress", func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.progress >= target || w.done() {
			return ""
		}
		return fmt.Sprintf("%d writes made, waiting for %d", w.progress, target)
	})
}

// wait waits for every writer and fails the test if a write failed.
func (w *writers) wait(t testing.TB) {
	t.Helper()
	select {
	case <-w.finished:
	case <-time.After(syncTimeout):
		t.Fatalf("writers did not finish within %v", syncTimeout)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.errs {
		t.Errorf("write failed: %v", err)
	}
	if len(w.errs) > 0 {
		t.FailNow()
	}
}
