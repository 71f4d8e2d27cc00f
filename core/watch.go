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
		h.mu.Unlock()
		for repo := range dirty {
			h.evaluate(ctx, repo)
		}
	}
}

// recount sets the status's pending count from the store.
func (h *watchHub) recount(ctx context.Context) {
	h.c.applyMu.Lock()
	n, err := h.c.store.PendingCount(ctx)
	if err == nil {
		h.c.status.update(func(s *SyncStatus) { s.Pending = n })
	}
	h.c.applyMu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			h.c.reportError("failed to count pending events: " + err.Error())
		}
		return
	}
	h.c.notifyChanged()
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
	docs, err := h.c.store.Docs(ctx, repo)
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
