package serverbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/bench/report"
	"github.com/lfsync/lfsync/core/protocol"
)

// fanoutTarget is issue 6's fan-out p99 target to 1,000 clients, in ms.
const fanoutTarget = 50

// fanoutResult is what one fan-out measurement saw.
type fanoutResult struct {
	lat    []time.Duration // push sent → events frame read, every client of every round
	ack    time.Duration   // mean push sent → ack read
	commit time.Duration   // SQLite only: mean time of the writer's transaction
}

// timeFanout pushes rounds times, one push at a time, and times how long
// each subscriber takes to read the events frame of each push. push sends
// one push and returns once the pusher's part is done.
func timeFanout(ctx context.Context, subs []*websocket.Conn, rounds int, push func(round int) error) ([]time.Duration, error) {
	base := time.Now()
	var (
		round    atomic.Int64 // the round in flight
		sentAt   atomic.Int64 // its push time, ns after base
		received atomic.Int64
		wg       sync.WaitGroup
	)
	roundDone := make(chan struct{}, 1)
	lats := make([][]time.Duration, len(subs))
	for i, ws := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					return
				}
				if frameType(b) != protocol.TypeEvents {
					continue
				}
				lats[i] = append(lats[i], time.Since(base)-time.Duration(sentAt.Load()))
				if received.Add(1) == (round.Load()+1)*int64(len(subs)) {
					roundDone <- struct{}{}
				}
			}
		}()
	}
	defer func() {
		closeAll(subs)
		wg.Wait()
	}()
	for r := range rounds {
		round.Store(int64(r))
		sentAt.Store(int64(time.Since(base)))
		if err := push(r); err != nil {
			return nil, err
		}
		select {
		case <-roundDone:
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("round %d: %d of %d clients received the push within 30 s",
				r, received.Load()-int64(r)*int64(len(subs)), len(subs))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	closeAll(subs)
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) != rounds*len(subs) {
		return nil, fmt.Errorf("%d deliveries, want %d: a client got an extra events frame", len(all), rounds*len(subs))
	}
	return all, nil
}

// fanoutOurs measures fan-out through node n: clients subscribed with
// request_events, one write-only pusher.
func fanoutOurs(ctx context.Context, n *node, clients, rounds int) (fanoutResult, error) {
	const repo = "fanout"
	subs, err := dialMany(ctx, n.url, tokenReadWrite, clients, 50)
	if err != nil {
		return fanoutResult{}, err
	}
	if err := forEach(subs, 50, func(ws *websocket.Conn) error { return subscribe(ctx, ws, repo) }); err != nil {
		closeAll(subs)
		return fanoutResult{}, err
	}
	pusher, err := dial(ctx, n.url, tokenWriteOnly)
	if err != nil {
		closeAll(subs)
		return fanoutResult{}, err
	}
	defer pusher.CloseNow()
	var ackSum time.Duration
	var buf []byte
	s0 := n.stats()
	lat, err := timeFanout(ctx, subs, rounds, func(r int) error {
		t := time.Now()
		buf = pushFrame(buf[:0], repo, int64(r))
		if err := pusher.Write(ctx, websocket.MessageText, buf); err != nil {
			return fmt.Errorf("failed to push: %w", err)
		}
		if _, err := readUntil(ctx, pusher, protocol.TypeAck); err != nil {
			return fmt.Errorf("failed to read the ack: %w", err)
		}
		ackSum += time.Since(t)
		return nil
	})
	if err != nil {
		return fanoutResult{}, err
	}
	res := fanoutResult{lat: lat, ack: ackSum / time.Duration(rounds)}
	if s1 := n.stats(); s1.Commits > s0.Commits {
		res.commit = (s1.Busy - s0.Busy) / time.Duration(s1.Commits-s0.Commits)
	}
	return res, nil
}

// forEach runs fn on every connection, at most par at a time.
func forEach(conns []*websocket.Conn, par int, fn func(*websocket.Conn) error) error {
	sem := make(chan struct{}, par)
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ws)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// plainBroadcast is the fan-out baseline: a coder/websocket server that
// relays each frame read on /push to every /sub connection through one
// writer goroutine per connection, as coder/websocket's chat example does.
type plainBroadcast struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

func (p *plainBroadcast) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	ctx := r.Context()
	if r.URL.Path == "/push" {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			p.mu.Lock()
			for ch := range p.subs {
				select {
				case ch <- b:
				default: // a slow subscriber misses it, as in the chat example
				}
			}
			p.mu.Unlock()
		}
	}
	ch := make(chan []byte, 16)
	p.mu.Lock()
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.subs, ch)
		p.mu.Unlock()
	}()
	ctx = ws.CloseRead(ctx)
	for {
		select {
		case b := <-ch:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (p *plainBroadcast) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.subs)
}

// fanoutPlain measures the baseline: frame relayed to clients
// connections.
func fanoutPlain(ctx context.Context, clients, rounds int, frame []byte) ([]time.Duration, error) {
	p := &plainBroadcast{subs: make(map[chan []byte]struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	hs := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	url := "ws://" + ln.Addr().String()
	subs := make([]*websocket.Conn, clients)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, 50)
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ws, _, err := websocket.Dial(ctx, url+"/sub", nil)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			ws.SetReadLimit(-1)
			subs[i] = ws
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		closeAll(subs)
		return nil, fmt.Errorf("failed to open %d of %d connections: %w", len(errs), clients, errs[0])
	}
	for deadline := time.Now().Add(30 * time.Second); p.count() < clients; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			closeAll(subs)
			return nil, fmt.Errorf("%d of %d subscribers registered", p.count(), clients)
		}
	}
	pusher, _, err := websocket.Dial(ctx, url+"/push", nil)
	if err != nil {
		closeAll(subs)
		return nil, fmt.Errorf("failed to dial the pusher: %w", err)
	}
	defer pusher.CloseNow()
	return timeFanout(ctx, subs, rounds, func(int) error {
		return pusher.Write(ctx, websocket.MessageText, frame)
	})
}

// eventsFrame is the events frame our server fans out for one bench event.
func eventsFrame(repo string) ([]byte, error) {
	e := benchEvent("0190a000-0000-7000-8000-000000000000", docID(1, docCount), 1)
	e.ServerSequence = 1
	return protocol.Encode(protocol.Message{Type: protocol.TypeEvents, Repository: repo, Events: []protocol.Event{e}})
}

// fanoutFigures measures fan-out through n beside the plain broadcast and
// records p50 and p99.
func (r *runner) fanoutFigures(n *node, backend string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients, rounds := r.sz.fanClients, r.sz.fanRounds
	ours, err := fanoutOurs(ctx, n, clients, rounds)
	if err != nil {
		return err
	}
	frame, err := eventsFrame("fanout")
	if err != nil {
		return err
	}
	plain, err := fanoutPlain(ctx, clients, rounds, frame)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	base := fmt.Sprintf("plain coder/websocket broadcast of the same %d-byte events frame to %d connections (one writer goroutine each, no storage)", len(frame), clients)
	note := fmt.Sprintf("push_event sent until each subscriber has read the events frame, so it includes the durable commit; %d pushes × %d clients, one push at a time, clients in-process; push→ack mean %.2f ms (the ack competes with the fan-out for the CPU)",
		rounds, clients, ms(ours.ack))
	if ours.commit > 0 {
		note += fmt.Sprintf("; the commit itself: %.2f ms mean", ms(ours.commit))
	}
	if backend == "postgres" {
		note += "; PostgreSQL with " + r.pgSettings
	}
	for _, q := range []struct {
		name   string
		q      float64
		target string
		tval   float64
	}{{"p50", 0.50, "", 0}, {"p99", 0.99, "<= 50 ms", fanoutTarget}} {
		r.add(report.Figure{
			Name: fmt.Sprintf("fan-out to %d clients %s (%s)", clients, q.name, backend), Unit: "ms", Better: "lower",
			Value: ms(percentile(ours.lat, q.q)), Baseline: base, BaseVal: ms(percentile(plain, q.q)),
			Target: q.target, Note: note,
		}, q.tval)
	}
	return nil
}

func (r *runner) fanoutSQLite() error {
	st, err := openSQLite(r.o.Dir, "fanout")
	if err != nil {
		return err
	}
	n, err := startNode(st, r.o.Logf, nil)
	if err != nil {
		st.Close()
		return err
	}
	err = r.fanoutFigures(n, "sqlite")
	return errors.Join(err, n.close())
}
