package integration_test

// These tests drive the client against a scripted WebSocket peer, for the
// protocol situations the real server never produces: malformed events,
// sequence gaps in the live stream, a plain local_first server without
// lfsync's extensions, and a peer that stops answering.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

// peer is a scripted server: every frame the client sends is handed to
// onFrame, which answers through the connection.
type peer struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	conns int
	// readLimit, when set, replaces the default 32 KiB frame limit (-1:
	// none).
	readLimit int64
	frames    []protocol.Message
	onFrame   func(p *peerConn, m protocol.Message)
}

type peerConn struct {
	p    *peer
	conn *websocket.Conn
	ctx  context.Context
}

func newPeer(t *testing.T, onFrame func(p *peerConn, m protocol.Message)) *peer {
	p := &peer{t: t, onFrame: onFrame}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		p.mu.Lock()
		p.conns++
		if p.readLimit != 0 {
			conn.SetReadLimit(p.readLimit)
		}
		p.mu.Unlock()
		pc := &peerConn{p: p, conn: conn, ctx: r.Context()}
		for {
			_, b, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			m, err := protocol.Decode(b)
			if err != nil {
				t.Errorf("peer: client sent a bad frame %s: %v", b, err)
				return
			}
			p.mu.Lock()
			p.frames = append(p.frames, m)
			p.mu.Unlock()
			p.onFrame(pc, m)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peer) url() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") }

func (p *peer) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// requests returns the afterSequence of every request_events received.
func (p *peer) requests() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for _, m := range p.frames {
		if m.Type == protocol.TypeRequestEvents {
			out = append(out, m.AfterSequence)
		}
	}
	return out
}

// sendRaw writes a frame as given.
func (pc *peerConn) sendRaw(s string) {
	_ = pc.conn.Write(pc.ctx, websocket.MessageText, []byte(s))
}

func (pc *peerConn) send(m protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		pc.p.t.Errorf("peer: encode: %v", err)
		return
	}
	pc.sendRaw(string(b))
}

// rawEvent renders one event in the coded form.
func rawEvent(seq int, id, title string) string {
	return `{"_event_id":"` + id + `","_operation":0,"_created_at":"2026-01-01T00:00:0` + string(rune('0'+seq%10)) +
		`.000Z","_data_id":"` + id + `","_data":{"id":"` + id + `","title":"` + title + `"},"serverSequence":` + itoa(seq) + `}`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestMalformedRemoteEventIsSkippedNotFatal(t *testing.T) {
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			pc.send(protocol.Message{Type: protocol.TypeAuthSuccess})
		case protocol.TypeRequestEvents:
			if m.AfterSequence == 0 {
				bad := `{"_event_id":"bad","_operation":9,"_created_at":"2026-01-01T00:00:00.000Z","_data_id":"bad","serverSequence":2}`
				pc.sendRaw(`{"type":"events","repository":"todos","events":[` + rawEvent(1, "a", "one") + `,` + bad + `,` + rawEvent(3, "c", "three") + `]}`)
			}
			pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: "todos", LastSequence: 3})
		}
	})
	var mu sync.Mutex
	var reported []string
	opts := fastOptions(p.url(), "todos")
	opts.OnEventError = func(repo, id string, err error) {
		mu.Lock()
		reported = append(reported, repo+"/"+id)
		mu.Unlock()
	}
	c, store := newClient(t, opts)
	waitSynced(t, c)
	if get(t, c.Repository("todos"), "a") == nil || get(t, c.Repository("todos"), "c") == nil {
		t.Fatalf("good events around the bad one were not applied: %s", all(t, c.Repository("todos")))
	}
	if cur, _ := store.Cursor(context.Background(), "todos"); cur != 3 {
		t.Fatalf("cursor %d, want 3 (past the malformed event)", cur)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0] != "todos/bad" {
		t.Fatalf("reported %v, want todos/bad", reported)
	}
	if !strings.Contains(c.Status().LastError, "bad") {
		t.Fatalf("lastError %q does not name the skipped event", c.Status().LastError)
	}
}

func TestLiveGapIsRequestedNotSkipped(t *testing.T) {
	var live *peerConn
	var mu sync.Mutex
	gapFilled := false
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			pc.send(protocol.Message{Type: protocol.TypeAuthSuccess})
		case protocol.TypeRequestEvents:
			mu.Lock()
			fill := gapFilled
			mu.Unlock()
			switch {
			case m.AfterSequence == 0:
				pc.sendRaw(`{"type":"events","repository":"todos","events":[` + rawEvent(1, "a", "one") + `]}`)
				last := int64(1)
				if fill {
					last = 3
				}
				pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: "todos", LastSequence: last})
			case m.AfterSequence == 1 && fill:
				pc.sendRaw(`{"type":"events","repository":"todos","events":[` + rawEvent(2, "b", "two") + `,` + rawEvent(3, "c", "three") + `]}`)
				pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: "todos", LastSequence: 3})
			default:
				last := int64(1)
				if fill {
					last = 3
				}
				pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: "todos", LastSequence: last})
			}
		}
		mu.Lock()
		live = pc
		mu.Unlock()
	})
	c, store := newClient(t, fastOptions(p.url(), "todos"))
	waitSynced(t, c)
	// Sequence 3 arrives live while 2 went missing.
	mu.Lock()
	pc := live
	mu.Unlock()
	before := len(p.requests())
	pc.sendRaw(`{"type":"events","repository":"todos","events":[` + rawEvent(3, "c", "three") + `]}`)
	waitFor(t, "document c", func() bool { return get(t, c.Repository("todos"), "c") != nil })
	if cur, _ := store.Cursor(context.Background(), "todos"); cur != 1 {
		t.Fatalf("cursor moved to %d over the gap at 2", cur)
	}
	waitFor(t, "a request for the missing range", func() bool {
		for _, after := range p.requests()[before:] {
			if after == 1 {
				return true
			}
		}
		return false
	})
	mu.Lock()
	gapFilled = true
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatalf("WaitSynced: %v", err)
		}
		if cur, _ := store.Cursor(ctx, "todos"); cur == 3 {
			break
		}
	}
	if get(t, c.Repository("todos"), "b") == nil {
		t.Fatal("the missing event was never applied")
	}
}

func TestPlainLocalFirstServerWithoutExtensions(t *testing.T) {
	// A plain server: reduced replies (sequences with gaps), sync_complete
	// without hasMore/lastSequence, acks without sequences, echoes to the
	// sender.
	var mu sync.Mutex
	var log []string // raw events stored
	seq := 7
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			pc.sendRaw(`{"type":"auth_success"}`)
		case protocol.TypeRequestEvents:
			mu.Lock()
			var evs []string
			if m.AfterSequence < 2 {
				evs = append(evs, rawEvent(2, "x", "reduced"))
			}
			if m.AfterSequence < 5 {
				evs = append(evs, rawEvent(5, "y", "reduced"))
			}
			mu.Unlock()
			if len(evs) > 0 {
				pc.sendRaw(`{"type":"events","repository":"todos","events":[` + strings.Join(evs, ",") + `]}`)
			}
			pc.sendRaw(`{"type":"sync_complete","repository":"todos"}`)
		case protocol.TypePushEventsBatch:
			var ids []string
			var out []protocol.Event
			mu.Lock()
			for _, e := range m.Events {
				seq++
				e.ServerSequence = int64(seq)
				out = append(out, e)
				ids = append(ids, e.ID)
				b, _ := json.Marshal(e)
				log = append(log, string(b))
			}
			mu.Unlock()
			pc.send(protocol.Message{Type: protocol.TypeEvents, Repository: m.Repository, Events: out})
			idsJSON, _ := json.Marshal(ids)
			pc.sendRaw(`{"type":"ack","eventIds":` + string(idsJSON) + `,"repositories":{"` + m.Repository + `":` + string(idsJSON) + `}}`)
		}
	})
	c, store := newClient(t, fastOptions(p.url(), "todos"))
	waitSynced(t, c)
	if cur, _ := store.Cursor(context.Background(), "todos"); cur != 5 {
		t.Fatalf("cursor %d after a reduced reply ending at 5, want 5", cur)
	}
	upsert(t, c.Repository("todos"), "mine", `{"v":1}`)
	waitSynced(t, c)
	if n, _ := store.PendingCount(context.Background()); n != 0 {
		t.Fatalf("%d pending after the plain ack", n)
	}
	if got := get(t, c.Repository("todos"), "mine"); got["v"] != 1.0 {
		t.Fatalf("own echo changed the document: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(log) != 1 {
		t.Fatalf("pushed %d events, want 1", len(log))
	}
}

func TestSilentPeerIsReplaced(t *testing.T) {
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			pc.send(protocol.Message{Type: protocol.TypeAuthSuccess})
		case protocol.TypeRequestEvents:
			pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: m.Repository})
		}
		// ping is never answered.
	})
	opts := fastOptions(p.url(), "todos")
	opts.Heartbeat = core.Heartbeat{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond}
	c, _ := newClient(t, opts)
	waitSynced(t, c)
	waitFor(t, "a second connection after the pong deadline", func() bool { return p.connections() >= 2 })
	waitFor(t, "the reconnect in the metrics", func() bool { return c.Metrics().Reconnects >= 1 })
	if !strings.Contains(c.Status().LastError, "ping") {
		t.Fatalf("lastError %q does not say the ping went unanswered", c.Status().LastError)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	p := newPeer(t, func(*peerConn, protocol.Message) {})
	url := p.url()
	p.srv.Close()
	opts := fastOptions(url, "todos")
	opts.Reconnect = core.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 2}
	c, _ := newClient(t, opts)
	waitFor(t, "the disconnected state", func() bool {
		s := c.Status()
		return s.State == core.StateDisconnected && strings.Contains(s.LastError, "gave up")
	})
	// Start again after giving up works.
	log := recordStatus(c)
	c.Start()
	waitFor(t, "another attempt", func() bool { return log.has(core.StateConnecting) })
}

func TestUnreadableSequenceIsSkippedAfterRetries(t *testing.T) {
	// The event at sequence 2 is so broken its sequence cannot be read: the
	// client asks again, then moves past it instead of stalling forever.
	bad := `{"_event_id":"bad","_operation":"nope"}`
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			pc.send(protocol.Message{Type: protocol.TypeAuthSuccess})
		case protocol.TypeRequestEvents:
			var evs []string
			if m.AfterSequence < 1 {
				evs = append(evs, rawEvent(1, "a", "one"))
			}
			if m.AfterSequence < 2 {
				evs = append(evs, bad)
			}
			if m.AfterSequence < 3 {
				evs = append(evs, rawEvent(3, "c", "three"))
			}
			if len(evs) > 0 {
				pc.sendRaw(`{"type":"events","repository":"todos","events":[` + strings.Join(evs, ",") + `]}`)
			}
			pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: "todos", LastSequence: 3})
		}
	})
	c, store := newClient(t, fastOptions(p.url(), "todos"))
	waitSynced(t, c)
	if cur, _ := store.Cursor(context.Background(), "todos"); cur != 3 {
		t.Fatalf("cursor %d, want 3", cur)
	}
	reqs := p.requests()
	retried := 0
	for _, after := range reqs {
		if after == 1 {
			retried++
		}
	}
	if retried < 2 {
		t.Fatalf("requests %v: the missing range was not asked for again before skipping", reqs)
	}
	if !strings.Contains(c.Status().LastError, "skipped") {
		t.Fatalf("lastError %q does not report the skip", c.Status().LastError)
	}
}

func TestConnectedOnlyAfterAuthSuccessAndReauthInPlace(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var auths []protocol.Message
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			mu.Lock()
			auths = append(auths, m)
			first := len(auths) == 1
			mu.Unlock()
			if first {
				<-release
			}
			pc.send(protocol.Message{Type: protocol.TypeAuthSuccess})
		case protocol.TypeRequestEvents:
			pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: m.Repository})
		}
	})
	opts := fastOptions(p.url(), "todos")
	opts.Token = "t1"
	opts.Headers = map[string]string{"X-Custom": "v1", "type": "must-not-win"}
	c, _ := newClient(t, opts)
	waitFor(t, "the auth frame", func() bool { mu.Lock(); defer mu.Unlock(); return len(auths) == 1 })
	if st := c.Status().State; st != core.StateAuthenticating {
		t.Fatalf("state %s while auth_success is withheld, want authenticating", st)
	}
	close(release)
	waitSynced(t, c)
	c.UpdateHeaders(map[string]string{"X-Custom": "v2"})
	waitFor(t, "a second auth frame", func() bool { mu.Lock(); defer mu.Unlock(); return len(auths) == 2 })
	waitSynced(t, c)
	if n := p.connections(); n != 1 {
		t.Fatalf("%d connections: re-auth must reuse the socket", n)
	}
	mu.Lock()
	defer mu.Unlock()
	first, second := auths[0], auths[1]
	if first.Token != "t1" || first.Headers["X-Custom"] != "v1" || first.ClientID != c.ClientID() {
		t.Fatalf("first auth %+v: want token t1, header X-Custom=v1, clientId %s", first, c.ClientID())
	}
	if second.Token != "t1" || second.Headers["X-Custom"] != "v2" {
		t.Fatalf("re-auth %+v: want token t1 and the new header", second)
	}
}

func TestEventThatKeepsDroppingTheSocketIsFailed(t *testing.T) {
	// A proxy or browser that reports only a closed socket for a frame too
	// big: no 1009 reaches the client.
	p := newPeer(t, func(pc *peerConn, m protocol.Message) {
		switch m.Type {
		case protocol.TypeAuth:
			pc.send(protocol.Message{Type: protocol.TypeAuthSuccess})
		case protocol.TypeRequestEvents:
			pc.send(protocol.Message{Type: protocol.TypeSyncComplete, Repository: m.Repository})
		case protocol.TypePushEventsBatch:
			for _, e := range m.Events {
				if len(e.Data) > 100<<10 {
					pc.conn.CloseNow()
					return
				}
			}
			ids := make([]string, len(m.Events))
			for i, e := range m.Events {
				ids[i] = e.ID
			}
			pc.send(protocol.Message{Type: protocol.TypeAck, EventIDs: ids, Repositories: map[string][]string{m.Repository: ids}})
		}
	})
	p.mu.Lock()
	p.readLimit = -1
	p.mu.Unlock()
	c, store := newClient(t, fastOptions(p.url(), "todos"))
	waitSynced(t, c)
	upsert(t, c.Repository("todos"), "huge", `{"text":"`+strings.Repeat("h", 200<<10)+`"}`)
	hugeEvents, _ := store.Pending(context.Background(), 0)
	upsert(t, c.Repository("todos"), "after", `{"text":"small"}`)
	waitSynced(t, c)
	pending, _ := store.Pending(context.Background(), 0)
	if len(pending) != 0 {
		t.Fatalf("%d events still pending", len(pending))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	acked := false
	for _, m := range p.frames {
		if m.Type == protocol.TypePushEventsBatch {
			for _, e := range m.Events {
				if e.DataID == "after" && len(m.Events) == 1 {
					acked = true
				}
			}
		}
	}
	if !acked {
		t.Fatal("the small event queued behind the huge one was never pushed on its own")
	}
	ev, _, _ := store.Outbox(context.Background(), hugeEvents[0].Event.ID)
	if ev.Status != core.StatusFailed || !strings.Contains(ev.Error, "dropped") {
		t.Fatalf("huge event %v %q: want failed, saying the connection dropped", ev.Status, ev.Error)
	}
}
