package serverbench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lfsync/lfsync/bench/report"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// ingestTarget is issue 6's ingest target with 100 pushers on SQLite.
const ingestTarget = 20000

// ingestResult is what one ingest load measured in its window.
type ingestResult struct {
	rate      float64 // acked events per second
	events    int64   // acked events
	perCommit float64 // SQLite only: mean events per group commit
	commit    float64 // SQLite only: mean ms per group commit, BEGIN to durable COMMIT
	sync      float64 // SQLite only: mean ms of it in COMMIT (WAL write and fsync)
	cpu       float64 // µs of this process's CPU (server and clients) per acked event
}

// ingestLoad runs pushers connections, each pushing batch events per frame
// (push_event for one, as the Dart client and a single write do;
// push_events_batch for more, as lfsync's client flushing its outbox) and
// waiting for the ack before the next, for warm and then for the measured
// window.
func ingestLoad(ctx context.Context, n *node, pushers, batch int, token, repo string, warm, window time.Duration) (ingestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, warm+window+2*settleLimit+time.Minute)
	defer cancel()
	conns, err := dialMany(ctx, n.url, token, pushers, 50)
	if err != nil {
		return ingestResult{}, err
	}
	defer closeAll(conns)
	var (
		acked, seq atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	for _, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 512)
			for !stop.Load() {
				if batch == 1 {
					buf = pushFrame(buf[:0], repo, seq.Add(1))
				} else {
					buf = batchFrame(buf[:0], repo, seq.Add(int64(batch)), batch)
				}
				err := ws.Write(ctx, websocket.MessageText, buf)
				if err == nil {
					_, err = readUntil(ctx, ws, protocol.TypeAck)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("pusher failed: %w", err) })
					stop.Store(true)
					return
				}
				acked.Add(int64(batch))
			}
		}()
	}
	settle(warm, acked.Load, 0, int64(pushers), stop.Load)
	a0, t0, s0, c0 := acked.Load(), time.Now(), n.stats(), cpuTime()
	settle(window, acked.Load, a0, minWindowCount(pushers*batch), stop.Load)
	a1, t1, s1, c1 := acked.Load(), time.Now(), n.stats(), cpuTime()
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		return ingestResult{}, firstErr
	}
	r := ingestResult{events: a1 - a0, rate: float64(a1-a0) / t1.Sub(t0).Seconds()}
	if a1 > a0 {
		r.cpu = float64((c1 - c0).Microseconds()) / float64(a1-a0)
	}
	if c := s1.Commits - s0.Commits; c > 0 {
		r.perCommit = float64(s1.Events-s0.Events) / float64(c)
		r.commit = ms(s1.Busy-s0.Busy) / float64(c)
		r.sync = ms(s1.Sync-s0.Sync) / float64(c)
	}
	return r, nil
}

// plainEchoRate runs conns connections to a plain coder/websocket echo
// server, each sending the same kind of push frames as ingestLoad and
// waiting for the echo, and returns round trips per second in the window:
// what the WebSocket transport alone allows on this machine.
func plainEchoRate(ctx context.Context, conns, batch int, warm, window time.Duration) (float64, error) {
	var count atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to listen: %w", err)
	}
	hs := &http.Server{Handler: echoHandler(&count), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	url := "ws://" + ln.Addr().String() + "/"
	clients := make([]*websocket.Conn, conns)
	defer closeAll(clients)
	for i := range clients {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			return 0, fmt.Errorf("failed to dial the echo server: %w", err)
		}
		ws.SetReadLimit(-1)
		clients[i] = ws
	}
	var (
		trips, seq atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
		failed     atomic.Value
	)
	for _, ws := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for !stop.Load() {
				if batch == 1 {
					buf = pushFrame(buf[:0], "ingest", seq.Add(1))
				} else {
					buf = batchFrame(buf[:0], "ingest", seq.Add(int64(batch)), batch)
				}
				err := ws.Write(ctx, websocket.MessageText, buf)
				if err == nil {
					_, _, err = ws.Read(ctx)
				}
				if err != nil {
					failed.Store(err)
					stop.Store(true)
					return
				}
				trips.Add(int64(batch))
			}
		}()
	}
	settle(warm, trips.Load, 0, int64(conns), stop.Load)
	n0, t0 := trips.Load(), time.Now()
	settle(window, trips.Load, n0, minWindowCount(conns*batch), stop.Load)
	n1, t1 := trips.Load(), time.Now()
	stop.Store(true)
	closeAll(clients)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil && n1 == n0 {
		return 0, fmt.Errorf("echo client failed: %w", err)
	}
	return float64(n1-n0) / t1.Sub(t0).Seconds(), nil
}

// settleLimit bounds how far settle extends a warm-up or a window.
const settleLimit = time.Minute

// settle waits for d, then on until count has grown by at least min since
// from (a slow machine or the race detector may need longer for a figure
// to hold anything), stop reports a failure, or settleLimit has passed.
func settle(d time.Duration, count func() int64, from, min int64, stop func() bool) {
	start := time.Now()
	time.Sleep(d)
	for count()-from < min && !stop() && time.Since(start) < settleLimit {
		time.Sleep(10 * time.Millisecond)
	}
}

// minWindowCount is the least a measured window must hold: twice the work
// in flight at once, so that a window is never just one commit.
func minWindowCount(inFlight int) int64 { return int64(2 * inFlight) }

// dialMany opens count authenticated connections, at most par at a time.
func dialMany(ctx context.Context, url, token string, count, par int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, count)
	sem := make(chan struct{}, par)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ws, err := dial(ctx, url, token)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			conns[i] = ws
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		closeAll(conns)
		return nil, fmt.Errorf("failed to open %d of %d connections: %w", len(errs), count, errs[0])
	}
	return conns, nil
}

// closeAll drops every connection.
func closeAll(conns []*websocket.Conn) {
	for _, ws := range conns {
		if ws != nil {
			ws.CloseNow()
		}
	}
}

func (r *runner) ingestSQLite() error {
	ctx := context.Background()
	var errs []error
	for _, p := range r.sz.pushers {
		if err := r.ingestSQLiteOnce(ctx, p, 1); err != nil {
			errs = append(errs, fmt.Errorf("%d pushers: %w", p, err))
		}
	}
	p := r.sz.pushers[len(r.sz.pushers)-1]
	if err := r.ingestSQLiteOnce(ctx, p, batchSize); err != nil {
		errs = append(errs, fmt.Errorf("%d pushers, batches of %d: %w", p, batchSize, err))
	}
	if err := r.ingestStoreOnly(ctx, p); err != nil {
		errs = append(errs, fmt.Errorf("%d appenders, store only: %w", p, err))
	}
	return errors.Join(errs...)
}

// batchSize is the events per push_events_batch of the batched ingest
// figure.
const batchSize = 10

func (r *runner) ingestSQLiteOnce(ctx context.Context, pushers, batch int) error {
	st, err := openSQLite(r.o.Dir, "ingest")
	if err != nil {
		return err
	}
	n, err := startNode(st, r.o.Logf, nil)
	if err != nil {
		st.Close()
		return err
	}
	res, err := ingestLoad(ctx, n, pushers, batch, tokenWriteOnly, "ingest", r.sz.ingestWarm, r.sz.ingestWindow)
	if cerr := n.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	name := fmt.Sprintf("ingest %d pusher%s (sqlite)", pushers, plural(pushers))
	how := "push_event of 1 event"
	if batch == 1 {
		r.sqliteIngest[pushers] = res.rate
	} else {
		name = fmt.Sprintf("ingest %d pushers, batches of %d (sqlite)", pushers, batch)
		how = fmt.Sprintf("push_events_batch of %d events", batch)
	}
	group := max(1, int(res.perCommit+0.5))
	base, err := plainSQLiteInsert(ctx, r.o.Dir, int(res.events), group)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	echo, err := plainEchoRate(ctx, pushers, batch, r.sz.ingestWarm, r.sz.ingestWindow)
	if err != nil {
		return fmt.Errorf("echo reference: %w", err)
	}
	f := report.Figure{
		Name: name, Unit: "events/s", Better: "higher",
		Value:    res.rate,
		Baseline: fmt.Sprintf("plain database/sql INSERTs of the same %d events, %d per transaction (the server's mean group commit), same durability (WAL, synchronous=FULL)", res.events, group),
		BaseVal:  base,
		Note: fmt.Sprintf("each pusher: %s, waits for its ack; write-only token (pushers subscribe to nothing); %.1f events per group commit, %.2f ms per commit of which %.2f ms in COMMIT (WAL fsync); %.0f µs CPU per event (server and clients, in one process over loopback WebSockets); the same frames echoed by a plain coder/websocket server over %d connections: %.0f events/s (the transport alone)",
			how, res.perCommit, res.commit, res.sync, res.cpu, pushers, echo),
	}
	target := 0.0
	if pushers == 100 && batch == 1 {
		f.Target, target = ">= 20000 events/s", ingestTarget
	}
	r.add(f, target)
	return nil
}

// ingestStoreOnly measures the SQLite store alone: appenders goroutines
// calling Store.Append with one event each, no server and no network, so
// that the server path's share of the ingest figures shows.
func (r *runner) ingestStoreOnly(ctx context.Context, appenders int) error {
	st, err := openSQLite(r.o.Dir, "ingest-store")
	if err != nil {
		return err
	}
	var (
		done, seq atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
		failed    atomic.Value
	)
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				n := seq.Add(1)
				e := benchEvent(uuid.Must(uuid.NewV7()).String(), docID(n, docCount), n)
				if _, err := st.Append(ctx, server.DefaultNamespace, "ingest", []protocol.Event{e}); err != nil {
					failed.Store(err)
					stop.Store(true)
					return
				}
				done.Add(1)
			}
		}()
	}
	settle(r.sz.ingestWarm, done.Load, 0, int64(appenders), stop.Load)
	d0, t0, s0 := done.Load(), time.Now(), st.Stats()
	settle(r.sz.ingestWindow, done.Load, d0, minWindowCount(appenders), stop.Load)
	d1, t1, s1 := done.Load(), time.Now(), st.Stats()
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(st.Close()); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	perCommit, commit := 0.0, 0.0
	if c := s1.Commits - s0.Commits; c > 0 {
		perCommit = float64(s1.Events-s0.Events) / float64(c)
		commit = ms(s1.Busy-s0.Busy) / float64(c)
	}
	group := max(1, int(perCommit+0.5))
	base, err := plainSQLiteInsert(ctx, r.o.Dir, int(d1-d0), group)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	r.add(report.Figure{
		Name: fmt.Sprintf("ingest %d appenders, store only (sqlite)", appenders), Unit: "events/s", Better: "higher",
		Value:    float64(d1-d0) / t1.Sub(t0).Seconds(),
		Baseline: fmt.Sprintf("plain database/sql INSERTs of as many events, %d per transaction (the store's mean group commit), same durability", group),
		BaseVal:  base,
		Note: fmt.Sprintf("%d goroutines each calling sqlite.Store.Append with 1 event and waiting for it, no server, no network: the storage layer's share of the ingest figures; %.1f events per group commit, %.2f ms per commit",
			appenders, perCommit, commit),
	}, 0)
	return nil
}

// ingestSubscribedSQLite measures 100 pushers that also read the
// repository, so each push is fanned out to the 99 others, beside the same
// run's write-only ingest: the cost of fan-out during ingest.
func (r *runner) ingestSubscribedSQLite() error {
	ctx := context.Background()
	pushers := r.sz.pushers[len(r.sz.pushers)-1]
	var rates [2]ingestResult
	for i, token := range []string{tokenWriteOnly, tokenReadWrite} {
		st, err := openSQLite(r.o.Dir, "ingest-sub")
		if err != nil {
			return err
		}
		n, err := startNode(st, r.o.Logf, func(c *server.Config) { c.SendQueue = 4096 })
		if err != nil {
			st.Close()
			return err
		}
		rates[i], err = ingestLoad(ctx, n, pushers, 1, token, "ingest", r.sz.ingestWarm, r.sz.ingestWindow)
		if cerr := n.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	r.add(report.Figure{
		Name: fmt.Sprintf("ingest %d pushers, each subscribed (sqlite)", pushers), Unit: "events/s", Better: "higher",
		Value:    rates[1].rate,
		Baseline: fmt.Sprintf("the same %d pushers with a write-only token (no fan-out), same run", pushers),
		BaseVal:  rates[0].rate,
		Note: fmt.Sprintf("every push is fanned out to the %d other pushers, which read it; %.1f events per group commit (write-only: %.1f)",
			pushers-1, rates[1].perCommit, rates[0].perCommit),
	}, 0)
	return nil
}

// plainSQLiteInsert inserts events rows into a fresh SQLite database with
// the server store's durability settings, group rows per transaction, and
// returns rows per second.
func plainSQLiteInsert(ctx context.Context, dir string, events, group int) (float64, error) {
	db, err := sql.Open("sqlite", "file:"+freshPath(dir, "plain-insert")+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE events (
		seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, data_id TEXT NOT NULL,
		op INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, data BLOB)`); err != nil {
		return 0, fmt.Errorf("failed to create the table: %w", err)
	}
	ins, err := db.PrepareContext(ctx, `INSERT INTO events (seq, id, data_id, op, created_at_ms, data) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, fmt.Errorf("failed to prepare: %w", err)
	}
	defer ins.Close()
	events = max(events, group)
	rows := make([]protocol.Event, events)
	for i := range rows {
		rows[i] = benchEvent(uuid.Must(uuid.NewV7()).String(), docID(int64(i), docCount), int64(i))
	}
	start := time.Now()
	for i := 0; i < events; i += group {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("failed to begin: %w", err)
		}
		st := tx.StmtContext(ctx, ins)
		for j := i; j < min(i+group, events); j++ {
			e := rows[j]
			if _, err := st.ExecContext(ctx, j+1, e.ID, e.DataID, int(e.Operation), e.CreatedAt.UnixMilli(), []byte(e.Data)); err != nil {
				tx.Rollback()
				return 0, fmt.Errorf("failed to insert: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("failed to commit: %w", err)
		}
	}
	return float64(events) / time.Since(start).Seconds(), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
