package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server/servertest"
)

// Fault tests: clients reach the server through toxiproxy, run in-process,
// which delays, resets and cuts their connections while they write. Once
// the faults are gone everything must converge with nothing lost or
// duplicated.

// faultProxy is a TCP proxy between the clients and the server that injects
// network faults (toxics). Toxics are only ever set on a proxy that has no
// connection yet: toxiproxy v2.5.0 can deadlock adding or removing a toxic
// on a link whose peer has gone, so each phase starts a fresh proxy on the
// same address, and stopping the old one drops its connections.
type faultProxy struct {
	api      *toxiproxy.ApiServer
	upstream string
	addr     string // host:port, the same for every phase
	// wsURL is the server's WebSocket endpoint through the proxy.
	wsURL string

	mu     sync.Mutex
	proxy  *toxiproxy.Proxy
	phases int
}

// toxic describes one toxiproxy toxic: stream "upstream" is client to
// server, "downstream" server to client.
type toxic struct {
	kind   string
	stream string
	attrs  map[string]any
}

// newFaultProxy starts a proxy without toxics on a loopback port in front
// of srv; it stops when the test ends.
func newFaultProxy(t testing.TB, srv *servertest.Server, toxics ...toxic) *faultProxy {
	t.Helper()
	f := &faultProxy{
		api:      toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		upstream: strings.TrimPrefix(srv.URL(), "http://"),
		addr:     "127.0.0.1:0",
	}
	f.phase(t, toxics...)
	f.wsURL = "ws://" + f.addr + "/sync"
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.proxy.Stop()
	})
	return f
}

// phase drops every connection through the proxy and goes on with the given
// toxics (none: a clean network) for the connections that follow.
func (f *faultProxy) phase(t testing.TB, toxics ...toxic) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proxy != nil {
		f.proxy.Stop()
	}
	f.phases++
	p := toxiproxy.NewProxy(f.api, fmt.Sprintf("%s_%d", strings.ReplaceAll(t.Name(), "/", "_"), f.phases), f.addr, f.upstream)
	for i, tx := range toxics {
		spec, err := json.Marshal(map[string]any{
			"name": fmt.Sprintf("%s_%s_%d", tx.kind, tx.stream, i), "type": tx.kind, "stream": tx.stream,
			"toxicity": 1.0, "attributes": tx.attrs,
		})
		if err != nil {
			t.Fatalf("marshal toxic: %v", err)
		}
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(string(spec))); err != nil {
			t.Fatalf("failed to add toxic %s: %v", tx.kind, err)
		}
	}
	// The old listener's port may take a moment to be free again.
	var err error
	for range 50 {
		if err = p.Start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("failed to start the fault proxy on %s: %v", f.addr, err)
	}
	f.proxy = p
	f.addr = p.Listen
}

func both(kind string, attrs map[string]any) []toxic {
	return []toxic{{kind, "upstream", attrs}, {kind, "downstream", attrs}}
}

func toxLatency(ms, jitter int) []toxic {
	return both("latency", map[string]any{"latency": ms, "jitter": jitter})
}

// toxResetPeer resets each connection afterMS after its first client data.
func toxResetPeer(afterMS int) []toxic {
	return []toxic{{"reset_peer", "upstream", map[string]any{"timeout": afterMS}}}
}

// toxCut closes each connection after up bytes from the client or down
// bytes from the server, usually in the middle of a frame.
func toxCut(up, down int) []toxic {
	return []toxic{
		{"limit_data", "upstream", map[string]any{"bytes": up}},
		{"limit_data", "downstream", map[string]any{"bytes": down}},
	}
}

// toxSlicer splits the stream into chunks of about avg bytes.
func toxSlicer(avg, variation, delayUS int) []toxic {
	return both("slicer", map[string]any{"average_size": avg, "size_variation": variation, "delay": delayUS})
}

func join(ts ...[]toxic) []toxic {
	var out []toxic
	for _, t := range ts {
		out = append(out, t...)
	}
	return out
}

// TestFault runs writers through each kind of fault, phase after phase,
// then restores a clean network and checks convergence: lost = 0,
// duplicates = 0, divergence = 0.
func TestFault(t *testing.T) {
	faults := []struct {
		name   string
		phases [][]toxic
	}{
		{name: "latency", phases: [][]toxic{toxLatency(40, 20)}},
		{name: "reset_peer", phases: [][]toxic{toxResetPeer(0), toxResetPeer(20), toxResetPeer(80)}},
		{name: "cut_frames", phases: [][]toxic{toxCut(120, 4000), toxCut(400, 200), toxCut(900, 700), toxCut(5000, 1500)}},
		{name: "sliced_frames", phases: [][]toxic{toxSlicer(7, 3, 20)}},
		{name: "mixed", phases: [][]toxic{
			toxLatency(20, 10), join(toxResetPeer(30), toxSlicer(16, 8, 0)), join(toxCut(300, 500), toxLatency(5, 5)),
		}},
	}
	for _, fl := range faults {
		t.Run(fl.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			proxy := newFaultProxy(t, srv)
			var nodes []*node
			for i := range 3 {
				nodes = append(nodes, newNode(t, srv, fmt.Sprintf("c%d", i), []string{repoTodos}, withURL(proxy.wsURL)))
			}
			waitConverged(t, srv, nodes, repoTodos)
			w := startWriters(t, nodes, repoTodos, 1<<30, 3*time.Millisecond)
			for _, toxics := range fl.phases {
				proxy.phase(t, toxics...)
				w.waitProgress(t, 10)
				time.Sleep(150 * time.Millisecond) // let the fault bite: pacing, not an assertion
				// A server-side close in the middle of the fault, too.
				srv.CloseConnections()
				w.waitProgress(t, 10)
				time.Sleep(150 * time.Millisecond)
			}
			w.stop()
			proxy.phase(t) // a clean network
			w.wait(t)
			waitConverged(t, srv, nodes, repoTodos)
			var reconnects, failed int64
			for _, n := range nodes {
				m := n.c().Metrics()
				reconnects += m.Reconnects
				failed += m.FailedSends
			}
			t.Logf("%d writes; clients reconnected %d times, %d failed sends", w.count(), reconnects, failed)
			requireLWW(t, srv, nodes, repoTodos)
			requireClean(t, srv, nodes, repoTodos)
		})
	}
}

// TestFaultSlicedFramesConverge keeps frames sliced into a few bytes each
// while checking convergence: slicing is no fault for a correct reader.
func TestFaultSlicedFramesConverge(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	proxy := newFaultProxy(t, srv, toxSlicer(3, 2, 0)...)
	a := newNode(t, srv, "a", []string{repoTodos}, withURL(proxy.wsURL))
	b := newNode(t, srv, "b", []string{repoTodos}, withURL(proxy.wsURL))
	nodes := []*node{a, b}
	want := make(replica)
	for i := range 20 {
		id := fmt.Sprintf("s%d", i)
		want[id] = a.put(repoTodos, id, map[string]any{"title": strings.Repeat("sliced ", i)})
	}
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, b, repoTodos, want)
	requireClean(t, srv, nodes, repoTodos)
}

// freezeProxy forwards TCP connections to the server until frozen: then
// every connection through it, open or new, goes silent without closing —
// a dead network path that only a heartbeat can notice. Thawing lets new
// connections through; the frozen ones stay silent until the test ends.
type freezeProxy struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	frozen chan struct{} // closed to freeze the current generation
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezeProxy(t testing.TB, upstream string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	p := &freezeProxy{ln: ln, upstream: upstream, frozen: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezeProxy) url() string { return "ws://" + p.ln.Addr().String() + "/sync" }

func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		frozen := p.frozen
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, down, frozen)
		go p.pipe(down, up, frozen)
	}
}

// pipe copies src to dst until either fails, or forever nothing once
// frozen is closed.
func (p *freezeProxy) pipe(dst, src net.Conn, frozen chan struct{}) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
			// Swallow everything, keep both ends open.
			if err == nil {
				continue
			}
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			} else if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// freeze silences every connection made so far and every new one.
func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.frozen)
}

// thaw lets new connections through again.
func (p *freezeProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = make(chan struct{})
}

// TestFaultDeadConnectionHeartbeat silences the network path without
// closing it: only the client's heartbeat can tell. The client must leave
// the dead socket, and once the path works again sync what was written
// meanwhile.
func TestFaultDeadConnectionHeartbeat(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	proxy := newFreezeProxy(t, srv.Addr())
	fast := func(o *core.Options) {
		o.URL = proxy.url()
		o.Heartbeat = core.Heartbeat{Interval: 200 * time.Millisecond, Timeout: 400 * time.Millisecond}
		o.ConnectTimeout = time.Second
	}
	a := newNode(t, srv, "a", []string{repoTodos}, fast)
	b := newNode(t, srv, "b", []string{repoTodos}, fast)
	nodes := []*node{a, b}
	waitConverged(t, srv, nodes, repoTodos)

	proxy.freeze()
	want := make(replica)
	for i := range 5 {
		id := fmt.Sprintf("f%d", i)
		want[id] = a.put(repoTodos, id, map[string]any{"v": i})
	}
	awaitCond(t, "both clients to notice the dead connection", func() string {
		var msgs []string
		for _, n := range nodes {
			if st := n.c().Status(); st.State == core.StateConnected {
				msgs = append(msgs, fmt.Sprintf("%s: still %s on a silent socket", n.name, st.State))
			}
		}
		return strings.Join(msgs, "\n")
	})
	proxy.thaw()
	waitConverged(t, srv, nodes, repoTodos)
	requireReplica(t, b, repoTodos, want)
	requireClean(t, srv, nodes, repoTodos)
}
