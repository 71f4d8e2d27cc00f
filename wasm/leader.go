//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall/js"
	"time"

	"github.com/lfsync/lfsync/core"
)

// Timing of the election. A leader beats every beatInterval and on every
// status change; a follower that hears no leader for its silence timeout
// (silenceMin plus up to silenceJitter, drawn once per tab so followers do
// not steal all at once) asks the leader for a beat, and takes the lock by
// force when none comes within a beatInterval: the leader is frozen or
// hung. (A background leader whose timers the browser throttles still
// answers the message at once, so it keeps the lead.) Followers beat every
// other interval, so every tab can count the others; a tab unheard for
// peerTTL is gone.
const (
	beatInterval  = 500 * time.Millisecond
	silenceMin    = 1500 * time.Millisecond
	silenceJitter = 1000 * time.Millisecond
	peerTTL       = 3 * time.Second
	// leaderSyncCap bounds how long a leader waits on behalf of a
	// follower's waitSynced before it tells the follower to ask again.
	leaderSyncCap = 30 * time.Second
)

// leaderLockPrefix starts the name of the Web Lock whose holder is the
// leader of a database.
const leaderLockPrefix = "lfsync-leader:"

// leadership makes one client per database, across the tabs (and clients)
// of an origin, the leader: the only one whose engine connects. The others
// follow: they read and write the shared IndexedDB store, learn of changes
// from the channel, and show the leader's connection state. It elects with
// the Web Lock leaderLockPrefix+database; where Web Locks or every channel
// are missing, each client is its own leader ("solo").
type leadership struct {
	id         string
	core       *core.Client
	tabs       *tabs
	locks      js.Value
	lockName   string
	stealAfter time.Duration
	hasURL     bool // the engine has a server to connect to

	mu       sync.Mutex
	dialing  bool // elected, the engine has not reported since
	solo     bool // no Web Locks or channel: always lead while wanted
	want     bool // start() called, stop() not since
	hidden   bool // the page is in the back/forward cache or frozen
	closed   bool
	req      *lockRequest
	seq      int
	failures int // lock requests that failed in a row
	leader   bool
	epoch    uint64 // ours, while leader
	maxEpoch uint64 // the highest epoch heard or held
	// What we know of the leader when following.
	leaderTab    string
	leaderEpoch  uint64
	leaderStatus *statusDTO
	heard        time.Time // the leader's last beat (or when we began to wait)
	probed       time.Time // when we last asked a silent leader for a beat
	peers        map[string]time.Time
	own          core.SyncStatus
	ticks        int
	lastTick     time.Time
	roleChanged  chan struct{}      // closed and replaced when the leader changes
	leadCtx      context.Context    // ends when this client stops leading
	leadCancel   context.CancelFunc // of leadCtx
	syncs        map[int]chan tabMessage
	nextSync     int

	// Engine control: the engine runs iff engineWant; a goroutine applies
	// changes in order, so a Stop never races the next Start.
	engineWant atomic.Bool
	engineWake chan struct{}

	// Status delivery to JS listeners, in order, off every lock.
	smu        sync.Mutex
	listeners  map[int]js.Value
	published  string
	statusQ    []string
	statusWake chan struct{}

	// Repositories other clients changed, invalidated in the background.
	imu       sync.Mutex
	invalid   map[string]bool
	invalWake chan struct{}

	lifecycle    []lifecycleListener
	quit         chan struct{}
	done         sync.WaitGroup
	cancelOwn    func()
	cancelChange func()
}

// lifecycleListener is a page lifecycle event listener to remove at close.
type lifecycleListener struct {
	target js.Value
	event  string
	fn     js.Func
}

// newLeadership sets up the election for database. Nothing happens until
// start.
func newLeadership(cc *core.Client, database string, hasURL bool) *leadership {
	l := &leadership{
		id:          strconv.FormatUint(rand.Uint64(), 36),
		core:        cc,
		locks:       webLocks(),
		lockName:    leaderLockPrefix + database,
		stealAfter:  silenceMin + time.Duration(rand.Int64N(int64(silenceJitter))),
		hasURL:      hasURL,
		peers:       map[string]time.Time{},
		roleChanged: make(chan struct{}),
		syncs:       map[int]chan tabMessage{},
		engineWake:  make(chan struct{}, 1),
		listeners:   map[int]js.Value{},
		statusWake:  make(chan struct{}, 1),
		invalid:     map[string]bool{},
		invalWake:   make(chan struct{}, 1),
		quit:        make(chan struct{}),
	}
	l.own = cc.Status()
	l.leadCtx, l.leadCancel = context.WithCancel(context.Background())
	l.leadCancel()
	l.tabs = openTabs(l.id, database, l.receive)
	// Without a channel a follower could neither show the leader's state
	// nor tell it about its writes: every client then syncs its own.
	l.solo = l.locks.IsUndefined() || l.tabs.kind == "none"
	l.cancelOwn = cc.OnStatus(l.ownStatus)
	// What this client's engine wrote (local writes, and as the leader the
	// server's events and acks) goes to the other tabs.
	l.cancelChange = cc.OnChange(func(repo string) { l.tabs.wrote(repo) })
	l.listenLifecycle()
	l.done.Add(4)
	go l.runTicker()
	go l.runEngine()
	go l.runStatus()
	go l.runInvalidate()
	l.tabs.send(tabMessage{Type: msgHello})
	return l
}

// start joins the election (idempotent): this client leads when it gets the
// lock, and follows until then.
func (l *leadership) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.want {
		return
	}
	l.want = true
	l.heard = time.Now()
	l.joinLocked()
	l.publishLocked()
}

// stop leaves the election: a leader steps down and hands the lock on, and
// the client syncs no more until start.
func (l *leadership) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.want {
		return
	}
	l.want = false
	l.leaveLocked()
	l.publishLocked()
}

// joinLocked requests the lock (or, solo, leads at once) unless hidden or
// already waiting.
func (l *leadership) joinLocked() {
	if !l.want || l.hidden || l.closed {
		return
	}
	if l.solo {
		if !l.leader {
			l.becomeLeaderLocked()
		}
		return
	}
	if l.req == nil {
		l.requestLocked(false)
	}
}

// leaveLocked steps down when leading and gives the lock back or withdraws
// the request.
func (l *leadership) leaveLocked() {
	if l.leader {
		l.stepDownLocked()
	}
	if r := l.req; r != nil {
		l.req = nil
		r.unlock()
	}
}

// requestLocked asks for the leader lock; steal takes it from a silent
// holder.
func (l *leadership) requestLocked(steal bool) {
	l.seq++
	r, err := requestLock(l.locks, l.lockName, l.seq, steal, l.granted, l.ended)
	if err != nil {
		l.lockFailedLocked("failed to request the leader lock: " + err.Error())
		return
	}
	l.req = r
}

// lockFailedLocked counts a failed lock request; after three in a row the
// Web Locks API is taken to be unusable and this client leads on its own.
func (l *leadership) lockFailedLocked(why string) {
	l.failures++
	js.Global().Get("console").Call("warn", "lfsync: "+why)
	if l.failures >= 3 {
		js.Global().Get("console").Call("warn", "lfsync: Web Locks unusable; this tab syncs on its own connection")
		l.solo = true
		l.joinLocked()
	}
}

// granted runs when the browser grants a lock request.
func (l *leadership) granted(r *lockRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r != l.req || !l.want || l.hidden || l.closed {
		r.unlock()
		return
	}
	l.failures = 0
	l.becomeLeaderLocked()
}

// ended runs when a lock request is over: released, withdrawn, stolen or
// failed.
func (l *leadership) ended(r *lockRequest, errName string) {
	r.free()
	l.mu.Lock()
	defer l.mu.Unlock()
	if r != l.req {
		return // we gave it back or withdrew it ourselves
	}
	l.req = nil
	if l.leader {
		// Stolen by a tab that heard no beat from us (we were frozen or
		// hung), or the page is going away.
		l.stepDownLocked()
	}
	if errName != "" && errName != "AbortError" {
		l.lockFailedLocked("the leader lock request failed: " + errName)
		if l.solo {
			return
		}
	}
	l.joinLocked()
}

// becomeLeaderLocked makes this client the leader: it starts the engine and
// tells the other tabs at once.
func (l *leadership) becomeLeaderLocked() {
	l.leader = true
	l.maxEpoch++
	l.epoch = l.maxEpoch
	l.leaderTab, l.leaderEpoch, l.leaderStatus = l.id, l.epoch, nil
	l.leadCtx, l.leadCancel = context.WithCancel(context.Background())
	l.dialing = l.hasURL
	l.roleChangedLocked()
	l.setEngine(true)
	l.beatLocked()
	l.publishLocked()
}

// stepDownLocked stops leading: the engine stops (in the background) and
// the client waits for another leader's beats. The caller gives up the
// lock.
func (l *leadership) stepDownLocked() {
	l.leader = false
	l.leadCancel()
	l.setEngine(false)
	l.leaderTab, l.leaderEpoch, l.leaderStatus = "", 0, nil
	l.heard = time.Now()
	l.roleChangedLocked()
	l.publishLocked()
}

func (l *leadership) roleChangedLocked() {
	close(l.roleChanged)
	l.roleChanged = make(chan struct{})
}

// beatLocked sends this client's heartbeat; a leader's carries its
// engine's status.
func (l *leadership) beatLocked() {
	m := tabMessage{Type: msgBeat, Epoch: l.epoch, Leader: l.leader && !l.solo}
	if l.leader {
		s := l.ownLocked()
		m.Status = &s
	}
	l.tabs.send(m)
}

// receive handles a message of another client of the database.
func (l *leadership) receive(m tabMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.hidden {
		// A frozen page may still get messages, but the results of the
		// IndexedDB requests they would start are not delivered until it
		// thaws: its transactions would stay open and block every other
		// tab's writes. It catches up on resume.
		return
	}
	if m.Type == msgChanged {
		l.invalidate(m.Repos)
		return
	}
	now := time.Now()
	switch m.Type {
	case msgHello:
		l.peers[m.Tab] = now
		if l.leader && !l.solo {
			l.beatLocked()
		}
	case msgBye:
		delete(l.peers, m.Tab)
		if m.Tab == l.leaderTab && !l.leader {
			// The leader left; its lock goes to the next waiter now.
			l.leaderTab, l.leaderEpoch, l.leaderStatus = "", 0, nil
			l.heard = now
			l.roleChangedLocked()
		}
	case msgBeat:
		l.peers[m.Tab] = now
		l.maxEpoch = max(l.maxEpoch, m.Epoch)
		if !m.Leader || l.solo {
			break
		}
		if l.leader {
			if !outranks(m.Epoch, m.Tab, l.epoch, l.id) {
				l.beatLocked() // ours wins: let the other one hear it
				break
			}
			// Two leaders (a steal raced a thaw): the higher epoch wins.
			l.stepDownLocked()
			if r := l.req; r != nil {
				l.req = nil
				r.unlock()
			}
			l.joinLocked()
		} else if l.leaderTab != "" && l.leaderTab != m.Tab && outranks(l.leaderEpoch, l.leaderTab, m.Epoch, m.Tab) {
			break // a stale leader that has not yet noticed it was replaced
		}
		changed := l.leaderTab != m.Tab
		l.leaderTab, l.leaderEpoch, l.leaderStatus, l.heard = m.Tab, m.Epoch, m.Status, now
		if changed {
			l.roleChangedLocked()
		}
	case msgSync:
		if l.leader && m.To == l.id {
			go l.syncFor(l.leadCtx, m)
		}
	case msgSynced:
		if m.To == l.id {
			if ch, ok := l.syncs[m.ID]; ok {
				delete(l.syncs, m.ID)
				ch <- m
			}
		}
	}
	l.publishLocked()
}

// outranks reports whether leader (e1, t1) beats (e2, t2): the higher
// epoch, then the greater tab id.
func outranks(e1 uint64, t1 string, e2 uint64, t2 string) bool {
	return e1 > e2 || (e1 == e2 && t1 > t2)
}

// tick runs every beatInterval: beats, expires peers, and steals the lock
// from a leader that has gone silent.
func (l *leadership) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.hidden {
		return
	}
	now := time.Now()
	if late := now.Sub(l.lastTick) > 3*beatInterval; late && !l.lastTick.IsZero() {
		// This tab's own event loop stalled (busy, or frozen and thawed):
		// the silence may be ours, so give the leader a fresh period.
		l.heard = now
	}
	l.lastTick = now
	l.ticks++
	if l.leader || l.ticks%2 == 0 {
		l.beatLocked()
	}
	for tab, at := range l.peers {
		if now.Sub(at) > peerTTL {
			delete(l.peers, tab)
		}
	}
	if l.want && !l.solo && !l.leader && now.Sub(l.heard) > l.stealAfter {
		switch {
		case l.probed.Before(l.heard):
			// Ask first: a leader whose timers are throttled answers a
			// message at once; a frozen or hung one cannot.
			l.probed = now
			l.tabs.send(tabMessage{Type: msgHello})
		case now.Sub(l.probed) >= beatInterval:
			// No answer: take over. The queued request is withdrawn
			// first, or it would be granted later on top of the stolen
			// lock.
			if r := l.req; r != nil {
				l.req = nil
				r.unlock()
			}
			l.heard = now
			l.requestLocked(true)
		}
	}
	l.publishLocked()
}

// ownStatus receives this client's engine status changes.
func (l *leadership) ownStatus(s core.SyncStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.own = s
	if l.closed {
		return
	}
	if s.State != core.StateDisconnected && s.State != core.StateStopped {
		l.dialing = false
	}
	if l.leader {
		l.beatLocked()
	}
	l.publishLocked()
}

// statusLocked is the status this client shows: its engine's when it leads
// or stays out of the election, else the leader's connection state with the
// shared store's pending count.
func (l *leadership) statusLocked() tabStatusDTO {
	s := l.ownLocked()
	if l.want && !l.leader && !l.solo {
		if ls := l.leaderStatus; ls != nil {
			s.State, s.LastSync, s.LastError = ls.State, ls.LastSync, ls.LastError
		} else {
			// No leader heard yet: one is being elected.
			s.State, s.LastError = core.StateConnecting, ""
		}
	}
	return tabStatusDTO{statusDTO: s, Leader: l.leader, Tabs: 1 + len(l.peers)}
}

// ownLocked is the engine's status, shown as connecting between the
// election and the engine's first dial.
func (l *leadership) ownLocked() statusDTO {
	s := toDTO(l.own)
	if l.leader && l.dialing {
		s.State = core.StateConnecting
	}
	return s
}

// status returns statusLocked as JSON.
func (l *leadership) status() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(l.statusLocked())
	return string(b)
}

// publishLocked queues the status for the listeners when it changed.
func (l *leadership) publishLocked() {
	b, _ := json.Marshal(l.statusLocked())
	s := string(b)
	l.smu.Lock()
	if s != l.published {
		l.published = s
		l.statusQ = append(l.statusQ, s)
		signal(l.statusWake)
	}
	l.smu.Unlock()
}

// onStatus adds a status listener under handle id.
func (l *leadership) onStatus(id int, cb js.Value) func() {
	l.smu.Lock()
	l.listeners[id] = cb
	l.smu.Unlock()
	return func() {
		l.smu.Lock()
		delete(l.listeners, id)
		l.smu.Unlock()
	}
}

// runStatus delivers queued statuses to the listeners, in order.
func (l *leadership) runStatus() {
	defer l.done.Done()
	for {
		select {
		case <-l.quit:
			return
		case <-l.statusWake:
		}
		for {
			l.smu.Lock()
			if len(l.statusQ) == 0 {
				l.smu.Unlock()
				break
			}
			s := l.statusQ[0]
			l.statusQ = l.statusQ[1:]
			cbs := make([]js.Value, 0, len(l.listeners))
			for _, cb := range l.listeners {
				cbs = append(cbs, cb)
			}
			l.smu.Unlock()
			for _, cb := range cbs {
				invoke(cb, s)
			}
		}
	}
}

// setEngine asks the engine goroutine to start or stop the connection.
func (l *leadership) setEngine(on bool) {
	l.engineWant.Store(on)
	signal(l.engineWake)
}

// runEngine starts and stops the engine as setEngine asks, one change at a
// time.
func (l *leadership) runEngine() {
	defer l.done.Done()
	running := false
	for {
		select {
		case <-l.quit:
			return
		case <-l.engineWake:
		}
		for want := l.engineWant.Load(); want != running; want = l.engineWant.Load() {
			if want {
				l.core.Start()
			} else {
				l.core.Stop()
			}
			running = want
		}
	}
}

// runTicker calls tick every beatInterval.
func (l *leadership) runTicker() {
	defer l.done.Done()
	t := time.NewTicker(beatInterval)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
			l.tick()
		}
	}
}

// invalidate schedules Invalidate for repositories another client changed.
func (l *leadership) invalidate(repos []string) {
	l.imu.Lock()
	for _, r := range repos {
		l.invalid[r] = true
	}
	l.imu.Unlock()
	signal(l.invalWake)
}

// runInvalidate calls core.Invalidate for what invalidate marked, off the
// event loop's callbacks (it reads the store).
func (l *leadership) runInvalidate() {
	defer l.done.Done()
	for {
		select {
		case <-l.quit:
			return
		case <-l.invalWake:
		}
		l.imu.Lock()
		repos := l.invalid
		l.invalid = map[string]bool{}
		l.imu.Unlock()
		call(func() (any, error) {
			for r := range repos {
				l.core.Invalidate(r)
			}
			return nil, nil
		})
	}
}

// waitSynced waits until the leader's engine is connected, has pushed every
// pending event and caught up: here when this client leads (or stays out of
// the election), else by asking the leader, again whenever it changes.
func (l *leadership) waitSynced(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return errClosed
		}
		changed := l.roleChanged
		if l.leader || l.solo || !l.want {
			lead := l.leadCtx
			if !l.leader {
				lead = context.Background()
			}
			l.mu.Unlock()
			wctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(lead, cancel)
			err := l.core.WaitSynced(wctx)
			stop()
			cancel()
			if err != nil && ctx.Err() == nil && lead.Err() != nil {
				continue // stepped down meanwhile: ask the new leader
			}
			return err
		}
		var reply chan tabMessage
		if l.leaderTab != "" {
			l.nextSync++
			id := l.nextSync
			reply = make(chan tabMessage, 1)
			l.syncs[id] = reply
			l.tabs.send(tabMessage{Type: msgSync, ID: id, To: l.leaderTab})
			defer func() {
				l.mu.Lock()
				delete(l.syncs, id)
				l.mu.Unlock()
			}()
		}
		l.mu.Unlock()
		select {
		case m, ok := <-reply:
			switch {
			case !ok:
				return errClosed
			case m.Code == "retry":
				continue
			case m.Error != "":
				return &codedError{code: m.Code, msg: m.Error}
			}
			return nil
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncFor waits, as the leader, until synced on behalf of a follower and
// answers it; it gives up silently when this client stops leading (the
// follower asks the next leader).
func (l *leadership) syncFor(lead context.Context, m tabMessage) {
	ctx, cancel := context.WithTimeout(lead, leaderSyncCap)
	defer cancel()
	err := l.core.WaitSynced(ctx)
	if lead.Err() != nil {
		return
	}
	reply := tabMessage{Type: msgSynced, ID: m.ID, To: m.Tab}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		reply.Code = "retry"
	default:
		reply.Error, reply.Code = err.Error(), codeOf(err)
	}
	l.tabs.send(reply)
}

// listenLifecycle steps down when the page is hidden for good or frozen
// (pagehide, freeze) and rejoins when it comes back (pageshow, resume):
// a frozen leader would hold the socket and the lock while running nothing.
func (l *leadership) listenLifecycle() {
	add := func(target js.Value, event string, fn func(js.Value)) {
		if target.Type() != js.TypeObject || target.Get("addEventListener").Type() != js.TypeFunction {
			return
		}
		f := js.FuncOf(func(_ js.Value, args []js.Value) any {
			fn(arg(args, 0))
			return nil
		})
		target.Call("addEventListener", event, f)
		l.lifecycle = append(l.lifecycle, lifecycleListener{target: target, event: event, fn: f})
	}
	win, doc := js.Global(), js.Global().Get("document")
	add(win, "pagehide", func(js.Value) { l.setHidden(true) })
	add(win, "pageshow", func(e js.Value) {
		if e.Get("persisted").Truthy() {
			l.setHidden(false)
		}
	})
	add(doc, "freeze", func(js.Value) { l.setHidden(true) })
	add(doc, "resume", func(js.Value) { l.setHidden(false) })
}

// setHidden leaves the election while the page is hidden for good or
// frozen, and rejoins after.
func (l *leadership) setHidden(hidden bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.hidden == hidden {
		return
	}
	l.hidden = hidden
	if hidden {
		l.leaveLocked()
		l.tabs.send(tabMessage{Type: msgBye})
		return
	}
	l.heard = time.Now()
	l.peers = map[string]time.Time{}
	l.invalidate([]string{""}) // what the other tabs did meanwhile
	l.tabs.send(tabMessage{Type: msgHello})
	l.joinLocked()
	l.publishLocked()
}

// close leaves the election for good, tells the other tabs, and releases
// every listener. The engine is left stopped for core.Close.
func (l *leadership) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.want = false
	l.leaveLocked()
	l.closed = true
	for _, ch := range l.syncs {
		close(ch)
	}
	l.syncs = nil
	l.tabs.send(tabMessage{Type: msgBye})
	l.mu.Unlock()
	l.cancelOwn()
	l.cancelChange()
	for _, ll := range l.lifecycle {
		ll.target.Call("removeEventListener", ll.event, ll.fn)
		ll.fn.Release()
	}
	close(l.quit)
	l.done.Wait()
	l.tabs.close()
}

// signal wakes a goroutine waiting on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
