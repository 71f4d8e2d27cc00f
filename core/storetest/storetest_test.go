package storetest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/storetest"
)

// TestRunPersistent checks the reopen suite itself against memory stores kept
// by name: closing a handle keeps the store, so reopening sees it. It proves
// the suite's expectations are consistent with the memory store's rules.
func TestRunPersistent(t *testing.T) {
	var mu sync.Mutex
	stores := map[string]*core.MemoryStore{}
	storetest.RunPersistent(t, func(t *testing.T, name string) core.Store {
		mu.Lock()
		defer mu.Unlock()
		s := stores[name]
		if s == nil {
			s = core.NewMemoryStore()
			stores[name] = s
			t.Cleanup(func() { s.Close() })
		}
		return &handle{MemoryStore: s}
	})
}

// handle is one open connection to a named store; Close closes the handle,
// not the store.
type handle struct {
	*core.MemoryStore
	mu     sync.Mutex
	closed bool
}

func (h *handle) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (h *handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return nil
}

func (h *handle) Write(ctx context.Context, b *core.Batch) error {
	if h.isClosed() {
		return core.ErrClosed
	}
	return h.MemoryStore.Write(ctx, b)
}

func (h *handle) Doc(ctx context.Context, repo, id string) (core.Doc, bool, error) {
	if h.isClosed() {
		return core.Doc{}, false, core.ErrClosed
	}
	return h.MemoryStore.Doc(ctx, repo, id)
}

func (h *handle) Docs(ctx context.Context, repo string) ([]core.Doc, error) {
	if h.isClosed() {
		return nil, core.ErrClosed
	}
	return h.MemoryStore.Docs(ctx, repo)
}

func (h *handle) Pending(ctx context.Context, limit int) ([]core.OutboxEvent, error) {
	if h.isClosed() {
		return nil, core.ErrClosed
	}
	return h.MemoryStore.Pending(ctx, limit)
}

func (h *handle) PendingCount(ctx context.Context) (int, error) {
	if h.isClosed() {
		return 0, core.ErrClosed
	}
	return h.MemoryStore.PendingCount(ctx)
}

func (h *handle) Acked(ctx context.Context, limit int) ([]string, error) {
	if h.isClosed() {
		return nil, core.ErrClosed
	}
	return h.MemoryStore.Acked(ctx, limit)
}

func (h *handle) Outbox(ctx context.Context, id string) (core.OutboxEvent, bool, error) {
	if h.isClosed() {
		return core.OutboxEvent{}, false, core.ErrClosed
	}
	return h.MemoryStore.Outbox(ctx, id)
}

func (h *handle) Cursor(ctx context.Context, repo string) (int64, error) {
	if h.isClosed() {
		return 0, core.ErrClosed
	}
	return h.MemoryStore.Cursor(ctx, repo)
}

func (h *handle) Config(ctx context.Context, key string) (string, bool, error) {
	if h.isClosed() {
		return "", false, core.ErrClosed
	}
	return h.MemoryStore.Config(ctx, key)
}

func (h *handle) Generation(ctx context.Context, repo string) (uint64, error) {
	if h.isClosed() {
		return 0, core.ErrClosed
	}
	return h.MemoryStore.Generation(ctx, repo)
}
