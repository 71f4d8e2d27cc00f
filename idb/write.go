//go:build js && wasm

package idb

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"syscall/js"
	"unsafe"

	"github.com/lfsync/lfsync/core"
)

// writeScope returns the stores group writes to: a transaction over fewer
// stores commits faster and blocks fewer readers.
func writeScope(group []*pendingWrite) js.Value {
	var docs, outbox, meta, cursors, config bool
	for _, w := range group {
		p := w.p
		docs = docs || len(p.docs) > 0 || len(p.expectDocs) > 0
		outbox = outbox || len(p.events) > 0 || len(p.statuses) > 0 || len(p.remove) > 0
		meta = meta || len(p.events) > 0 || len(p.docs) > 0 || len(p.expect) > 0
		cursors = cursors || len(p.cursors) > 0
		config = config || len(p.config) > 0
	}
	names := make([]any, 0, 5)
	for _, n := range []struct {
		use  bool
		name string
	}{{docs, storeDocs}, {outbox, storeOutbox}, {cursors, storeCursors}, {config, storeConfig}, {meta, storeMeta}} {
		if n.use {
			names = append(names, n.name)
		}
	}
	if len(names) == 1 {
		return js.ValueOf(names[0])
	}
	return jsArray.New(names...)
}

// pendingWrite is a batch waiting for the writer, and where its result goes.
type pendingWrite struct {
	p     *prepared
	done  chan error // buffered: the writer never blocks on a caller
	stale error      // set by apply when the precondition failed: nothing of p was written
}

// prepared is a batch with every value encoded, ready to be issued back to
// back inside a transaction.
type prepared struct {
	docs     []preparedDoc
	events   []preparedEvent
	statuses []core.StatusUpdate
	remove   []string
	cursors  map[string]int64
	config   map[string]string
	expect   map[string]uint64
	// expectDocs are the batch's document preconditions.
	expectDocs []core.DocExpect
	repos      []string // repositories whose documents p puts, each once
}

type preparedDoc struct {
	repo, id, json string
	doc            core.Doc // as given, for later batches' preconditions in the group
}

type preparedEvent struct {
	id, repo, json, err string
	status              core.Status
}

// invalidError is a batch that cannot be stored as given.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "idb: invalid batch: " + e.msg }
func (e *invalidError) Unwrap() error { return core.ErrInvalidBatch }

// prepare encodes b's documents and events into one buffer, which becomes
// one Go string sliced per record.
func prepare(b *core.Batch) (*prepared, error) {
	size := 0
	for i := range b.Docs {
		size += 96 + len(b.Docs[i].Doc.ID) + len(b.Docs[i].Doc.Data) + 64*len(b.Docs[i].Doc.Fields)
	}
	for i := range b.Events {
		e := &b.Events[i].Event
		size += 128 + len(e.ID) + len(e.DataID) + len(e.Data) + len(e.Meta)
	}
	buf := make([]byte, 0, size)
	docEnds := make([]int, len(b.Docs))
	for i := range b.Docs {
		d := &b.Docs[i].Doc
		if len(d.Data) > 0 && !json.Valid(d.Data) {
			return nil, &invalidError{msg: "docs[" + strconv.Itoa(i) + "]: data is not valid JSON"}
		}
		if !validTime(d.Version.At) {
			return nil, &invalidError{msg: "docs[" + strconv.Itoa(i) + "]: version time is outside the years 0 to 9999"}
		}
		for _, st := range d.Fields {
			if !validTime(st.At) {
				return nil, &invalidError{msg: "docs[" + strconv.Itoa(i) + "]: field time is outside the years 0 to 9999"}
			}
		}
		buf = appendDoc(buf, d)
		docEnds[i] = len(buf)
	}
	evEnds := make([]int, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i].Event
		if len(e.Data) > 0 && !json.Valid(e.Data) || len(e.Meta) > 0 && !json.Valid(e.Meta) {
			return nil, &invalidError{msg: "events[" + strconv.Itoa(i) + "]: data or meta is not valid JSON"}
		}
		if !validTime(e.CreatedAt) {
			return nil, &invalidError{msg: "events[" + strconv.Itoa(i) + "]: time is outside the years 0 to 9999"}
		}
		buf = appendEvent(buf, e)
		evEnds[i] = len(buf)
	}
	// buf is never written again: share it as a string instead of copying.
	text := unsafe.String(unsafe.SliceData(buf), len(buf))
	p := &prepared{
		docs:     make([]preparedDoc, len(b.Docs)),
		events:   make([]preparedEvent, len(b.Events)),
		statuses: b.Statuses,
		remove:   b.Remove,
		cursors:  b.Cursors,
		config:   b.Config,
		expect:   b.Expect,

		expectDocs: b.ExpectDocs,
	}
	start := 0
	for i, w := range b.Docs {
		p.docs[i] = preparedDoc{repo: w.Repo, id: w.Doc.ID, json: text[start:docEnds[i]], doc: w.Doc}
		start = docEnds[i]
		if !slices.Contains(p.repos, w.Repo) {
			p.repos = append(p.repos, w.Repo)
		}
	}
	for i, e := range b.Events {
		p.events[i] = preparedEvent{id: e.Event.ID, repo: e.Repo, json: text[start:evEnds[i]], err: e.Error, status: e.Status}
		start = evEnds[i]
	}
	return p, nil
}

// Write applies b atomically in one readwrite transaction. Writes that
// arrive while another commits are committed together in the next
// transaction; should that fail, each is retried alone, so a bad batch fails
// by itself. A full quota returns an error matching core.ErrQuotaExceeded.
// When ctx ends before the batch's transaction starts, nothing is written.
func (s *Store) Write(ctx context.Context, b *core.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := core.ValidateBatch(b); err != nil {
		return err
	}
	if b == nil || b.Empty() && len(b.Expect) == 0 && len(b.ExpectDocs) == 0 {
		_, err := s.conn()
		return err
	}
	p, err := prepare(b)
	if err != nil {
		return err
	}
	w := &pendingWrite{p: p, done: make(chan error, 1)}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.queue = append(s.queue, w)
	if !s.writing {
		// Lead: commit in this goroutine (no hand-off to wait for), then
		// leave what queued up meanwhile to a drain goroutine.
		s.writing = true
		s.mu.Unlock()
		s.commitQueued()
		s.mu.Lock()
		if len(s.queue) > 0 {
			go s.drain()
		} else {
			s.writing = false
		}
		s.mu.Unlock()
		return <-w.done
	}
	s.mu.Unlock()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		if i := slices.Index(s.queue, w); i >= 0 {
			s.queue = slices.Delete(s.queue, i, i+1)
			s.mu.Unlock()
			return ctx.Err()
		}
		s.mu.Unlock()
		return <-w.done // already committing: report what happened
	}
}

// drain commits the queue, a group at a time, until it is empty.
func (s *Store) drain() {
	for s.commitQueued() {
	}
}

// commitQueued commits the queued writes as one group and delivers each
// its result. It reports false, and clears s.writing, when the queue is
// empty.
func (s *Store) commitQueued() bool {
	s.mu.Lock()
	group := s.queue
	s.queue = nil
	if len(group) == 0 {
		s.writing = false
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	err := s.commit(group)
	if err == nil || len(group) == 1 || errors.Is(err, core.ErrClosed) {
		for _, w := range group {
			w.deliver(err)
		}
		return true
	}
	for _, w := range group {
		w.deliver(s.commit([]*pendingWrite{w}))
	}
	return true
}

// deliver hands the write its result: the transaction's, or ErrStale when
// its precondition failed inside a transaction that committed the others.
func (w *pendingWrite) deliver(err error) {
	if err == nil && w.stale != nil {
		err = w.stale
	}
	w.done <- err
}

// commit writes the batches of group in one transaction.
//
// The write path (commit and apply) stays on syscall/js, while the rest of
// the store uses go-indexeddb: measured in headless Chromium, paired
// (alternating both paths on one database, 400 transactions a run, 6 runs),
// the same transactions through go-indexeddb took 1.02–1.15x (median 1.11x)
// the time of this path with one document each, and 0.92–1.13x (median
// 1.07x) with a document and an outbox event (a read awaited mid-way). Its
// Transaction.Await sets three listeners, each a js.Func with a goroutine
// to remove it, and every request is checked with instanceof; here one
// js.Func serves both events. Single reads through go-indexeddb measured
// 1.02–1.08x, decoding included, and use it.
func (s *Store) commit(group []*pendingWrite) error {
	db, err := s.rawConn()
	if err != nil {
		return err
	}
	var tx js.Value
	if err := protect(func() { tx = db.Call("transaction", writeScope(group), "readwrite") }); err != nil {
		if _, cerr := s.conn(); cerr != nil {
			return cerr
		}
		return failed("write batch", err)
	}
	done := listen(tx, "complete", "abort")
	defer done.release()
	var applyErr error
	if err := protect(func() { applyErr = apply(tx, group) }); err != nil {
		applyErr = err
	}
	if applyErr != nil {
		protect(func() { tx.Call("abort") }) // throws when already aborted
	}
	if <-done.ch == "complete" {
		if applyErr != nil { // cannot happen: the abort above came too late
			return failed("write batch", applyErr)
		}
		return nil
	}
	err = exceptionError(tx.Get("error"))
	if err == nil {
		err = applyErr
	}
	if err == nil {
		err = errors.New("transaction aborted")
	}
	return failed("write batch", err)
}

// readGenerations takes the results of the generation reads.
func readGenerations(gens []*generation) {
	for _, g := range gens {
		if v := g.req.Get("result"); v.Type() == js.TypeNumber {
			g.stored = uint64(v.Float())
		}
		g.cur = g.stored
	}
}

// docKey names a document.
type docKey struct{ repo, id string }

// docState is a document a precondition names, while a group is applied.
type docState struct {
	req    js.Value // the get request of phase one
	exists bool
	doc    core.Doc
}

// checkPreconditions checks each batch's preconditions against the
// generations and documents the batches before it leave, marking stale
// batches (which are skipped whole), and advances the generations, and the
// documents checked, of the others.
func checkPreconditions(group []*pendingWrite, gens []*generation, checks map[docKey]*docState) {
	find := func(repo string) *generation {
		for _, g := range gens {
			if g.repo == repo {
				return g
			}
		}
		return nil
	}
	for _, w := range group {
		for repo, want := range w.p.expect {
			if g := find(repo); g.cur != want {
				w.stale = &core.StaleError{Repo: repo, Want: want, Have: g.cur}
				break
			}
		}
		if w.stale == nil {
			for _, e := range w.p.expectDocs {
				if st := checks[docKey{e.Repo, e.ID}]; !e.Matches(st.doc, st.exists) {
					w.stale = &core.DocStaleError{Repo: e.Repo, ID: e.ID}
					break
				}
			}
		}
		if w.stale == nil {
			for _, repo := range w.p.repos {
				find(repo).cur++
			}
			for i := range w.p.docs {
				d := &w.p.docs[i]
				if st := checks[docKey{d.repo, d.id}]; st != nil {
					st.exists, st.doc = true, d.doc
				}
			}
		}
	}
}

// generation is a repository's generation while a group is applied.
type generation struct {
	repo        string
	req         js.Value // the get request of phase one
	stored, cur uint64
}

// outboxEntry is the state of one outbox record while a group is applied.
type outboxEntry struct {
	id      string
	read    bool     // the stored record is read in phase one
	req     js.Value // the get request of phase one
	rec     js.Value // the stored record, to be updated in place
	present bool     // the record exists after the batches applied so far
	status  core.Status
	err     string
	order   int64
	event   *preparedEvent // set when this group adds the record
	dirty   bool           // the record must be put
	removed bool           // the record must be deleted unless re-added
}

// apply issues the requests of group on tx. Phase one reads the outbox
// records that events and status updates refer to, the order counter and
// the generation of every repository whose documents are put or expected,
// back to back, then waits for the last of them (the transaction stays
// active while its requests run, and this goroutine resumes inside the
// success event). Phase two checks each batch's precondition against the
// generations the batches before it leave (a stale batch is skipped whole
// and gets ErrStale), applies the others in order to those records in Go and
// issues every write back to back, generations included. Nothing else is
// awaited in between.
func apply(tx js.Value, group []*pendingWrite) error {
	var (
		entries   []*outboxEntry
		byID      map[string]*outboxEntry
		needOrder bool
		needRead  bool
		gens      []*generation
		checks    map[docKey]*docState
	)
	gen := func(repo string) {
		for _, g := range gens {
			if g.repo == repo {
				return
			}
		}
		gens = append(gens, &generation{repo: repo})
	}
	entry := func(id string, read bool) *outboxEntry {
		e := byID[id]
		if e == nil {
			if byID == nil {
				byID = make(map[string]*outboxEntry)
			}
			e = &outboxEntry{id: id}
			byID[id] = e
			entries = append(entries, e)
		}
		if read && !e.read {
			e.read = true
			needRead = true
		}
		return e
	}
	for _, w := range group {
		w.stale = nil
		for _, e := range w.p.expectDocs {
			k := docKey{e.Repo, e.ID}
			if checks[k] == nil {
				if checks == nil {
					checks = make(map[docKey]*docState)
				}
				checks[k] = &docState{}
				needRead = true
			}
		}
		for _, repo := range w.p.repos {
			gen(repo)
		}
		for repo := range w.p.expect {
			gen(repo)
		}
		for i := range w.p.events {
			entry(w.p.events[i].id, true)
			needOrder = true
		}
		for _, u := range w.p.statuses {
			entry(u.EventID, true)
		}
		for _, id := range w.p.remove {
			entry(id, false)
		}
	}

	var outbox, meta js.Value
	var order, storedOrder int64
	if len(entries) > 0 {
		outbox = tx.Call("objectStore", storeOutbox)
	}
	if needOrder || len(gens) > 0 {
		meta = tx.Call("objectStore", storeMeta)
	}
	// Without outbox reads to wait for, the generations are read without
	// waiting: the writes follow at once and the preconditions are checked
	// when the reads complete (before the writes, which were issued after
	// them); a stale batch then aborts the transaction (see commit).
	optimistic := !needRead && len(gens) > 0
	var genRead *waiter
	if optimistic {
		for _, g := range gens {
			g.req = meta.Call("get", metaGeneration+g.repo)
		}
		genRead = listen(gens[len(gens)-1].req, "success", "error")
		defer genRead.release()
	}
	if needRead {
		var last js.Value
		for _, e := range entries {
			if e.read {
				e.req = outbox.Call("get", e.id)
				last = e.req
			}
		}
		var orderReq js.Value
		if needOrder {
			orderReq = meta.Call("get", metaOrder)
			last = orderReq
		}
		if len(checks) > 0 {
			docs := tx.Call("objectStore", storeDocs)
			for k, st := range checks {
				st.req = docs.Call("get", jsArray.New(k.repo, k.id))
				last = st.req
			}
		}
		for _, g := range gens {
			g.req = meta.Call("get", metaGeneration+g.repo)
			last = g.req
		}
		// Requests complete in order: when the last succeeds, all did.
		w := listen(last, "success", "error")
		typ := <-w.ch
		w.release()
		if typ != "success" {
			if err := exceptionError(last.Get("error")); err != nil {
				return err
			}
			return errors.New("outbox read failed")
		}
		for _, e := range entries {
			if !e.read {
				continue
			}
			if rec := e.req.Get("result"); rec.Type() == js.TypeObject {
				e.rec = rec
				e.present = true
				e.status = core.Status(rec.Get("status").Int())
			}
		}
		if needOrder {
			if v := orderReq.Get("result"); v.Type() == js.TypeNumber {
				order = int64(v.Float())
			}
			storedOrder = order
		}
		readGenerations(gens)
		for k, st := range checks {
			if v := st.req.Get("result"); v.Type() == js.TypeString {
				if err := json.Unmarshal(bytesOf(v), &st.doc); err != nil {
					return failed("decode document "+k.id, err)
				}
				st.exists = true
			}
		}
		checkPreconditions(group, gens, checks)
	}

	// Apply the batches in order, as if committed one after the other.
	for _, w := range group {
		if w.stale != nil {
			continue
		}
		for i := range w.p.events {
			ev := &w.p.events[i]
			e := byID[ev.id]
			if e.present {
				continue // an event the outbox holds is left as it is
			}
			order++
			*e = outboxEntry{id: e.id, read: e.read, present: true, status: ev.status, err: ev.err,
				order: order, event: ev, dirty: true, removed: e.removed}
		}
		for _, u := range w.p.statuses {
			e := byID[u.EventID]
			if !e.present || e.status == core.StatusOK && u.Status != core.StatusOK {
				continue
			}
			e.status, e.err, e.dirty = u.Status, u.Error, true
		}
		for _, id := range w.p.remove {
			e := byID[id]
			e.present, e.dirty, e.event, e.rec, e.removed = false, false, nil, js.Value{}, true
		}
	}

	// Phase two: every write, back to back.
	var docs js.Value
	for _, w := range group {
		if w.stale != nil {
			continue
		}
		for i := range w.p.docs {
			d := &w.p.docs[i]
			if docs.IsUndefined() {
				docs = tx.Call("objectStore", storeDocs)
			}
			docs.Call("put", d.json, jsArray.New(d.repo, d.id))
		}
	}
	for _, e := range entries {
		switch {
		case e.present && e.dirty && e.event != nil:
			rec := jsObject.New()
			rec.Set("id", e.id)
			rec.Set("order", e.order)
			rec.Set("status", int(e.status))
			rec.Set("error", e.err)
			rec.Set("repo", e.event.repo)
			rec.Set("event", e.event.json)
			outbox.Call("put", rec)
		case e.present && e.dirty:
			e.rec.Set("status", int(e.status))
			e.rec.Set("error", e.err)
			outbox.Call("put", e.rec)
		case !e.present && e.removed:
			outbox.Call("delete", e.id)
		}
	}
	if order != storedOrder {
		meta.Call("put", order, metaOrder)
	}
	if optimistic {
		last := gens[len(gens)-1].req
		if typ := <-genRead.ch; typ != "success" {
			if err := exceptionError(last.Get("error")); err != nil {
				return err
			}
			return errors.New("generation read failed")
		}
		readGenerations(gens)
		checkPreconditions(group, gens, nil)
		for _, w := range group {
			if w.stale != nil {
				// The writes are issued: only aborting undoes them.
				return w.stale
			}
		}
	}
	for _, g := range gens {
		if g.cur != g.stored {
			meta.Call("put", g.cur, metaGeneration+g.repo)
		}
	}
	var cursors, config js.Value
	for _, w := range group {
		if w.stale != nil {
			continue
		}
		for repo, seq := range w.p.cursors {
			if cursors.IsUndefined() {
				cursors = tx.Call("objectStore", storeCursors)
			}
			cursors.Call("put", seq, repo)
		}
		for k, v := range w.p.config {
			if config.IsUndefined() {
				config = tx.Call("objectStore", storeConfig)
			}
			config.Call("put", v, k)
		}
	}
	return nil
}
