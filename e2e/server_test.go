package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/serve"
	"github.com/lfsync/lfsync/server/servertest"
)

// serverOptions configures startServer.
type serverOptions struct {
	// tokens switches the server to static-token mode: token -> user, each
	// user may read and write every repository. Empty means open mode.
	tokens map[string]string
}

// testServer is the origin the browser talks to: a front listener that
// serves the web root itself (lfsync's static handler, as `lfsync serve
// --web` does) and forwards /sync and /api/ to the real sync server. The
// front stays up when the sync server is stopped, like a CDN in front of an
// API, so pages still load and IndexedDB (per origin) stays the same while
// the sync server is down.
type testServer struct {
	backend *servertest.Server
	front   *http.Server
	url     string
	token   string // a valid token for REST calls; "" in open mode
}

func startServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	var opts []servertest.Option
	s := &testServer{}
	if len(o.tokens) > 0 {
		tokens := make(map[string]server.Principal, len(o.tokens))
		for tok, user := range o.tokens {
			tokens[tok] = server.Principal{User: user, Read: []string{"*"}, Write: []string{"*"}}
			s.token = tok
		}
		opts = append(opts, servertest.WithTokens(tokens))
	} else {
		opts = append(opts, servertest.WithOpen())
	}
	s.backend = servertest.Start(t, opts...)

	static, err := serve.Static(webRoot)
	if err != nil {
		t.Fatalf("failed to serve %s: %v", webRoot, err)
	}
	backendURL, err := url.Parse(s.backend.URL())
	if err != nil {
		t.Fatal(err)
	}
	// The proxy keeps the browser's Host header, so the sync server's
	// same-origin check sees the page's own origin.
	proxy := httputil.NewSingleHostReverseProxy(backendURL)
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "sync server unavailable", http.StatusBadGateway)
	}
	mux := http.NewServeMux()
	mux.Handle("/sync", proxy)
	mux.Handle("/api/", proxy)
	mux.Handle("/", static)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	s.url = "http://" + ln.Addr().String()
	s.front = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go s.front.Serve(ln)
	t.Cleanup(func() { s.front.Close() })
	return s
}

// URL is the page origin, http://127.0.0.1:port.
func (s *testServer) URL() string { return s.url }

// Stop stops the sync server (sockets dropped, database kept); pages still
// load.
func (s *testServer) Stop() { s.backend.Stop() }

// Restart starts the sync server again on the same port and database.
func (s *testServer) Restart() { s.backend.Restart() }

// api calls the sync server's REST mirror directly.
func (s *testServer) api(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("failed to encode the request: %v", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.backend.URL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: failed to read the response: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// pushTodos inserts todos through POST /api/events/todos/batch, at most
// 1000 events per request (the server's default MaxBatch).
func (s *testServer) pushTodos(t *testing.T, todos []todo) {
	t.Helper()
	now := time.Now()
	for len(todos) > 0 {
		n := min(len(todos), 1000)
		events := make([]protocol.Event, n)
		for i, td := range todos[:n] {
			id, err := uuid.NewV7()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(map[string]any{
				"id": td.ID, "title": td.Title, "done": td.Done,
				"createdAt": now.UnixMilli() + int64(i), "updatedAt": now.UnixMilli(),
			})
			events[i] = protocol.Event{ID: id.String(), Operation: protocol.OpInsert, CreatedAt: now, DataID: td.ID, Data: data}
		}
		if code, body := s.api(t, http.MethodPost, "/api/events/todos/batch", map[string]any{"events": events}); code != http.StatusOK {
			t.Fatalf("POST /api/events/todos/batch: %d %s", code, body)
		}
		todos = todos[n:]
	}
}

// doc returns the server's current version of a document, from its latest
// event; false when the server has none or its latest is a delete.
func (s *testServer) doc(t *testing.T, repo, id string) (todo, bool) {
	t.Helper()
	code, body := s.api(t, http.MethodGet, "/api/events/"+url.PathEscape(repo)+"/byDataId/"+url.PathEscape(id), nil)
	if code == http.StatusNotFound {
		return todo{}, false
	}
	if code != http.StatusOK {
		t.Fatalf("GET byDataId %s/%s: %d %s", repo, id, code, strings.TrimSpace(string(body)))
	}
	var e protocol.Event
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("GET byDataId %s/%s: %v in %s", repo, id, err, body)
	}
	if e.Operation == protocol.OpDelete {
		return todo{}, false
	}
	var td todo
	if err := json.Unmarshal(e.Data, &td); err != nil {
		t.Fatalf("document %s/%s: %v in %s", repo, id, err, e.Data)
	}
	if td.ID == "" {
		td.ID = e.DataID
	}
	return td, true
}

// waitDoc polls the server until it holds the document and match accepts
// it (nil accepts any), or fails the test after syncTimeout.
func (s *testServer) waitDoc(t *testing.T, repo, id string, match func(todo) bool) todo {
	t.Helper()
	deadline := time.Now().Add(syncTimeout)
	for {
		td, ok := s.doc(t, repo, id)
		if ok && (match == nil || match(td)) {
			return td
		}
		if time.Now().After(deadline) {
			t.Fatalf("server: after %v, %s/%s is %+v (present %v)", syncTimeout, repo, id, td, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
