package serve_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/server/serve"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newMain(t *testing.T, env map[string]string, args ...string) (*serve.Main, *syncBuffer) {
	t.Helper()
	m := serve.NewMain()
	logs := &syncBuffer{}
	m.Stderr = logs
	m.Getenv = func(k string) string { return env[k] }
	base := []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "sub", "dir", "lfsync.db")}
	if err := m.ParseFlags(append(base, args...)); err != nil {
		t.Fatal(err)
	}
	return m, logs
}

func get(t *testing.T, url string, h map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestRunOpenHealthAndShutdown(t *testing.T) {
	t.Parallel()
	m, logs := newMain(t, nil, "--open")
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-m.Ready()
	if !strings.Contains(logs.String(), "AUTHENTICATION IS DISABLED") {
		t.Fatalf("--open did not log the warning:\n%s", logs)
	}
	base := "http://" + m.Addr()
	if res, body := get(t, base+"/api/health", nil); res.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("health: %d %s", res.StatusCode, body)
	}
	// A WebSocket client is closed with "going away" on shutdown.
	ws, _, err := websocket.Dial(t.Context(), "ws://"+m.Addr()+"/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(t.Context(), websocket.MessageText, []byte(`{"type":"auth"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(t.Context()); err != nil || !strings.Contains(string(b), "auth_success") {
		t.Fatalf("auth: %s %v", b, err)
	}
	closed := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
		}
	}()
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-m.Done()
	if st := <-closed; st != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want going away", st)
	}
	if _, err := http.Get(base + "/api/health"); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestRunCancelContextShutsDown(t *testing.T) {
	t.Parallel()
	m, _ := newMain(t, map[string]string{"LFSYNC_TOKEN": "tok=ann@acme"})
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-m.Done()
	m.Close()
}

func TestRunRefusesWithoutAuth(t *testing.T) {
	t.Parallel()
	m, _ := newMain(t, nil)
	err := m.Run(context.Background())
	if !errors.Is(err, serve.ErrNoAuth) {
		t.Fatalf("Run without auth: %v, want ErrNoAuth", err)
	}
	if !strings.Contains(err.Error(), "--open") {
		t.Fatalf("error does not say how to fix it: %v", err)
	}
	m2, _ := newMain(t, nil, "--open", "--token", "x")
	if err := m2.Run(context.Background()); err == nil {
		m2.Close()
		t.Fatal("--open with --token started")
	}
	m3, _ := newMain(t, nil, "--jwt-secret", "short")
	if err := m3.Run(context.Background()); err == nil {
		m3.Close()
		t.Fatal("a short JWT secret was accepted")
	}
}

func TestEnvAndFlags(t *testing.T) {
	t.Parallel()
	m := serve.NewMain()
	m.Getenv = func(k string) string {
		return map[string]string{"LFSYNC_ADDR": ":9999", "LFSYNC_JWT_SECRET": "s", "LFSYNC_ORIGINS": "a.com, b.com", "LFSYNC_RATE": "5", "LFSYNC_OPEN": "true"}[k]
	}
	if err := m.ParseFlags([]string{"--rate", "7", "--origin", "c.com", "--origins", "d.com,e.com"}); err != nil {
		t.Fatal(err)
	}
	if m.Listen != ":9999" || m.JWTSecret != "s" || m.RatePerSecond != 7 || !m.Open || strings.Join(m.Origins, ",") != "c.com,d.com,e.com" {
		t.Fatalf("settings %+v", m)
	}
	m = serve.NewMain()
	m.Getenv = func(k string) string {
		return map[string]string{"LFSYNC_ORIGINS": "a.com, b.com", "LFSYNC_RATE": "x"}[k]
	}
	if err := m.ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "LFSYNC_RATE") {
		t.Fatalf("bad env: %v", err)
	}
	m = serve.NewMain()
	m.Stderr = io.Discard
	if err := m.ParseFlags([]string{"--nope"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestRunServesWebAndAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "index.html", "<h1>hi</h1>")
	m, _ := newMain(t, nil, "--token", "tok", "--web", dir)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	if res, body := get(t, base+"/", nil); res.StatusCode != 200 || body != "<h1>hi</h1>" {
		t.Fatalf("/: %d %q", res.StatusCode, body)
	}
	if res, _ := get(t, base+"/api/repositories", nil); res.StatusCode != 401 {
		t.Fatalf("/api/repositories without token: %d", res.StatusCode)
	}
	if res, body := get(t, base+"/api/repositories", map[string]string{"Authorization": "Bearer tok"}); res.StatusCode != 200 {
		t.Fatalf("/api/repositories: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, base+"/metrics", nil); res.StatusCode != 200 || !strings.Contains(body, "lfsync_connections") {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
}
