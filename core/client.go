package core

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// configClientID is the store configuration key holding the generated
// client id.
const configClientID = "clientId"

// configSentOrder is the store configuration key holding the highest outbox
// Order ever handed to the socket: events up to it may be on the server.
const configSentOrder = "sentOrder"

// Client is a local-first replica: repositories of JSON documents kept in a
// local Store and synced with a server over WebSocket. Reads and writes work
// offline; Start connects. A Client is safe for concurrent use.
type Client struct {
	store    Store
	opts     Options
	clientID string

	mu          sync.Mutex
	token       string
	headers     map[string]string
	repos       map[string]*Repository
	repoOrder   []string
	running     bool
	closed      bool
	runCancel   context.CancelFunc
	runDone     chan struct{}
	changed     chan struct{} // closed and replaced on every change WaitSynced cares about
	caughtUp    bool          // the live session has caught up every repository
	barrierWant uint64        // catch-up rounds WaitSynced asked for
	barrierDone uint64        // the latest round completed
	ackedIDs    []string      // acked events still in the outbox, oldest first (guarded by applyMu)
	frameBudget int           // learnt bound of a push frame's size, bytes
	// suspect counts connections lost in a row while one lone large event
	// was in flight (a frame the server or a proxy drops the socket for).
	suspectID    string
	suspectCount int
	// sentOrder is the highest outbox Order ever sent (persisted before
	// sending); only events above it may be superseded. Session goroutine.
	sentOrder int64
	// docGen counts document writes made outside an applier's catch-up
	// cache (local writes, acks, other tabs); guarded by applyMu.
	docGen uint64
	// gens holds the store generation (Store.Generation) of each
	// repository as this client last wrote or read it; absent when unknown
	// (never read, or another writer may have moved it). Guarded by applyMu.
	gens map[string]uint64
	// contended counts, per repository, the local writes still to be
	// guarded by documents rather than a freshly read generation after a
	// write of it was refused as stale (guard.go). Guarded by applyMu.
	contended map[string]int
	// cache holds documents per repository for one store generation
	// (doccache.go); it has its own lock.
	cache *docCache

	// applyMu serialises read-modify-writes of documents: local writes,
	// remote applies and acks.
	applyMu sync.Mutex

	status  *statusFeed
	metrics metrics
	watch   *watchHub

	pushWake    chan struct{} // a local write added outbox events
	credWake    chan struct{} // credentials changed
	repoWake    chan struct{} // a repository was added
	barrierWake chan struct{} // WaitSynced wants a catch-up round
}

// NewClient makes a client over a store. It does not connect; call Start.
// The store stays the caller's to close, after the client.
func NewClient(store Store, opts Options) (*Client, error) {
	if store == nil {
		return nil, invalidf("store is nil")
	}
	opts, err := opts.validate()
	if err != nil {
		return nil, err
	}
	c := &Client{
		store:       store,
		opts:        opts,
		token:       opts.Token,
		headers:     opts.Headers,
		repos:       make(map[string]*Repository),
		gens:        make(map[string]uint64),
		cache:       newDocCache(),
		contended:   make(map[string]int),
		changed:     make(chan struct{}),
		status:      newStatusFeed(),
		pushWake:    make(chan struct{}, 1),
		credWake:    make(chan struct{}, 1),
		repoWake:    make(chan struct{}, 1),
		barrierWake: make(chan struct{}, 1),
	}
	c.frameBudget = opts.MaxBatchBytes
	c.clientID = opts.ClientID
	if c.clientID == "" {
		id, err := loadClientID(store)
		if err != nil {
			return nil, err
		}
		c.clientID = id
	}
	if v, ok, err := store.Config(context.Background(), configSentOrder); err != nil {
		return nil, wrapErr("read the sent mark", err)
	} else if ok {
		c.sentOrder, _ = strconv.ParseInt(v, 10, 64)
	}
	for _, name := range opts.Repositories {
		c.addRepo(name)
	}
	n, err := store.PendingCount(context.Background())
	if err != nil {
		return nil, wrapErr("count pending events", err)
	}
	c.status.cur.Pending = n
	if err := c.loadAcked(); err != nil {
		return nil, err
	}
	c.watch = newWatchHub(c)
	go c.status.run()
	go c.watch.run()
	return c, nil
}

// reloadOutboxState re-reads, at the start of a session, what other clients
// of the same store (tabs that led before this one) may have moved since
// NewClient: the sent mark and the acked events. Cursors are read per
// session already.
func (c *Client) reloadOutboxState(ctx context.Context) error {
	v, ok, err := c.store.Config(ctx, configSentOrder)
	if err != nil {
		return wrapErr("read the sent mark", err)
	}
	if ok {
		if n, perr := strconv.ParseInt(v, 10, 64); perr == nil && n > c.sentOrder {
			c.sentOrder = n
		}
	}
	ids, err := c.store.Acked(ctx, 0)
	if err != nil {
		return wrapErr("read acked events", err)
	}
	c.applyMu.Lock()
	c.ackedIDs = ids
	c.applyMu.Unlock()
	return nil
}

// loadAcked loads the acked events earlier sessions left in the outbox into
// ackedIDs, so that they are pruned like this session's, and removes at once
// the oldest beyond the pruneAfter most recent.
func (c *Client) loadAcked() error {
	ctx := context.Background()
	ids, err := c.store.Acked(ctx, 0)
	if err != nil {
		return wrapErr("read acked events", err)
	}
	if len(ids) > pruneAfter {
		prune := ids[:len(ids)-pruneAfter]
		if err := c.store.Write(ctx, &Batch{Remove: prune}); err != nil {
			return wrapErr("prune acked events", err)
		}
		ids = append([]string(nil), ids[len(prune):]...)
	}
	c.ackedIDs = ids
	return nil
}

// loadClientID returns the client id persisted in the store, generating and
// persisting one the first time.
func loadClientID(store Store) (string, error) {
	ctx := context.Background()
	id, ok, err := store.Config(ctx, configClientID)
	if err != nil {
		return "", wrapErr("read the client id", err)
	}
	if ok && id != "" {
		return id, nil
	}
	u, err := uuid.NewV7()
	if err != nil {
		return "", wrapErr("generate a client id", err)
	}
	id = u.String()
	if err := store.Write(ctx, &Batch{Config: map[string]string{configClientID: id}}); err != nil {
		return "", wrapErr("persist the client id", err)
	}
	return id, nil
}

// ClientID returns the id this replica sends in its auth frames.
func (c *Client) ClientID() string { return c.clientID }

// Store returns the client's local store.
func (c *Client) Store() Store { return c.store }

// Repository returns the named repository, adding it to the synced ones. An
// invalid name gives a repository whose every call fails with ErrInvalid.
func (c *Client) Repository(name string) *Repository {
	if err := validateRepoName(name); err != nil {
		return &Repository{c: c, name: name, err: err}
	}
	r, added := c.addRepo(name)
	if added {
		signal(c.repoWake)
	}
	return r
}

func (c *Client) addRepo(name string) (*Repository, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.repos[name]; ok {
		return r, false
	}
	r := &Repository{c: c, name: name}
	c.repos[name] = r
	c.repoOrder = append(c.repoOrder, name)
	c.caughtUp = false
	return r, true
}

// repoNames returns the synced repositories in the order they were added.
func (c *Client) repoNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.repoOrder...)
}

// Start begins connecting, and reconnecting after failures, until Stop. It
// is idempotent, and a no-op without Options.URL or after Close.
func (c *Client) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.running || c.opts.URL == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.running = true
	c.runCancel = cancel
	done := make(chan struct{})
	c.runDone = done
	go func() {
		defer close(done)
		c.run(ctx)
		c.mu.Lock()
		if c.runDone == done {
			c.running = false
		}
		c.mu.Unlock()
	}()
}

// Stop disconnects and cancels reconnects; local reads and writes keep
// working and Start resumes syncing.
func (c *Client) Stop() {
	c.mu.Lock()
	cancel, done := c.runCancel, c.runDone
	c.runCancel, c.runDone = nil, nil
	c.running = false
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	c.setState(StateStopped, "")
}

// Close stops syncing and releases every goroutine of the client. The store
// stays open (it is the caller's). Later calls fail with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.Stop()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.watch.stop()
	c.status.stop()
	c.notifyChanged()
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Status returns the current sync status.
func (c *Client) Status() SyncStatus { return c.status.get() }

// OnStatus calls fn with every status change, in order, on a goroutine of
// the client; fn must not block for long. cancel stops the calls.
func (c *Client) OnStatus(fn func(SyncStatus)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	return c.status.subscribe(fn)
}

// OnChange calls fn(repo) after this client's own store writes changed
// repo's documents or outbox events: local writes, remote events applied,
// acks and failures. Calls are on a goroutine of the client, never under an
// engine lock, and coalesced per burst; changes reported by Invalidate are
// not repeated. Other clients of the same store (other tabs) should be told,
// to call Invalidate(repo). cancel stops the calls.
func (c *Client) OnChange(fn func(repo string)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	return c.watch.addChange(fn)
}

// Metrics returns the engine's counters.
func (c *Client) Metrics() Metrics { return c.metrics.snapshot(c.status.get().Pending) }

// UpdateToken replaces the auth token; a live connection re-authenticates
// without reconnecting.
func (c *Client) UpdateToken(token string) {
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	signal(c.credWake)
}

// UpdateHeaders replaces the headers spread into the auth frame; a live
// connection re-authenticates without reconnecting.
func (c *Client) UpdateHeaders(h map[string]string) {
	c.mu.Lock()
	c.headers = cloneHeaders(h)
	c.mu.Unlock()
	signal(c.credWake)
}

// UpdateCredentials replaces token and headers at once.
func (c *Client) UpdateCredentials(token string, h map[string]string) {
	c.mu.Lock()
	c.token = token
	c.headers = cloneHeaders(h)
	c.mu.Unlock()
	signal(c.credWake)
}

// credentials returns the current token and headers.
func (c *Client) credentials() (string, map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, c.headers
}

// Invalidate tells the client that its store changed behind its back (for
// example another browser tab, with its own Client on the same database,
// wrote to it): documents cached for repo (every repository when repo is
// "") are dropped, the pending count is recounted from the store before it
// returns (it counts every tab's events), watchers of repo re-run, and, on
// a started client, outbox events other tabs appended are pushed.
// Forgetting to call it never loses or corrupts a write (each write is
// checked against the store's generations); it only delays what this client
// shows and pushes.
func (c *Client) Invalidate(repo string) {
	c.applyMu.Lock()
	c.docGen++
	if repo == "" {
		clear(c.gens)
	} else {
		delete(c.gens, repo)
	}
	c.cache.drop(repo)
	c.applyMu.Unlock()
	c.watch.recount(context.Background())
	if repo == "" {
		for _, name := range c.watch.repos() {
			c.watch.touch(name)
		}
	} else {
		c.watch.touch(repo)
	}
	signal(c.pushWake)
	c.notifyChanged()
}

// WaitSynced blocks until the client is connected, has pushed every pending
// event and got it acked, and has then completed a catch-up round on every
// repository, so it holds every event the server had stored when the round
// began. It returns ctx's error if ctx ends first, ErrClientClosed after
// Close.
func (c *Client) WaitSynced(ctx context.Context) error {
	var want uint64
	for {
		ch := c.changedChan()
		if c.isClosed() {
			return ErrClientClosed
		}
		if st := c.status.get(); st.State == StateConnected {
			if st.Pending == 0 {
				c.mu.Lock()
				if want == 0 {
					c.barrierWant++
					want = c.barrierWant
					c.mu.Unlock()
					signal(c.barrierWake)
				} else {
					done := c.barrierDone >= want && c.caughtUp
					c.mu.Unlock()
					if done {
						return nil
					}
				}
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// changedChan returns a channel closed at the next change.
func (c *Client) changedChan() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// notifyChanged wakes WaitSynced callers.
func (c *Client) notifyChanged() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// setState moves to a state; errText, when not empty, becomes LastError.
func (c *Client) setState(st State, errText string) {
	c.status.update(func(s *SyncStatus) {
		s.State = st
		if errText != "" {
			s.LastError = errText
		}
	})
	c.notifyChanged()
}

// reportError sets LastError.
func (c *Client) reportError(text string) {
	c.logf("lfsync: %s", text)
	c.status.update(func(s *SyncStatus) { s.LastError = text })
}

// addPending adjusts the pending count after a store write that added
// (n > 0) or settled (n < 0) pending events. Callers hold applyMu, as does
// the exact recount, so the count follows the store.
func (c *Client) addPending(n int) {
	if n == 0 {
		return
	}
	c.status.update(func(s *SyncStatus) {
		s.Pending += n
		if s.Pending < 0 {
			s.Pending = 0
		}
	})
	c.notifyChanged()
}

// markSynced records a successful sync exchange.
func (c *Client) markSynced() {
	now := time.Now().UTC()
	c.status.update(func(s *SyncStatus) { s.LastSync = now })
}

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// signal does a non-blocking send on a wake channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
