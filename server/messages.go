package server

import (
	"context"
	"errors"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// handle dispatches one decoded frame.
func (c *conn) handle(m protocol.Message) {
	switch m.Type {
	case protocol.TypePing:
		c.send(protocol.Message{Type: protocol.TypePong})
		return
	case protocol.TypePong:
		c.lastPong.Store(monotonic())
		select {
		case c.pongs <- struct{}{}:
		default:
		}
		return
	case protocol.TypeAuth:
		c.handleAuth(m)
		return
	}
	p := c.current()
	if p == nil {
		c.sendError(protocol.CodeUnauthorized, "authenticate first", m.Repository, "")
		return
	}
	if p.expired(time.Now()) {
		c.setPrincipal(nil, "")
		c.sendError(protocol.CodeUnauthorized, "credentials expired; authenticate again", m.Repository, "")
		return
	}
	switch m.Type {
	case protocol.TypePushEvent, protocol.TypePushEventsBatch:
		c.handlePush(*p, m)
	case protocol.TypeRequestEvents:
		c.handleRequestEvents(*p, m)
	case protocol.TypeRequestAllEvents:
		c.handleRequestAll(*p, m)
	case protocol.TypeEventsReceived:
		// The client applied remote events; nothing to answer.
	default:
		c.sendError(protocol.CodeInvalid, "message type "+m.Type+" is sent by the server, not the client", "", "")
	}
}

func (c *conn) handleAuth(m protocol.Message) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	p, err := c.s.cfg.Verifier.Verify(ctx, m.Token, m.Headers)
	if err == nil && p.expired(time.Now()) {
		err = unauthorized("credentials expired")
	}
	if err != nil {
		// A failed (re-)auth leaves the connection unauthenticated.
		c.setPrincipal(nil, "")
		c.log.Info("authentication failed", "err", err)
		c.sendError(protocol.CodeUnauthorized, "authentication failed: "+err.Error(), "", "")
		return
	}
	p = p.normalize()
	c.setPrincipal(&p, m.ClientID)
	c.log.Debug("authenticated", "user", p.User, "namespace", p.Namespace, "clientId", m.ClientID)
	c.send(protocol.Message{Type: protocol.TypeAuthSuccess})
	c.authOnce.Do(func() { close(c.authed) })
}

func (c *conn) handlePush(p Principal, m protocol.Message) {
	if m.Type == protocol.TypePushEventsBatch && len(m.Events) > c.s.cfg.MaxBatch {
		c.sendError(protocol.CodeTooLarge, "batch has more than the maximum of events; nothing stored", m.Repository, "")
		return
	}
	if perr := c.s.beginPush(); perr != nil {
		c.sendError(perr.Code, perr.Message, m.Repository, "")
		return
	}
	defer c.s.endPush()
	b, perr := c.s.checkWrite(c.ctx, p, m.Repository)
	if perr != nil {
		c.sendError(perr.Code, perr.Message, m.Repository, "")
		return
	}
	// Subscribe before appending: from now on the connection receives the
	// repository's other events, if it may read them.
	if p.CanRead(m.Repository) {
		c.subscribe(p, m.Repository)
	}
	res, perr := c.s.pushTo(c.ctx, b, origin{conn: c, clientID: c.clientIDNow()}, m.Events)
	if perr != nil {
		c.sendError(perr.Code, perr.Message, m.Repository, "")
		return
	}
	ack := ackMessage(m.Repository, res)
	if c.s.takeDroppedAck() {
		c.log.Info("test hook: dropping an ack and closing the socket")
		c.ws.CloseNow()
		return
	}
	c.s.metrics.acks.Add(1)
	c.send(ack)
}

// subscribe adds the connection to a repository's fan-out; failures are
// logged, since the client catches up by request anyway.
func (c *conn) subscribe(p Principal, repo string) bool {
	if _, err := c.s.hub.subscribe(c.ctx, c, p.Namespace, repo); err != nil {
		c.log.Error("failed to subscribe", "repository", repo, "err", err)
		return false
	}
	return true
}

func (c *conn) handleRequestEvents(p Principal, m protocol.Message) {
	if perr := checkRead(p, m.Repository); perr != nil {
		c.sendError(perr.Code, perr.Message, m.Repository, "")
		return
	}
	// Subscribe BEFORE reading, so that nothing committed meanwhile falls
	// between the catch-up and the live stream (the client dedups by
	// sequence).
	if !c.subscribe(p, m.Repository) {
		c.sendError(protocol.CodeInternal, "failed to read the repository", m.Repository, "")
		return
	}
	page, perr := c.s.readPage(c.ctx, p.Namespace, m.Repository, m, c.s.cfg.MaxPage)
	if perr != nil {
		c.sendError(perr.Code, perr.Message, m.Repository, "")
		return
	}
	if len(page.events) > 0 {
		c.s.metrics.eventsOut.Add(int64(len(page.events)))
		c.send(protocol.Message{Type: protocol.TypeEvents, Repository: m.Repository, Events: page.events})
	}
	c.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: m.Repository, HasMore: page.more, LastSequence: page.last})
}

func (c *conn) handleRequestAll(p Principal, m protocol.Message) {
	var repos []string
	if m.Repository != "" {
		if perr := checkRead(p, m.Repository); perr != nil {
			c.sendError(perr.Code, perr.Message, m.Repository, "")
			return
		}
		repos = []string{m.Repository}
	} else {
		// Repositories created from now on reach c through the hub; the
		// ones listed below are subscribed one by one. Registered before
		// listing, so none falls in between.
		c.s.hub.subscribeAll(c, p.Namespace)
		infos, err := c.s.cfg.Store.Repositories(c.ctx, p.Namespace)
		if err != nil {
			c.log.Error("failed to list repositories", "err", err)
			c.sendError(protocol.CodeInternal, "failed to list repositories", "", "")
			return
		}
		for _, in := range infos {
			if p.CanRead(in.Name) {
				repos = append(repos, in.Name)
			}
		}
	}
	var last int64
	for _, repo := range repos {
		if !c.subscribe(p, repo) {
			c.sendError(protocol.CodeInternal, "failed to read the repository", repo, "")
			return
		}
		var after int64
		for {
			events, more, err := c.s.cfg.Store.Range(c.ctx, p.Namespace, repo, after, c.s.cfg.MaxPage)
			if err != nil {
				if c.ctx.Err() == nil {
					c.log.Error("failed to read events", "repository", repo, "err", err)
					c.sendError(protocol.CodeInternal, "failed to read events", repo, "")
				}
				return
			}
			if len(events) > 0 {
				after = events[len(events)-1].ServerSequence
				c.s.metrics.eventsOut.Add(int64(len(events)))
				for rest := events; len(rest) > 0; {
					n := fitFrame(rest, c.s.cfg.MaxSendBytes)
					if !c.send(protocol.Message{Type: protocol.TypeEvents, Repository: repo, Events: rest[:n]}) {
						return
					}
					rest = rest[n:]
				}
			}
			if !more || len(events) == 0 {
				break
			}
		}
		last = after
	}
	done := protocol.Message{Type: protocol.TypeSyncComplete}
	if m.Repository != "" {
		done.Repository, done.LastSequence = m.Repository, last
	}
	c.send(done)
}

// page is one reply to request_events (or its REST mirror).
type page struct {
	events []protocol.Event
	more   bool
	last   int64 // the cursor to continue from
}

// readPage reads the page a request_events asks for: the latest event per
// document after the cursor (or, with reduce:false, every event), ascending.
func (s *Server) readPage(ctx context.Context, ns, repo string, m protocol.Message, max int) (page, *protocol.Error) {
	limit := m.Limit
	if limit <= 0 {
		limit = DefaultPageLimit
	}
	if limit > max {
		limit = max
	}
	// Read the log's end first: events committed after it show up in the
	// page with higher sequences, so the cursor never skips one.
	end, err := s.cfg.Store.LastSequence(ctx, ns, repo)
	var p page
	if err == nil {
		switch {
		case m.All:
			p.events, p.more, err = s.cfg.Store.Range(ctx, ns, repo, m.AfterSequence, limit)
		case !m.Since.IsZero():
			p.events, p.more, err = s.cfg.Store.LatestSince(ctx, ns, repo, m.Since, limit)
		default:
			p.events, p.more, err = s.cfg.Store.Latest(ctx, ns, repo, m.AfterSequence, limit)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("failed to read events", "namespace", ns, "repository", repo, "err", err)
		}
		return page{}, protocol.Errorf(protocol.CodeInternal, "failed to read events")
	}
	if n := fitFrame(p.events, s.cfg.MaxSendBytes); n < len(p.events) {
		p.events, p.more = p.events[:n], true
	}
	if n := len(p.events); n > 0 {
		p.last = p.events[n-1].ServerSequence
	}
	if !p.more && end > p.last {
		p.last = end
	}
	return p, nil
}

// fitFrame returns how many leading events fit in one events frame of
// about maxBytes; at least one.
func fitFrame(events []protocol.Event, maxBytes int) int {
	total := 0
	for i, e := range events {
		// The encoded size, near enough: the payloads plus the keys.
		total += len(e.Data) + len(e.Meta) + len(e.ID) + len(e.DataID) + 128
		if total > maxBytes && i > 0 {
			return i
		}
	}
	return len(events)
}

// checkRead checks that p may read repo.
func checkRead(p Principal, repo string) *protocol.Error {
	if perr := validRepo(repo); perr != nil {
		return perr
	}
	if !p.CanRead(repo) {
		return protocol.Errorf(protocol.CodeForbidden, "not allowed to read repository "+repo)
	}
	return nil
}

// validRepo checks a repository name.
func validRepo(repo string) *protocol.Error {
	if repo == "" {
		return protocol.Errorf(protocol.CodeInvalid, "repository is missing")
	}
	if len(repo) > protocol.MaxIDLength {
		return protocol.Errorf(protocol.CodeInvalid, "repository name is longer than 256 bytes")
	}
	for _, r := range repo {
		if r < 0x20 || r == 0x7f {
			return protocol.Errorf(protocol.CodeInvalid, "repository name has a control character")
		}
	}
	return nil
}

var errClosing = errors.New("server is shutting down")
