package core

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// pushWindow is how many batches may await their acks at once.
const pushWindow = 4

// pruneAfter is how many acked events stay in the outbox (as StatusOK, so
// their echoes are recognised as this client's own) before being removed.
const pruneAfter = 2048

// push sends pending outbox events in push_events_batch frames, one
// repository per frame, in outbox order, keeping at most pushWindow batches
// in flight. Nothing is pushed before the initial catch-up ends.
func (s *session) push() error {
	if !s.authed || !s.ready || !s.retryAt.IsZero() {
		return nil
	}
	room := pushWindow*s.batchSize - len(s.inflight)
	if room <= 0 {
		return nil
	}
	evs, err := s.c.store.Pending(s.ctx, len(s.inflight)+room)
	if err != nil {
		return wrapErr("read pending events", err)
	}
	var order []string
	groups := make(map[string][]protocol.Event)
	sizes := make(map[string]int)
	flush := func(repo string) error {
		batch := groups[repo]
		if len(batch) == 0 {
			return nil
		}
		groups[repo] = nil
		sizes[repo] = 0
		ids := make([]string, len(batch))
		for i, e := range batch {
			ids[i] = e.ID
		}
		n, err := s.sendSized(protocol.Message{Type: protocol.TypePushEventsBatch, Repository: repo, Events: batch})
		if err != nil {
			return err
		}
		for _, id := range ids {
			s.inflight[id] = repo
			s.sent[id] = repo
		}
		s.batches = append(s.batches, &pushBatch{repo: repo, ids: ids, bytes: n})
		cnt := int64(len(ids))
		s.c.metrics.add(func(m *Metrics) { m.EventsSent += cnt })
		return nil
	}
	// Record, before anything is sent, that these events may reach the
	// server: from then on a remote change never supersedes them.
	var mark int64
	for _, ev := range evs {
		if _, ok := s.inflight[ev.Event.ID]; !ok && ev.Order > mark {
			mark = ev.Order
		}
	}
	if mark > s.c.sentOrder {
		err := s.c.store.Write(s.ctx, &Batch{Config: map[string]string{configSentOrder: strconv.FormatInt(mark, 10)}})
		if err != nil {
			return wrapErr("record sent events", err)
		}
		s.c.sentOrder = mark
	}
	var tooBig []string
	for _, ev := range evs {
		if _, ok := s.inflight[ev.Event.ID]; ok {
			continue
		}
		size := eventSize(ev.Event)
		if size > s.c.opts.MaxEventBytes {
			tooBig = append(tooBig, ev.Event.ID)
			continue
		}
		if _, ok := groups[ev.Repo]; !ok {
			order = append(order, ev.Repo)
		}
		if len(groups[ev.Repo]) > 0 && sizes[ev.Repo]+size > s.frameBudget {
			if err := flush(ev.Repo); err != nil {
				return err
			}
		}
		groups[ev.Repo] = append(groups[ev.Repo], ev.Event)
		sizes[ev.Repo] += size
		if len(groups[ev.Repo]) >= s.batchSize {
			if err := flush(ev.Repo); err != nil {
				return err
			}
		}
	}
	for _, repo := range order {
		if err := flush(repo); err != nil {
			return err
		}
	}
	if len(tooBig) > 0 {
		return s.failUnsent(tooBig, "the event is larger than MaxEventBytes ("+strconv.Itoa(s.c.opts.MaxEventBytes)+" bytes) and would never be accepted")
	}
	return nil
}

// eventSize estimates an event's encoded size.
func eventSize(e protocol.Event) int {
	return 160 + len(e.ID) + 2*len(e.DataID) + len(e.Data) + len(e.Meta)
}

// frameTooBig handles the server closing the socket for a frame too big: a
// lone event is marked failed, otherwise the frame size bound is halved
// below the largest frame in flight (for this and later sessions).
func (s *session) frameTooBig() error {
	var big *pushBatch
	for _, b := range s.batches {
		if big == nil || b.bytes > big.bytes {
			big = b
		}
	}
	if big == nil {
		return nil
	}
	if len(big.ids) == 1 {
		return s.markFailed(big.ids, "the event is larger than the server accepts", false)
	}
	budget := big.bytes / 2
	if budget < 1 {
		budget = 1
	}
	c := s.c
	c.mu.Lock()
	if budget < c.frameBudget {
		c.frameBudget = budget
	}
	c.mu.Unlock()
	c.reportError("the server refused a push frame of " + strconv.Itoa(big.bytes) + " bytes; pushing smaller batches")
	return nil
}

// suspectBytes is the smallest push frame suspected of being too big when
// a connection drops with it in flight and no 1009 close says so (browsers
// and proxies may report only a closed socket).
const suspectBytes = 64 << 10

// suspectLimit is how many connections in a row may drop with the same lone
// large event in flight before it is marked failed.
const suspectLimit = 3

// connectionLost runs when the connection failed with push frames in
// flight: the largest, if large, halves the frame budget, and a lone large
// event that keeps going down with the connection is marked failed.
func (s *session) connectionLost() error {
	var big *pushBatch
	for _, b := range s.batches {
		if big == nil || b.bytes > big.bytes {
			big = b
		}
	}
	if big == nil || big.bytes < suspectBytes {
		return nil
	}
	c := s.c
	c.mu.Lock()
	if budget := big.bytes / 2; budget < c.frameBudget {
		c.frameBudget = budget
	}
	fail := false
	if len(big.ids) == 1 {
		if c.suspectID == big.ids[0] {
			c.suspectCount++
		} else {
			c.suspectID, c.suspectCount = big.ids[0], 1
		}
		fail = c.suspectCount >= suspectLimit
	}
	c.mu.Unlock()
	if fail {
		return s.markFailed(big.ids, "the connection dropped "+strconv.Itoa(suspectLimit)+" times while pushing this "+strconv.Itoa(big.bytes)+"-byte event; the server does not accept it", false)
	}
	return nil
}

// forget drops events from the in-flight bookkeeping.
func (s *session) forget(ids map[string]bool) {
	for id := range ids {
		delete(s.inflight, id)
	}
	kept := s.batches[:0]
	for _, b := range s.batches {
		left := b.ids[:0]
		for _, id := range b.ids {
			if !ids[id] {
				left = append(left, id)
			}
		}
		b.ids = left
		if len(left) > 0 {
			kept = append(kept, b)
		}
	}
	for i := len(kept); i < len(s.batches); i++ {
		s.batches[i] = nil
	}
	s.batches = kept
}

// onAck marks acknowledged events synced.
func (s *session) onAck(m protocol.Message) error {
	c := s.c
	byRepo := make(map[string][]string, len(m.Repositories)+1)
	seen := make(map[string]bool, len(m.EventIDs))
	for repo, ids := range m.Repositories {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				byRepo[repo] = append(byRepo[repo], id)
			}
		}
	}
	for _, id := range m.EventIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		repo, ok := s.sent[id]
		if !ok {
			ev, found, err := c.store.Outbox(s.ctx, id)
			if err != nil {
				return wrapErr("read outbox event "+id, err)
			}
			if !found {
				continue
			}
			repo = ev.Repo
		}
		byRepo[repo] = append(byRepo[repo], id)
	}
	if len(seen) == 0 {
		return nil
	}
	if err := c.applyAck(s, byRepo, m.Sequences); err != nil {
		return err
	}
	s.forget(seen)
	for id := range seen {
		delete(s.sent, id)
	}
	n := int64(len(seen))
	c.metrics.add(func(mt *Metrics) { mt.EventsAcked += n })
	c.mu.Lock()
	c.suspectID, c.suspectCount = "", 0
	c.mu.Unlock()
	s.retryAttempts = 0
	if s.batchSize < c.opts.BatchSize {
		s.batchSize *= 2
		if s.batchSize > c.opts.BatchSize {
			s.batchSize = c.opts.BatchSize
		}
	}
	c.markSynced()
	c.notifyChanged()
	return s.push()
}

// applyAck writes acked statuses, advances cursors over the acked events'
// sequences (extension) and, under server order, applies this client's own
// events in their place in that order (guarded like remote applies, and
// recomputed when another client of the store overtook the read).
func (c *Client) applyAck(s *session, byRepo map[string][]string, seqs map[string]int64) error {
	for attempt := 1; ; attempt++ {
		err := c.applyAckOnce(s, byRepo, seqs, attempt == 1)
		if !errors.Is(err, ErrStale) {
			return err
		}
		if attempt == staleAttempts {
			return staleErr("mark acked events synced", err)
		}
		if err := staleWait(s.ctx, attempt); err != nil {
			return err
		}
	}
}

// applyAckOnce is one attempt of applyAck, under applyMu: guarded by the
// generation the first time, by the documents written on retries.
func (c *Client) applyAckOnce(s *session, byRepo map[string][]string, seqs map[string]int64, first bool) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	b := &Batch{}
	touched := make(map[string]bool)
	for repo, ids := range byRepo {
		for _, id := range ids {
			b.Statuses = append(b.Statuses, StatusUpdate{EventID: id, Status: StatusOK})
		}
		rs := s.repos[repo]
		if rs == nil || len(seqs) == 0 {
			continue
		}
		var repoSeqs []int64
		var a *applier
		for _, id := range ids {
			seq, ok := seqs[id]
			if !ok || seq <= 0 {
				continue
			}
			repoSeqs = append(repoSeqs, seq)
			if c.opts.Conflict != ServerWins && c.opts.Conflict != ClientWins {
				continue
			}
			if a == nil {
				// The documents read below must still be current when the
				// batch is written.
				if first {
					gen, err := c.generationOf(s.ctx, repo)
					if err != nil {
						return err
					}
					c.expect(b, repo, gen)
				}
				a = newApplier(c, s.ctx, repo, s.isInflight)
				if first {
					a.guarded(b.Expect[repo])
				}
			}
			ev, found, err := c.store.Outbox(s.ctx, id)
			if err != nil {
				return wrapErr("read outbox event "+id, err)
			}
			if !found {
				continue
			}
			e := ev.Event
			e.ServerSequence = seq
			if err := a.apply(e); err != nil {
				c.reportError("failed to order acked event " + id + ": " + err.Error())
			}
		}
		if a != nil {
			ab := a.finish()
			if len(ab.Docs) > 0 {
				touched[repo] = true
			}
			b.Docs = append(b.Docs, ab.Docs...)
			b.Statuses = append(b.Statuses, ab.Statuses...)
			if !first {
				b.ExpectDocs = append(b.ExpectDocs, a.read...)
			}
		}
		// Cursors only move forward: the tracker is idempotent, so a
		// recomputed attempt adds the same sequences again harmlessly.
		if cur := rs.track.add(repoSeqs...); cur != rs.persisted {
			if b.Cursors == nil {
				b.Cursors = make(map[string]int64)
			}
			b.Cursors[repo] = cur
		}
	}
	acked := append([]string(nil), c.ackedIDs...)
	for _, ids := range byRepo {
		acked = append(acked, ids...)
	}
	var prune []string
	if len(acked) > 2*pruneAfter {
		prune = acked[:len(acked)-pruneAfter]
		b.Remove = prune
	}
	if err := c.store.Write(s.ctx, b); err != nil {
		if c.stale(b, err) {
			return err
		}
		return wrapErr("mark acked events synced", err)
	}
	c.committed(b)
	if prune != nil {
		acked = acked[len(prune):]
	}
	c.ackedIDs = acked
	// Recount rather than subtract: the events acked include other tabs'
	// (pushed by this leader), which this client may not have counted yet.
	c.recountLocked(s.ctx)
	if len(b.Docs) > 0 {
		c.docGen++
	}
	for repo := range byRepo {
		if rs := s.repos[repo]; rs != nil {
			if cur, ok := b.Cursors[repo]; ok {
				rs.persisted = cur
			}
		}
		if touched[repo] {
			c.watch.wrote(repo)
		} else {
			c.watch.announce(repo)
		}
	}
	return nil
}

// applyRemote applies an events frame in one store write: the documents,
// statuses changed by conflicts, new local events (custom merges) and the
// cursor advanced over the contiguous sequences. Malformed or unappliable
// events are reported and skipped. It returns how many documents changed.
// A write overtaken by another client of the store (ErrStale) is recomputed
// from a fresh read.
func (c *Client) applyRemote(ctx context.Context, rs *repoSync, evs []protocol.Event, bad []badEvent, inflight func(string) bool) (int, error) {
	for attempt := 1; ; attempt++ {
		a, b, reports, cur, err := c.applyRemoteOnce(ctx, rs, evs, bad, inflight, attempt == 1)
		if errors.Is(err, ErrStale) {
			if attempt == staleAttempts {
				return 0, staleErr("apply events of "+rs.name, err)
			}
			if err := staleWait(ctx, attempt); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		rs.persisted = cur
		for _, r := range reports {
			c.reportError("skipped remote event " + r.id + " of " + rs.name + ": " + r.err.Error())
			if c.opts.OnEventError != nil {
				c.opts.OnEventError(rs.name, r.id, r.err)
			}
		}
		if len(b.Docs) > 0 {
			c.watch.wrote(rs.name)
		} else if len(b.Statuses) > 0 || len(b.Events) > 0 {
			c.watch.announce(rs.name)
		}
		if a.newLocal {
			signal(c.pushWake)
		}
		return len(b.Docs), nil
	}
}

// applyRemoteOnce is one attempt of applyRemote, under applyMu. The first
// attempt is guarded by the repository's generation (one check however many
// documents); a retry by the documents it writes, as read, so that other
// tabs writing other documents cannot keep refusing it. On ErrStale nothing
// was written and the catch-up cache is dropped.
func (c *Client) applyRemoteOnce(ctx context.Context, rs *repoSync, evs []protocol.Event, bad []badEvent, inflight func(string) bool, first bool) (*applier, *Batch, []badEvent, int64, error) {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	var gen uint64
	if first {
		var err error
		if gen, err = c.generationOf(ctx, rs.name); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	a := newApplier(c, ctx, rs.name, inflight)
	if first {
		a.guarded(gen)
	}
	seqs := make([]int64, 0, len(evs)+len(bad))
	reports := append([]badEvent(nil), bad...)
	for _, b := range bad {
		if b.seq > 0 {
			seqs = append(seqs, b.seq)
		}
	}
	switch {
	case rs.cache != nil && rs.cacheGen == c.docGen:
		// Catching up: the documents read for the previous page are still
		// current (the applier updates them in place).
		a.docs, a.loaded = rs.cache, true
	case len(evs) > 16:
		if err := a.preload(); err != nil {
			return nil, nil, nil, 0, err
		}
		if rs.requesting {
			rs.cache, rs.cacheGen = a.docs, c.docGen
		}
	default:
		rs.cache = nil
	}
	for _, e := range evs {
		if e.ServerSequence > 0 {
			seqs = append(seqs, e.ServerSequence)
		}
		if err := a.apply(e); err != nil {
			if Code(err) == CodeInternal {
				// A store failure, not a bad event: retry on a new session.
				rs.cache = nil
				return nil, nil, nil, 0, err
			}
			reports = append(reports, badEvent{id: e.ID, seq: e.ServerSequence, err: err})
		}
	}
	b := a.finish()
	cur := rs.track.add(seqs...)
	if cur != rs.persisted {
		b.Cursors = map[string]int64{rs.name: cur}
	}
	if b.Empty() {
		return a, b, reports, cur, nil
	}
	if first {
		c.expect(b, rs.name, gen)
	} else {
		b.ExpectDocs = a.read
	}
	if err := c.store.Write(ctx, b); err != nil {
		// The cache holds this attempt's documents, which were not stored.
		rs.cache = nil
		if c.stale(b, err) {
			return nil, nil, nil, 0, err
		}
		return nil, nil, nil, 0, wrapErr("apply events of "+rs.name, err)
	}
	c.committed(b)
	// New merge events are pending; superseded ones are not.
	c.addPending(len(b.Events) - len(b.Statuses))
	return a, b, reports, cur, nil
}

// onError handles an error frame.
func (s *session) onError(m protocol.Message) error {
	c := s.c
	text := m.Text
	if text == "" {
		text = string(m.Code)
	}
	switch m.Code {
	case protocol.CodeUnauthorized:
		return errorf(ErrUnauthorized, "lfsync: the server rejected the credentials: "+text)
	case protocol.CodeForbidden:
		if !s.authed {
			return errorf(ErrUnauthorized, "lfsync: the server rejected the credentials: "+text)
		}
		c.reportError("server: " + text)
		if m.EventID != "" {
			return s.fail([]string{m.EventID}, text)
		}
		if b := s.oldestBatch(m.Repository); b != nil {
			return s.fail(b.ids, text)
		}
		if rs := s.repos[m.Repository]; rs != nil && rs.requesting {
			// The repository cannot be read: do not wait for it forever.
			rs.requesting = false
			rs.caughtUp = true
			rs.doneGen = rs.reqGen
			s.publishProgress()
		}
		return nil
	case protocol.CodeInvalid, protocol.CodeTooLarge:
		c.reportError("server: " + text)
		if m.EventID != "" {
			return s.fail([]string{m.EventID}, text)
		}
		if b := s.oldestBatch(m.Repository); b != nil {
			return s.split(b, text)
		}
		return nil
	default: // rate_limited, internal, or a plain server's uncoded error
		if !s.authed {
			if m.Code == "" {
				// A plain local_first server answers a refused auth with an
				// uncoded error.
				return errorf(ErrUnauthorized, "lfsync: the server refused auth: "+text)
			}
			return errors.New("lfsync: the server failed auth: " + text)
		}
		c.reportError("server: " + text)
		if len(s.sent) == 0 && !s.anyRequesting() {
			return nil
		}
		s.scheduleRetry()
		return nil
	}
}

func (s *session) anyRequesting() bool {
	for _, rs := range s.repos {
		if rs.requesting {
			return true
		}
	}
	return false
}

// oldestBatch returns the oldest in-flight batch of repo ("" = any).
func (s *session) oldestBatch(repo string) *pushBatch {
	for _, b := range s.batches {
		if repo == "" || b.repo == repo {
			return b
		}
	}
	return nil
}

// fail marks events failed: the server will never take them, and they must
// not block the queue.
func (s *session) fail(ids []string, reason string) error {
	if err := s.markFailed(ids, reason, false); err != nil {
		return err
	}
	return s.push()
}

// failUnsent marks failed pending events that were never sent.
func (s *session) failUnsent(ids []string, reason string) error {
	return s.markFailed(ids, reason, true)
}

func (s *session) markFailed(ids []string, reason string, unsent bool) error {
	c := s.c
	c.reportError(reason)
	b := &Batch{}
	set := make(map[string]bool, len(ids))
	settled := 0
	for _, id := range ids {
		set[id] = true
		b.Statuses = append(b.Statuses, StatusUpdate{EventID: id, Status: StatusFailed, Error: reason})
		if unsent || s.isInflight(id) {
			settled++
		}
	}
	c.applyMu.Lock()
	err := c.store.Write(s.ctx, b)
	if err == nil {
		c.addPending(-settled)
	}
	c.applyMu.Unlock()
	if err != nil {
		return wrapErr("mark rejected events failed", err)
	}
	repos := make(map[string]bool)
	for _, id := range ids {
		if repo, ok := s.sent[id]; ok {
			repos[repo] = true
		}
	}
	for repo := range repos {
		c.watch.announce(repo)
	}
	s.forget(set)
	for id := range set {
		delete(s.sent, id)
	}
	n := int64(len(ids))
	c.metrics.add(func(m *Metrics) { m.FailedSends += n })
	c.notifyChanged()
	return nil
}

// split handles a rejected batch whose culprit is unknown: a single event is
// marked failed, a larger batch is re-sent in halves until the bad event is
// found alone.
func (s *session) split(b *pushBatch, reason string) error {
	if len(b.ids) == 1 {
		return s.fail(b.ids, reason)
	}
	set := make(map[string]bool, len(s.inflight))
	for id := range s.inflight {
		set[id] = true
	}
	s.forget(set)
	s.batchSize = (len(b.ids) + 1) / 2
	s.c.metrics.add(func(m *Metrics) { m.FailedSends++ })
	return s.push()
}

// scheduleRetry drops the in-flight pushes and requests (they stay pending)
// and retries them after a backoff delay.
func (s *session) scheduleRetry() {
	set := make(map[string]bool, len(s.inflight))
	for id := range s.inflight {
		set[id] = true
	}
	n := int64(len(set))
	s.forget(set)
	s.c.metrics.add(func(m *Metrics) { m.FailedSends += n })
	for _, rs := range s.repos {
		if rs.requesting {
			rs.requesting = false
			rs.again = true
		}
	}
	d := s.c.opts.Reconnect.Delay(s.retryAttempts, nil)
	s.retryAttempts++
	if d < time.Millisecond {
		d = time.Millisecond
	}
	s.retryAt = time.Now().Add(d)
	if s.retryTimer == nil {
		s.retryTimer = time.NewTimer(d)
	} else {
		s.retryTimer.Reset(d)
	}
	s.retryC = s.retryTimer.C
}

// retry re-sends what scheduleRetry dropped.
func (s *session) retry() error {
	for _, name := range s.repoList {
		rs := s.repos[name]
		if rs.again && !rs.requesting {
			if err := s.request(rs); err != nil {
				return err
			}
		}
	}
	return s.push()
}
