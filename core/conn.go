package core

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/lfsync/lfsync/core/protocol"
)

// maxReadBytes bounds a frame read from the server.
const maxReadBytes = 64 << 20

// maxStalls bounds consecutive catch-up rounds that bring nothing new
// before a repository counts as caught up as far as the server allows.
const maxStalls = 5

// errAuthTimeout says the server sent no auth_success in time.
var errAuthTimeout = errors.New("lfsync: no auth_success from the server in time")

// run connects, syncs and reconnects with backoff until ctx ends or the
// attempts run out. It is the client's connection goroutine.
func (c *Client) run(ctx context.Context) {
	bo := backoffState{cfg: c.opts.Reconnect}
	authFailures := 0
	for {
		connected, err := c.runSession(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now().UTC()
		if connected {
			bo.reset()
			authFailures = 0
			c.metrics.disconnected(now)
		}
		c.mu.Lock()
		c.caughtUp = false
		c.mu.Unlock()
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		if errors.Is(err, ErrUnauthorized) || (errors.Is(err, errAuthTimeout) && c.opts.RefreshToken != nil) {
			authFailures++
			c.setState(StateUnauthorized, errText)
			if !c.awaitCredentials(ctx, authFailures) {
				return
			}
			continue
		}
		d, ok := bo.next()
		if !ok {
			c.setState(StateDisconnected, "gave up reconnecting after "+strconv.Itoa(c.opts.Reconnect.MaxAttempts)+" attempts: "+errText)
			return
		}
		c.setState(StateReconnecting, errText)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-c.credWake:
			t.Stop()
		}
	}
}

// awaitCredentials waits, in state unauthorized, for credentials worth
// trying: a token from RefreshToken, or an Update call. It returns false
// when ctx ends.
func (c *Client) awaitCredentials(ctx context.Context, failures int) bool {
	if c.opts.RefreshToken == nil {
		select {
		case <-ctx.Done():
			return false
		case <-c.credWake:
			return true
		}
	}
	first := failures <= 1
	for {
		if !first {
			// Refresh attempts back off like reconnects, without a limit.
			d := c.opts.Reconnect.Delay(failures, nil)
			failures++
			if d <= 0 {
				d = time.Millisecond
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-c.credWake:
				t.Stop()
				return true
			case <-t.C:
			}
		}
		first = false
		old, _ := c.credentials()
		tok, err := c.opts.RefreshToken(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			c.reportError("failed to refresh the token: " + err.Error())
			continue
		}
		if tok == "" || tok == old {
			c.reportError("token refresh returned no new token")
			continue
		}
		c.mu.Lock()
		c.token = tok
		c.mu.Unlock()
		// Drop a stale wake: these credentials are the newest.
		select {
		case <-c.credWake:
		default:
		}
		return true
	}
}

// runSession dials, authenticates and syncs over one connection until it
// fails or ctx ends. connected says whether the server accepted the
// credentials.
func (c *Client) runSession(ctx context.Context) (connected bool, err error) {
	c.setState(StateConnecting, "")
	dctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	conn, _, err := websocket.Dial(dctx, c.opts.URL, nil)
	cancel()
	if err != nil {
		return false, wrapErr("connect to "+c.opts.URL, err)
	}
	conn.SetReadLimit(maxReadBytes)
	s := newSession(ctx, c, conn)
	c.mu.Lock()
	s.frameBudget = c.frameBudget
	c.mu.Unlock()
	defer s.close()
	return s.run()
}

// session is the state of one connection, owned by the goroutine running
// it (the reader goroutine only hands frames over).
type session struct {
	c        *Client
	conn     *websocket.Conn
	ctx      context.Context
	cancel   context.CancelFunc
	wctx     context.Context    // writes; cancelled when reading fails
	wcancel  context.CancelFunc // so a write blocked on a dead socket ends
	in       chan frame
	readErr  chan error
	readDone chan struct{}

	authed        bool
	ready         bool // the initial catch-up is done: pushing may start
	repos         map[string]*repoSync
	repoList      []string
	inflight      map[string]string // event id -> repository, within the push window
	sent          map[string]string // event id -> repository: sent, neither acked nor failed yet
	batches       []*pushBatch      // in flight, oldest first
	batchSize     int
	frameBudget   int
	retryAt       time.Time
	retryAttempts int
	retryTimer    *time.Timer
	retryC        <-chan time.Time
	lastRecv      atomic.Int64 // unix nanos of the last frame read, set by the reader
	pingSent      time.Time
	awaitingPong  bool
}

// pushBatch is one push_events_batch awaiting its ack.
type pushBatch struct {
	repo  string
	ids   []string
	bytes int // the frame's size
}

// repoSync is a repository's pull state within a session.
type repoSync struct {
	name       string
	track      *cursorTrack
	persisted  int64
	requesting bool
	again      bool // another round was asked for while one ran
	reqAfter   int64
	reqMax     int64
	reqCount   int
	reqGen     uint64
	doneGen    uint64
	caughtUp   bool
	stalls     int
	// cache holds the repository's documents while catching up, so pages
	// after the first need no read; valid while cacheGen == Client.docGen.
	cache    map[string]Doc
	cacheGen uint64
}

func newSession(ctx context.Context, c *Client, conn *websocket.Conn) *session {
	sctx, cancel := context.WithCancel(ctx)
	wctx, wcancel := context.WithCancel(sctx)
	return &session{
		c: c, conn: conn, ctx: sctx, cancel: cancel, wctx: wctx, wcancel: wcancel,
		in:        make(chan frame, 64),
		readErr:   make(chan error, 1),
		readDone:  make(chan struct{}),
		repos:     make(map[string]*repoSync),
		inflight:  make(map[string]string),
		sent:      make(map[string]string),
		batchSize: c.opts.BatchSize,
	}
}

// close ends the connection and waits for the reader.
func (s *session) close() {
	s.cancel()
	if err := s.conn.CloseNow(); err != nil && !errors.Is(err, net.ErrClosed) {
		// In the browser CloseNow is a close with code 1001, which
		// WebSocket.close refuses (only 1000 and 3000-4999 are allowed), so
		// the socket would stay open until the server's heartbeat drops it.
		// A normal closure goes out at once; Close then waits for the
		// browser's close event, hence its own goroutine.
		go s.conn.Close(websocket.StatusNormalClosure, "")
	}
	<-s.readDone
	if s.retryTimer != nil {
		s.retryTimer.Stop()
	}
}

// read is the reader goroutine: it decodes frames and hands them over.
func (s *session) read() {
	defer close(s.readDone)
	for {
		_, b, err := s.conn.Read(s.ctx)
		if err != nil {
			s.readErr <- err
			s.wcancel()
			return
		}
		// Any frame proves the socket alive, even one still queued
		// behind a long store write.
		s.lastRecv.Store(time.Now().UnixNano())
		f := decodeFrame(b)
		select {
		case s.in <- f:
		case <-s.ctx.Done():
			return
		}
	}
}

// run is the session loop; when the connection is lost with large push
// frames in flight, they become suspects (see connectionLost).
func (s *session) run() (bool, error) {
	connected, err := s.loop()
	if err != nil && s.ctx.Err() == nil && !errors.Is(err, ErrUnauthorized) {
		if ferr := s.connectionLost(); ferr != nil {
			s.c.reportError(ferr.Error())
		}
	}
	return connected, err
}

// loop runs the connection until it fails.
func (s *session) loop() (bool, error) {
	c := s.c
	go s.read()
	c.setState(StateAuthenticating, "")
	if err := s.sendAuth(); err != nil {
		return false, err
	}
	authTimer := time.NewTimer(c.opts.ConnectTimeout)
	defer authTimer.Stop()
	hb := time.NewTimer(c.opts.Heartbeat.Interval)
	defer hb.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return s.authed, s.ctx.Err()
		case err := <-s.readErr:
			return s.authed, s.readFailure(err)
		case f := <-s.in:
			if err := s.handle(f); err != nil {
				return s.authed, err
			}
		case <-authTimer.C:
			if !s.authed {
				return false, errAuthTimeout
			}
		case <-c.credWake:
			if err := s.sendAuth(); err != nil {
				return s.authed, err
			}
		case <-c.pushWake:
			if err := s.push(); err != nil {
				return s.authed, err
			}
		case <-c.repoWake:
			if s.authed {
				if err := s.syncRepos(); err != nil {
					return s.authed, err
				}
			}
		case <-c.barrierWake:
			if s.authed {
				if err := s.barrier(); err != nil {
					return s.authed, err
				}
			}
		case <-s.retryC:
			s.retryC = nil
			s.retryAt = time.Time{}
			if err := s.retry(); err != nil {
				return s.authed, err
			}
		case now := <-hb.C:
			if s.awaitingPong {
				if s.lastRecv.Load() < s.pingSent.UnixNano() {
					return s.authed, errors.New("lfsync: no answer to ping within " + c.opts.Heartbeat.Timeout.String())
				}
				s.awaitingPong = false
				hb.Reset(c.opts.Heartbeat.Interval)
				continue
			}
			if s.authed {
				if err := s.send(protocol.Message{Type: protocol.TypePing}); err != nil {
					return s.authed, err
				}
				s.pingSent = now
				s.awaitingPong = true
				hb.Reset(c.opts.Heartbeat.Timeout)
			} else {
				hb.Reset(c.opts.Heartbeat.Interval)
			}
		}
	}
}

// readFailure turns a read error into the session's error: a close for a
// policy violation during auth counts as rejected credentials.
func (s *session) readFailure(err error) error {
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	code := websocket.CloseStatus(err)
	if code == websocket.StatusMessageTooBig {
		if ferr := s.frameTooBig(); ferr != nil {
			return ferr
		}
	}
	if !s.authed && (code == websocket.StatusPolicyViolation || code == 4001 || code == 4003 || code == 4401 || code == 4403) {
		return errorf(ErrUnauthorized, "lfsync: the server closed the connection during auth: "+err.Error())
	}
	return wrapErr("read from the server", err)
}

// send writes one frame.
func (s *session) send(m protocol.Message) error {
	_, err := s.sendSized(m)
	return err
}

// sendSized writes one frame and returns its size.
func (s *session) sendSized(m protocol.Message) (int, error) {
	b, err := protocol.Encode(m)
	if err != nil {
		return 0, wrapErr("encode a "+m.Type+" frame", err)
	}
	timeout := s.c.opts.ConnectTimeout
	if t := s.c.opts.Heartbeat.Timeout; t > timeout {
		timeout = t
	}
	wctx, cancel := context.WithTimeout(s.wctx, timeout)
	err = s.conn.Write(wctx, websocket.MessageText, b)
	cancel()
	if err != nil {
		// A write that failed because reading failed: the read error says
		// why (a close status such as 1009).
		select {
		case rerr := <-s.readErr:
			return 0, s.readFailure(rerr)
		default:
		}
		return 0, wrapErr("send a "+m.Type+" frame", err)
	}
	n := int64(len(b))
	s.c.metrics.add(func(m *Metrics) { m.BytesSent += n })
	return len(b), nil
}

// sendAuth sends the current credentials.
func (s *session) sendAuth() error {
	token, headers := s.c.credentials()
	return s.send(protocol.Message{Type: protocol.TypeAuth, Token: token, Headers: headers, ClientID: s.c.clientID})
}

// handle processes one frame from the server.
func (s *session) handle(f frame) error {
	c := s.c
	n := int64(f.size)
	c.metrics.add(func(m *Metrics) { m.BytesReceived += n })
	if f.err != nil {
		c.reportError("ignored a malformed frame from the server: " + f.err.Error())
		return nil
	}
	m := f.msg
	switch m.Type {
	case protocol.TypeAuthSuccess:
		if !s.authed {
			s.authed = true
			c.metrics.connected(time.Now().UTC())
			c.setState(StateConnected, "")
			return s.startSync()
		}
		return nil
	case protocol.TypePing:
		return s.send(protocol.Message{Type: protocol.TypePong})
	case protocol.TypePong:
		return nil
	case protocol.TypeError:
		return s.onError(m)
	}
	if !s.authed {
		return nil
	}
	switch m.Type {
	case protocol.TypeEvents:
		return s.onEvents(m, f.bad)
	case protocol.TypeAck:
		return s.onAck(m)
	case protocol.TypeSyncComplete:
		return s.onSyncComplete(m)
	}
	return nil
}

// startSync begins catching up every repository after auth_success. What
// other clients of the store (tabs that led before) moved is reloaded first:
// the sent mark and acked events here, cursors in syncRepos, pending events
// by push.
func (s *session) startSync() error {
	s.ready = false
	if err := s.c.reloadOutboxState(s.ctx); err != nil {
		return err
	}
	return s.syncRepos()
}

// syncRepos adds repositories not yet synced in this session and requests
// their events.
func (s *session) syncRepos() error {
	for _, name := range s.c.repoNames() {
		if _, ok := s.repos[name]; ok {
			continue
		}
		cur, err := s.c.store.Cursor(s.ctx, name)
		if err != nil {
			return wrapErr("read the cursor of "+name, err)
		}
		rs := &repoSync{name: name, track: newCursorTrack(cur), persisted: cur}
		s.repos[name] = rs
		s.repoList = append(s.repoList, name)
		if err := s.request(rs); err != nil {
			return err
		}
	}
	s.publishProgress()
	return nil
}

// barrier starts a catch-up round on every repository for WaitSynced.
func (s *session) barrier() error {
	for _, name := range s.repoList {
		rs := s.repos[name]
		if rs.requesting {
			rs.again = true
			continue
		}
		if err := s.request(rs); err != nil {
			return err
		}
	}
	s.publishProgress()
	return nil
}

// request asks for a repository's events after its cursor.
func (s *session) request(rs *repoSync) error {
	s.c.mu.Lock()
	gen := s.c.barrierWant
	s.c.mu.Unlock()
	rs.requesting = true
	rs.again = false
	rs.caughtUp = false
	rs.reqAfter = rs.track.cursor
	rs.reqMax = 0
	rs.reqCount = 0
	rs.reqGen = gen
	return s.send(protocol.Message{
		Type:          protocol.TypeRequestEvents,
		Repository:    rs.name,
		AfterSequence: rs.track.cursor,
		Limit:         s.c.opts.PageSize,
		All:           true,
	})
}

// publishProgress tells the client whether every repository is caught up
// and which WaitSynced round is complete; when the initial catch-up ends,
// pushing starts.
func (s *session) publishProgress() {
	all := true
	var done uint64
	first := true
	for _, name := range s.repoList {
		rs := s.repos[name]
		if !rs.caughtUp {
			all = false
		}
		if first || rs.doneGen < done {
			done = rs.doneGen
			first = false
		}
	}
	c := s.c
	c.mu.Lock()
	// Repositories added to the client but not yet to the session.
	if len(c.repoOrder) != len(s.repoList) {
		all = false
	}
	c.caughtUp = all
	if all && done > c.barrierDone {
		c.barrierDone = done
	}
	if all && first {
		// No repositories: every round is trivially complete.
		c.barrierDone = c.barrierWant
	}
	c.mu.Unlock()
	c.notifyChanged()
	if all && !s.ready {
		s.ready = true
		signal(c.pushWake)
	}
}

// onEvents applies an events frame.
func (s *session) onEvents(m protocol.Message, bad []badEvent) error {
	rs := s.repos[m.Repository]
	if rs == nil {
		return nil // not a repository this client syncs
	}
	c := s.c
	if _, err := c.applyRemote(s.ctx, rs, m.Events, bad, s.isInflight); err != nil {
		return err
	}
	if rs.requesting {
		rs.reqCount += len(m.Events) + len(bad)
		for _, e := range m.Events {
			if e.ServerSequence > rs.reqMax {
				rs.reqMax = e.ServerSequence
			}
		}
		for _, b := range bad {
			if b.seq > rs.reqMax {
				rs.reqMax = b.seq
			}
		}
	}
	total := int64(len(m.Events) + len(bad))
	c.metrics.add(func(mt *Metrics) { mt.EventsReceived += total })
	if err := s.send(protocol.Message{Type: protocol.TypeEventsReceived, Repository: rs.name, Count: len(m.Events) + len(bad)}); err != nil {
		return err
	}
	c.markSynced()
	if !rs.requesting && rs.track.gap() {
		if err := s.request(rs); err != nil {
			return err
		}
		s.publishProgress()
	}
	return nil
}

// onSyncComplete ends a request round and decides whether the repository
// is caught up or needs another page.
func (s *session) onSyncComplete(m protocol.Message) error {
	rs := s.repos[m.Repository]
	if rs == nil || !rs.requesting {
		return nil
	}
	rs.requesting = false
	// A server with lfsync's extensions reports lastSequence; a plain
	// local_first server reduces its replies to the latest event per
	// document, so their sequences have gaps and the reply covers
	// everything up to its highest sequence.
	extended := m.HasMore || m.LastSequence > 0 || rs.reqMax == 0
	more := false
	if !extended {
		if err := s.persistCursor(rs, rs.track.covered(rs.reqMax)); err != nil {
			return err
		}
		more = rs.reqCount >= s.c.opts.PageSize
	} else {
		behind := m.HasMore || rs.track.cursor < m.LastSequence || rs.track.gap()
		switch {
		case !behind:
			rs.stalls = 0
		case rs.track.cursor > rs.reqAfter:
			rs.stalls = 0
			more = true
		default:
			rs.stalls++
			if rs.track.gap() && m.LastSequence >= rs.track.firstAhead() && rs.stalls >= 2 {
				// The server has the missing range but sent nothing
				// readable for it, twice: move past it rather than stall
				// the stream forever.
				skipTo := rs.track.firstAhead() - 1
				s.c.reportError("skipped unreadable events " + strconv.FormatInt(rs.track.cursor+1, 10) + ".." + strconv.FormatInt(skipTo, 10) + " of " + rs.name)
				if err := s.persistCursor(rs, rs.track.covered(skipTo)); err != nil {
					return err
				}
				rs.stalls = 0
				more = true
			} else if rs.stalls < maxStalls {
				more = true
			} else {
				s.c.reportError("the server does not send the missing events of " + rs.name + " after " + strconv.FormatInt(rs.track.cursor, 10))
			}
		}
	}
	if more || rs.again {
		if err := s.request(rs); err != nil {
			return err
		}
	} else {
		rs.caughtUp = true
		rs.doneGen = rs.reqGen
		rs.cache = nil
		s.c.markSynced()
	}
	s.publishProgress()
	return nil
}

// persistCursor stores a cursor moved outside an apply.
func (s *session) persistCursor(rs *repoSync, cur int64) error {
	if cur == rs.persisted {
		return nil
	}
	if err := s.c.store.Write(s.ctx, &Batch{Cursors: map[string]int64{rs.name: cur}}); err != nil {
		return wrapErr("store the cursor of "+rs.name, err)
	}
	rs.persisted = cur
	return nil
}

// isInflight reports whether an event was sent in this session and is
// neither acked nor failed: the server may hold it.
func (s *session) isInflight(id string) bool {
	_, ok := s.sent[id]
	return ok
}
