package core

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
)

// watchHub re-runs watchers' queries after changes, on its own goroutine.
type watchHub struct {
	c        *Client
	mu       sync.Mutex
	watchers map[int]*watcher
	nextID   int
	dirty    map[string]bool
	// changes are the repositories this client's own writes changed since
	// the change listeners were last called; onChange are the listeners.
	changes  map[string]bool
	onChange map[int]func(repo string)
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// watcher is one Watch subscription.
type watcher struct {
	repo   string
	q      Query
	fn     func([]json.RawMessage)
	last   []byte // the last result delivered, encoded
	primed bool   // the initial result was delivered
}

func newWatchHub(c *Client) *watchHub {
	return &watchHub{
		c:        c,
		watchers: make(map[int]*watcher),
		dirty:    make(map[string]bool),
		changes:  make(map[string]bool),
		onChange: make(map[int]func(string)),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// add registers a watcher and schedules its initial result.
func (h *watchHub) add(repo string, q Query, fn func([]json.RawMessage)) func() {
	h.mu.Lock()
	id := h.nextID
	h.nextID++
	h.watchers[id] = &watcher{repo: repo, q: q, fn: fn}
	h.dirty[repo] = true
	h.mu.Unlock()
	signal(h.wake)
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.watchers, id)
			h.mu.Unlock()
		})
	}
}

// touch marks a repository changed.
func (h *watchHub) touch(repo string) {
	h.mu.Lock()
	h.dirty[repo] = true
	h.mu.Unlock()
	signal(h.wake)
}

// wrote records that this client's own write changed repo's documents (and
// maybe the outbox): watchers re-run and change listeners are told.
func (h *watchHub) wrote(repo string) {
	h.mu.Lock()
	h.dirty[repo] = true
	h.changes[repo] = true
	h.mu.Unlock()
	signal(h.wake)
}

// announce tells change listeners that this client's own write changed
// repo's outbox events (acks, failures) but none of its documents.
func (h *watchHub) announce(repo string) {
	h.mu.Lock()
	h.changes[repo] = true
	h.mu.Unlock()
	signal(h.wake)
}

// addChange registers a change listener.
func (h *watchHub) addChange(fn func(repo string)) func() {
	h.mu.Lock()
	id := h.nextID
	h.nextID++
	h.onChange[id] = fn
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.onChange, id)
			h.mu.Unlock()
		})
	}
}

// repos returns the repositories watched.
func (h *watchHub) repos() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool)
	var out []string
	for _, w := range h.watchers {
		if !seen[w.repo] {
			seen[w.repo] = true
			out = append(out, w.repo)
		}
	}
	return out
}

func (h *watchHub) stop() {
	h.once.Do(func() { close(h.quit) })
	<-h.done
}

// run is the hub's goroutine.
func (h *watchHub) run() {
	defer close(h.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.quit:
			cancel()
		case <-h.done:
		}
	}()
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		}
		h.mu.Lock()
		dirty := h.dirty
		h.dirty = make(map[string]bool)
		var changes []string
		var listeners []func(string)
		if len(h.changes) > 0 {
			for repo := range h.changes {
				changes = append(changes, repo)
			}
			clear(h.changes)
			for _, fn := range h.onChange {
				listeners = append(listeners, fn)
			}
		}
		h.mu.Unlock()
		// Other tabs first: they re-read while this one re-runs its own.
		for _, repo := range changes {
			for _, fn := range listeners {
				fn(repo)
			}
		}
		for repo := range dirty {
			h.evaluate(ctx, repo)
		}
	}
}

// recount sets the status's pending count from the store.
func (h *watchHub) recount(ctx context.Context) {
	h.c.applyMu.Lock()
	h.c.recountLocked(ctx)
	h.c.applyMu.Unlock()
}

// recountLocked sets the status's pending count from the store, which
// counts every client's (tab's) events. The caller holds applyMu, so no
// write of this client moves the count meanwhile.
func (c *Client) recountLocked(ctx context.Context) {
	n, err := c.store.PendingCount(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.reportError("failed to count pending events: " + err.Error())
		}
		return
	}
	c.status.update(func(s *SyncStatus) { s.Pending = n })
	c.notifyChanged()
}

// evaluate re-runs every watcher of repo and calls those whose result
// changed.
func (h *watchHub) evaluate(ctx context.Context, repo string) {
	h.mu.Lock()
	var ws []*watcher
	var ids []int
	for id, w := range h.watchers {
		if w.repo == repo {
			ws = append(ws, w)
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	docs, err := h.c.readDocs(ctx, repo)
	if err != nil {
		if ctx.Err() == nil {
			h.c.reportError("failed to read repository " + repo + " for a watcher: " + err.Error())
		}
		return
	}
	for i, w := range ws {
		res, err := w.q.Run(docs)
		if err != nil {
			h.c.reportError("failed to run a watch query on " + repo + ": " + err.Error())
			continue
		}
		enc := encodeResult(res)
		if w.primed && bytes.Equal(enc, w.last) {
			continue
		}
		h.mu.Lock()
		_, live := h.watchers[ids[i]]
		h.mu.Unlock()
		if !live {
			continue
		}
		w.primed = true
		w.last = enc
		w.fn(res)
	}
}

// encodeResult renders a query result for comparison.
func encodeResult(res []json.RawMessage) []byte {
	n := 2
	for _, r := range res {
		n += len(r) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, r := range res {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, ']')
}
