package main_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// These tests run real `lfsync serve` processes, several on one PostgreSQL
// database (a throwaway cluster from pgtest), with real engine clients
// (core.Client) on each node.

// TestTwoNodesConverge: clients of two nodes sharing one database write
// concurrently and converge: every client ends with every document, the
// database holds each event exactly once under gap-free sequences, and a
// write through one node reaches the other node's clients live.
func TestTwoNodesConverge(t *testing.T) {
	t.Parallel()
	prebuild()
	dsn := pgtest.NewDB(t)
	a := startNode(t, "a", dsn)
	b := startNode(t, "b", dsn)
	for _, n := range []*proc{a, b} {
		h, err := n.health()
		if err != nil || h["node"] != n.name || h["status"] != "ok" {
			t.Fatalf("health of node %s: %v %v", n.name, h, err)
		}
	}

	es := []*engine{
		newEngine(t, "a1", a.url(), "todos"), newEngine(t, "a2", a.url(), "todos"),
		newEngine(t, "b1", b.url(), "todos"), newEngine(t, "b2", b.url(), "todos"),
	}
	stop := writers(t, "todos", 5*time.Millisecond, es...)
	time.Sleep(time.Second) // a second of concurrent writes through both nodes
	stop()
	waitConverged(t, "todos", es...)
	checkLog(t, dsn, "todos", es...)

	// Live cross-node fan-out, both ways: the document arrives without the
	// receiver reconnecting (a reconnect would catch it up instead).
	for _, pair := range [][2]*engine{{es[0], es[2]}, {es[3], es[1]}} {
		from, to := pair[0], pair[1]
		before := to.client.Metrics().Reconnects
		id, err := from.put("todos")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, to.name+" to receive "+id+" live", func() string {
			if to.has("todos", id) {
				return ""
			}
			return "not there yet"
		})
		if after := to.client.Metrics().Reconnects; after != before {
			t.Fatalf("%s reconnected (%d → %d) while waiting: the document did not come by live fan-out", to.name, before, after)
		}
	}
}

// TestKillNodeMidBatch: with clients pushing continuously through a load
// balancer to two nodes, kill -9 of one node loses nothing acked; its
// clients reconnect through the balancer to the surviving node and finish,
// new clients are served by the restarted node; everything reaches every
// client, and the database holds each event exactly once without gaps.
func TestKillNodeMidBatch(t *testing.T) {
	t.Parallel()
	prebuild()
	dsn := pgtest.NewDB(t)
	a := startNode(t, "a", dsn)
	b := startNode(t, "b", dsn)
	lb := newBalancer(t, a.addr, b.addr)

	// One client at a time: the balancer alternates, so c0, c2 and c4 are
	// on node a.
	var es, onA []*engine
	for i := range 6 {
		e := newEngine(t, fmt.Sprint("c", i), lb.url(), "todos")
		e.waitSynced()
		es = append(es, e)
		if i%2 == 0 {
			onA = append(onA, e)
		}
	}
	if na, nb := lb.liveTo(a.addr), lb.liveTo(b.addr); na != 3 || nb != 3 {
		t.Fatalf("the balancer put %d clients on a and %d on b, want 3 and 3", na, nb)
	}

	stop := writers(t, "todos", 3*time.Millisecond, es...)
	defer stop()
	time.Sleep(500 * time.Millisecond)
	// Kill node a (SIGKILL) while a client of it waits for acks.
	acked := make(map[*engine][]string)
	inflight := 0
	waitFor(t, "a client of node a with events in flight", func() string {
		inflight = 0
		for _, e := range es {
			acked[e] = e.store.ackedIDs()
			if slices.Contains(onA, e) {
				inflight += len(e.store.createdIDs()) - len(acked[e])
			}
		}
		if inflight == 0 {
			return "every event of a's clients is acked"
		}
		return ""
	})
	a.kill()
	t.Logf("killed node a while its clients had %d events not yet acked", inflight)

	// The survivors take over a's clients through the balancer.
	waitFor(t, "a's clients to reconnect to b", func() string {
		if n := lb.liveTo(b.addr); n < len(es) {
			return fmt.Sprintf("%d of %d clients on b", n, len(es))
		}
		return ""
	})
	time.Sleep(500 * time.Millisecond)
	a.restart()
	// New clients land on the restarted node too (round robin), and write.
	late := []*engine{newEngine(t, "late0", lb.url(), "todos"), newEngine(t, "late1", lb.url(), "todos")}
	waitFor(t, "a client on the restarted node", func() string {
		if lb.liveTo(a.addr) == 0 {
			return "none on a"
		}
		return ""
	})
	stopLate := writers(t, "todos", 3*time.Millisecond, late...)
	time.Sleep(500 * time.Millisecond)
	stop()
	stopLate()
	es = append(es, late...)

	waitConverged(t, "todos", es...)
	checkLog(t, dsn, "todos", es...)
	reconnected := 0
	for _, e := range es {
		if e.client.Metrics().Reconnects > 0 {
			reconnected++
		}
	}
	if reconnected < len(onA) {
		t.Fatalf("%d clients reconnected, want at least the %d that were on node a", reconnected, len(onA))
	}
	// Everything acked before the kill is still there (checkLog has every
	// created event; this names the acked ones for the record).
	log := logOf(t, dsn, "todos")
	stored := make(map[string]bool, len(log))
	for _, ev := range log {
		stored[ev.ID] = true
	}
	n := 0
	for e, ids := range acked {
		for _, id := range ids {
			n++
			if !stored[id] {
				t.Errorf("event %s of %s was acked before the kill but is not in the database", id, e.name)
			}
		}
	}
	t.Logf("%d events acked before the kill, %d in the log at the end", n, len(log))
}

// terminateBackends ends every database connection of node: those whose
// application_name is lfsync/<node>, as serve sets it, or starts with it
// (the store's watcher and notifier connections). It returns the
// application names of the connections it ended.
func terminateBackends(t testing.TB, dsn, node string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("failed to connect to the database: %v", err)
	}
	defer conn.Close(ctx)
	app := "lfsync/" + node
	rows, err := conn.Query(ctx, `SELECT pid, application_name FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND (application_name = $1 OR application_name LIKE $1 || ' %')`, app)
	if err != nil {
		t.Fatalf("failed to list the backends of node %s: %v", node, err)
	}
	type backend struct {
		PID  int32
		Name string
	}
	backends, err := pgx.CollectRows(rows, pgx.RowToStructByPos[backend])
	if err != nil {
		t.Fatalf("failed to list the backends of node %s: %v", node, err)
	}
	var names []string
	for _, b := range backends {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_terminate_backend($1)", b.PID).Scan(&ok); err != nil {
			t.Fatalf("failed to terminate backend %d of node %s: %v", b.PID, node, err)
		}
		if ok {
			names = append(names, b.Name)
		}
	}
	return names
}

// TestDatabaseConnectionDropped: when every database connection of a node
// is terminated (pg_terminate_backend) while its clients push, the node
// survives: pushes continue after an error and a retry, nothing is lost or
// doubled, and live fan-out across nodes resumes both ways.
func TestDatabaseConnectionDropped(t *testing.T) {
	t.Parallel()
	prebuild()
	dsn := pgtest.NewDB(t)
	a := startNode(t, "a", dsn)
	b := startNode(t, "b", dsn)
	ea := newEngine(t, "ea", a.url(), "todos")
	eb := newEngine(t, "eb", b.url(), "todos")
	ea.waitSynced()
	eb.waitSynced()

	stop := writers(t, "todos", 3*time.Millisecond, ea, eb)
	defer stop()
	var ended []string
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		ended = append(ended, terminateBackends(t, dsn, "a")...)
	}
	if len(ended) == 0 {
		t.Fatal("node a had no database connection to terminate (is application_name set?)")
	}
	total := len(ended)
	if !slices.Contains(ended, "lfsync/a watcher") {
		t.Fatalf("the terminated connections %v do not include node a's LISTEN connection (lfsync/a watcher)", ended)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	t.Logf("terminated %d connections of node a; failed pushes retried by ea: %d; node a logged:\n%s",
		total, ea.client.Metrics().FailedSends, strings.Join(a.problems(), "\n"))

	waitConverged(t, "todos", ea, eb)
	checkLog(t, dsn, "todos", ea, eb)

	// Live fan-out resumed both ways, without reconnects, and node a's
	// watcher (its LISTEN connection, ended above) reports b's appends
	// again.
	advances := a.metric("lfsync_store_advances_total")
	for _, pair := range [][2]*engine{{eb, ea}, {ea, eb}} {
		from, to := pair[0], pair[1]
		before := to.client.Metrics().Reconnects
		id, err := from.put("todos")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, to.name+" to receive "+id+" live", func() string {
			if to.has("todos", id) {
				return ""
			}
			return "not there yet"
		})
		if after := to.client.Metrics().Reconnects; after != before {
			t.Fatalf("%s reconnected (%d → %d) while waiting: the document did not come by live fan-out", to.name, before, after)
		}
	}
	waitFor(t, "node a's watcher to report node b's append", func() string {
		if n := a.metric("lfsync_store_advances_total"); n <= advances {
			return fmt.Sprintf("lfsync_store_advances_total %v, was %v", n, advances)
		}
		return ""
	})
	if h, err := a.health(); err != nil || h["status"] != "ok" {
		t.Fatalf("node a after the drops: %v %v", h, err)
	}
}

// TestCrossNodeFanOutInOrder: a subscriber on node b receives every event
// pushed concurrently through node a live, in sequence order, each exactly
// once, although b's LISTEN connection is terminated twice meanwhile (the
// notifications sent while it is down are lost).
func TestCrossNodeFanOutInOrder(t *testing.T) {
	t.Parallel()
	prebuild()
	dsn := pgtest.NewDB(t)
	a := startNode(t, "a", dsn)
	b := startNode(t, "b", dsn)

	sub := dialWS(t, b.url())
	sub.send(t, map[string]any{"type": "request_events", "repository": "feed", "afterSequence": 0, "limit": 10})
	for sub.read(t).Type != protocol.TypeSyncComplete {
	}

	const pushers, batches, batch = 3, 20, 5
	var wg sync.WaitGroup
	var ended atomic.Int64 // watcher connections terminated
	for i := range pushers {
		c := dialWS(t, a.url())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range batches {
				evs := make([]map[string]any, batch)
				for k := range evs {
					evs[k] = newEvent(fmt.Sprintf("p%d-%d-%d", i, j, k))
				}
				c.push(t, "feed", evs)
				if j == batches/3 || j == 2*batches/3 {
					if i == 0 {
						ended.Add(int64(terminateWatcher(t, dsn, "b")))
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	const total = pushers * batches * batch
	seen := make(map[string]bool, total)
	var next int64 = 1
	for next <= total {
		m := sub.read(t)
		if t.Failed() {
			break
		}
		if m.Type != protocol.TypeEvents {
			t.Fatalf("subscriber got %s %s", m.Type, m.Text)
		}
		for _, e := range m.Events {
			if e.ServerSequence != next {
				t.Fatalf("subscriber got sequence %d, want %d (gap or duplicate)", e.ServerSequence, next)
			}
			if seen[e.ID] {
				t.Fatalf("subscriber got event %s twice", e.ID)
			}
			seen[e.ID] = true
			next++
		}
	}
	wg.Wait()
	if ended.Load() == 0 {
		t.Fatal("node b's watcher connection was never terminated: the test lost no notification")
	}
}

// terminateWatcher ends node's LISTEN connection and returns how many
// connections it ended.
func terminateWatcher(t testing.TB, dsn, node string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Errorf("failed to connect to the database: %v", err)
		return 0
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1 OFFSET 0) w
		WHERE pg_terminate_backend(w.pid)`, "lfsync/"+node+" watcher").Scan(&n); err != nil {
		t.Errorf("failed to terminate the watcher of node %s: %v", node, err)
	}
	return n
}
