package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/core/protocol"
)

// conn is one WebSocket connection: a read loop that handles frames in
// order, and a writer draining two queues (replies, which the read loop
// waits for, and fan-out, which is bounded and never waits) that also keeps
// the heartbeat.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	id     uint64
	remote string
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	replies chan []byte

	// The fan-out queue: at most Config.SendQueue frames, grown on demand
	// (most connections are idle most of the time), drained by writeLoop.
	fanMu   sync.Mutex
	fanQ    [][]byte
	fanWake chan struct{} // buffered 1: fanQ is not empty

	closeOnce sync.Once
	closing   atomic.Bool   // closeWith was called
	authed    chan struct{} // closed on the first successful auth
	authOnce  sync.Once
	lastPong  atomic.Int64  // monotonic() of the last pong received
	pongs     chan struct{} // signalled on each pong
	limiter   *bucket

	mu        sync.Mutex
	principal *Principal // nil until authenticated
	clientID  string
	subs      map[*broadcaster]struct{}

	closeCode   websocket.StatusCode // for closeAfterReplies
	closeReason string
}

var pingFrame = []byte(`{"type":"ping"}`)

// epoch anchors monotonic.
var epoch = time.Now()

// monotonic returns nanoseconds on the monotonic clock, immune to wall-clock
// jumps.
func monotonic() int64 { return int64(time.Since(epoch)) }

func (s *Server) newConn(ws *websocket.Conn, remote string) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	id := s.nextID.Add(1)
	return &conn{
		s: s, ws: ws, id: id, remote: remote,
		log:     s.log.With("conn", id, "remote", remote),
		ctx:     ctx,
		cancel:  cancel,
		replies: make(chan []byte, 16),
		fanWake: make(chan struct{}, 1),
		authed:  make(chan struct{}),
		pongs:   make(chan struct{}, 1),
		limiter: newBucket(s.cfg.RatePerSecond, s.cfg.RateBurst),
		subs:    make(map[*broadcaster]struct{}),
	}
}

// serve runs the connection until the socket closes.
func (c *conn) serve() {
	c.log.Debug("connection opened")
	go c.writeLoop()
	defer c.cleanup()
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st == -1 && c.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				c.log.Debug("connection read ended", "err", err)
			}
			return
		}
		c.s.metrics.framesIn.Add(1)
		c.handleFrame(data)
	}
}

func (c *conn) cleanup() {
	c.cancel()
	c.s.hub.unsubscribeAll(c)
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for b := range subs {
		b.unsubscribe(c)
	}
	c.ws.CloseNow()
	c.log.Debug("connection closed")
}

// handleFrame decodes and handles one frame; a panic is logged and answered
// with an internal error instead of taking the server down.
func (c *conn) handleFrame(data []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic while handling a frame", "panic", r, "stack", string(debug.Stack()))
			c.sendError(protocol.CodeInternal, "internal error", "", "")
		}
	}()
	m, err := protocol.Decode(data)
	if m.Type != protocol.TypePing && m.Type != protocol.TypePong {
		if !c.limiter.allow(time.Now()) {
			c.sendError(protocol.CodeRateLimited, "rate limit exceeded; frame dropped", m.Repository, "")
			return
		}
	}
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			c.sendError(pe.Code, pe.Message, "", "")
		} else {
			c.sendError(protocol.CodeInvalid, err.Error(), "", "")
		}
		return
	}
	c.handle(m)
}

// writeLoop sends queued frames until the connection ends, and keeps the
// heartbeat: it closes a connection that does not authenticate within
// AuthTimeout, then pings every PingInterval (counted from the last pong)
// and closes a connection that does not answer within PongTimeout. One
// goroutine for both keeps an idle connection small.
func (c *conn) writeLoop() {
	t := time.NewTimer(c.s.cfg.AuthTimeout)
	defer t.Stop()
	authed := c.authed // nil once authenticated
	var pingSent int64 // monotonic() when the unanswered ping went out; 0: none
	for {
		var f []byte
		select {
		case <-c.ctx.Done():
			return
		case <-authed:
			authed = nil
			t.Reset(c.s.cfg.PingInterval)
			continue
		case <-c.pongs:
			if pingSent != 0 && c.lastPong.Load() >= pingSent {
				pingSent = 0
				t.Reset(c.s.cfg.PingInterval)
			}
			continue
		case <-t.C:
			switch {
			case authed != nil:
				c.closeWith(websocket.StatusPolicyViolation, "authentication timeout")
				continue
			case pingSent != 0 && c.lastPong.Load() >= pingSent:
				// The pong came; its signal is still queued.
				pingSent = 0
				t.Reset(c.s.cfg.PingInterval)
				continue
			case pingSent != 0:
				c.log.Info("closing connection: pong timeout")
				c.closeWith(websocket.StatusPolicyViolation, "pong timeout")
				continue
			}
			pingSent = monotonic()
			t.Reset(c.s.cfg.PongTimeout)
			f = pingFrame
		case f = <-c.replies:
			if f == nil { // closeAfterReplies' marker
				c.mu.Lock()
				code, reason := c.closeCode, c.closeReason
				c.mu.Unlock()
				c.closeWith(code, reason)
				return
			}
		case <-c.fanWake:
			if f = c.popFanout(); f == nil {
				continue
			}
		}
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		err := c.ws.Write(ctx, websocket.MessageText, f)
		cancel()
		if err != nil {
			c.cancel()
			c.ws.CloseNow()
			return
		}
		c.s.metrics.framesOut.Add(1)
	}
}

// closeWith closes the socket with a status and reason, without waiting;
// a peer that does not complete the close handshake within a second (a
// stalled consumer) is dropped.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		t := time.AfterFunc(time.Second, func() {
			c.cancel()
			c.ws.CloseNow()
		})
		go func() {
			c.ws.Close(code, reason)
			t.Stop()
			c.cancel()
		}()
	})
}

// closeAfterReplies closes the socket once the replies queued before it are
// written.
func (c *conn) closeAfterReplies(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	c.closeCode, c.closeReason = code, reason
	c.mu.Unlock()
	go func() {
		select {
		case c.replies <- nil:
		case <-c.ctx.Done():
		}
	}()
}

// reply queues a frame for this connection, waiting while the queue is full.
func (c *conn) reply(frame []byte) bool {
	select {
	case c.replies <- frame:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *conn) send(m protocol.Message) bool {
	b, err := protocol.Encode(m)
	if err != nil {
		c.log.Error("failed to encode a frame", "type", m.Type, "err", err)
		return false
	}
	return c.reply(b)
}

func (c *conn) sendError(code protocol.Code, msg, repo, eventID string) {
	c.s.metrics.countError(code)
	m := protocol.ErrorMessage(code, msg)
	m.Repository, m.EventID = repo, eventID
	c.send(m)
}

// sendFanout queues a fan-out frame without waiting; a connection whose
// queue is full is disconnected (it catches up from its cursor on
// reconnect) so that it never holds up the others.
func (c *conn) sendFanout(frame []byte) bool {
	if c.ctx.Err() != nil || c.closing.Load() {
		return false
	}
	c.fanMu.Lock()
	full := len(c.fanQ) >= c.s.cfg.SendQueue
	if !full {
		c.fanQ = append(c.fanQ, frame)
	}
	c.fanMu.Unlock()
	if full {
		c.s.metrics.overflows.Add(1)
		c.log.Warn("closing connection: send queue overflow", "queue", c.s.cfg.SendQueue)
		c.closeWith(websocket.StatusTryAgainLater, "send queue overflow: reconnect and catch up")
		return false
	}
	select {
	case c.fanWake <- struct{}{}:
	default:
	}
	return true
}

// popFanout takes the oldest queued fan-out frame (nil if none) and keeps
// writeLoop awake while more remain.
func (c *conn) popFanout() []byte {
	c.fanMu.Lock()
	defer c.fanMu.Unlock()
	if len(c.fanQ) == 0 {
		return nil
	}
	f := c.fanQ[0]
	c.fanQ[0] = nil
	c.fanQ = c.fanQ[1:]
	if len(c.fanQ) == 0 {
		c.fanQ = nil // release the backing array
	} else {
		select {
		case c.fanWake <- struct{}{}:
		default:
		}
	}
	return f
}

func (c *conn) addSub(b *broadcaster) {
	c.mu.Lock()
	closed := c.subs == nil
	if !closed {
		c.subs[b] = struct{}{}
	}
	c.mu.Unlock()
	if closed {
		b.unsubscribe(c)
	}
}

func (c *conn) clientIDNow() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// current returns the connection's principal, or nil.
func (c *conn) current() *Principal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.principal
}

// setPrincipal installs new credentials (nil: none) and drops the
// subscriptions they may not read.
func (c *conn) setPrincipal(p *Principal, clientID string) {
	c.mu.Lock()
	c.principal = p
	c.clientID = clientID
	var drop []*broadcaster
	for b := range c.subs {
		if p == nil || b.key.ns != p.Namespace || !p.CanRead(b.key.repo) {
			drop = append(drop, b)
			delete(c.subs, b)
		}
	}
	c.mu.Unlock()
	for _, b := range drop {
		b.unsubscribe(c)
	}
}

func (c *conn) String() string { return fmt.Sprintf("conn %d (%s)", c.id, c.remote) }
