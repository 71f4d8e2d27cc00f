package browser

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lfsync/lfsync/bench/report"
)

const mb = 1e6 // sizes are reported in MB of 10^6 bytes (stricter than MiB)

// wasmSize reports lfsync.wasm as served: raw, gzip and brotli.
func (s *suite) wasmSize(context.Context) error {
	for _, v := range []struct{ name, file, target string }{
		{"wasm size, raw", "lfsync.wasm", ""},
		{"wasm size, gzip", "lfsync.wasm.gz", "<= 1.5 MB"},
		{"wasm size, brotli", "lfsync.wasm.br", ""},
	} {
		st, err := os.Stat(filepath.Join(s.o.Web, v.file))
		if err != nil {
			return fmt.Errorf("failed to read the size of the built wasm (run make build): %w", err)
		}
		s.add(report.Figure{Name: v.name, Unit: "MB", Value: float64(st.Size()) / mb, Better: "lower", Target: v.target,
			Note: fmt.Sprintf("%s, %d bytes, as web/dist serves it", v.file, st.Size())})
	}
	return nil
}

// coldStart navigates fresh browser contexts (empty HTTP and code caches)
// until createClient resolved, beside a plain page opening IndexedDB.
func (s *suite) coldStart(context.Context) error {
	base := strings.TrimSuffix(s.o.BaseURL, "/") + "/" + PagesDir + "/cold.html?"
	ready := "window.coldReady !== undefined || window.coldError !== undefined"
	load := func(t *tab, mode string) (float64, error) {
		q := url.Values{"mode": {mode}, "sync": {s.syncURL}, "token": {s.o.Token}, "db": {fmt.Sprintf("cold-%d", time.Now().UnixNano())}}
		if err := t.navigate(base+q.Encode(), ready, 60*time.Second); err != nil {
			return 0, err
		}
		if e, err := eval[string](t, 5*time.Second, "window.coldError || ''"); err != nil || e != "" {
			return 0, fmt.Errorf("%s start failed: %v%s", mode, err, e)
		}
		return eval[float64](t, 5*time.Second, "window.coldReady")
	}
	type detail struct {
		Imported    float64 `json:"imported"`
		WasmFetched float64 `json:"wasmFetched"`
		Ready       float64 `json:"ready"`
	}
	var cold, plain, warm, imported, fetched []float64
	for i := 0; i < s.n.cold; i++ {
		for _, mode := range []string{"plain", "lfsync"} {
			t, err := s.c.newTab("cold-"+mode, true)
			if err != nil {
				return err
			}
			if s.o.Profile != "" && i == 0 && mode == "lfsync" {
				// A same-origin page first, so the profiled navigation
				// stays in this renderer (the wasm is still uncached).
				_, err := load(t, "plain")
				if err == nil {
					t.profileDir = s.o.Profile
					err = t.startProfile()
				}
				if err != nil {
					t.close()
					return err
				}
			}
			ms, err := load(t, mode)
			if err == nil && mode == "lfsync" {
				var d detail
				if d, err = eval[detail](t, 5*time.Second, "window.coldDetail"); err == nil {
					imported = append(imported, d.Imported)
					fetched = append(fetched, d.WasmFetched)
				}
			}
			if err == nil && mode == "lfsync" {
				// The same context again: HTTP cache and compiled code warm.
				var w float64
				if w, err = load(t, mode); err == nil {
					warm = append(warm, w)
				}
			}
			t.close()
			if err != nil {
				return err
			}
			if mode == "plain" {
				plain = append(plain, ms)
			} else {
				cold = append(cold, ms)
			}
		}
	}
	s.add(report.Figure{Name: "cold start, fresh context", Unit: "ms", Value: median(cold),
		Baseline: "plain page opening IndexedDB, fresh context", BaseVal: median(plain), Better: "lower", Target: "<= 300 ms",
		Note: fmt.Sprintf("median of %d (runs %s); navigation start until createClient resolved: index.js imported at %.0f ms, lfsync.wasm fetched at %.0f ms (median), then compiled, the Go runtime started and the database opened; loopback, so no download time: a real link adds the transfer of the gzip/brotli wasm", len(cold), list(cold), median(imported), median(fetched))})
	s.add(report.Figure{Name: "warm start, reload", Unit: "ms", Value: median(warm),
		Baseline: "plain page opening IndexedDB, fresh context", BaseVal: median(plain), Better: "lower", Target: "<= 300 ms",
		Note: fmt.Sprintf("median of %d; the same context loaded again (HTTP cache and V8 code cache warm), a new database", len(warm))})
	return nil
}

// localWrites: sequential upserts (offline and while syncing) beside plain
// IndexedDB, one put per transaction.
func (s *suite) localWrites(context.Context) error {
	t, err := s.openBench("writes", true)
	if err != nil {
		return err
	}
	defer t.close()
	n := s.n.writes
	timeout := 5 * time.Minute
	// Five rounds, each plain then offline then online, so that a change
	// of the machine's load mid-way hits all three alike.
	const rounds = 5
	var plain, pair, off, on []float64
	for r := 0; r < rounds; r++ {
		from, k := r*n/rounds, (r+1)*n/rounds-r*n/rounds
		for _, v := range []struct {
			expr string
			dst  *[]float64
		}{
			{fmt.Sprintf("B.plainWrites(%d, %d, false)", from, k), &plain},
			{fmt.Sprintf("B.plainWrites(%d, %d, true)", from, k), &pair},
			{fmt.Sprintf("B.lfsyncWrites('write-offline', false, %d, %d)", from, k), &off},
			{fmt.Sprintf("B.lfsyncWrites('write-online', true, %d, %d)", from, k), &on},
		} {
			lat, err := eval[[]float64](t, timeout, v.expr)
			if err != nil {
				return err
			}
			*v.dst = append(*v.dst, lat...)
		}
	}
	for _, name := range []string{"'write-offline', false", "'write-online', true"} {
		if _, err := eval[int](t, timeout, fmt.Sprintf("B.lfsyncWritesDone(%s, %d)", name, n)); err != nil {
			return err
		}
	}
	base := "plain IndexedDB, 1 put/tx"
	shape := fmt.Sprintf("%d sequential upserts of a ~230-byte record, each awaited, in 5 rounds alternating with the baseline; lfsync commits the document and its outbox event in one IndexedDB transaction, the baseline puts the document alone (both default durability); plain JS putting document + outbox event in one transaction: p50 %s ms, p99 %s ms", n, report.Number(percentile(pair, 50)), report.Number(percentile(pair, 99)))
	for _, v := range []struct {
		name string
		lat  []float64
		note string
	}{
		{"offline", off, shape + "; client not started (no socket)"},
		{"online, syncing", on, shape + "; client connected, so pushes and acks (sent marks in IndexedDB) run between the writes"},
	} {
		s.add(report.Figure{Name: "local write p50, " + v.name, Unit: "ms", Value: percentile(v.lat, 50),
			Baseline: base, BaseVal: percentile(plain, 50), Better: "lower", Target: "<= 1.5x baseline", Note: v.note})
		s.add(report.Figure{Name: "local write p99, " + v.name, Unit: "ms", Value: percentile(v.lat, 99),
			Baseline: base, BaseVal: percentile(plain, 99), Better: "lower"})
	}
	return nil
}

// bulkWrites: n upserts at once, both ways a user would write them, beside
// n plain puts in one transaction.
func (s *suite) bulkWrites(context.Context) error {
	t, err := s.openBench("bulk", true)
	if err != nil {
		return err
	}
	defer t.close()
	n, nAll := s.n.bulk, s.n.bulkAll
	timeout := 5 * time.Minute
	// The baseline runs before each lfsync variant; its median is used.
	var plain []float64
	var many, all float64
	for _, v := range []struct {
		expr string
		dst  *float64
	}{
		{fmt.Sprintf("B.lfsyncBulk(%d, 'many')", n), &many},
		{fmt.Sprintf("B.lfsyncBulk(%d, 'all')", nAll), &all},
	} {
		ms, err := eval[float64](t, timeout, fmt.Sprintf("B.plainBulk(%d)", n))
		if err != nil {
			return err
		}
		plain = append(plain, ms)
		if *v.dst, err = eval[float64](t, timeout, v.expr); err != nil {
			return err
		}
	}
	rate := func(k int, ms float64) float64 { return float64(k) / ms * 1000 }
	base := fmt.Sprintf("plain IndexedDB, %s puts in 1 tx", count(n))
	s.add(report.Figure{Name: fmt.Sprintf("bulk write %s docs, upsertMany", count(n)), Unit: "docs/s", Value: rate(n, many),
		Baseline: base, BaseVal: rate(n, median(plain)), Better: "higher", Target: ">= 0.7x baseline",
		Note: fmt.Sprintf("one atomic upsertMany of %s new documents (each with its outbox event) until it resolved: %.0f ms; baseline (median of %d) %s ms; client offline", count(n), many, len(plain), list(plain))})
	s.add(report.Figure{Name: fmt.Sprintf("bulk write %s docs, Promise.all(upsert)", count(nAll)), Unit: "docs/s", Value: rate(nAll, all),
		Baseline: base, BaseVal: rate(n, median(plain)), Better: "higher", Target: ">= 0.7x baseline",
		Note: fmt.Sprintf("%s upsert calls issued at once, awaited with Promise.all: %.0f ms; client offline; %s calls, not %s, to keep the run under 10 minutes (throughput, so comparable)", count(nAll), all, count(nAll), count(n))})
	return nil
}

// queries over n documents: getAll and a where+orderBy+limit, beside plain
// IndexedDB getAll (+ JS filter, sort, slice).
func (s *suite) queries(context.Context) error {
	t, err := s.openBench("queries", true)
	if err != nil {
		return err
	}
	defer t.close()
	n := s.n.queryDocs
	timeout := 2 * time.Minute
	if _, err := eval[bool](t, timeout, fmt.Sprintf("B.querySetup(%d)", n)); err != nil {
		return err
	}
	var lfAll, plAll, lfQ, plQ []float64
	for i := 0; i < s.n.queryRuns; i++ {
		for _, v := range []struct {
			expr string
			dst  *[]float64
		}{
			{fmt.Sprintf("B.plainGetAll(%d)", n), &plAll},
			{fmt.Sprintf("B.lfsyncGetAll(%d)", n), &lfAll},
			{"B.plainQuery()", &plQ},
			{"B.lfsyncQuery()", &lfQ},
		} {
			ms, err := eval[float64](t, timeout, v.expr)
			if err != nil {
				return err
			}
			*v.dst = append(*v.dst, ms)
		}
	}
	runs := fmt.Sprintf("median of %d runs, interleaved with the baseline", s.n.queryRuns)
	s.add(report.Figure{Name: fmt.Sprintf("getAll %s docs", count(n)), Unit: "ms", Value: median(lfAll),
		Baseline: "plain IndexedDB getAll", BaseVal: median(plAll), Better: "lower",
		Note: fmt.Sprintf("%s; first call %.1f ms (baseline %.1f ms)", runs, lfAll[0], plAll[0])})
	s.add(report.Figure{Name: fmt.Sprintf("query where+orderBy+limit over %s docs", count(n)), Unit: "ms", Value: median(lfQ),
		Baseline: "plain IndexedDB getAll + JS filter/sort/slice", BaseVal: median(plQ), Better: "lower",
		Note: fmt.Sprintf("group == 3 (1/10 of the documents), orderBy score desc, limit 20; %s; first call %.1f ms (baseline %.1f ms)", runs, lfQ[0], plQ[0])})
	return nil
}

// propagation: a write in context A until the watch callback fires in
// context B (another browser context, another database), through the
// server; beside a plain WebSocket push seen by a second plain WebSocket.
func (s *suite) propagation(ctx context.Context) error {
	a, err := s.openBench("prop-A", true)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := s.openBench("prop-B", true)
	if err != nil {
		return err
	}
	defer b.close()
	if _, err := eval[bool](b, time.Minute, "B.propReceiver('prop')"); err != nil {
		return err
	}
	if _, err := eval[bool](a, time.Minute, "B.propSender('prop')"); err != nil {
		return err
	}
	offset, window, err := clockOffset(a, b)
	if err != nil {
		return err
	}
	warm := 20
	if s.o.Smoke {
		warm = 5
	}
	n := s.n.prop
	sent := make([]float64, warm+n)
	for i := range sent {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sent[i], err = eval[float64](a, 30*time.Second, fmt.Sprintf("B.propSend(%d)", i)); err != nil {
			return err
		}
		if _, err := eval[bool](b, 30*time.Second, fmt.Sprintf("B.propWait(%d, 10000)", i)); err != nil {
			return err
		}
	}
	seen, err := eval[[]float64](b, 30*time.Second, fmt.Sprintf("Array.from({length: %d}, (_, i) => B.propSeen(i))", warm+n))
	if err != nil {
		return err
	}
	lat := make([]float64, 0, n)
	for i := warm; i < warm+n; i++ {
		lat = append(lat, seen[i]-offset-sent[i])
	}
	plain, err := eval[struct {
		Fanout []float64 `json:"fanout"`
		Acks   []float64 `json:"acks"`
	}](a, 5*time.Minute, fmt.Sprintf("B.plainPropagation(%d, 'plainprop')", n))
	if err != nil {
		return err
	}
	base := "plain JS WebSocket push until a 2nd plain WebSocket gets the server's fan-out"
	note := fmt.Sprintf("%d sequential writes (after %d warm-up): upsert called in context A until B's watch callback ran, B another browser context with its own IndexedDB; the next write starts once B saw the last; "+
		"A's and B's clocks (performance.timeOrigin + now()) compared over DevTools: B %+.3f ms from A, ±%.3f ms, corrected; "+
		"baseline in one page, one clock: push_event on one socket until the events frame on the other (plain push→ack round trip p50 %.2f ms, p99 %.2f ms)",
		n, warm, offset, window/2, percentile(plain.Acks, 50), percentile(plain.Acks, 99))
	s.add(report.Figure{Name: "propagation p50", Unit: "ms", Value: percentile(lat, 50), Baseline: base, BaseVal: percentile(plain.Fanout, 50),
		Better: "lower", Target: "<= 3 ms", Note: note})
	s.add(report.Figure{Name: "propagation p99", Unit: "ms", Value: percentile(lat, 99), Baseline: base, BaseVal: percentile(plain.Fanout, 99),
		Better: "lower", Target: "<= 10 ms"})
	return nil
}

// clockOffset estimates how far b's wall clock is from a's: it reads a, b,
// a again over DevTools and keeps the tightest bracket. It returns the
// offset (b - a) and the bracket's width.
func clockOffset(a, b *tab) (offset, window float64, err error) {
	window = math.Inf(1)
	for i := 0; i < 25; i++ {
		a1, err := eval[float64](a, 5*time.Second, "B.now()")
		if err != nil {
			return 0, 0, err
		}
		bt, err := eval[float64](b, 5*time.Second, "B.now()")
		if err != nil {
			return 0, 0, err
		}
		a2, err := eval[float64](a, 5*time.Second, "B.now()")
		if err != nil {
			return 0, 0, err
		}
		if w := a2 - a1; w < window {
			window, offset = w, bt-(a1+a2)/2
		}
	}
	return offset, window, nil
}

// catchup: a client stops, a Go client writes n events, then start() until
// the last document is readable; beside plain JS fetching the same events
// over a WebSocket into one IndexedDB transaction.
func (s *suite) catchup(ctx context.Context) error {
	t, err := s.openBench("catchup", true)
	if err != nil {
		return err
	}
	defer t.close()
	n := s.n.catchup
	if _, err := eval[bool](t, time.Minute, "B.catchupPrepare('catchup')"); err != nil {
		return err
	}
	last, err := feed(ctx, s.syncURL, s.o.Token, "catchup", "c", n, 500)
	if err != nil {
		return fmt.Errorf("failed to write the events to catch up with: %w", err)
	}
	ms, err := eval[float64](t, 5*time.Minute, fmt.Sprintf("B.catchupRun(%d, %q)", n, last))
	if err != nil {
		return err
	}
	detail, err := eval[string](t, 5*time.Second, "JSON.stringify(B.catchDetail)")
	if err != nil {
		return err
	}
	plain, err := eval[float64](t, 5*time.Minute, fmt.Sprintf("B.plainCatchup(%d, 'catchup')", n))
	if err != nil {
		return err
	}
	s.add(report.Figure{Name: fmt.Sprintf("catch-up %s events", count(n)), Unit: "ms", Value: ms,
		Baseline: "plain JS WebSocket request_events pages of 1,000 + 1 IndexedDB tx", BaseVal: plain, Better: "lower", Target: s.fullOnly("<= 2000 ms"),
		Note: fmt.Sprintf("a synced client stopped; %s inserts pushed meanwhile by a Go WebSocket client (batches of 500); start() until waitSynced resolved and the last document was readable with get() (phases, ms after start(): %s); the baseline connects, authenticates, pages through request_events and puts every document in one transaction", count(n), detail)})
	return nil
}

func list(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = report.Number(x)
	}
	return strings.Join(parts, ", ")
}
