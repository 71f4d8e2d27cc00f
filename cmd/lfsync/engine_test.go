package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres"
)

// ackStore is a real MemoryStore that records every outbox event the engine
// created and which of them the server acked.
type ackStore struct {
	*core.MemoryStore

	mu      sync.Mutex
	created map[string]string // event id → repository
	acked   map[string]bool
}

func (s *ackStore) Write(ctx context.Context, b *core.Batch) error {
	if err := s.MemoryStore.Write(ctx, b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range b.Events {
		s.created[e.Event.ID] = e.Repo
	}
	for _, u := range b.Statuses {
		if u.Status == core.StatusOK {
			s.acked[u.EventID] = true
		}
	}
	return nil
}

// ackedIDs returns the ids of the events acked so far.
func (s *ackStore) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.acked))
	for id := range s.acked {
		out = append(out, id)
	}
	return out
}

// isAcked reports whether the server acked event id.
func (s *ackStore) isAcked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

// createdIDs returns the ids of every event the engine created.
func (s *ackStore) createdIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.created))
	for id := range s.created {
		out = append(out, id)
	}
	return out
}

// logBuffer keeps an engine's last diagnostic lines for a failure report.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logf(format string, args ...any) {
	line := time.Now().UTC().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lines) >= 300 {
		b.lines = b.lines[len(b.lines)-200:]
	}
	b.lines = append(b.lines, line)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// engine is a real sync client (core.Client on a MemoryStore) of one node.
type engine struct {
	t      testing.TB
	name   string
	store  *ackStore
	client *core.Client
	log    *logBuffer
	n      atomic.Int64 // documents written
}

// newEngine starts a client named name against url, syncing repos; it is
// closed when the test ends.
func newEngine(t testing.TB, name, url string, repos ...string) *engine {
	t.Helper()
	e := &engine{t: t, name: name, log: &logBuffer{},
		store: &ackStore{MemoryStore: core.NewMemoryStore(), created: make(map[string]string), acked: make(map[string]bool)}}
	c, err := core.NewClient(e.store, core.Options{
		URL:          url,
		Token:        testToken,
		ClientID:     name,
		Repositories: repos,
		// Quick reconnects keep the failover tests short; jitter stays on.
		Reconnect: core.Backoff{Initial: 10 * time.Millisecond, Max: 250 * time.Millisecond, Multiplier: 2},
		// A lenient heartbeat: a killed node's sockets close at once, and a
		// loaded machine must not make a healthy socket look dead (the
		// live fan-out checks count reconnects).
		Heartbeat:      core.Heartbeat{Interval: 2 * time.Second, Timeout: 10 * time.Second},
		ConnectTimeout: 5 * time.Second,
		Logf:           e.log.logf,
	})
	if err != nil {
		t.Fatalf("%s: NewClient: %v", name, err)
	}
	e.client = c
	c.Start()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
		if t.Failed() {
			t.Logf("engine log of %s:\n%s", name, e.log)
		}
	})
	return e
}

// put writes a new document; it returns the local write's error.
func (e *engine) put(repo string) (string, error) {
	id := fmt.Sprintf("%s-%d", e.name, e.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, _ := json.Marshal(map[string]any{"by": e.name, "at": time.Now().UnixNano()})
	if err := e.client.Repository(repo).Upsert(ctx, id, data); err != nil {
		return "", fmt.Errorf("%s: Upsert(%s/%s): %w", e.name, repo, id, err)
	}
	return id, nil
}

// has reports whether the client holds document id.
func (e *engine) has(repo, id string) bool {
	_, ok, err := e.client.Repository(repo).Get(context.Background(), id)
	if err != nil {
		e.t.Errorf("%s: Get(%s/%s): %v", e.name, repo, id, err)
	}
	return ok
}

// ids returns the ids of the client's documents in repo, sorted.
func (e *engine) ids(repo string) []string {
	docs, err := e.client.Repository(repo).GetAll(context.Background())
	if err != nil {
		e.t.Fatalf("%s: GetAll(%s): %v", e.name, repo, err)
	}
	out := make([]string, 0, len(docs))
	for _, raw := range docs {
		var d struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			e.t.Fatalf("%s: document %s: %v", e.name, raw, err)
		}
		out = append(out, d.ID)
	}
	sort.Strings(out)
	return out
}

// waitSynced waits until the client is connected with an empty outbox and
// caught up.
func (e *engine) waitSynced() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.client.WaitSynced(ctx); err != nil {
		e.t.Fatalf("%s: WaitSynced: %v (status %+v, metrics %+v)", e.name, err, e.client.Status(), e.client.Metrics())
	}
}

// writers makes each engine write a new document to repo every interval
// until stop is called; stop waits for them and returns how many each
// wrote.
func writers(t testing.TB, repo string, every time.Duration, es ...*engine) (stop func()) {
	var wg sync.WaitGroup
	quit := make(chan struct{})
	for _, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-quit:
					return
				case <-tick.C:
				}
				if _, err := e.put(repo); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(quit); wg.Wait() }) }
}

// waitConverged waits until every engine is synced and holds the same
// documents of repo, all of them written by the engines.
func waitConverged(t testing.TB, repo string, es ...*engine) {
	t.Helper()
	for _, e := range es {
		e.waitSynced()
	}
	var want int64
	for _, e := range es {
		want += e.n.Load()
	}
	waitFor(t, "every client to hold every document", func() string {
		var msgs []string
		first := es[0].ids(repo)
		for _, e := range es {
			ids := e.ids(repo)
			if int64(len(ids)) != want {
				msgs = append(msgs, fmt.Sprintf("%s holds %d documents, want %d", e.name, len(ids), want))
			} else if strings.Join(ids, ",") != strings.Join(first, ",") {
				msgs = append(msgs, fmt.Sprintf("%s holds other documents than %s", e.name, es[0].name))
			}
		}
		return strings.Join(msgs, "; ")
	})
}

// logOf reads a repository's whole log from the database through the
// PostgreSQL store.
func logOf(t testing.TB, dsn, repo string) []protocol.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("failed to open the database: %v", err)
	}
	defer st.Close()
	var out []protocol.Event
	var after int64
	for {
		evs, more, err := st.Range(ctx, server.DefaultNamespace, repo, after, 1000)
		if err != nil {
			t.Fatalf("failed to read the log of %s: %v", repo, err)
		}
		out = append(out, evs...)
		if len(evs) > 0 {
			after = evs[len(evs)-1].ServerSequence
		}
		if !more || len(evs) == 0 {
			return out
		}
	}
}

// checkLog checks the database's log of repo: sequences 1..n without gap,
// every event exactly once, and exactly the events the engines created.
func checkLog(t testing.TB, dsn, repo string, es ...*engine) {
	t.Helper()
	log := logOf(t, dsn, repo)
	seen := make(map[string]int64, len(log))
	for i, ev := range log {
		if ev.ServerSequence != int64(i+1) {
			t.Fatalf("log of %s: position %d has sequence %d, want %d (gap or duplicate sequence)", repo, i, ev.ServerSequence, i+1)
		}
		if s, dup := seen[ev.ID]; dup {
			t.Fatalf("log of %s: event %s stored twice, at sequences %d and %d", repo, ev.ID, s, ev.ServerSequence)
		}
		seen[ev.ID] = ev.ServerSequence
	}
	created := 0
	for _, e := range es {
		for _, id := range e.store.createdIDs() {
			created++
			if _, ok := seen[id]; !ok {
				t.Errorf("event %s created by %s (acked: %v) is not in the database", id, e.name, e.store.isAcked(id))
			}
		}
	}
	if created != len(log) {
		t.Errorf("the database holds %d events of %s, the clients created %d", len(log), repo, created)
	}
}
