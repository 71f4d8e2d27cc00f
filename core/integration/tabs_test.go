package integration_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// device is one browser profile with several tabs: each tab a core.Client
// of its own on one shared store, as tabs are on one IndexedDB database.
// Only the leader tab is started; every tab writes its own changes.
type device struct {
	t    testing.TB
	node *node // the shared store, and the leader tab as its client, for the harness's audits
	tabs []*core.Client

	mu     sync.Mutex
	leader int
}

// newDevice opens n tabs on one store; tab 0 leads. relay wires OnChange of
// every tab to Invalidate of the others, as MTB's BroadcastChannel does;
// without it, tests call Invalidate themselves.
func newDevice(t testing.TB, srv *servertest.Server, name string, repos []string, n int, relay bool, opts ...clientOption) *device {
	t.Helper()
	nd := &node{name: name, t: t, srv: srv, store: newRecStore(), log: &logBuffer{}}
	nd.opts = core.Options{
		URL: srv.WSURL(), Token: testToken, ClientID: name, Repositories: repos,
		Reconnect:      core.Backoff{Initial: 5 * time.Millisecond, Max: 150 * time.Millisecond, Multiplier: 2},
		Heartbeat:      core.Heartbeat{Interval: time.Second, Timeout: 3 * time.Second},
		ConnectTimeout: 5 * time.Second,
		Logf:           nd.log.logf,
		OnEventError: func(repo, eventID string, err error) {
			nd.mu.Lock()
			defer nd.mu.Unlock()
			nd.eventErrs = append(nd.eventErrs, repo+"/"+eventID+": "+err.Error())
		},
	}
	for _, o := range opts {
		o(&nd.opts)
	}
	d := &device{t: t, node: nd}
	for i := range n {
		c, err := core.NewClient(nd.store, nd.opts)
		if err != nil {
			t.Fatalf("%s: NewClient of tab %d: %v", name, i, err)
		}
		d.tabs = append(d.tabs, c)
	}
	if relay {
		for i, c := range d.tabs {
			c.OnChange(func(repo string) {
				for j, other := range d.tabs {
					if j != i {
						other.Invalidate(repo)
					}
				}
			})
		}
	}
	nd.client = d.tabs[0]
	d.tabs[0].Start()
	t.Cleanup(func() {
		for _, c := range d.tabs {
			c.Close()
		}
		if t.Failed() {
			t.Logf("engine log of %s:\n%s", name, nd.log)
		}
	})
	return d
}

// failover stops the leader and starts tab next, as the election does when
// the leader tab closes or is frozen.
func (d *device) failover(next int) {
	d.mu.Lock()
	old := d.leader
	d.leader = next
	d.mu.Unlock()
	d.tabs[old].Stop()
	d.node.mu.Lock()
	d.node.client = d.tabs[next]
	d.node.mu.Unlock()
	d.tabs[next].Start()
}

// writers returns a harness node per tab, writing through that tab's
// client with write tokens of its own.
func (d *device) writers() []*node {
	out := make([]*node, len(d.tabs))
	for i, c := range d.tabs {
		out[i] = &node{name: fmt.Sprintf("%s-tab%d", d.node.name, i), t: d.t, client: c}
	}
	return out
}

// serverCount returns how many events the server stored in repo.
func serverCount(t testing.TB, srv *servertest.Server, repo string) int {
	t.Helper()
	evs, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, repo, 0, 100000)
	if err != nil {
		t.Fatalf("server Range(%s): %v", repo, err)
	}
	return len(evs)
}

// TestTabsWriteLeaderPushes: followers (never started) write through their
// own clients; after Invalidate the leader pushes their events, each
// stored once on the server, and every tab reports the same Pending.
func TestTabsWriteLeaderPushes(t *testing.T) {
	srv := startServer(t)
	d := newDevice(t, srv, "device", []string{"todos"}, 3, false)
	d.node.waitSynced()
	const perTab = 15
	var wg sync.WaitGroup
	for i := range d.tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perTab {
				doc := fmt.Sprintf(`{"w":"tab%d-%d"}`, i, k)
				if err := d.tabs[i].Repository("todos").Upsert(context.Background(), fmt.Sprintf("t%d-%d", i, k%5), []byte(doc)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Followers' events wait in the shared outbox until the leader learns
	// of them.
	for _, c := range d.tabs {
		c.Invalidate("todos")
	}
	d.node.waitSynced()
	if n := serverCount(t, srv, "todos"); n != 3*perTab {
		t.Fatalf("server stored %d events, want %d (every tab's writes, once)", n, 3*perTab)
	}
	requireClean(t, srv, []*node{d.node}, "todos")
	for i, c := range d.tabs {
		c.Invalidate("todos")
		if p := c.Status().Pending; p != 0 {
			t.Fatalf("tab %d: Pending = %d after everything was acked, want 0", i, p)
		}
	}
	observer := newNode(t, srv, "observer", []string{"todos"})
	waitConverged(t, srv, []*node{d.node, observer}, "todos")
}

// TestTabsFailover: the leader steps down while tabs keep writing and
// another client writes the same documents remotely; each new leader
// reloads what the old one left (sent mark, acked ids, cursors), so nothing
// is lost, nothing stored twice, no remote event skipped, and under
// serverWins no event the old leader sent is superseded as if unsent.
func TestTabsFailover(t *testing.T) {
	for _, strategy := range []core.ConflictStrategy{core.LastWriteWins, core.ServerWins} {
		t.Run(string(strategy), func(t *testing.T) {
			srv := startServer(t)
			repos := []string{"todos"}
			d := newDevice(t, srv, "device", repos, 3, true, withConflict(strategy))
			observer := newNode(t, srv, "observer", repos, withConflict(strategy))
			d.node.waitSynced()
			observer.waitSynced()
			tabs := d.writers()
			for round := range 4 {
				var wg sync.WaitGroup
				for i := range d.tabs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := range 8 {
							if _, err := tabs[i].tryPut("todos", fmt.Sprintf("t%d-%d", i, k%4), map[string]any{"round": round}); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
				for k := range 6 {
					observer.put("todos", fmt.Sprintf("t%d-%d", k%3, k%4), map[string]any{"round": round})
				}
				// Step down mid-stream: pushes may be in flight, acks unread.
				d.failover((round + 1) % len(d.tabs))
				wg.Wait()
			}
			for _, c := range d.tabs {
				c.Invalidate("")
			}
			waitConverged(t, srv, []*node{d.node, observer}, "todos")
			a := audit(t, srv, "todos", []*node{d.node, observer})
			if !a.ok() {
				t.Fatalf("%s", a)
			}
			if n, want := serverCount(t, srv, "todos"), 4*(3*8+6)-a.Superseded; n != want {
				t.Fatalf("server stored %d events, want %d (%d superseded)", n, want, a.Superseded)
			}
		})
	}
}

// TestTabsRaceRemoteApplies: followers write the documents the leader is
// applying remote changes to, at random; the device must converge with an
// independent client. Without the store's generation check a follower's
// write computed before the leader's apply (or the leader's apply computed
// before the write) would overwrite the other.
func TestTabsRaceRemoteApplies(t *testing.T) {
	for _, strategy := range []core.ConflictStrategy{core.LastWriteWins, core.FieldMerge, core.ServerWins} {
		t.Run(string(strategy), func(t *testing.T) {
			seed := time.Now().UnixNano()
			if *flagSeed != 0 {
				seed = *flagSeed
			}
			t.Logf("seed %d (rerun with -seed %d)", seed, seed)
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			srv := startServer(t)
			repos := []string{"todos"}
			d := newDevice(t, srv, "device", repos, 3, true, withConflict(strategy))
			remote := newNode(t, srv, "remote", repos, withConflict(strategy))
			d.node.waitSynced()
			remote.waitSynced()
			const docs, writes = 4, 25
			plans := make([][]int, len(d.tabs)+1)
			for i := range plans {
				for range writes {
					plans[i] = append(plans[i], rng.IntN(docs))
				}
			}
			var wg sync.WaitGroup
			ws := append(d.writers(), remote)
			for i := range plans {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := ws[i]
					for k, id := range plans[i] {
						field := fmt.Sprintf("f%d", k%3)
						if _, err := w.tryPut("todos", fmt.Sprintf("d%d", id), map[string]any{field: k, "by": w.name}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, c := range d.tabs {
				c.Invalidate("")
			}
			waitConverged(t, srv, []*node{d.node, remote}, "todos")
			requireClean(t, srv, []*node{d.node, remote}, "todos")
		})
	}
}

// TestTabsTwoLeaders: two tabs of one store started at once, as where
// leader election is unavailable (and for moments around a steal): both
// push the shared outbox and apply remote events into the shared store.
// Documents stay consistent, every write is stored once, and the device
// converges with an independent client.
func TestTabsTwoLeaders(t *testing.T) {
	for _, strategy := range []core.ConflictStrategy{core.LastWriteWins, core.ServerWins} {
		t.Run(string(strategy), func(t *testing.T) {
			srv := startServer(t)
			repos := []string{"todos"}
			d := newDevice(t, srv, "device", repos, 2, true, withConflict(strategy))
			d.tabs[1].Start()
			remote := newNode(t, srv, "remote", repos, withConflict(strategy))
			d.node.waitSynced()
			remote.waitSynced()
			ws := append(d.writers(), remote)
			var wg sync.WaitGroup
			for i := range ws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 20 {
						if _, err := ws[i].tryPut("todos", fmt.Sprintf("d%d", (k*7+i)%5), map[string]any{"k": k}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, c := range d.tabs {
				c.Invalidate("")
			}
			waitConverged(t, srv, []*node{d.node, remote}, "todos")
			requireClean(t, srv, []*node{d.node, remote}, "todos")
		})
	}
}
