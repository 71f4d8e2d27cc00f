//go:build !js

package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lfsync/lfsync/server/servertest"
)

// Fault tests: clients reach the server through toxiproxy, run in-process,
// which delays, resets and cuts their connections while they write. Once
// the faults are removed everything must converge with nothing lost or
// duplicated.

// faultProxy is a TCP proxy between the clients and the server that can
// inject network faults (toxics).
type faultProxy struct {
	proxy *toxiproxy.Proxy
	// wsURL is the server's WebSocket endpoint through the proxy.
	wsURL string
}

// newFaultProxy starts a proxy on a loopback port in front of srv; it stops
// when the test ends.
func newFaultProxy(t testing.TB, srv *servertest.Server) *faultProxy {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	upstream := strings.TrimPrefix(srv.URL(), "http://")
	p := toxiproxy.NewProxy(api, strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("failed to start the fault proxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{proxy: p, wsURL: "ws://" + p.Listen + "/sync"}
}

// add injects a toxic into both directions (stream "upstream" is client to
// server, "downstream" server to client) and returns its names.
func (f *faultProxy) add(t testing.TB, name, typ string, attrs map[string]any, streams ...string) []string {
	t.Helper()
	if len(streams) == 0 {
		streams = []string{"upstream", "downstream"}
	}
	var names []string
	for _, s := range streams {
		spec, err := json.Marshal(map[string]any{
			"name": name + "_" + s, "type": typ, "stream": s, "toxicity": 1.0, "attributes": attrs,
		})
		if err != nil {
			t.Fatalf("marshal toxic: %v", err)
		}
		if _, err := f.proxy.Toxics.AddToxicJson(strings.NewReader(string(spec))); err != nil {
			t.Fatalf("failed to add toxic %s: %v", name, err)
		}
		names = append(names, name+"_"+s)
	}
	return names
}

// remove takes toxics out.
func (f *faultProxy) remove(t testing.TB, names []string) {
	t.Helper()
	for _, n := range names {
		if err := f.proxy.Toxics.RemoveToxic(context.Background(), n); err != nil {
			t.Fatalf("failed to remove toxic %s: %v", n, err)
		}
	}
}

// fault is a sequence of network troubles the writers write through.
type fault struct {
	name string
	// phases each add toxics, which stay while the writers make 2*writes
	// writes and are then removed.
	phases []func(t testing.TB, f *faultProxy) []string
	writes int
}

func toxLatency(ms, jitter int) func(testing.TB, *faultProxy) []string {
	return func(t testing.TB, f *faultProxy) []string {
		return f.add(t, "latency", "latency", map[string]any{"latency": ms, "jitter": jitter})
	}
}

func toxResetPeer(afterMS int) func(testing.TB, *faultProxy) []string {
	return func(t testing.TB, f *faultProxy) []string {
		return f.add(t, "reset", "reset_peer", map[string]any{"timeout": afterMS}, "upstream")
	}
}

func toxCut(up, down int) func(testing.TB, *faultProxy) []string {
	return func(t testing.TB, f *faultProxy) []string {
		return append(
			f.add(t, "cut_up", "limit_data", map[string]any{"bytes": up}, "upstream"),
			f.add(t, "cut_down", "limit_data", map[string]any{"bytes": down}, "downstream")...)
	}
}

func toxSlicer(avg, variation, delayUS int) func(testing.TB, *faultProxy) []string {
	return func(t testing.TB, f *faultProxy) []string {
		return f.add(t, "slicer", "slicer", map[string]any{"average_size": avg, "size_variation": variation, "delay": delayUS})
	}
}

// TestFault runs writers through each kind of fault, then removes it and
// checks convergence: lost = 0, duplicates = 0, divergence = 0.
func TestFault(t *testing.T) {
	faults := []fault{
		{name: "latency", writes: 30, phases: []func(testing.TB, *faultProxy) []string{toxLatency(40, 20)}},
		{name: "reset_peer", writes: 15, phases: []func(testing.TB, *faultProxy) []string{
			toxResetPeer(0), toxResetPeer(20), toxResetPeer(80),
		}},
		{name: "cut_frames", writes: 10, phases: []func(testing.TB, *faultProxy) []string{
			toxCut(120, 4000), toxCut(400, 200), toxCut(900, 700), toxCut(5000, 1500),
		}},
		{name: "sliced_frames", writes: 30, phases: []func(testing.TB, *faultProxy) []string{toxSlicer(7, 3, 20)}},
		{name: "mixed", writes: 10, phases: []func(testing.TB, *faultProxy) []string{
			toxLatency(20, 10), toxResetPeer(30), toxCut(300, 500), toxSlicer(16, 8, 0),
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
			total := fl.writes * len(fl.phases) * 2
			w := startWriters(t, nodes, repoTodos, (total+fl.writes)/len(nodes)+1, 2*time.Millisecond)
			for _, phase := range fl.phases {
				toxics := phase(t, proxy)
				w.waitProgress(t, fl.writes)
				// A server-side close in the middle of the fault, too.
				srv.CloseConnections()
				w.waitProgress(t, fl.writes)
				proxy.remove(t, toxics)
			}
			w.wait(t)
			waitConverged(t, srv, nodes, repoTodos)
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
	proxy := newFaultProxy(t, srv)
	proxy.add(t, "slicer", "slicer", map[string]any{"average_size": 3, "size_variation": 2, "delay": 0})
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
