package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// do sends a REST request and decodes the JSON reply into out.
func do(t *testing.T, method, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, b, err)
		}
	}
	return res.StatusCode
}

func TestREST(t *testing.T) {
	t.Parallel()
	s := startTokens(t, servertest.WithConfig(func(c *server.Config) {
		c.MaxBatch = 3
		c.MaxFrameBytes = 2000
	}))
	u := s.URL()

	var health map[string]any
	if st := do(t, "GET", u+"/api/health", "", "", &health); st != 200 || health["status"] != "ok" {
		t.Fatalf("health: %d %v", st, health)
	}

	// A WebSocket client subscribed to todos sees REST pushes.
	ws := dial(t, s)
	ws.auth("alice")
	ws.request("todos", 0, 10)

	e1 := ev("t1", map[string]any{"title": "one"})
	b1, _ := json.Marshal(e1)
	var ack struct {
		Type         string              `json:"type"`
		EventIDs     []string            `json:"eventIds"`
		Repositories map[string][]string `json:"repositories"`
		Sequences    map[string]int64    `json:"sequences"`
	}
	if st := do(t, "POST", u+"/api/events/todos", "alice", string(b1), &ack); st != 200 || ack.Sequences[e1["_event_id"].(string)] != 1 || len(ack.Repositories["todos"]) != 1 {
		t.Fatalf("push: %d %+v", st, ack)
	}
	if m := ws.expect(protocol.TypeEvents); len(m.Events) != 1 || m.Events[0].DataID != "t1" {
		t.Fatalf("REST push fan-out: %v", ids(m.Events))
	}
	e2, e3 := ev("t2", nil), ev("t1", map[string]any{"title": "one, edited"})
	batch, _ := json.Marshal(map[string]any{"events": []any{e2, e3, e1}})
	if st := do(t, "POST", u+"/api/events/todos/batch", "alice", string(batch), &ack); st != 200 || len(ack.EventIDs) != 3 || ack.Sequences[e1["_event_id"].(string)] != 1 || ack.Sequences[e3["_event_id"].(string)] != 3 {
		t.Fatalf("batch: %d %+v", st, ack)
	}

	var page struct {
		Repository string            `json:"repository"`
		Events     []json.RawMessage `json:"events"`
		Count      int               `json:"count"`
		HasMore    bool              `json:"hasMore"`
	}
	if st := do(t, "GET", u+"/api/events/todos?seq=0&limit=1", "alice", "", &page); st != 200 || page.Repository != "todos" || page.Count != 1 || !page.HasMore {
		t.Fatalf("events page: %d %+v", st, page)
	}
	if st := do(t, "GET", u+"/api/events/todos?seq=0", "alice", "", &page); st != 200 || page.Count != 2 || page.HasMore {
		t.Fatalf("events: %d %+v (want the 2 latest)", st, page)
	}
	var one map[string]any
	if st := do(t, "GET", u+"/api/events/todos/"+e2["_event_id"].(string), "alice", "", &one); st != 200 || one["_data_id"] != "t2" || one["serverSequence"] != float64(2) {
		t.Fatalf("event: %d %v", st, one)
	}
	if st := do(t, "GET", u+"/api/events/todos/byDataId/t1", "alice", "", &one); st != 200 || one["_event_id"] != e3["_event_id"] {
		t.Fatalf("byDataId: %d %v", st, one)
	}
	var repos struct {
		Repositories []server.RepoInfo `json:"repositories"`
	}
	if st := do(t, "GET", u+"/api/repositories", "alice", "", &repos); st != 200 || len(repos.Repositories) != 1 || repos.Repositories[0].LastSequence != 3 {
		t.Fatalf("repositories: %d %+v", st, repos)
	}

	var errBody struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "GET", "/api/events/todos", "", "", 401, "unauthorized"},
		{"bad token", "GET", "/api/repositories", "nope", "", 401, "unauthorized"},
		{"forbidden read", "GET", "/api/events/notes", "todoer", "", 403, "forbidden"},
		{"forbidden write", "POST", "/api/events/todos", "reader", string(b1), 403, "forbidden"},
		{"unknown event", "GET", "/api/events/todos/nope", "alice", "", 404, "not_found"},
		{"unknown document", "GET", "/api/events/todos/byDataId/nope", "alice", "", 404, "not_found"},
		{"other namespace", "GET", "/api/events/todos/byDataId/t1", "mallory", "", 404, "not_found"},
		{"bad seq", "GET", "/api/events/todos?seq=x", "alice", "", 400, "invalid"},
		{"invalid event", "POST", "/api/events/todos", "alice", `{"_event_id":"x"}`, 400, "invalid"},
		{"malformed batch", "POST", "/api/events/todos/batch", "alice", `{"events":`, 400, "invalid"},
		{"too many", "POST", "/api/events/todos/batch", "alice", `{"events":[{},{},{},{}]}`, 400, "invalid"},
		{"body too large", "POST", "/api/events/todos", "alice", strings.Repeat(" ", 3000), 413, "too_large"},
		{"unknown endpoint", "GET", "/api/nope", "alice", "", 404, "invalid"},
	} {
		errBody.Code = ""
		if st := do(t, tc.method, u+tc.path, tc.token, tc.body, &errBody); st != tc.status || errBody.Code != tc.code || errBody.Message == "" {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, st, errBody, tc.status, tc.code)
		}
	}
	four, _ := json.Marshal(map[string]any{"events": []any{ev("a", nil), ev("b", nil), ev("c", nil), ev("d", nil)}})
	if st := do(t, "POST", u+"/api/events/todos/batch", "alice", string(four), &errBody); st != 413 || errBody.Code != "too_large" {
		t.Errorf("oversized batch: %d %+v", st, errBody)
	}
	// Nothing of the rejected requests was stored.
	if st := do(t, "GET", u+"/api/events/todos?reduce=false", "alice", "", &page); st != 200 || page.Count != 3 {
		t.Fatalf("after rejections: %d %+v", st, page)
	}

	res, err := http.Get(u + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"lfsync_connections 1", "lfsync_events_stored_total 3", `lfsync_errors_total{code="forbidden"} 2`, "lfsync_store_append_seconds_count"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

func TestRESTRateLimit(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.RatePerSecond = 0.001
		c.RateBurst = 2
	}))
	var body struct {
		Code string `json:"code"`
	}
	for i, want := range []int{200, 200, 429} {
		body.Code = ""
		e, _ := json.Marshal(ev(fmt.Sprint("d", i), nil))
		if st := do(t, "POST", s.URL()+"/api/events/todos", "x", string(e), &body); st != want {
			t.Fatalf("request %d: status %d, want %d", i, st, want)
		}
	}
	if body.Code != "rate_limited" {
		t.Fatalf("code %q", body.Code)
	}
	c := dial(t, s)
	c.auth("x")
	// A live frame may precede the reply's page (request_events subscribes
	// first): count distinct documents.
	events, _ := c.request("todos", 0, 10)
	stored := map[string]bool{}
	for _, e := range events {
		stored[e.DataID] = true
	}
	if len(stored) != 2 {
		t.Fatalf("stored %v, want 2 documents", stored)
	}
}

// TestRESTRateLimitBehindProxy: behind a trusted proxy each client (by
// X-Forwarded-For) has its own REST rate limit; from an untrusted peer the
// header is ignored, so a client cannot dodge the limit by forging it.
func TestRESTRateLimitBehindProxy(t *testing.T) {
	t.Parallel()
	limited := func(proxies []string) *servertest.Server {
		return servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
			c.RatePerSecond = 0.001
			c.RateBurst = 1
			c.TrustedProxies = proxies
		}))
	}
	get := func(s *servertest.Server, xff ...string) int {
		req, _ := http.NewRequest("GET", s.URL()+"/api/repositories", nil)
		req.Header.Set("Authorization", "Bearer x")
		for _, h := range xff {
			req.Header.Add("X-Forwarded-For", h)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	behind := limited([]string{"127.0.0.1", "10.0.0.0/8"})
	for i, tc := range []struct {
		xff  []string
		want int
	}{
		{[]string{"203.0.113.7"}, 200},
		{[]string{"198.51.100.1"}, 200},            // another client
		{[]string{"203.0.113.7"}, 429},             // the first one again
		{[]string{"1.2.3.4, 198.51.100.2"}, 200},   // the nearest untrusted hop counts, not a forged one
		{[]string{"9.9.9.9", "198.51.100.2"}, 429}, // the same client, the header split in two
		{[]string{"198.51.100.3, 10.1.2.3"}, 200},  // an inner trusted proxy is skipped
		{[]string{"198.51.100.3"}, 429},
		{nil, 200},                   // the proxy itself
		{[]string{"not-an-ip"}, 429}, // a malformed chain counts as the proxy
	} {
		if got := get(behind, tc.xff...); got != tc.want {
			t.Errorf("trusted proxy, request %d (X-Forwarded-For %q): status %d, want %d", i, tc.xff, got, tc.want)
		}
	}
	direct := limited(nil)
	if got := get(direct, "203.0.113.7"); got != 200 {
		t.Fatalf("first request: %d", got)
	}
	if got := get(direct, "198.51.100.1"); got != 429 {
		t.Fatalf("an untrusted peer's X-Forwarded-For was believed: status %d, want 429", got)
	}
	if _, err := server.New(server.Config{Store: behind.Store(), Verifier: server.OpenVerifier(), TrustedProxies: []string{"10.0.0.300/8"}}); err == nil {
		t.Fatal("an invalid trusted proxy was accepted")
	}
}
