package core

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore is a Store held in memory: for tests, native clients that need
// no persistence, and browsers without IndexedDB. It is safe for concurrent
// use; every slice it returns is a copy the caller may change.
type MemoryStore struct {
	mu      sync.RWMutex
	closed  bool
	repos   map[string]*memRepo
	outbox  memOutbox
	cursors map[string]int64
	config  map[string]string
}

// memRepo holds one repository's documents and their ids in sorted order.
type memRepo struct {
	docs map[string]Doc
	ids  []string // sorted
	gen  uint64   // the repository's generation (see Store.Generation)
}

// memOutbox holds outbox events in insertion order, which is Order order.
type memOutbox struct {
	entries []*memOutboxEntry // by Order; removed entries are compacted lazily
	byID    map[string]*memOutboxEntry
	removed int // removed entries still in entries
	pending int // entries with StatusPending
	order   int64
}

type memOutboxEntry struct {
	ev      OutboxEvent
	removed bool
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		repos:   make(map[string]*memRepo),
		outbox:  memOutbox{byID: make(map[string]*memOutboxEntry)},
		cursors: make(map[string]int64),
		config:  make(map[string]string),
	}
}

// Write applies a batch atomically. An invalid batch (see ValidateBatch)
// returns an error wrapping ErrInvalidBatch and writes nothing.
func (s *MemoryStore) Write(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateBatch(b); err != nil {
		return err
	}
	if b == nil {
		b = &Batch{}
	}
	// Copy outside the lock; applying cannot fail after validation.
	docs := make([]DocWrite, len(b.Docs))
	for i, w := range b.Docs {
		docs[i] = DocWrite{Repo: w.Repo, Doc: memCloneDoc(w.Doc)}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for repo, want := range b.Expect {
		var gen uint64
		if r := s.repos[repo]; r != nil {
			gen = r.gen
		}
		if gen != want {
			return &StaleError{Repo: repo, Want: want, Have: gen}
		}
	}
	for _, e := range b.ExpectDocs {
		var d Doc
		var ok bool
		if r := s.repos[e.Repo]; r != nil {
			d, ok = r.docs[e.ID]
		}
		if !e.Matches(d, ok) {
			return &DocStaleError{Repo: e.Repo, ID: e.ID}
		}
	}
	var grown map[*memRepo]bool
	var bumped map[*memRepo]bool // repositories whose generation advanced
	for _, w := range docs {
		r := s.repos[w.Repo]
		if r == nil {
			r = &memRepo{docs: make(map[string]Doc)}
			s.repos[w.Repo] = r
		}
		if !bumped[r] {
			if bumped == nil {
				bumped = make(map[*memRepo]bool, 1)
			}
			bumped[r] = true
			r.gen++
		}
		if _, ok := r.docs[w.Doc.ID]; !ok {
			r.ids = append(r.ids, w.Doc.ID)
			if grown == nil {
				grown = make(map[*memRepo]bool)
			}
			grown[r] = true
		}
		r.docs[w.Doc.ID] = w.Doc
	}
	for r := range grown {
		slices.Sort(r.ids)
	}
	o := &s.outbox
	for _, e := range b.Events {
		if _, ok := o.byID[e.Event.ID]; ok {
			continue
		}
		o.order++
		ent := &memOutboxEntry{ev: memCloneOutboxEvent(e)}
		ent.ev.Order = o.order
		o.entries = append(o.entries, ent)
		o.byID[e.Event.ID] = ent
		if ent.ev.Status == StatusPending {
			o.pending++
		}
	}
	for _, u := range b.Statuses {
		ent := o.byID[u.EventID]
		if ent == nil || ent.ev.Status == StatusOK && u.Status != StatusOK {
			continue
		}
		if ent.ev.Status == StatusPending {
			o.pending--
		}
		if u.Status == StatusPending {
			o.pending++
		}
		ent.ev.Status = u.Status
		ent.ev.Error = u.Error
	}
	for _, id := range b.Remove {
		ent := o.byID[id]
		if ent == nil {
			continue
		}
		if ent.ev.Status == StatusPending {
			o.pending--
		}
		ent.removed = true
		delete(o.byID, id)
		o.removed++
	}
	if o.removed > 64 && o.removed > len(o.entries)/2 {
		o.entries = slices.DeleteFunc(o.entries, func(e *memOutboxEntry) bool { return e.removed })
		o.removed = 0
	}
	maps.Copy(s.cursors, b.Cursors)
	maps.Copy(s.config, b.Config)
	return nil
}

// Doc returns one document, tombstones included.
func (s *MemoryStore) Doc(ctx context.Context, repo, id string) (Doc, bool, error) {
	if err := ctx.Err(); err != nil {
		return Doc{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Doc{}, false, ErrClosed
	}
	r := s.repos[repo]
	if r == nil {
		return Doc{}, false, nil
	}
	d, ok := r.docs[id]
	if !ok {
		return Doc{}, false, nil
	}
	return memCloneDoc(d), true, nil
}

// Docs returns every document of a repository, tombstones included, ordered
// by id.
func (s *MemoryStore) Docs(ctx context.Context, repo string) ([]Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := s.repos[repo]
	if r == nil {
		return []Doc{}, nil
	}
	// One buffer for every document's data keeps allocations per call flat.
	size := 0
	for _, d := range r.docs {
		size += len(d.Data)
	}
	buf := make([]byte, 0, size)
	out := make([]Doc, len(r.ids))
	for i, id := range r.ids {
		d := r.docs[id]
		if d.Data != nil {
			start := len(buf)
			buf = append(buf, d.Data...)
			d.Data = json.RawMessage(buf[start:len(buf):len(buf)])
		}
		d.Fields = maps.Clone(d.Fields)
		out[i] = d
	}
	return out, nil
}

// Pending returns up to limit pending outbox events by Order; limit <= 0
// means all.
func (s *MemoryStore) Pending(ctx context.Context, limit int) ([]OutboxEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	n := s.outbox.pending
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]OutboxEvent, 0, n)
	for _, ent := range s.outbox.entries {
		if len(out) == n {
			break
		}
		if !ent.removed && ent.ev.Status == StatusPending {
			out = append(out, memCloneOutboxEvent(ent.ev))
		}
	}
	return out, nil
}

// PendingCount counts pending outbox events.
func (s *MemoryStore) PendingCount(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.outbox.pending, nil
}

// Acked returns the ids of up to limit acked outbox events by Order; limit
// <= 0 means all.
func (s *MemoryStore) Acked(ctx context.Context, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := []string{}
	for _, ent := range s.outbox.entries { // entries are kept by Order
		if limit > 0 && len(out) == limit {
			break
		}
		if !ent.removed && ent.ev.Status == StatusOK {
			out = append(out, ent.ev.Event.ID)
		}
	}
	return out, nil
}

// Outbox returns one outbox event by event id.
func (s *MemoryStore) Outbox(ctx context.Context, eventID string) (OutboxEvent, bool, error) {
	if err := ctx.Err(); err != nil {
		return OutboxEvent{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return OutboxEvent{}, false, ErrClosed
	}
	ent := s.outbox.byID[eventID]
	if ent == nil {
		return OutboxEvent{}, false, nil
	}
	return memCloneOutboxEvent(ent.ev), true, nil
}

// Cursor returns a repository's pull cursor, 0 if never set.
func (s *MemoryStore) Cursor(ctx context.Context, repo string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.cursors[repo], nil
}

// Config returns a configuration value.
func (s *MemoryStore) Config(ctx context.Context, key string) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return "", false, ErrClosed
	}
	v, ok := s.config[key]
	return v, ok, nil
}

// Generation returns a repository's generation: how many writes put
// documents of it.
func (s *MemoryStore) Generation(ctx context.Context, repo string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if r := s.repos[repo]; r != nil {
		return r.gen, nil
	}
	return 0, nil
}

// Close drops the store's contents; later calls fail with ErrClosed. Closing
// twice is not an error.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.repos = nil
	s.outbox = memOutbox{}
	s.cursors = nil
	s.config = nil
	return nil
}

func memCloneDoc(d Doc) Doc {
	if d.Data != nil {
		d.Data = slices.Clone(d.Data)
	}
	d.Fields = maps.Clone(d.Fields)
	return d
}

func memCloneOutboxEvent(e OutboxEvent) OutboxEvent {
	if e.Event.Data != nil {
		e.Event.Data = slices.Clone(e.Event.Data)
	}
	if e.Event.Meta != nil {
		e.Event.Meta = slices.Clone(e.Event.Meta)
	}
	return e
}
