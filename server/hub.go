package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// hub holds one broadcaster per repository and fans committed events out to
// subscribed connections in sequence order.
type hub struct {
	ctx      context.Context
	store    Store
	log      *slog.Logger
	metrics  *metrics
	pageSize int
	maxSend  int

	// shared is set when the store is shared with other nodes (a Watcher).
	shared atomic.Bool

	mu    sync.Mutex
	repos map[repoKey]*broadcaster
	// wild holds, per namespace, the connections subscribed to every
	// repository they may read (request_all_events without a repository),
	// including repositories created later.
	wild map[string]map[*conn]struct{}
}

type repoKey struct{ ns, repo string }

// origin is who appended an event on this node, so fan-out can skip it.
type origin struct {
	conn     *conn
	clientID string
}

// broadcaster fans one repository's log out to its subscribers. It tracks
// the last sequence sent and reads every event after it from Store.Range, so
// concurrent commits, commits of other nodes and lost notifications never
// leave a gap or cause a duplicate: delivery runs on one goroutine at a time,
// in log order.
type broadcaster struct {
	h   *hub
	key repoKey

	isReady atomic.Bool // ready, readable without mu

	mu       sync.Mutex
	ready    bool
	lastSent int64 // highest sequence delivered (or skipped for want of subscribers)
	target   int64 // highest sequence known to exist
	probe    bool  // read the log even if lastSent >= target (watcher poll)
	running  bool
	subs     map[*conn]struct{}
	origins  map[string]*pending // by event id

	gapAt    int64     // a missing sequence the broadcaster waits for
	gapSince time.Time // since when
}

// How long fan-out waits for a sequence missing from the log, and how often
// it looks again.
const (
	gapWait  = 2 * time.Second
	gapRetry = 50 * time.Millisecond
)

// contiguous returns how many events, from the first, continue after
// without a gap.
func contiguous(events []protocol.Event, after int64) int {
	for i, e := range events {
		if e.ServerSequence != after+int64(i)+1 {
			return i
		}
	}
	return len(events)
}

// gapExpired reports whether sequence seq has been missing for longer than
// gapWait.
func (b *broadcaster) gapExpired(seq int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.gapAt != seq {
		b.gapAt, b.gapSince = seq, now
	}
	return now.Sub(b.gapSince) >= gapWait
}

func newHub(ctx context.Context, store Store, log *slog.Logger, m *metrics, pageSize, maxSend int) *hub {
	return &hub{ctx: ctx, store: store, log: log, metrics: m, pageSize: pageSize, maxSend: maxSend, repos: make(map[repoKey]*broadcaster)}
}

// get returns the repository's broadcaster, initialized to the log's current
// end. A repository new to this hub joins the connections subscribed to
// their whole namespace: broadcasters live as long as the hub, so every
// repository that existed when such a connection subscribed already has one
// and a new broadcaster means a repository created since, whose events the
// connection has never seen. It then replays the log from the start to them.
func (h *hub) get(ctx context.Context, ns, repo string) (*broadcaster, error) {
	key := repoKey{ns, repo}
	h.mu.Lock()
	b := h.repos[key]
	var joiners []*conn
	if b == nil {
		b = &broadcaster{h: h, key: key, subs: make(map[*conn]struct{}), origins: make(map[string]*pending)}
		h.repos[key] = b
		for c := range h.wild[ns] {
			joiners = append(joiners, c)
		}
	}
	h.mu.Unlock()
	if b.isReady.Load() {
		return b, nil // every push comes here: spare it b.mu
	}
	b.mu.Lock()
	var replay int64
	if !b.ready {
		last, err := h.store.LastSequence(ctx, ns, repo)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		b.lastSent, b.target, b.ready = last, last, true
		for _, c := range joiners {
			if p := c.current(); p != nil && p.Namespace == ns && p.CanRead(repo) {
				b.subs[c] = struct{}{}
				b.lastSent, replay = 0, last
			}
		}
		b.isReady.Store(true)
	}
	b.mu.Unlock()
	for c := range b.subsOf(joiners) {
		c.addSub(b)
	}
	if replay > 0 {
		b.kick(replay)
	}
	return b, nil
}

// subsOf returns those of cs that subscribe to b.
func (b *broadcaster) subsOf(cs []*conn) map[*conn]struct{} {
	if len(cs) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[*conn]struct{}, len(cs))
	for _, c := range cs {
		if _, ok := b.subs[c]; ok {
			out[c] = struct{}{}
		}
	}
	return out
}

// subscribeAll makes c receive the events of every repository of ns it may
// read that this hub learns of from now on; the caller subscribes it to the
// repositories that exist already.
func (h *hub) subscribeAll(c *conn, ns string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wild == nil {
		h.wild = make(map[string]map[*conn]struct{})
	}
	if h.wild[ns] == nil {
		h.wild[ns] = make(map[*conn]struct{})
	}
	h.wild[ns][c] = struct{}{}
}

// unsubscribeAll undoes subscribeAll for every namespace.
func (h *hub) unsubscribeAll(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ns, conns := range h.wild {
		delete(conns, c)
		if len(conns) == 0 {
			delete(h.wild, ns)
		}
	}
}

// pollNew looks for repositories created through other nodes whose
// notification was lost, in the namespaces someone subscribes to whole.
func (h *hub) pollNew() {
	h.mu.Lock()
	nss := make([]string, 0, len(h.wild))
	for ns := range h.wild {
		nss = append(nss, ns)
	}
	h.mu.Unlock()
	for _, ns := range nss {
		infos, err := h.store.Repositories(h.ctx, ns)
		if err != nil {
			h.log.Warn("failed to list repositories for whole-namespace subscribers", "namespace", ns, "err", err)
			continue
		}
		for _, in := range infos {
			if h.lookup(ns, in.Name) != nil {
				continue
			}
			if b, err := h.get(h.ctx, ns, in.Name); err == nil {
				b.kick(in.LastSequence)
			}
		}
	}
}

// watchesAll reports whether any connection subscribes to all of ns.
func (h *hub) watchesAll(ns string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.wild[ns]) > 0
}

// lookup returns an existing broadcaster or nil.
func (h *hub) lookup(ns, repo string) *broadcaster {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[repoKey{ns, repo}]
}

// subscribe makes c receive the repository's events committed from now on.
func (h *hub) subscribe(ctx context.Context, c *conn, ns, repo string) (*broadcaster, error) {
	b, err := h.get(ctx, ns, repo)
	if err != nil {
		return nil, err
	}
	if h.shared.Load() {
		b.refresh(ctx)
	}
	b.mu.Lock()
	b.subs[c] = struct{}{}
	b.mu.Unlock()
	c.addSub(b)
	return b, nil
}

// refresh moves an idle broadcaster (no subscriber, not running) of a shared
// store to the log's current end before its first subscriber joins. While
// idle it learns of other nodes' appends only from notifications, which may
// be lost; without this, the next kick would send the new subscriber every
// event since the last notification, events its own catch-up (which starts
// after subscribing) already covers.
func (b *broadcaster) refresh(ctx context.Context) {
	b.mu.Lock()
	idle := len(b.subs) == 0 && !b.running
	b.mu.Unlock()
	if !idle {
		return
	}
	last, err := b.h.store.LastSequence(ctx, b.key.ns, b.key.repo)
	if err != nil {
		return // the stale position only costs duplicates, which clients drop
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) > 0 || b.running || last <= b.lastSent {
		return
	}
	b.lastSent = last
	if last > b.target {
		b.target = last
	}
	for id, po := range b.origins {
		if po.seq != 0 && po.seq <= b.lastSent {
			delete(b.origins, id)
		}
	}
}

func (b *broadcaster) unsubscribe(c *conn) {
	b.mu.Lock()
	delete(b.subs, c)
	b.mu.Unlock()
}

// append stores events and schedules their fan-out. Appends run
// concurrently (the store may group-commit them); the origin of each event
// is recorded by id before the commit, so the broadcaster, which may read
// the event as soon as it commits, always knows whom not to send it to.
func (b *broadcaster) append(ctx context.Context, from origin, events []protocol.Event) ([]Appended, error) {
	track := from.conn != nil || from.clientID != ""
	if track {
		b.mu.Lock()
		for _, e := range events {
			po := b.origins[e.ID]
			if po == nil {
				po = &pending{}
				b.origins[e.ID] = po
			}
			po.from = append(po.from, from)
		}
		b.mu.Unlock()
	}
	start := time.Now()
	res, err := b.h.store.Append(ctx, b.key.ns, b.key.repo, events)
	b.h.metrics.appendLatency.observe(time.Since(start))

	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		if track {
			for _, e := range events {
				b.forgetLocked(e.ID, from)
			}
		}
		return nil, err
	}
	var max int64
	for _, r := range res {
		if r.New {
			b.h.metrics.eventsStored.Add(1)
			if r.Sequence > max {
				max = r.Sequence
			}
		}
		if !track {
			continue
		}
		po := b.origins[r.ID]
		switch {
		case po == nil: // already delivered
		case !r.New:
			b.forgetLocked(r.ID, from)
		case r.Sequence <= b.lastSent:
			// Skipped for want of subscribers before we got here.
			delete(b.origins, r.ID)
		default:
			po.seq = r.Sequence
		}
	}
	if max > b.target {
		b.target = max
		b.startLocked()
	}
	return res, nil
}

// pending records who appended an event not yet fanned out.
type pending struct {
	from []origin
	seq  int64 // 0 while the append is in flight
}

// forgetLocked removes one origin of an event id.
func (b *broadcaster) forgetLocked(id string, from origin) {
	po := b.origins[id]
	if po == nil {
		return
	}
	for i, o := range po.from {
		if o == from {
			po.from = append(po.from[:i], po.from[i+1:]...)
			break
		}
	}
	if len(po.from) == 0 {
		delete(b.origins, id)
	}
}

// kick says the log reached seq (0: unknown, read to find out).
func (b *broadcaster) kick(seq int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ready {
		return
	}
	if seq > b.target {
		b.target = seq
	} else if seq == 0 {
		b.probe = true
	}
	b.startLocked()
}

func (b *broadcaster) startLocked() {
	if b.running {
		return
	}
	b.running = true
	go b.run()
}

func (b *broadcaster) run() {
	defer func() {
		// A last resort: a bug here must not take the server down. The
		// stream resumes from lastSent at the next kick.
		if r := recover(); r != nil {
			b.h.log.Error("panic in fan-out", "namespace", b.key.ns, "repository", b.key.repo, "panic", r, "stack", string(debug.Stack()))
			b.mu.Lock()
			b.running = false
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		if b.h.ctx.Err() != nil || (b.lastSent >= b.target && !b.probe) {
			b.running = false
			b.mu.Unlock()
			return
		}
		if len(b.subs) == 0 {
			// Nobody to send to: a later subscriber reads these events in
			// its catch-up, which it starts after subscribing.
			if b.target > b.lastSent {
				b.lastSent = b.target
			}
			for id, po := range b.origins {
				if po.seq != 0 && po.seq <= b.lastSent {
					delete(b.origins, id)
				}
			}
			b.probe = false
			b.running = false
			b.mu.Unlock()
			return
		}
		after := b.lastSent
		b.probe = false
		b.mu.Unlock()

		events, _, err := b.h.store.Range(b.h.ctx, b.key.ns, b.key.repo, after, b.h.pageSize)
		if err != nil || len(events) == 0 {
			b.mu.Lock()
			b.running = false
			b.mu.Unlock()
			if err != nil && b.h.ctx.Err() == nil {
				b.h.log.Error("fan-out failed to read the log", "namespace", b.key.ns, "repository", b.key.repo, "after", after, "err", err)
				time.AfterFunc(time.Second, func() { b.kick(0) })
			}
			// No events although target says there are: another node's
			// commit is not visible yet; the next kick or poll retries.
			return
		}

		// Deliver only the part of the page that continues the stream
		// without a gap. Stores assign sequences without gaps, but a
		// shared store may make a later commit visible before an earlier
		// one: wait for the missing one a moment before giving up on it.
		if n := contiguous(events, after); n < len(events) {
			if n == 0 && !b.gapExpired(after+1) {
				b.mu.Lock()
				b.running = false
				b.mu.Unlock()
				time.AfterFunc(gapRetry, func() { b.kick(0) })
				return
			}
			if n > 0 {
				events = events[:n]
			} else {
				b.h.metrics.gapSkips.Add(1)
				b.h.log.Warn("fan-out skips a gap in the log", "namespace", b.key.ns, "repository", b.key.repo, "missing", after+1, "next", events[0].ServerSequence)
			}
		}

		b.mu.Lock()
		subs := make([]*conn, 0, len(b.subs))
		for c := range b.subs {
			subs = append(subs, c)
		}
		var from [][]origin
		for i, e := range events {
			if po, ok := b.origins[e.ID]; ok {
				if from == nil {
					from = make([][]origin, len(events))
				}
				from[i] = po.from
				delete(b.origins, e.ID)
			}
		}
		b.lastSent = events[len(events)-1].ServerSequence
		if b.lastSent > b.target {
			b.target = b.lastSent
		}
		b.mu.Unlock()

		b.deliver(subs, events, from)
	}
}

// deliver sends one page of events to each subscriber, leaving out the
// events a subscriber appended itself, in frames of at most MaxSendBytes.
// Each event is encoded once per page, whatever the number of subscribers;
// a subscriber's frames are spliced together from those encodings.
func (b *broadcaster) deliver(subs []*conn, events []protocol.Event, from [][]origin) {
	page := b.encode(events)
	var shared [][]byte // the frames of the whole page
	for _, c := range subs {
		var keep []bool // nil: every event
		n := len(events)
		if from != nil {
			cid := c.clientIDNow()
			for i := range events {
				if sentBy(from[i], c, cid) {
					if keep == nil {
						keep = make([]bool, len(events))
						for j := range keep {
							keep[j] = true
						}
					}
					keep[i] = false
					n--
				}
			}
		}
		if n == 0 {
			continue
		}
		var frames [][]byte
		if keep == nil {
			if shared == nil {
				shared = page.frames(nil, b.h.maxSend)
			}
			frames = shared
		} else {
			frames = page.frames(keep, b.h.maxSend)
		}
		for _, f := range frames {
			if !c.sendFanout(f) {
				break
			}
		}
		b.h.metrics.eventsOut.Add(int64(n))
	}
}

// encodedPage is a page of events encoded once for every subscriber.
type encodedPage struct {
	head   []byte   // {"type":"events","repository":...,"events":[
	events [][]byte // each event's JSON; nil if it failed to encode
}

// encode encodes a page's events.
func (b *broadcaster) encode(events []protocol.Event) encodedPage {
	repo, _ := json.Marshal(b.key.repo)
	p := encodedPage{head: append(append([]byte(`{"type":"events","repository":`), repo...), `,"events":[`...)}
	p.events = make([][]byte, len(events))
	for i, e := range events {
		enc, err := e.MarshalJSON()
		if err != nil {
			b.h.log.Error("fan-out failed to encode an event; clients catch it up by request", "repository", b.key.repo, "event", e.ID, "err", err)
			continue
		}
		p.events[i] = enc
	}
	return p
}

// frames splices the kept events (keep nil: all) into events frames of at
// most maxBytes each (an event larger than that goes alone).
func (p encodedPage) frames(keep []bool, maxBytes int) [][]byte {
	var out [][]byte
	var f []byte
	for i, enc := range p.events {
		if enc == nil || (keep != nil && !keep[i]) {
			continue
		}
		if f != nil && len(f)+len(enc)+2 > maxBytes {
			out = append(out, append(f, ']', '}'))
			f = nil
		}
		if f == nil {
			f = append(make([]byte, 0, len(p.head)+len(enc)+2), p.head...)
		} else {
			f = append(f, ',')
		}
		f = append(f, enc...)
	}
	if f != nil {
		out = append(out, append(f, ']', '}'))
	}
	return out
}

// sentBy reports whether one of an event's origins is connection c or a
// connection of the same client.
func sentBy(from []origin, c *conn, clientID string) bool {
	for _, o := range from {
		if o.conn == c || (o.clientID != "" && o.clientID == clientID) {
			return true
		}
	}
	return false
}

// watch relays a Watcher's advances to the broadcasters and polls the
// subscribed repositories now and then, since notifications may be lost.
func (h *hub) watch(w Watcher, poll time.Duration) {
	ch, err := w.Watch(h.ctx)
	if err != nil {
		h.log.Error("failed to watch the store; fan-out of other nodes' appends relies on polling", "err", err)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case adv, ok := <-ch:
			if !ok {
				ch = nil
				continue
			}
			h.metrics.advances.Add(1)
			if b := h.lookup(adv.Namespace, adv.Repository); b != nil {
				b.kick(adv.Sequence)
			} else if h.watchesAll(adv.Namespace) {
				// A repository created through another node.
				if b, err := h.get(h.ctx, adv.Namespace, adv.Repository); err == nil {
					b.kick(adv.Sequence)
				}
			}
		case <-t.C:
			h.mu.Lock()
			all := make([]*broadcaster, 0, len(h.repos))
			for _, b := range h.repos {
				all = append(all, b)
			}
			h.mu.Unlock()
			for _, b := range all {
				b.mu.Lock()
				has := len(b.subs) > 0
				b.mu.Unlock()
				if has {
					b.kick(0)
				}
			}
			h.pollNew()
		}
	}
}
