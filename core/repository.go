package core

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/lfsync/lfsync/core/protocol"
)

// Repository is a named collection of JSON documents with string ids.
type Repository struct {
	c    *Client
	name string
	err  error // set when the name is invalid
}

// Name returns the repository's name.
func (r *Repository) Name() string { return r.name }

// Upsert writes a document: an insert when it is absent or deleted, an update
// otherwise. data must be a JSON object; its "id" is set to id. The call
// returns once the store committed the document and its outbox event.
func (r *Repository) Upsert(ctx context.Context, id string, data json.RawMessage, opts ...WriteOption) error {
	return r.write(ctx, []Put{{ID: id, Data: data}}, false, opts)
}

// UpsertMany writes several documents in one atomic store write.
func (r *Repository) UpsertMany(ctx context.Context, puts []Put, opts ...WriteOption) error {
	if len(puts) == 0 {
		return nil
	}
	return r.write(ctx, puts, false, opts)
}

// Delete deletes a document, leaving a tombstone whose event syncs. Deleting
// an absent or already deleted document fails with ErrNotFound.
func (r *Repository) Delete(ctx context.Context, id string, opts ...WriteOption) error {
	return r.write(ctx, []Put{{ID: id}}, true, opts)
}

// Get returns a document (with its "id"); ok is false when it is absent or
// deleted.
func (r *Repository) Get(ctx context.Context, id string) (json.RawMessage, bool, error) {
	if err := r.check(); err != nil {
		return nil, false, err
	}
	if err := validateID(id); err != nil {
		return nil, false, err
	}
	d, ok, err := r.c.store.Doc(ctx, r.name, id)
	if err != nil {
		return nil, false, wrapErr("read document "+id, err)
	}
	if !ok || d.Deleted {
		return nil, false, nil
	}
	return d.Data, true, nil
}

// GetAll returns every document, ordered by id, without tombstones.
func (r *Repository) GetAll(ctx context.Context) ([]json.RawMessage, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	docs, err := r.c.readDocs(ctx, r.name)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(docs))
	for _, d := range docs {
		if !d.Deleted {
			out = append(out, d.Data)
		}
	}
	return out, nil
}

// Query returns the documents matching q.
func (r *Repository) Query(ctx context.Context, q Query) ([]json.RawMessage, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, asInvalid(err)
	}
	docs, err := r.c.readDocs(ctx, r.name)
	if err != nil {
		return nil, err
	}
	out, err := q.Run(docs)
	if err != nil {
		return nil, asInvalid(err)
	}
	return out, nil
}

// Watch calls fn with q's result now, and again whenever a local or remote
// change alters it. Calls are serial, on a goroutine of the client, never
// under an engine lock; bursts of changes are coalesced. cancel stops them.
// An invalid query is reported in the status's LastError and never calls fn.
func (r *Repository) Watch(q Query, fn func([]json.RawMessage)) (cancel func()) {
	if fn == nil || r.check() != nil {
		return func() {}
	}
	if err := q.Validate(); err != nil {
		r.c.reportError("invalid watch query: " + err.Error())
		return func() {}
	}
	return r.c.watch.add(r.name, q, fn)
}

func (r *Repository) check() error {
	if r.err != nil {
		return r.err
	}
	if r.c.isClosed() {
		return ErrClientClosed
	}
	return nil
}

// asInvalid marks a query error as invalid input unless it already has a
// code.
func asInvalid(err error) error {
	if Code(err) != CodeInternal {
		return err
	}
	return invalidf(err.Error())
}

// validateID checks a document id.
func validateID(id string) error {
	switch {
	case id == "":
		return invalidf("document id is empty")
	case len(id) > protocol.MaxIDLength:
		return invalidf("document id is longer than 256 bytes")
	}
	return nil
}

// write makes one local change per put (a delete when del), all in one
// store write.
func (r *Repository) write(ctx context.Context, puts []Put, del bool, opts []WriteOption) error {
	if err := r.check(); err != nil {
		return err
	}
	var cfg writeConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	objs := make([]object, len(puts))
	for i, p := range puts {
		if err := validateID(p.ID); err != nil {
			return err
		}
		if del {
			continue
		}
		o, err := decodeObject(p.Data)
		if err != nil {
			return errorf(ErrInvalid, "lfsync: document "+p.ID+": "+err.Error())
		}
		objs[i] = o
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := r.c
	var b *Batch
	for attempt := 1; ; attempt++ {
		var err error
		var stale bool
		c.applyMu.Lock()
		b, err = c.localWrite(ctx, r.name, puts, objs, del, cfg, attempt == 1)
		if err != nil {
			stale = c.stale(b, err)
		}
		c.applyMu.Unlock()
		if !stale {
			if err != nil {
				return err
			}
			break
		}
		if attempt == staleAttempts {
			return staleErr("write to repository "+r.name, err)
		}
		if err := staleWait(ctx, attempt); err != nil {
			return err
		}
	}
	c.watch.wrote(r.name)
	if len(b.Events) > 0 {
		signal(c.pushWake)
	}
	c.notifyChanged()
	return nil
}

// localWrite computes and writes one attempt of a local change. The first
// attempt is guarded by the repository's generation: the one this client's
// last write or read left (cached, no read), else the store's, read once;
// the previous documents then come from the document cache when it holds
// them for that generation, so the write needs no read at all. A retry is
// guarded by the documents it read instead: another tab writing other
// documents of the repository then cannot keep refusing it. On failure the
// batch is returned too (for ErrStale handling). The caller holds applyMu.
func (c *Client) localWrite(ctx context.Context, repo string, puts []Put, objs []object, del bool, cfg writeConfig, first bool) (*Batch, error) {
	var gen uint64
	byGen := first
	if first {
		var err error
		if gen, byGen, err = c.writeGeneration(ctx, repo, len(puts) > bulkPuts); err != nil {
			return &Batch{}, err
		}
	}
	b, read, err := c.localBatch(ctx, repo, gen, byGen, puts, objs, del, cfg)
	if err != nil {
		return &Batch{}, err
	}
	if byGen {
		c.expect(b, repo, gen)
	} else {
		b.ExpectDocs = read
	}
	if err := c.store.Write(ctx, b); err != nil {
		if errors.Is(err, ErrStale) {
			return b, err
		}
		return b, wrapErr("write to repository "+repo, err)
	}
	c.committed(b)
	c.docGen++
	c.addPending(len(b.Events))
	return b, nil
}

// writeGeneration returns the generation a local write of repo is guarded
// by, if any: the newest this client knows (its last write's, or the
// document cache's, read from the store), else the store's, read now
// unless writes of repo were lately refused as stale (then ok is false and
// the write is guarded by its documents; a bulk write reads the generation
// anyway, as it reads the whole repository). A repository never written
// (generation 0) is cached as empty. The caller holds applyMu.
func (c *Client) writeGeneration(ctx context.Context, repo string, bulk bool) (gen uint64, ok bool, err error) {
	g, known := c.gens[repo]
	if cg, ok := c.cache.generation(repo); ok && (!known || cg > g) {
		g, known = cg, true
		c.gens[repo] = g
	}
	if known {
		return g, true, nil
	}
	if n := c.contended[repo]; n > 0 && !bulk {
		if n == 1 {
			delete(c.contended, repo)
		} else {
			c.contended[repo] = n - 1
		}
		return 0, false, nil
	}
	if g, err = c.generationOf(ctx, repo); err != nil {
		return 0, false, err
	}
	if g == 0 {
		c.cache.empty(repo)
	}
	return g, true, nil
}

// bulkPuts is the number of puts above which a local write reads the
// whole repository once instead of each document.
const bulkPuts = 32

// localBatch builds the store batch of a local change, and returns the
// documents it was computed from, as read. When byGen, documents read now
// are at least as new as generation gen: they are taken from the document
// cache when it holds them for gen, and a whole repository read is cached
// for gen. The caller holds applyMu.
func (c *Client) localBatch(ctx context.Context, repo string, gen uint64, byGen bool, puts []Put, objs []object, del bool, cfg writeConfig) (*Batch, []DocExpect, error) {
	b := &Batch{Docs: make([]DocWrite, 0, len(puts))}
	latest := make(map[string]int, len(puts)) // id -> index in b.Docs
	read := make([]DocExpect, 0, len(puts))
	now := time.Now()
	// Many puts: one read of the repository instead of one per document.
	var current map[string]Doc
	if len(puts) > bulkPuts {
		docs, ok := []Doc(nil), false
		if byGen {
			docs, ok = c.cache.all(repo, gen)
		}
		if !ok {
			var err error
			if docs, err = c.store.Docs(ctx, repo); err != nil {
				return nil, nil, wrapErr("read repository "+repo, err)
			}
			if byGen {
				c.cache.fill(repo, gen, docs)
			}
		}
		current = make(map[string]Doc, len(docs))
		for _, d := range docs {
			current[d.ID] = d
		}
	}
	for i, p := range puts {
		var d Doc
		var ok bool
		if j, seen := latest[p.ID]; seen {
			d, ok = b.Docs[j].Doc, true
		} else {
			known := false
			if current != nil {
				d, ok = current[p.ID]
				known = true
			} else if byGen {
				d, ok, known = c.cache.get(repo, gen, p.ID)
			}
			if known && byGen && del && (!ok || d.Deleted) {
				// Refused without a write, which would be checked: the
				// store decides whether another tab made it meanwhile.
				known = false
			}
			if !known {
				var err error
				d, ok, err = c.store.Doc(ctx, repo, p.ID)
				if err != nil {
					return nil, nil, wrapErr("read document "+p.ID, err)
				}
			}
			read = append(read, DocExpect{Repo: repo, ID: p.ID, Exists: ok, Doc: d})
		}
		if del && (!ok || d.Deleted) {
			return nil, nil, errorf(ErrNotFound, "lfsync: document "+p.ID+" does not exist in "+repo)
		}
		doc, ev, err := c.localChange(now, d, ok, p.ID, objs[i], del)
		if err != nil {
			return nil, nil, err
		}
		if j, seen := latest[p.ID]; seen {
			b.Docs[j].Doc = doc
		} else {
			latest[p.ID] = len(b.Docs)
			b.Docs = append(b.Docs, DocWrite{Repo: repo, Doc: doc})
		}
		if !cfg.localOnly {
			b.Events = append(b.Events, OutboxEvent{Repo: repo, Event: ev, Status: StatusPending})
		}
	}
	return b, read, nil
}

// localChange returns the document after a local write over d, and its
// event. The stamp is later than every stamp d holds.
func (c *Client) localChange(now time.Time, d Doc, exists bool, id string, obj object, del bool) (Doc, protocol.Event, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return Doc{}, protocol.Event{}, wrapErr("generate an event id", err)
	}
	prev := d.Version
	for _, st := range d.Fields {
		prev = maxStamp(prev, st)
	}
	s := Stamp{At: nextTime(now, prev), EventID: u.String()}
	ev := protocol.Event{ID: s.EventID, CreatedAt: s.At, DataID: id}
	seq := int64(0)
	if exists {
		seq = d.Sequence
	}
	if del {
		fields := make(map[string]Stamp, len(d.Fields)+1)
		for k, st := range d.Fields {
			fields[k] = st
		}
		fields[deletedField] = s
		ev.Operation = protocol.OpDelete
		return Doc{ID: id, Deleted: true, Version: s, Fields: fields, Sequence: seq}, ev, nil
	}
	fields := localFields(d, exists, obj, s)
	data := encodeDoc(id, obj)
	ev.Operation = protocol.OpUpdate
	if !exists || d.Deleted {
		ev.Operation = protocol.OpInsert
	}
	ev.Data = data
	if c.opts.Conflict == FieldMerge {
		ev.Meta = encodeFieldMeta(fields)
	}
	return Doc{ID: id, Data: data, Version: s, Fields: fields, Sequence: seq}, ev, nil
}
