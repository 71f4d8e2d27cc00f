package integration_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// Flags of the integration tests: reproduce a randomized run with
// -run 'Convergence/<strategy>/seed=N' -seed N, or widen it with -seeds.
var (
	flagSeed  = flag.Int64("seed", 0, "run the randomized convergence tests with this seed only")
	flagSeeds = flag.Int("seeds", 0, "number of seeds per conflict strategy (default 5, 2 with -short)")
)

// syncTimeout bounds every wait for a condition in these tests. It is a
// deadline for a hang, not a speed assertion: under -race on a loaded
// two-core machine a healthy run needs a small fraction of it.
const syncTimeout = 30 * time.Second

// TestMain runs the tests, then fails the run if goroutines of the engine or
// the server outlive every test (a Client or server that does not release
// its goroutines on Close).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if leaked := waitNoLeaks(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked after every test ended:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitNoLeaks waits until no goroutine runs code of the lfsync engine or
// server, and returns the stacks of those still running at the deadline.
func waitNoLeaks(grace time.Duration) string {
	deadline := time.Now().Add(grace)
	for {
		leaked := lfsyncGoroutines()
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lfsyncGoroutines returns the stacks of goroutines with a frame in the
// engine (package core) or the server, other than the caller's.
func lfsyncGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // the caller
		}
		if strings.Contains(g, "\ngithub.com/lfsync/lfsync/core.") ||
			strings.Contains(g, "\ngithub.com/lfsync/lfsync/server.") ||
			strings.Contains(g, "\ngithub.com/lfsync/lfsync/server/") {
			out = append(out, g)
		}
	}
	return out
}

// testToken is the bearer token every test client presents.
const testToken = "lfsync-integration-token"

// startServer starts the real server (real SQLite, real WebSocket) on a
// loopback port; it stops when the test ends.
func startServer(t testing.TB) *servertest.Server {
	t.Helper()
	return servertest.Start(t, servertest.WithTokens(map[string]server.Principal{testToken: {User: "tester"}}))
}

// logBuffer keeps an engine's diagnostic messages and prints them only when
// the test fails. It stays usable after the test ends, when a goroutine of
// a closing client may still log.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logf(format string, args ...any) {
	line := time.Now().UTC().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lines) >= 400 {
		b.lines = b.lines[len(b.lines)-300:]
	}
	b.lines = append(b.lines, line)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// recStore is a real MemoryStore that also records what the engine wrote to
// its outbox, so a test knows every event the client ever created and what
// became of it.
type recStore struct {
	*core.MemoryStore

	mu      sync.Mutex
	events  map[string]core.OutboxEvent // by event id, as first appended
	order   []string                    // event ids, in append order
	acked   map[string]bool             // moved to StatusOK
	removed map[string]bool             // removed from the outbox
	failed  map[string]string           // moved to StatusFailed, with the reason
}

func newRecStore() *recStore {
	return &recStore{
		MemoryStore: core.NewMemoryStore(),
		events:      make(map[string]core.OutboxEvent),
		acked:       make(map[string]bool),
		removed:     make(map[string]bool),
		failed:      make(map[string]string),
	}
}

// Write implements core.Store: it writes through and records the outbox
// changes of batches that landed, in the order they landed (several
// clients may write concurrently, as tabs do).
func (s *recStore) Write(ctx context.Context, b *core.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.MemoryStore.Write(ctx, b); err != nil {
		return err
	}
	for _, e := range b.Events {
		if _, ok := s.events[e.Event.ID]; !ok {
			s.events[e.Event.ID] = e
			s.order = append(s.order, e.Event.ID)
		}
	}
	for _, u := range b.Statuses {
		switch u.Status {
		case core.StatusOK:
			s.acked[u.EventID] = true
		case core.StatusFailed:
			if !s.acked[u.EventID] {
				s.failed[u.EventID] = u.Error
			}
		}
	}
	for _, id := range b.Remove {
		s.removed[id] = true
	}
	return nil
}

// created returns every outbox event the engine created in repo, in order.
func (s *recStore) created(repo string) []core.OutboxEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []core.OutboxEvent
	for _, id := range s.order {
		if e := s.events[id]; e.Repo == repo {
			out = append(out, e)
		}
	}
	return out
}

// fate says what became of an outbox event: "acked", "removed",
// "superseded" (dropped unsent because a remote change won, as serverWins
// documents), "failed: …" or "pending".
func (s *recStore) fate(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.acked[id]:
		return "acked"
	case strings.Contains(s.failed[id], "superseded"):
		return "superseded"
	case s.failed[id] != "":
		return "failed: " + s.failed[id]
	case s.removed[id]:
		return "removed"
	}
	return "pending"
}

// node is one test client: a Client over a recording store, which can be
// closed and reopened on the same store to simulate a process restart.
type node struct {
	name  string
	t     testing.TB
	srv   *servertest.Server
	store *recStore
	opts  core.Options
	log   *logBuffer

	mu        sync.Mutex
	client    *core.Client
	eventErrs []string     // remote events the engine reported as skipped
	tokens    atomic.Int64 // last write token number
}

// clientOption changes the options of a test client.
type clientOption func(*core.Options)

func withConflict(s core.ConflictStrategy) clientOption {
	return func(o *core.Options) { o.Conflict = s }
}

func withResolve(fn core.ResolveFunc) clientOption {
	return func(o *core.Options) { o.Conflict = core.Custom; o.Resolve = fn }
}

func withURL(url string) clientOption { return func(o *core.Options) { o.URL = url } }

func withPageSize(n int) clientOption { return func(o *core.Options) { o.PageSize = n } }

func withBatchSize(n int) clientOption { return func(o *core.Options) { o.BatchSize = n } }

// newNode opens a client named name on a fresh store and starts it. The
// client is closed when the test ends.
func newNode(t testing.TB, srv *servertest.Server, name string, repos []string, opts ...clientOption) *node {
	t.Helper()
	n := &node{name: name, t: t, srv: srv, store: newRecStore(), log: &logBuffer{}}
	n.opts = core.Options{
		URL:          srv.WSURL(),
		Token:        testToken,
		ClientID:     name,
		Repositories: repos,
		// Fast reconnects keep fault tests short; jitter stays on.
		Reconnect:      core.Backoff{Initial: 5 * time.Millisecond, Max: 150 * time.Millisecond, Multiplier: 2},
		Heartbeat:      core.Heartbeat{Interval: time.Second, Timeout: 3 * time.Second},
		ConnectTimeout: 5 * time.Second,
		Logf:           n.log.logf,
		OnEventError: func(repo, eventID string, err error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.eventErrs = append(n.eventErrs, repo+"/"+eventID+": "+err.Error())
		},
	}
	for _, o := range opts {
		o(&n.opts)
	}
	n.open()
	t.Cleanup(func() {
		n.closeClient()
		if t.Failed() {
			t.Logf("engine log of %s:\n%s", n.name, n.log)
		}
	})
	return n
}

// open makes a new Client on the node's store and starts it.
func (n *node) open() {
	n.t.Helper()
	c, err := core.NewClient(n.store, n.opts)
	if err != nil {
		n.t.Fatalf("%s: NewClient: %v", n.name, err)
	}
	c.Start()
	n.mu.Lock()
	n.client = c
	n.mu.Unlock()
}

// c returns the node's current client.
func (n *node) c() *core.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

// closeClient closes the current client, leaving the store as it is.
func (n *node) closeClient() {
	n.mu.Lock()
	c := n.client
	n.client = nil
	n.mu.Unlock()
	if c == nil {
		return
	}
	if err := c.Close(); err != nil {
		n.t.Errorf("%s: Close: %v", n.name, err)
	}
}

// restart simulates a restart of the client's process: the client is closed
// and a new one opened on the same store.
func (n *node) restart() {
	n.t.Helper()
	n.closeClient()
	n.open()
}

// repo returns a repository of the current client.
func (n *node) repo(name string) *core.Repository { return n.c().Repository(name) }

// put upserts a document made of fields plus a unique write token (key
// writeToken) and returns the document as written, without its id. It fails
// the test if the local write fails.
func (n *node) put(repo, id string, fields map[string]any) map[string]any {
	n.t.Helper()
	doc, err := n.tryPut(repo, id, fields)
	if err != nil {
		n.t.Fatal(err)
	}
	return doc
}

// tryPut is put for goroutines other than the test's: it returns the error.
func (n *node) tryPut(repo, id string, fields map[string]any) (map[string]any, error) {
	doc := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		doc[k] = v
	}
	doc[writeToken] = fmt.Sprintf("%s-%d", n.name, n.tokens.Add(1))
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := n.repo(repo).Upsert(ctx, id, b); err != nil {
		return nil, fmt.Errorf("%s: Upsert(%s/%s): %w", n.name, repo, id, err)
	}
	var out map[string]any // numbers as float64, as read back
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("unmarshal: %w", err)
	}
	return out, nil
}

// putMany upserts several documents in one atomic UpsertMany, each with a
// unique write token, and fails the test if the local write fails.
func (n *node) putMany(repo string, docs map[string]map[string]any) {
	n.t.Helper()
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	puts := make([]core.Put, 0, len(docs))
	for _, id := range ids {
		doc := make(map[string]any, len(docs[id])+1)
		for k, v := range docs[id] {
			doc[k] = v
		}
		doc[writeToken] = fmt.Sprintf("%s-%d", n.name, n.tokens.Add(1))
		b, err := json.Marshal(doc)
		if err != nil {
			n.t.Fatalf("marshal: %v", err)
		}
		puts = append(puts, core.Put{ID: id, Data: b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := n.repo(repo).UpsertMany(ctx, puts); err != nil {
		n.t.Fatalf("%s: UpsertMany(%s, %v): %v", n.name, repo, ids, err)
	}
}

// del deletes a document and fails the test if the local write fails.
func (n *node) del(repo, id string) {
	n.t.Helper()
	if err := n.tryDel(repo, id); err != nil {
		n.t.Fatal(err)
	}
}

// tryDel is del for goroutines other than the test's.
func (n *node) tryDel(repo, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := n.repo(repo).Delete(ctx, id); err != nil {
		return fmt.Errorf("%s: Delete(%s/%s): %w", n.name, repo, id, err)
	}
	return nil
}

// get reads one document; ok is false when it does not exist.
func (n *node) get(repo, id string) (doc map[string]any, ok bool) {
	n.t.Helper()
	raw, ok, err := n.repo(repo).Get(context.Background(), id)
	if err != nil {
		n.t.Fatalf("%s: Get(%s/%s): %v", n.name, repo, id, err)
	}
	if !ok {
		return nil, false
	}
	return decodeObject(n.t, raw), true
}

// waitSynced waits until the client is connected, caught up and has an
// empty outbox.
func (n *node) waitSynced() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := n.c().WaitSynced(ctx); err != nil {
		n.t.Fatalf("%s: WaitSynced: %v (status %+v, metrics %+v)", n.name, err, n.c().Status(), n.c().Metrics())
	}
}

// eventErrors returns the remote events the engine reported as skipped.
func (n *node) eventErrors() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.eventErrs)
}

// replica is a repository's content on one client: document id → document
// without its "id" key.
type replica map[string]map[string]any

// snapshot reads a repository's documents from the client.
func (n *node) snapshot(repo string) replica {
	n.t.Helper()
	docs, err := n.repo(repo).GetAll(context.Background())
	if err != nil {
		n.t.Fatalf("%s: GetAll(%s): %v", n.name, repo, err)
	}
	out := make(replica, len(docs))
	for _, raw := range docs {
		m := decodeObject(n.t, raw)
		id, _ := m["id"].(string)
		if id == "" {
			n.t.Fatalf("%s: GetAll(%s) returned a document without a string id: %s", n.name, repo, raw)
		}
		if _, dup := out[id]; dup {
			n.t.Fatalf("%s: GetAll(%s) returned document %q twice", n.name, repo, id)
		}
		delete(m, "id")
		out[id] = m
	}
	return out
}

// decodeObject decodes a JSON object, numbers as float64.
func decodeObject(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("document %s is not a JSON object: %v", raw, err)
	}
	return m
}

// diffReplicas describes how b differs from a, "" when equal.
func diffReplicas(a, b replica) string {
	var lines []string
	ids := make(map[string]bool)
	for id := range a {
		ids[id] = true
	}
	for id := range b {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		da, oka := a[id]
		db, okb := b[id]
		switch {
		case oka && !okb:
			lines = append(lines, fmt.Sprintf("%s: %s vs absent", id, mustJSON(da)))
		case !oka && okb:
			lines = append(lines, fmt.Sprintf("%s: absent vs %s", id, mustJSON(db)))
		case !reflect.DeepEqual(da, db):
			lines = append(lines, fmt.Sprintf("%s: %s vs %s", id, mustJSON(da), mustJSON(db)))
		}
	}
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("… and %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// awaitCond polls cond until it returns "" (done) or the deadline passes, then
// fails the test with cond's last description of what is still wrong.
func awaitCond(t testing.TB, what string, cond func() string, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(syncTimeout)
	delay := 5 * time.Millisecond
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			for _, fn := range explain {
				msg += fn()
			}
			t.Fatalf("timed out after %v waiting for %s:\n%s", syncTimeout, what, msg)
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// waitConverged waits until every node is synced and every replica of each
// repository equals the first node's and holds everything the server has
// (each store's cursor reached the server's last sequence). It fails the
// test with the differences if that does not happen.
func waitConverged(t testing.TB, srv *servertest.Server, nodes []*node, repos ...string) {
	t.Helper()
	for _, n := range nodes {
		n.waitSynced()
	}
	var diverged map[string]map[string]bool // repo → ids that differ
	awaitCond(t, "replicas to converge", func() string {
		var msgs []string
		diverged = make(map[string]map[string]bool)
		for _, repo := range repos {
			last := serverLastSequence(t, srv, repo)
			for _, n := range nodes {
				cur, err := n.store.Cursor(context.Background(), repo)
				if err != nil {
					t.Fatalf("%s: Cursor(%s): %v", n.name, repo, err)
				}
				if cur < last {
					msgs = append(msgs, fmt.Sprintf("%s: cursor of %s is %d, server is at %d", n.name, repo, cur, last))
				}
			}
			first := nodes[0].snapshot(repo)
			for _, n := range nodes[1:] {
				other := n.snapshot(repo)
				if d := diffReplicas(first, other); d != "" {
					msgs = append(msgs, fmt.Sprintf("%s: %s differs from %s:\n%s", repo, nodes[0].name, n.name, d))
					for id := range first {
						if !reflect.DeepEqual(first[id], other[id]) {
							markDiverged(diverged, repo, id)
						}
					}
					for id := range other {
						if _, ok := first[id]; !ok {
							markDiverged(diverged, repo, id)
						}
					}
				}
			}
		}
		return strings.Join(msgs, "\n")
	}, func() string { return explainDivergence(t, srv, nodes, diverged) })
}

func markDiverged(m map[string]map[string]bool, repo, id string) {
	if m[repo] == nil {
		m[repo] = make(map[string]bool)
	}
	m[repo][id] = true
}

// explainDivergence describes, for a few documents that differ, what each
// store holds (winning event, sequence, tombstone) and the server's events
// of the document, for a bug report.
func explainDivergence(t testing.TB, srv *servertest.Server, nodes []*node, diverged map[string]map[string]bool) string {
	var b strings.Builder
	for repo, ids := range diverged {
		log, _ := serverLog(t, srv, repo)
		shown := 0
		for _, id := range sortedIDs(ids) {
			if shown == 3 {
				break
			}
			shown++
			fmt.Fprintf(&b, "\n%s/%s on the server:", repo, id)
			for _, e := range log {
				if e.DataID == id {
					fmt.Fprintf(&b, "\n  seq %d %s %s at %s %s", e.ServerSequence, e.Operation, e.ID, protocol.FormatTime(e.CreatedAt), e.Data)
				}
			}
			for _, n := range nodes {
				d, ok, err := n.store.Doc(context.Background(), repo, id)
				switch {
				case err != nil:
					fmt.Fprintf(&b, "\n  %s: %v", n.name, err)
				case !ok:
					fmt.Fprintf(&b, "\n  %s: no document", n.name)
				default:
					fmt.Fprintf(&b, "\n  %s: version %s at %s, seq %d, deleted %v, %s", n.name, d.Version.EventID,
						protocol.FormatTime(d.Version.At), d.Sequence, d.Deleted, d.Data)
				}
				for _, e := range n.store.created(repo) {
					if e.Event.DataID == id {
						fmt.Fprintf(&b, "\n    created %s at %s: %s", e.Event.ID, protocol.FormatTime(e.Event.CreatedAt), n.store.fate(e.Event.ID))
					}
				}
			}
		}
	}
	return b.String()
}

func sortedIDs(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// rawConn is a plain WebSocket connection to the server speaking the wire
// protocol directly, as a foreign client would: for reading the server's
// log and injecting odd events.
type rawConn struct {
	t    testing.TB
	conn *websocket.Conn
}

// dialRaw connects and authenticates a raw protocol connection.
func dialRaw(t testing.TB, srv *servertest.Server) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, srv.WSURL(), nil)
	if err != nil {
		t.Fatalf("failed to dial %s: %v", srv.WSURL(), err)
	}
	conn.SetReadLimit(256 << 20)
	r := &rawConn{t: t, conn: conn}
	t.Cleanup(func() { conn.CloseNow() })
	r.send(protocol.Message{Type: protocol.TypeAuth, Token: testToken})
	r.until(func(m protocol.Message) bool { return m.Type == protocol.TypeAuthSuccess })
	return r
}

// send writes one frame.
func (r *rawConn) send(m protocol.Message) {
	r.t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		r.t.Fatalf("failed to encode %s frame: %v", m.Type, err)
	}
	r.sendRaw(b)
}

// sendRaw writes one text frame as given.
func (r *rawConn) sendRaw(b []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if err := r.conn.Write(ctx, websocket.MessageText, b); err != nil {
		r.t.Fatalf("failed to write a frame: %v", err)
	}
}

// until reads frames until match accepts one and returns it; an error frame
// that match does not accept fails the test.
func (r *rawConn) until(match func(protocol.Message) bool) protocol.Message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	for {
		_, b, err := r.conn.Read(ctx)
		if err != nil {
			r.t.Fatalf("failed to read a frame: %v", err)
		}
		m, err := protocol.Decode(b)
		if err != nil {
			r.t.Fatalf("server sent an undecodable frame %.200s: %v", b, err)
		}
		if match(m) {
			return m
		}
		if m.Type == protocol.TypeError {
			r.t.Fatalf("server sent an error frame: %s %s", m.Code, m.Text)
		}
	}
}

// push sends events in one batch and waits for their ack.
func (r *rawConn) push(repo string, events ...protocol.Event) protocol.Message {
	r.t.Helper()
	r.send(protocol.Message{Type: protocol.TypePushEventsBatch, Repository: repo, Events: events})
	want := make(map[string]bool, len(events))
	for _, e := range events {
		want[e.ID] = true
	}
	return r.until(func(m protocol.Message) bool {
		if m.Type != protocol.TypeAck {
			return false
		}
		for _, id := range m.EventIDs {
			delete(want, id)
		}
		return len(want) == 0
	})
}

// serverLog reads a repository's whole log from the server, every event in
// sequence order, unreduced, through a fresh raw connection.
func serverLog(t testing.TB, srv *servertest.Server, repo string) (events []protocol.Event, last int64) {
	t.Helper()
	r := dialRaw(t, srv)
	defer r.conn.CloseNow()
	var after int64
	seen := make(map[string]int64) // event id → sequence
	for {
		r.send(protocol.Message{Type: protocol.TypeRequestEvents, Repository: repo, AfterSequence: after, Limit: 1000, All: true})
		more := false
		r.until(func(m protocol.Message) bool {
			switch {
			case m.Type == protocol.TypeEvents && m.Repository == repo:
				for _, e := range m.Events {
					// The server subscribes a reader before reading its page,
					// so a live fan-out may repeat an event of the page.
					if seq, ok := seen[e.ID]; ok {
						if seq != e.ServerSequence {
							t.Errorf("server log of %s holds event %s twice, at sequences %d and %d", repo, e.ID, seq, e.ServerSequence)
						}
						continue
					}
					if e.ServerSequence <= after {
						continue // a fan-out of an event already read
					}
					seen[e.ID] = e.ServerSequence
					events = append(events, e)
				}
			case m.Type == protocol.TypeSyncComplete && m.Repository == repo:
				more = m.HasMore
				last = m.LastSequence
				return true
			}
			return false
		})
		if len(events) > 0 {
			after = events[len(events)-1].ServerSequence
		}
		if !more {
			break
		}
	}
	sort.Slice(events, func(i, j int) bool { return events[i].ServerSequence < events[j].ServerSequence })
	// Sequences are 1, 2, 3…: none shared, none skipped.
	for i, e := range events {
		if e.ServerSequence != int64(i+1) {
			t.Errorf("server log of %s: event %d of %d (%s) has sequence %d, want %d", repo, i+1, len(events), e.ID, e.ServerSequence, i+1)
			break
		}
	}
	return events, last
}

// serverLastSequence returns a repository's highest serverSequence, as the
// server reports it in sync_complete.
func serverLastSequence(t testing.TB, srv *servertest.Server, repo string) int64 {
	t.Helper()
	r := dialRaw(t, srv)
	defer r.conn.CloseNow()
	r.send(protocol.Message{Type: protocol.TypeRequestEvents, Repository: repo, AfterSequence: 1 << 62, Limit: 1})
	m := r.until(func(m protocol.Message) bool {
		return m.Type == protocol.TypeSyncComplete && m.Repository == repo
	})
	return m.LastSequence
}

// tally is the outcome of auditing a repository: what every client created
// against what the server stored.
type tally struct {
	Lost       int // events a client created and did not drop that the server lacks
	Duplicates int // writes stored more than once (one write token in two events)
	Phantoms   int // server events no client created (and the test did not inject)
	Reordered  int // events the server sequenced before an earlier write of the same client
	Unsettled  int // events still pending or failed
	Superseded int // events dropped unsent because a remote change won (serverWins)
	details    []string
}

func (a *tally) addf(kind *int, format string, args ...any) {
	*kind++
	if len(a.details) < 30 {
		a.details = append(a.details, fmt.Sprintf(format, args...))
	}
}

func (a tally) String() string {
	return fmt.Sprintf("lost=%d duplicates=%d phantoms=%d unsettled=%d reordered=%d superseded=%d\n%s",
		a.Lost, a.Duplicates, a.Phantoms, a.Unsettled, a.Reordered, a.Superseded, strings.Join(a.details, "\n"))
}

// ok reports whether nothing was lost, duplicated, invented or left behind.
func (a tally) ok() bool { return a.Lost+a.Duplicates+a.Phantoms+a.Unsettled+a.Reordered == 0 }

// writeToken is the key of the unique token the tests put in every upserted
// document, so a write stored under two event ids shows as a duplicate.
const writeToken = "w"

// audit compares the events every node's engine created in repo with the
// server's log. injected lists event ids a test pushed by other means.
func audit(t testing.TB, srv *servertest.Server, repo string, nodes []*node, injected ...string) tally {
	t.Helper()
	var a tally
	log, _ := serverLog(t, srv, repo)
	onServer := make(map[string]protocol.Event, len(log))
	tokens := make(map[string][]string) // write token → event ids on the server
	for _, e := range log {
		onServer[e.ID] = e
		if e.Data == nil {
			continue
		}
		var d map[string]any
		if json.Unmarshal(e.Data, &d) == nil {
			if w, ok := d[writeToken].(string); ok {
				tokens[w] = append(tokens[w], e.ID)
			}
		}
	}
	for w, ids := range tokens {
		if len(ids) > 1 {
			a.addf(&a.Duplicates, "write %s stored %d times: events %v", w, len(ids), ids)
		}
	}
	created := make(map[string]bool)
	for _, id := range injected {
		created[id] = true
	}
	for _, n := range nodes {
		seenTokens := make(map[string]string)
		var lastSeq int64
		var lastID string
		for _, oe := range n.store.created(repo) {
			id := oe.Event.ID
			created[id] = true
			if oe.Event.Data != nil {
				var d map[string]any
				if json.Unmarshal(oe.Event.Data, &d) == nil {
					if w, ok := d[writeToken].(string); ok {
						if prev, dup := seenTokens[w]; dup {
							a.addf(&a.Duplicates, "%s: write %s created twice in the outbox: events %s and %s", n.name, w, prev, id)
						}
						seenTokens[w] = id
					}
				}
			}
			fate := n.store.fate(id)
			if se, ok := onServer[id]; ok {
				// A client's events are sequenced in the order it made them:
				// no new write overtakes the queue.
				if se.ServerSequence < lastSeq {
					a.addf(&a.Reordered, "%s: event %s (%s %s) made after %s was sequenced before it (%d < %d)",
						n.name, id, oe.Event.Operation, oe.Event.DataID, lastID, se.ServerSequence, lastSeq)
				}
				lastSeq, lastID = se.ServerSequence, id
				if fate != "acked" && fate != "removed" {
					a.addf(&a.Unsettled, "%s: event %s (%s %s) is on the server but %s locally", n.name, id, oe.Event.Operation, oe.Event.DataID, fate)
				}
				continue
			}
			switch fate {
			case "superseded":
				a.Superseded++
			case "acked", "removed":
				a.addf(&a.Lost, "%s: event %s (%s %s) is %s locally but missing on the server", n.name, id, oe.Event.Operation, oe.Event.DataID, fate)
			default:
				a.addf(&a.Unsettled, "%s: event %s (%s %s) never reached the server: %s", n.name, id, oe.Event.Operation, oe.Event.DataID, fate)
			}
		}
	}
	for _, e := range log {
		if !created[e.ID] {
			a.addf(&a.Phantoms, "server event %s (%s %s) was created by no client", e.ID, e.Operation, e.DataID)
		}
	}
	return a
}

// requireClean fails the test unless audit finds nothing lost, duplicated,
// invented or unsettled in each repository.
func requireClean(t testing.TB, srv *servertest.Server, nodes []*node, repos ...string) {
	t.Helper()
	for _, repo := range repos {
		if a := audit(t, srv, repo, nodes); !a.ok() {
			t.Fatalf("repository %s: %s", repo, a)
		}
	}
	for _, n := range nodes {
		if errs := n.eventErrors(); len(errs) > 0 {
			t.Fatalf("%s skipped remote events: %v", n.name, errs)
		}
	}
}

// restPost posts one event, given as raw JSON, through the server's REST
// mirror (POST /api/events/{repo}) and fails the test unless it is stored.
func restPost(t testing.TB, srv *servertest.Server, repo string, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/api/events/"+url.PathEscape(repo), strings.NewReader(body))
	if err != nil {
		t.Fatalf("failed to make a request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("failed to POST an event: %v", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /api/events/%s: %s: %s", repo, resp.Status, reply)
	}
}

// newEvent makes a protocol event as a foreign client would send it.
func newEvent(t testing.TB, op protocol.Operation, dataID string, at time.Time, data map[string]any) protocol.Event {
	t.Helper()
	e := protocol.Event{ID: newEventID(t), Operation: op, CreatedAt: at, DataID: dataID}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		e.Data = b
	}
	return e
}

// newEventID returns a new UUIDv7, as a real client makes.
func newEventID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("failed to make a UUIDv7: %v", err)
	}
	return id.String()
}

// expectedState is the content a repository must converge to when each
// document keeps its winning event: under last-write-wins the event with the
// latest stamp (creation time, then event id), under server order the one
// sequenced last. A winning delete leaves no document.
func expectedState(t testing.TB, log []protocol.Event, byStamp bool) replica {
	t.Helper()
	win := make(map[string]protocol.Event)
	for _, e := range log {
		w, ok := win[e.DataID]
		switch {
		case !ok:
		case byStamp:
			if c := e.CreatedAt.Compare(w.CreatedAt); c < 0 || c == 0 && e.ID < w.ID {
				continue
			}
		default:
			if e.ServerSequence < w.ServerSequence {
				continue
			}
		}
		win[e.DataID] = e
	}
	out := make(replica, len(win))
	for id, e := range win {
		if e.Operation == protocol.OpDelete {
			continue
		}
		m := decodeObject(t, e.Data)
		delete(m, "id")
		out[id] = m
	}
	return out
}
