package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/servertest"
)

// client is a raw WebSocket client speaking JSON frames.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func dial(t testing.TB, s *servertest.Server) *client {
	t.Helper()
	return dialURL(t, s.WSURL(), nil)
}

func dialURL(t testing.TB, url string, h http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("failed to dial %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("failed to send %.200s: %v", s, err)
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// readRaw returns the next frame as a JSON object.
func (c *client) readRaw() map[string]any {
	c.t.Helper()
	b, err := c.readBytes()
	if err != nil {
		c.t.Fatalf("failed to read a frame: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame is not a JSON object: %s", b)
	}
	return m
}

func (c *client) readBytes() ([]byte, error) {
	// A guard against hangs, not an assertion: generous for a loaded
	// machine under -race.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	return b, err
}

// read returns the next frame decoded by the protocol package.
func (c *client) read() protocol.Message {
	c.t.Helper()
	b, err := c.readBytes()
	if err != nil {
		c.t.Fatalf("failed to read a frame: %v", err)
	}
	m, err := protocol.Decode(b)
	if err != nil {
		c.t.Fatalf("server sent an undecodable frame %s: %v", b, err)
	}
	return m
}

// expect reads the next frame and fails unless it has type typ.
func (c *client) expect(typ string) protocol.Message {
	c.t.Helper()
	m := c.read()
	if m.Type != typ {
		c.t.Fatalf("got frame %s (%s %s), want %s", m.Type, m.Code, m.Text, typ)
	}
	return m
}

// expectError reads the next frame and fails unless it is an error with code.
func (c *client) expectError(code protocol.Code) protocol.Message {
	c.t.Helper()
	m := c.expect(protocol.TypeError)
	if m.Code != code {
		c.t.Fatalf("error code = %q (%s), want %q", m.Code, m.Text, code)
	}
	return m
}

func (c *client) auth(token string) {
	c.t.Helper()
	c.send(map[string]any{"type": "auth", "token": token})
	c.expect(protocol.TypeAuthSuccess)
}

// push sends a batch and returns its ack.
func (c *client) push(repo string, events ...map[string]any) protocol.Message {
	c.t.Helper()
	if events == nil {
		events = []map[string]any{}
	}
	c.send(map[string]any{"type": "push_events_batch", "repository": repo, "events": events})
	return c.expect(protocol.TypeAck)
}

// request sends request_events and collects the reply up to sync_complete.
func (c *client) request(repo string, after int64, limit int) ([]protocol.Event, protocol.Message) {
	c.t.Helper()
	c.send(map[string]any{"type": "request_events", "repository": repo, "afterSequence": after, "limit": limit})
	var events []protocol.Event
	for {
		m := c.read()
		switch m.Type {
		case protocol.TypeEvents:
			if m.Repository != repo {
				c.t.Fatalf("events for %q, want %q", m.Repository, repo)
			}
			events = append(events, m.Events...)
		case protocol.TypeSyncComplete:
			return events, m
		default:
			c.t.Fatalf("unexpected frame %s (%s %s) before sync_complete", m.Type, m.Code, m.Text)
		}
	}
}

// closed waits for the server to close the socket and returns the status.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.readBytes()
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

var evCounter atomic.Int64

// ev makes a coded-form event for document id with data.
func ev(dataID string, data map[string]any) map[string]any {
	n := evCounter.Add(1)
	if data == nil {
		data = map[string]any{}
	}
	d := map[string]any{"id": dataID}
	for k, v := range data {
		d[k] = v
	}
	return map[string]any{
		"_event_id":   fmt.Sprintf("01890000-0000-7000-8000-%012d", n),
		"_operation":  1,
		"_created_at": protocol.FormatTime(time.Now()),
		"_data_id":    dataID,
		"_data":       d,
	}
}

func ids(events []protocol.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}
