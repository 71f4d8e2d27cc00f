package core

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// applier applies remote events (and acked own events) to one repository
// under the client's conflict strategy, gathering one store batch. The
// caller holds applyMu.
type applier struct {
	c        *Client
	ctx      context.Context
	repo     string
	inflight func(eventID string) bool
	docs     map[string]Doc // documents read or written so far (absent: not in map, see known)
	known    map[string]bool
	outbox   map[string]*OutboxEvent // outbox lookups (nil: not in the outbox)
	pending  []OutboxEvent           // every pending event, loaded on first need
	sentMark int64                   // the sent mark, read with pending
	failed   map[string]bool         // events superseded by this batch
	loaded   bool
	order    []string // documents written, in order
	written  map[string]bool
	read     []DocExpect // each document written, as it was before this batch
	batch    Batch
	reports  []badEvent
	newLocal bool // a local event was created (custom merges)
	// byGen: the batch is guarded by generation gen, so documents are
	// taken from the document cache when it holds them for gen.
	byGen bool
	gen   uint64
}

func newApplier(c *Client, ctx context.Context, repo string, inflight func(string) bool) *applier {
	if inflight == nil {
		inflight = func(string) bool { return false }
	}
	return &applier{
		c: c, ctx: ctx, repo: repo, inflight: inflight,
		docs: make(map[string]Doc), known: make(map[string]bool),
		outbox: make(map[string]*OutboxEvent), written: make(map[string]bool),
	}
}

// preload reads every document of the repository at once (cheaper than one
// read per event for large batches), from the document cache when it holds
// them for the generation guarding the batch.
func (a *applier) preload() error {
	docs, ok := []Doc(nil), false
	if a.byGen {
		docs, ok = a.c.cache.all(a.repo, a.gen)
	}
	if !ok {
		var err error
		if docs, err = a.c.store.Docs(a.ctx, a.repo); err != nil {
			return wrapErr("read repository "+a.repo, err)
		}
		if a.byGen {
			a.c.cache.fill(a.repo, a.gen, docs)
		}
	}
	for _, d := range docs {
		a.docs[d.ID] = d
	}
	a.loaded = true
	return nil
}

// guarded tells the applier its batch is guarded by generation gen, read
// before any document it reads.
func (a *applier) guarded(gen uint64) {
	a.byGen, a.gen = true, gen
}

func (a *applier) doc(id string) (Doc, bool, error) {
	if d, ok := a.docs[id]; ok {
		return d, true, nil
	}
	if a.loaded || a.known[id] {
		return Doc{}, false, nil
	}
	if a.byGen {
		if d, ok, known := a.c.cache.get(a.repo, a.gen, id); known {
			a.known[id] = true
			if ok {
				a.docs[id] = d
			}
			return d, ok, nil
		}
	}
	d, ok, err := a.c.store.Doc(a.ctx, a.repo, id)
	if err != nil {
		return Doc{}, false, wrapErr("read document "+id, err)
	}
	a.known[id] = true
	if ok {
		a.docs[id] = d
	}
	return d, ok, nil
}

func (a *applier) put(d Doc) {
	a.docs[d.ID] = d
	if !a.written[d.ID] {
		a.written[d.ID] = true
		a.order = append(a.order, d.ID)
	}
}

// outboxEvent looks an event up in the outbox.
func (a *applier) outboxEvent(id string) (*OutboxEvent, error) {
	if id == "" {
		return nil, nil
	}
	if ev, ok := a.outbox[id]; ok {
		return ev, nil
	}
	ev, ok, err := a.c.store.Outbox(a.ctx, id)
	if err != nil {
		return nil, wrapErr("read outbox event "+id, err)
	}
	var p *OutboxEvent
	if ok {
		p = &ev
	}
	a.outbox[id] = p
	return p, nil
}

// localPending returns the pending local event that last wrote d, if any.
func (a *applier) localPending(d Doc, exists bool) (*OutboxEvent, error) {
	if !exists || d.Version.EventID == "" {
		return nil, nil
	}
	ev, err := a.outboxEvent(d.Version.EventID)
	if err != nil || ev == nil || ev.Status != StatusPending {
		return nil, err
	}
	return ev, nil
}

// apply applies one event; an error means this event is skipped.
func (a *applier) apply(e protocol.Event) error {
	d, exists, err := a.doc(e.DataID)
	if err != nil {
		return err
	}
	var next Doc
	var changed bool
	switch a.c.opts.Conflict {
	case FieldMerge:
		next, changed, err = applyFieldMerge(d, exists, e)
	case ServerWins:
		next, changed, err = a.serverWins(d, exists, e)
	case ClientWins:
		next, changed, err = a.clientWins(d, exists, e)
	case Custom:
		next, changed, err = a.custom(d, exists, e)
	default:
		next, changed, err = applyLastWriteWins(d, exists, e)
	}
	if err != nil {
		return err
	}
	if changed {
		if !a.written[e.DataID] {
			a.read = append(a.read, DocExpect{Repo: a.repo, ID: e.DataID, Exists: exists, Doc: d})
		}
		next.ID = e.DataID
		a.put(next)
	}
	return nil
}

// bumpSequence records a later serverSequence without changing the data.
func bumpSequence(d Doc, seq int64) (Doc, bool) {
	if seq > d.Sequence {
		d.Sequence = seq
		return d, true
	}
	return d, false
}

// serverWins: the server's order decides. A pending local change not yet
// sent is superseded (marked failed); one in flight stays, and its own
// sequence (from the ack or its echo) orders it.
func (a *applier) serverWins(d Doc, exists bool, e protocol.Event) (Doc, bool, error) {
	if exists && d.Version.EventID == e.ID {
		n, ch := bumpSequence(d, e.ServerSequence)
		return n, ch, nil
	}
	local, err := a.localPending(d, exists)
	if err != nil {
		return d, false, err
	}
	if local == nil {
		return applyServerOrder(d, exists, e)
	}
	own, err := a.outboxEvent(e.ID)
	if err != nil {
		return d, false, err
	}
	if own != nil {
		if own.Order < local.Order {
			// An older change of ours: the pending one comes after it.
			n, ch := bumpSequence(d, e.ServerSequence)
			return n, ch, nil
		}
		// Our newest change, sequenced: it is the document now.
		return applyServerOrder(d, exists, e)
	}
	if e.ServerSequence > 0 && e.ServerSequence <= d.Sequence {
		return d, false, nil
	}
	if err := a.supersede(e.DataID, "superseded by a remote change (serverWins)"); err != nil {
		return d, false, err
	}
	return applyServerOrder(d, exists, e)
}

// supersede marks the pending local events of a document that were never
// sent (in any session: Order above the persisted sent mark) failed: a
// remote change sequenced first replaces them. Events that may have reached
// the server are left to the server's order.
func (a *applier) supersede(id, reason string) error {
	if a.pending == nil {
		// Another started client of the store (a tab during a leader change,
		// or every tab where leader election is unavailable) may have sent
		// events since this session read the sent mark: take the stored mark.
		a.sentMark = a.c.sentOrder
		v, ok, err := a.c.store.Config(a.ctx, configSentOrder)
		if err != nil {
			return wrapErr("read the sent mark", err)
		}
		if n, perr := strconv.ParseInt(v, 10, 64); ok && perr == nil && n > a.sentMark {
			a.sentMark = n
		}
		p, err := a.c.store.Pending(a.ctx, 0)
		if err != nil {
			return wrapErr("read pending events", err)
		}
		a.pending = p
	}
	for _, ev := range a.pending {
		if ev.Repo == a.repo && ev.Event.DataID == id && ev.Order > a.sentMark && !a.inflight(ev.Event.ID) && !a.failed[ev.Event.ID] {
			if a.failed == nil {
				a.failed = make(map[string]bool)
			}
			a.failed[ev.Event.ID] = true
			// Later events of this batch must see the new status.
			failed := ev
			failed.Status = StatusFailed
			a.outbox[ev.Event.ID] = &failed
			a.batch.Statuses = append(a.batch.Statuses, StatusUpdate{
				EventID: ev.Event.ID, Status: StatusFailed, Error: reason,
			})
		}
	}
	return nil
}

// clientWins: a pending local change is kept over remote ones (and is sent
// as usual); otherwise the server's order decides.
func (a *applier) clientWins(d Doc, exists bool, e protocol.Event) (Doc, bool, error) {
	if exists && d.Version.EventID == e.ID {
		n, ch := bumpSequence(d, e.ServerSequence)
		return n, ch, nil
	}
	local, err := a.localPending(d, exists)
	if err != nil {
		return d, false, err
	}
	if local != nil {
		return d, false, nil
	}
	return applyServerOrder(d, exists, e)
}

// custom: a remote change to a document with a pending local change goes
// through Options.Resolve; otherwise last-write-wins. The merge becomes a new
// local change only when no existing write already carries it: a merge equal
// to the remote document whose stamp is later adopts the remote (and
// supersedes the never-sent local changes it includes); a merge equal to the
// local document whose stamp is later keeps the local change as it is. Every
// other merge is written as a new local change stamped after both sides, so
// that last-write-wins elsewhere picks the merged content. Without this,
// replicas that each hold a pending merge would answer each other's merges
// with new ones forever.
func (a *applier) custom(d Doc, exists bool, e protocol.Event) (Doc, bool, error) {
	if exists && d.Version.EventID == e.ID {
		return d, false, nil
	}
	local, err := a.localPending(d, exists)
	if err != nil {
		return d, false, err
	}
	if local == nil {
		return applyLastWriteWins(d, exists, e)
	}
	own, err := a.outboxEvent(e.ID)
	if err != nil {
		return d, false, err
	}
	if own != nil {
		return applyLastWriteWins(d, exists, e)
	}
	var localData, remoteData json.RawMessage
	if !d.Deleted {
		localData = d.Data
	}
	if e.Operation != protocol.OpDelete {
		remoteData = e.Data
	}
	merged, err := a.c.opts.Resolve(localData, remoteData)
	if err != nil {
		return d, false, errorf(ErrConflict, "lfsync: resolve of "+a.repo+"/"+e.DataID+" failed: "+err.Error())
	}
	del := len(merged) == 0 || string(merged) == "null"
	var obj object
	if !del {
		if obj, err = decodeObject(merged); err != nil {
			return d, false, errorf(ErrConflict, "lfsync: resolve of "+a.repo+"/"+e.DataID+" returned "+err.Error())
		}
	}
	result := content{deleted: del, obj: obj}
	remoteLater := stampOf(e).Compare(d.Version) > 0
	switch {
	case remoteLater && result.equal(remoteContent(e)):
		// The remote change already holds the merge and wins everywhere by
		// its stamp: apply it; local changes it includes need not be sent.
		if err := a.supersede(e.DataID, "superseded by a remote change that includes it (custom)"); err != nil {
			return d, false, err
		}
		next, err := overwrite(e.DataID, e)
		if err != nil {
			return d, false, err
		}
		if d.Sequence > next.Sequence {
			next.Sequence = d.Sequence
		}
		return next, true, nil
	case !remoteLater && result.equal(docContent(d)):
		// The pending local change already holds the merge and wins
		// everywhere by its stamp.
		n, ch := bumpSequence(d, e.ServerSequence)
		return n, ch, nil
	}
	base := d
	base.Version = maxStamp(d.Version, stampOf(e))
	doc, ev, err := a.c.localChange(time.Now(), base, exists, e.DataID, obj, del)
	if err != nil {
		return d, false, err
	}
	if e.ServerSequence > doc.Sequence {
		doc.Sequence = e.ServerSequence
	}
	a.batch.Events = append(a.batch.Events, OutboxEvent{Repo: a.repo, Event: ev, Status: StatusPending})
	a.outbox[ev.ID] = &OutboxEvent{Repo: a.repo, Event: ev, Status: StatusPending}
	a.newLocal = true
	return doc, true, nil
}

// finish moves the documents written into the batch.
func (a *applier) finish() *Batch {
	for _, id := range a.order {
		a.batch.Docs = append(a.batch.Docs, DocWrite{Repo: a.repo, Doc: a.docs[id]})
	}
	return &a.batch
}
