package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/servertest"
)

func TestRestartKeepsAckedEvents(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	acked := map[string]int64{}
	for i := range 5 {
		ack := c.push("todos", ev("d"+string(rune('0'+i)), nil), ev("e"+string(rune('0'+i)), nil))
		for id, seq := range ack.Sequences {
			acked[id] = seq
		}
	}
	addr := s.Addr()
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr(), addr)
	}
	if st := c.closed(); st != 1001 && st != -1 {
		t.Fatalf("close status on restart = %v, want going away", st)
	}
	c = dial(t, s)
	c.auth("x")
	c.send(map[string]any{"type": "request_events", "repository": "todos", "afterSequence": 0, "limit": 1000, "reduce": false})
	m := c.expect(protocol.TypeEvents)
	c.expect(protocol.TypeSyncComplete)
	if len(m.Events) != len(acked) {
		t.Fatalf("after restart %d events, want %d", len(m.Events), len(acked))
	}
	for _, e := range m.Events {
		if acked[e.ID] != e.ServerSequence {
			t.Fatalf("event %s has sequence %d, was acked with %d", e.ID, e.ServerSequence, acked[e.ID])
		}
	}
	// Sequences continue.
	ack := c.push("todos", ev("new", nil))
	if seq := ack.Sequences[ack.EventIDs[0]]; seq != 11 {
		t.Fatalf("next sequence = %d, want 11", seq)
	}
}

func TestDropAcks(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	s.DropAcks(1)
	e := ev("d", nil)
	c.send(map[string]any{"type": "push_events_batch", "repository": "todos", "events": []any{e}})
	if _, err := c.readBytes(); err == nil {
		t.Fatal("got a frame, want the socket closed instead of the ack")
	}
	// The events committed: a re-push is acked with the same sequence.
	c = dial(t, s)
	c.auth("x")
	ack := c.push("todos", e)
	if seq := ack.Sequences[e["_event_id"].(string)]; seq != 1 {
		t.Fatalf("re-push acked with sequence %d, want 1", seq)
	}
}

func TestCloseConnectionsKeepsServing(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	s.CloseConnections()
	c.closed()
	c = dial(t, s)
	c.auth("x")
	c.push("todos", ev("d", nil))
}

// TestShutdownAcksInFlightBatches: batches pipelined while the server
// shuts down are either acked or not stored; none is stored unacked
// (short of a crash), and everything acked survives.
func TestShutdownAcksInFlightBatches(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	c := dial(t, s)
	c.auth("x")
	sent := map[string]bool{}
	for i := range 40 {
		e := ev(fmt.Sprint("d", i), nil)
		sent[e["_event_id"].(string)] = true
		c.send(map[string]any{"type": "push_events_batch", "repository": "todos", "events": []any{e}})
	}
	go s.Restart()
	acked := map[string]bool{}
	for {
		b, err := c.readBytes()
		if err != nil {
			break
		}
		m, err := protocol.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range m.EventIDs {
			acked[id] = true
		}
	}
	var c2 *client
	for c2 == nil {
		// Restart runs concurrently: wait until it accepts again.
		ws, _, err := websocket.Dial(t.Context(), s.WSURL(), nil)
		if err == nil {
			ws.SetReadLimit(1 << 24)
			t.Cleanup(func() { ws.CloseNow() })
			c2 = &client{t: t, ws: ws}
		} else {
			time.Sleep(10 * time.Millisecond) // polling, not an assertion
		}
	}
	c2.auth("x")
	events, _ := c2.request("todos", 0, 1000)
	stored := map[string]bool{}
	for _, e := range events {
		stored[e.ID] = true
		if !acked[e.ID] {
			t.Errorf("event %s stored but not acked", e.ID)
		}
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("event %s acked but lost", id)
		}
	}
	t.Logf("%d sent, %d acked before shutdown", len(sent), len(acked))
}

// TestRestartWhileClientsConnect: Shutdown finishes although sockets are
// being upgraded while it runs (bug C3-S1: it used to wait forever for a
// socket it had not seen).
func TestRestartWhileClientsConnect(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ws, _, err := websocket.Dial(ctx, s.WSURL(), nil)
				if err == nil {
					ws.Write(ctx, websocket.MessageText, []byte(`{"type":"auth"}`))
					ws.Read(ctx)
					ws.CloseNow()
				}
				cancel()
			}
		}()
	}
	for range 5 {
		s.Restart()
	}
	close(stop)
	wg.Wait()
	c := dial(t, s)
	c.auth("x")
}
