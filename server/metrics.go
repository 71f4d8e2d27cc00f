package server

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// metrics are the server's counters, exported at /metrics in the Prometheus
// text format.
type metrics struct {
	connections  atomic.Int64 // live WebSocket connections
	accepted     atomic.Int64 // WebSocket connections accepted
	eventsIn     atomic.Int64 // events received in pushes (incl. re-pushes)
	eventsStored atomic.Int64 // events newly stored
	eventsOut    atomic.Int64 // events sent to clients
	acks         atomic.Int64 // ack frames and REST push replies
	framesIn     atomic.Int64
	framesOut    atomic.Int64
	overflows    atomic.Int64 // connections dropped for a full send queue
	advances     atomic.Int64 // store notifications of appends (any node)
	gapSkips     atomic.Int64 // sequences fan-out gave up waiting for

	mu     sync.Mutex
	errors map[protocol.Code]int64

	appendLatency histogram
}

func newMetrics() *metrics {
	return &metrics{errors: make(map[protocol.Code]int64), appendLatency: newHistogram()}
}

func (m *metrics) countError(code protocol.Code) {
	m.mu.Lock()
	m.errors[code]++
	m.mu.Unlock()
}

// histogram is a fixed-bucket latency histogram in seconds.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []int64 // cumulative is computed on export
	sum    float64
	count  int64
}

func newHistogram() histogram {
	return histogram{
		bounds: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		counts: make([]int64, 12),
	}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bounds {
		if s <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += s
	h.count++
}

func (m *metrics) write(w io.Writer, node string) {
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	if node != "" {
		fmt.Fprintf(w, "# HELP lfsync_node_info The name of this server node (--node).\n# TYPE lfsync_node_info gauge\nlfsync_node_info{node=%q} 1\n", node)
	}
	fmt.Fprintf(w, "# HELP lfsync_connections Live WebSocket connections.\n# TYPE lfsync_connections gauge\nlfsync_connections %d\n", m.connections.Load())
	counter("lfsync_connections_accepted_total", "WebSocket connections accepted.", m.accepted.Load())
	counter("lfsync_events_in_total", "Events received in pushes, re-pushes included.", m.eventsIn.Load())
	counter("lfsync_events_stored_total", "Events newly stored.", m.eventsStored.Load())
	counter("lfsync_events_out_total", "Events sent to clients.", m.eventsOut.Load())
	counter("lfsync_acks_total", "Acks sent.", m.acks.Load())
	counter("lfsync_frames_in_total", "WebSocket frames received.", m.framesIn.Load())
	counter("lfsync_frames_out_total", "WebSocket frames sent.", m.framesOut.Load())
	counter("lfsync_send_queue_overflows_total", "Connections dropped because their send queue overflowed.", m.overflows.Load())
	counter("lfsync_store_advances_total", "Notifications from a shared store that a repository's log grew (appends of any node).", m.advances.Load())
	counter("lfsync_fanout_gap_skips_total", "Sequences live fan-out stopped waiting for (clients catch up on their next request).", m.gapSkips.Load())

	m.mu.Lock()
	codes := make([]string, 0, len(m.errors))
	for c := range m.errors {
		codes = append(codes, string(c))
	}
	sort.Strings(codes)
	fmt.Fprintf(w, "# HELP lfsync_errors_total Error replies by code.\n# TYPE lfsync_errors_total counter\n")
	for _, c := range codes {
		fmt.Fprintf(w, "lfsync_errors_total{code=%q} %d\n", c, m.errors[protocol.Code(c)])
	}
	m.mu.Unlock()

	h := &m.appendLatency
	h.mu.Lock()
	fmt.Fprintf(w, "# HELP lfsync_store_append_seconds Store append latency.\n# TYPE lfsync_store_append_seconds histogram\n")
	var cum int64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "lfsync_store_append_seconds_bucket{le=\"%g\"} %d\n", b, cum)
	}
	fmt.Fprintf(w, "lfsync_store_append_seconds_bucket{le=\"+Inf\"} %d\n", h.count)
	fmt.Fprintf(w, "lfsync_store_append_seconds_sum %g\nlfsync_store_append_seconds_count %d\n", h.sum, h.count)
	h.mu.Unlock()
}

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w, s.cfg.Node)
}
