package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// The deployment figures of docs/deploy.md, measured on real `lfsync serve`
// processes (SQLite file, or one or two nodes on one throwaway PostgreSQL
// cluster) with raw WebSocket clients:
//
//	go test -run '^$' -bench Nodes -benchtime 1x ./cmd/lfsync
//
// Each sub-benchmark runs its workload once per b.N and reports the figure
// with b.ReportMetric; -benchtime 1x keeps the whole run near a minute.

// wsClient is a raw protocol client for the benchmarks.
type wsClient struct {
	ws *websocket.Conn
}

func dialWS(tb testing.TB, url string) *wsClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		tb.Fatalf("failed to dial %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20)
	c := &wsClient{ws: ws}
	tb.Cleanup(func() { ws.CloseNow() })
	c.send(tb, map[string]any{"type": "auth", "token": testToken})
	if m := c.read(tb); m.Type != protocol.TypeAuthSuccess {
		tb.Fatalf("auth: got %s %s", m.Type, m.Text)
	}
	return c
}

func (c *wsClient) send(tb testing.TB, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		tb.Errorf("failed to send: %v", err)
	}
}

// read returns the next frame, answering the server's pings on the way.
func (c *wsClient) read(tb testing.TB) protocol.Message {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, b, err := c.ws.Read(ctx)
		cancel()
		if err != nil {
			tb.Errorf("failed to read: %v", err)
			return protocol.Message{Type: "closed"}
		}
		m, err := protocol.Decode(b)
		if err != nil {
			tb.Errorf("undecodable frame %s: %v", b, err)
		}
		if m.Type == protocol.TypePing {
			c.send(tb, map[string]any{"type": protocol.TypePong})
			continue
		}
		return m
	}
}

// push sends a batch and waits for its ack, skipping fan-out frames.
func (c *wsClient) push(tb testing.TB, repo string, events []map[string]any) {
	c.send(tb, map[string]any{"type": "push_events_batch", "repository": repo, "events": events})
	for {
		switch m := c.read(tb); m.Type {
		case protocol.TypeAck:
			return
		case protocol.TypeEvents:
		default:
			tb.Errorf("push: got %s %s", m.Type, m.Text)
			return
		}
	}
}

// newEvent makes one coded-form event of about 100 bytes of data.
func newEvent(doc string) map[string]any {
	return map[string]any{
		"_event_id":   uuid.Must(uuid.NewV7()).String(),
		"_operation":  0,
		"_created_at": protocol.FormatTime(time.Now()),
		"_data_id":    doc,
		"_data":       map[string]any{"id": doc, "title": "a benchmark document of some length", "done": false, "n": 42},
	}
}

// ingest runs pushers clients spread over the nodes' URLs, each pushing
// batches of batch events to one of repos repositories until total events
// are stored, and returns events per second.
func ingest(b *testing.B, urls []string, pushers, repos, batch, total int) float64 {
	clients := make([]*wsClient, pushers)
	for i := range clients {
		clients[i] = dialWS(b, urls[i%len(urls)])
	}
	per := total / pushers / batch
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprint("ingest-", i%repos)
			for j := range per {
				evs := make([]map[string]any, batch)
				for k := range evs {
					evs[k] = newEvent(fmt.Sprintf("p%d-%d-%d", i, j, k))
				}
				c.push(b, repo, evs)
			}
		}()
	}
	wg.Wait()
	return float64(per*batch*pushers) / time.Since(start).Seconds()
}

// fanoutLatency pushes n single events one after another through from and
// returns the times until a subscriber of to received each, sorted.
func fanoutLatency(b *testing.B, from, to string, n int) []time.Duration {
	repo := "latency-" + uuid.NewString()[:8]
	sub := dialWS(b, to)
	sub.send(b, map[string]any{"type": "request_events", "repository": repo, "afterSequence": 0, "limit": 10})
	for sub.read(b).Type != protocol.TypeSyncComplete {
	}
	pub := dialWS(b, from)
	var mu sync.Mutex
	sent := make(map[string]time.Time, n)
	got := make(chan time.Duration, n)
	go func() {
		for received := 0; received < n; {
			m := sub.read(b)
			if m.Type == "closed" {
				return
			}
			now := time.Now()
			for _, e := range m.Events {
				mu.Lock()
				at, ok := sent[e.ID]
				mu.Unlock()
				if ok {
					got <- now.Sub(at)
					received++
				}
			}
		}
	}()
	out := make([]time.Duration, 0, n)
	for i := range n {
		e := newEvent(fmt.Sprint("doc-", i))
		mu.Lock()
		sent[e["_event_id"].(string)] = time.Now()
		mu.Unlock()
		pub.push(b, repo, []map[string]any{e})
		select {
		case d := <-got:
			out = append(out, d)
		case <-time.After(30 * time.Second):
			b.Fatalf("event %d never reached the subscriber", i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	slices.Sort(out)
	return out
}

func pct(ds []time.Duration, p float64) float64 {
	return float64(ds[int(float64(len(ds)-1)*p)].Microseconds()) / 1000
}

// idleConnKB opens n authenticated, subscribed WebSockets to a node and
// returns the growth of its resident memory per connection, in KiB.
func idleConnKB(b *testing.B, n *proc, conns int) float64 {
	before := n.rssKB()
	for i := range conns {
		c := dialWS(b, n.url())
		c.send(b, map[string]any{"type": "request_events", "repository": fmt.Sprint("idle-", i%10), "afterSequence": 0, "limit": 10})
		for c.read(b).Type != protocol.TypeSyncComplete {
		}
	}
	time.Sleep(500 * time.Millisecond) // let the heap settle
	return float64(n.rssKB()-before) / float64(conns)
}

// pgConns counts the database connections of each node (by the
// application_name serve gives them).
func pgConns(b *testing.B, dsn string, nodes ...string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var out []int
	for _, node := range nodes {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND (application_name = $1 OR application_name LIKE $1 || ' %')`, "lfsync/"+node).Scan(&n); err != nil {
			b.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// durableCluster starts a PostgreSQL cluster of its own with the durable
// defaults (fsync on: a commit waits for the WAL flush, as SQLite's
// synchronous=FULL does), unlike NewDB's test clusters; it is stopped and
// removed when b ends.
func durableCluster(b *testing.B) *pgtest.Cluster {
	dir, err := os.MkdirTemp("", "lfsync-bench-pg-")
	if err != nil {
		b.Fatal(err)
	}
	c, err := pgtest.Start(context.Background(), dir)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, pgtest.ErrUnavailable) && os.Getenv("CI") != "true" {
			b.Skip(err)
		}
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Stop()
		os.RemoveAll(dir)
	})
	return c
}

// pgBytes returns the on-disk size of lfsync's tables (with indexes and
// TOAST) in a database.
func pgBytes(b *testing.B, dsn string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relname LIKE 'lfsync%' AND n.nspname = current_schema()`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// fileBytes returns the size of the files whose names start with path (a
// SQLite database and its WAL).
func fileBytes(b *testing.B, path string) int64 {
	matches, _ := filepath.Glob(path + "*")
	var n int64
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// cpuTicks returns the CPU time (user + system, in clock ticks of 1/100 s)
// a process used, with its reaped children's when children is set; 0 if
// unknown (Linux only).
func cpuTicks(pid int, children bool) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (in parentheses): state ppid ... utime(14)
	// stime(15) cutime(16) cstime(17), numbered from 1 over the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	var t [4]int64
	for i := range t {
		fmt.Sscan(f[11+i], &t[i])
	}
	if children {
		return t[0] + t[1] + t[2] + t[3]
	}
	return t[0] + t[1]
}

// clusterTicks returns the CPU time of a PostgreSQL cluster: the
// postmaster with its reaped backends, plus its live backends.
func clusterTicks(c *pgtest.Cluster) int64 {
	b, err := os.ReadFile(filepath.Join(c.Dir(), "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	var pm int
	fmt.Sscan(string(b), &pm)
	total := cpuTicks(pm, true)
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pm) {
			total += cpuTicks(pid, false)
		}
	}
	return total
}

// BenchmarkNodes measures ingest and fan-out through one SQLite node, one
// PostgreSQL node and two PostgreSQL nodes on one database, and a node's
// memory per idle connection.
func BenchmarkNodes(b *testing.B) {
	const (
		pushers = 16
		repos   = 4
		batch   = 50
		total   = 16 * 50 * 25 // 20,000 events per run
		samples = 200
		idle    = 1000
	)
	prebuild()
	args := []string{"--rate", "0"}
	cluster := durableCluster(b)
	newDB := func(b *testing.B, name string) string {
		dsn, err := cluster.CreateDB(context.Background(), name)
		if err != nil {
			b.Fatal(err)
		}
		return dsn
	}
	b.Run("sqlite/1node", func(b *testing.B) {
		db := filepath.Join(b.TempDir(), "bench.db")
		a := startNode(b, "a", db, args...)
		cpu := cpuTicks(a.pid(), false)
		for range b.N {
			b.ReportMetric(ingest(b, []string{a.url()}, pushers, repos, batch, total), "events/s")
		}
		b.ReportMetric(float64(cpuTicks(a.pid(), false)-cpu)*10/float64(b.N*total/1000), "node-cpu-ms/1k-events")
		b.ReportMetric(float64(fileBytes(b, db))/float64(b.N*total), "disk-B/event")
		lat := fanoutLatency(b, a.url(), a.url(), samples)
		b.ReportMetric(pct(lat, .5), "fanout-p50-ms")
		b.ReportMetric(pct(lat, .99), "fanout-p99-ms")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("postgres/1node", func(b *testing.B) {
		dsn := newDB(b, fmt.Sprintf("one_%d", time.Now().UnixNano()))
		a := startNode(b, "a", dsn, args...)
		cpu, pgCPU := cpuTicks(a.pid(), false), clusterTicks(cluster)
		for range b.N {
			b.ReportMetric(ingest(b, []string{a.url()}, pushers, repos, batch, total), "events/s")
		}
		b.ReportMetric(float64(cpuTicks(a.pid(), false)-cpu)*10/float64(b.N*total/1000), "node-cpu-ms/1k-events")
		b.ReportMetric(float64(clusterTicks(cluster)-pgCPU)*10/float64(b.N*total/1000), "pg-cpu-ms/1k-events")
		b.ReportMetric(float64(pgBytes(b, dsn))/float64(b.N*total), "disk-B/event")
		lat := fanoutLatency(b, a.url(), a.url(), samples)
		b.ReportMetric(pct(lat, .5), "fanout-p50-ms")
		b.ReportMetric(pct(lat, .99), "fanout-p99-ms")
		b.ReportMetric(float64(pgConns(b, dsn, "a")[0]), "pg-conns")
		b.ReportMetric(float64(a.rssKB())/1024, "rss-MB")
		b.ReportMetric(idleConnKB(b, a, idle), "KB/idle-conn")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("postgres/2nodes", func(b *testing.B) {
		dsn := newDB(b, fmt.Sprintf("two_%d", time.Now().UnixNano()))
		a := startNode(b, "a", dsn, args...)
		n2 := startNode(b, "b", dsn, args...)
		cpu, pgCPU := cpuTicks(a.pid(), false)+cpuTicks(n2.pid(), false), clusterTicks(cluster)
		for range b.N {
			b.ReportMetric(ingest(b, []string{a.url(), n2.url()}, pushers, repos, batch, total), "events/s")
		}
		b.ReportMetric(float64(cpuTicks(a.pid(), false)+cpuTicks(n2.pid(), false)-cpu)*10/float64(b.N*total/1000), "node-cpu-ms/1k-events")
		b.ReportMetric(float64(clusterTicks(cluster)-pgCPU)*10/float64(b.N*total/1000), "pg-cpu-ms/1k-events")
		lat := fanoutLatency(b, a.url(), n2.url(), samples)
		b.ReportMetric(pct(lat, .5), "crossnode-fanout-p50-ms")
		b.ReportMetric(pct(lat, .99), "crossnode-fanout-p99-ms")
		conns := pgConns(b, dsn, "a", "b")
		b.ReportMetric(float64(conns[0]+conns[1]), "pg-conns")
		b.ReportMetric(0, "ns/op")
	})
}
