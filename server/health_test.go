package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// health reads /api/health.
func health(t *testing.T, base string) (status int, body map[string]any) {
	t.Helper()
	res, err := http.Get(base + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("health body: %v", err)
	}
	return res.StatusCode, body
}

// connections reads the connection count of /api/health.
func connections(t *testing.T, base string) int {
	t.Helper()
	_, body := health(t, base)
	n, ok := body["connections"].(float64)
	if !ok {
		t.Fatalf("health has no connections: %v", body)
	}
	return int(n)
}

// waitConnections polls /api/health until it reports want connections, and
// fails with the last count if that does not happen (a hang guard, not a
// speed assertion).
func waitConnections(t *testing.T, base string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := connections(t, base)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/health reports %d connections, want %d", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHealthCountsLiveConnections: /api/health's "connections" is the
// number of open WebSockets, authenticated or not; refused upgrades and
// plain HTTP requests never count; closed and dropped sockets stop counting.
func TestHealthCountsLiveConnections(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.AllowedOrigins = []string{"app.example.com"}
	}))
	base := s.URL()
	if got := connections(t, base); got != 0 {
		t.Fatalf("fresh server reports %d connections", got)
	}

	// Three authenticated sockets and one that never authenticates: a
	// socket the server answered on is counted.
	var cs []*client
	for range 3 {
		c := dial(t, s)
		c.auth("x")
		cs = append(cs, c)
	}
	silent := dial(t, s)
	waitConnections(t, base, 4)

	// A refused upgrade (wrong Origin) and REST calls leave the count alone.
	ctx := t.Context()
	h := http.Header{"Origin": {"https://evil.example.org"}}
	if ws, _, err := websocket.Dial(ctx, s.WSURL(), &websocket.DialOptions{HTTPHeader: h}); err == nil {
		ws.CloseNow()
		t.Fatal("upgrade from a foreign origin was accepted")
	}
	for range 3 {
		res, err := http.Get(base + "/api/repositories")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if got := connections(t, base); got != 4 {
		t.Fatalf("after a refused upgrade and REST calls: %d connections, want 4", got)
	}

	// A clean close and an abrupt drop each take one off.
	if err := cs[0].ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, base, 3)
	silent.ws.CloseNow()
	waitConnections(t, base, 2)

	// The server dropping them all leaves none.
	s.CloseConnections()
	waitConnections(t, base, 0)
	if got := s.Connections(); got != 0 {
		t.Fatalf("Server.Connections() = %d after every socket closed", got)
	}
}

// TestHealthAndMetricsNameTheNode: Config.Node appears in /api/health and
// as the node label of lfsync_node_info in /metrics.
func TestHealthAndMetricsNameTheNode(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Node = "eu-1" }))
	status, body := health(t, s.URL())
	if status != 200 || body["node"] != "eu-1" || body["status"] != "ok" {
		t.Fatalf("health: %d %v, want ok with node eu-1", status, body)
	}
	res, err := http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(b), `lfsync_node_info{node="eu-1"} 1`) {
		t.Fatalf("/metrics lacks the node:\n%s", b)
	}

	// Without a name, neither says one.
	s2 := servertest.Start(t)
	if _, body := health(t, s2.URL()); body["node"] != nil {
		t.Fatalf("health names node %v without Config.Node", body["node"])
	}
}
