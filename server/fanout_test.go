package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

func TestFanOutToOthersInOrder(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	a, b, c := dial(t, s), dial(t, s), dial(t, s)
	a.auth("a")
	b.auth("b")
	c.auth("c")
	b.request("todos", 0, 10)
	c.request("notes", 0, 10) // c is not subscribed to todos

	a.push("todos", ev("1", nil), ev("2", nil))
	a.send(map[string]any{"type": "push_event", "repository": "todos", "event": ev("3", nil)})
	a.expect(protocol.TypeAck)

	var got []int64
	for len(got) < 3 {
		m := b.expect(protocol.TypeEvents)
		for _, e := range m.Events {
			got = append(got, e.ServerSequence)
		}
	}
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("b got sequences %v, want [1 2 3]", got)
	}
	// Neither the sender nor a connection subscribed elsewhere got them: the
	// next frames they read are the replies to a ping.
	for _, cl := range []*client{a, c} {
		cl.send(map[string]any{"type": "ping"})
		cl.expect(protocol.TypePong)
	}
}

func TestFanOutSkipsSameClientID(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	tab1, tab2, other := dial(t, s), dial(t, s), dial(t, s)
	for _, c := range []*client{tab1, tab2} {
		c.send(map[string]any{"type": "auth", "token": "t", "clientId": "client-1"})
		c.expect(protocol.TypeAuthSuccess)
		c.request("todos", 0, 10)
	}
	other.auth("o")
	other.request("todos", 0, 10)
	tab1.push("todos", ev("x", nil))
	other.expect(protocol.TypeEvents)
	other.push("todos", ev("y", nil))
	// tab2 shares tab1's clientId: the first events it gets are other's.
	if m := tab2.expect(protocol.TypeEvents); len(m.Events) != 1 || m.Events[0].DataID != "y" {
		t.Fatalf("tab2 got %v, want only y", ids(m.Events))
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.SendQueue = 2
		c.PingInterval = time.Hour
	}))
	// slow has a tiny socket receive buffer and stops reading: frames pile
	// up in the socket, then in its queue, which overflows. The pusher is
	// never held up.
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(1024)
		}
		return c, err
	}}}
	ws, _, err := websocket.Dial(t.Context(), s.WSURL(), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	slow := &client{t: t, ws: ws}
	slow.auth("s")
	slow.request("todos", 0, 10)

	w := dial(t, s)
	w.auth("w")
	pad := strings.Repeat("x", 10000)
	for i := 0; s.Connections() == 2; i++ {
		if i > 1000 {
			t.Fatal("slow consumer never disconnected")
		}
		batch := make([]map[string]any, 90)
		for j := range batch {
			batch[j] = ev(fmt.Sprint("d", i, "-", j), map[string]any{"pad": pad})
		}
		w.push("todos", batch...)
	}
	if st := slow.closed(); st != websocket.StatusTryAgainLater && st != -1 {
		t.Fatalf("close status = %v, want try again later", st)
	}
}

// TestConcurrentPushes: 20 connections push 500 events each at once, mixing
// push_event and batches and re-pushing some; per repository the
// sequences have no gap and no duplicate, and every connection receives
// every other connection's event exactly once, in order.
func TestConcurrentPushes(t *testing.T) {
	t.Parallel()
	conns, perConn := 20, 500
	if testing.Short() {
		perConn = 50
	}
	repos := []string{"r0", "r1"}
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.PingInterval = time.Hour }))

	type result struct {
		acked map[string]int64           // own event id → sequence, per repo key "repo/id"
		recv  map[string][]int64         // repo → sequences received by fan-out, in order
		ids   map[string]map[string]bool // repo → ids received
	}
	results := make([]result, conns)
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = dial(t, s)
		clients[i].auth(fmt.Sprint("c", i))
		for _, r := range repos {
			clients[i].request(r, 0, 10)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, conns*2)
	for i := range clients {
		c := clients[i]
		res := &results[i]
		res.acked = map[string]int64{}
		res.recv = map[string][]int64{}
		res.ids = map[string]map[string]bool{}
		wg.Add(2)
		// Writer: 500 distinct events, in singles and batches of up to 7,
		// plus a re-push of an earlier event every 10th frame.
		go func() {
			defer wg.Done()
			var sent []map[string]any
			var sentRepo []string
			n, frame := 0, 0
			for n < perConn {
				frame++
				repo := repos[frame%2]
				var msg map[string]any
				if frame%10 == 0 && len(sent) > 0 {
					k := frame % len(sent)
					msg = map[string]any{"type": "push_event", "repository": sentRepo[k], "event": sent[k]}
				} else if frame%3 == 0 {
					size := min(1+frame%7, perConn-n)
					batch := make([]map[string]any, size)
					for j := range batch {
						batch[j] = ev(fmt.Sprintf("c%d-d%d", i, n%37), map[string]any{"n": n})
						sent, sentRepo = append(sent, batch[j]), append(sentRepo, repo)
						n++
					}
					msg = map[string]any{"type": "push_events_batch", "repository": repo, "events": batch}
				} else {
					e := ev(fmt.Sprintf("c%d-d%d", i, n%37), map[string]any{"n": n})
					sent, sentRepo = append(sent, e), append(sentRepo, repo)
					n++
					msg = map[string]any{"type": "push_event", "repository": repo, "event": e}
				}
				b, _ := json.Marshal(msg)
				if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
					errs <- fmt.Errorf("conn %d: write: %w", i, err)
					cancel()
					return
				}
			}
		}()
		// Reader: until all own events are acked and all others' received.
		go func() {
			defer wg.Done()
			want := conns*perConn - perConn
			got := 0
			for len(res.acked) < perConn || got < want {
				_, b, err := c.ws.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("conn %d: read after %d acks, %d events: %w", i, len(res.acked), got, err)
					cancel()
					return
				}
				m, err := protocol.Decode(b)
				if err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					cancel()
					return
				}
				switch m.Type {
				case protocol.TypeAck:
					for repo, ids := range m.Repositories {
						for _, id := range ids {
							key := repo + "/" + id
							if prev, ok := res.acked[key]; ok && prev != m.Sequences[id] {
								errs <- fmt.Errorf("conn %d: %s re-acked with sequence %d, first %d", i, id, m.Sequences[id], prev)
								cancel()
								return
							}
							res.acked[key] = m.Sequences[id]
						}
					}
				case protocol.TypeEvents:
					if res.ids[m.Repository] == nil {
						res.ids[m.Repository] = map[string]bool{}
					}
					for _, e := range m.Events {
						res.recv[m.Repository] = append(res.recv[m.Repository], e.ServerSequence)
						if res.ids[m.Repository][e.ID] {
							errs <- fmt.Errorf("conn %d: event %s received twice", i, e.ID)
							cancel()
							return
						}
						res.ids[m.Repository][e.ID] = true
						got++
					}
				default:
					errs <- fmt.Errorf("conn %d: unexpected %s %s %s", i, m.Type, m.Code, m.Text)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Acked sequences: per repository exactly 1..N, each once.
	owner := map[string]map[int64]int{} // repo → seq → conn
	for i, res := range results {
		for key, seq := range res.acked {
			repo := key[:2]
			if owner[repo] == nil {
				owner[repo] = map[int64]int{}
			}
			if j, dup := owner[repo][seq]; dup {
				t.Fatalf("%s sequence %d acked to conn %d and conn %d", repo, seq, j, i)
			}
			owner[repo][seq] = i
		}
	}
	total := 0
	for _, repo := range repos {
		n := len(owner[repo])
		total += n
		for seq := int64(1); seq <= int64(n); seq++ {
			if _, ok := owner[repo][seq]; !ok {
				t.Fatalf("%s: sequence %d missing (gap) among %d", repo, seq, n)
			}
		}
	}
	if total != conns*perConn {
		t.Fatalf("%d events acked, want %d", total, conns*perConn)
	}
	// Fan-out: strictly increasing, exactly the others' events.
	for i, res := range results {
		for _, repo := range repos {
			seqs := res.recv[repo]
			for k := 1; k < len(seqs); k++ {
				if seqs[k] <= seqs[k-1] {
					t.Fatalf("conn %d, %s: sequence %d after %d (out of order)", i, repo, seqs[k], seqs[k-1])
				}
			}
			others := 0
			for _, o := range owner[repo] {
				if o != i {
					others++
				}
			}
			if len(seqs) != others {
				t.Fatalf("conn %d, %s: received %d events, want %d", i, repo, len(seqs), others)
			}
			for _, seq := range seqs {
				if owner[repo][seq] == i {
					t.Fatalf("conn %d got its own event %d back", i, seq)
				}
			}
		}
	}
}

// TestFramesSplitBySize: pages larger than MaxSendBytes go out as several
// frames (fan-out, request_all_events) or are cut short with hasMore
// (request_events), always in order and never empty.
func TestFramesSplitBySize(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.MaxSendBytes = 1000 }))
	sub := dial(t, s)
	sub.auth("s")
	sub.request("todos", 0, 10)
	w := dial(t, s)
	w.auth("w")
	pad := strings.Repeat("x", 300) // about 2 events per frame
	var batch []map[string]any
	for i := range 7 {
		batch = append(batch, ev(fmt.Sprint("d", i), map[string]any{"pad": pad}))
	}
	w.push("todos", batch...)

	var seqs []int64
	frames := 0
	for len(seqs) < 7 {
		m := sub.expect(protocol.TypeEvents)
		frames++
		for _, e := range m.Events {
			seqs = append(seqs, e.ServerSequence)
		}
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 5 6 7]" || frames < 3 {
		t.Fatalf("fan-out: %v in %d frames", seqs, frames)
	}

	var after int64
	var got []int64
	for pages := 0; ; pages++ {
		events, done := sub.request("todos", after, 100)
		if len(events) == 0 || len(events) > 2 {
			t.Fatalf("page of %d events", len(events))
		}
		for _, e := range events {
			got = append(got, e.ServerSequence)
		}
		after = done.LastSequence
		if !done.HasMore {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("request_events pages: %v", got)
	}

	sub.send(map[string]any{"type": "request_all_events", "repository": "todos"})
	got, frames = nil, 0
	for {
		m := sub.read()
		if m.Type == protocol.TypeSyncComplete {
			break
		}
		frames++
		for _, e := range m.Events {
			got = append(got, e.ServerSequence)
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" || frames < 3 {
		t.Fatalf("request_all_events: %v in %d frames", got, frames)
	}
}
