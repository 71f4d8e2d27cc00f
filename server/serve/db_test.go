package serve_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/server/postgres/pgtest"
	"github.com/lfsync/lfsync/server/serve"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestBackendOf(t *testing.T) {
	t.Parallel()
	for db, want := range map[string]serve.Backend{
		"./data/lfsync.db":                   serve.SQLite,
		"/var/lib/lfsync/x.db":               serve.SQLite,
		"postgres.db":                        serve.SQLite,
		"file:x.db":                          serve.SQLite,
		"postgres://u:p@db:5432/lfsync":      serve.Postgres,
		"postgresql://db/lfsync?sslmode=off": serve.Postgres,
		"POSTGRES://db/lfsync":               serve.Postgres,
		"mysql://db/lfsync":                  serve.SQLite, // a path, and sqlite.Open says it is not a database
	} {
		if got := serve.BackendOf(db); got != want {
			t.Errorf("BackendOf(%q) = %s, want %s", db, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"./data/lfsync.db": "./data/lfsync.db",
		"postgres://lfsync:s3cret@db:5432/app?sslmode=require":  "postgres://lfsync:xxxxx@db:5432/app?sslmode=require",
		"postgresql://lfsync@db/app":                            "postgresql://lfsync@db/app",
		"postgres://db/app?user=lfsync&password=s3cret":         "postgres://db/app?password=xxxxx&user=lfsync",
		"postgres://lfsync:s3cret@db/app?PassWord=s3cret":       "postgres://lfsync:xxxxx@db/app?PassWord=xxxxx",
		"postgres://lfsync:s3%25cret@db/app":                    "postgres://lfsync:xxxxx@db/app",
		"postgres://lfsync:s3cret@db:notaport/app%zz":           "postgres://(unparsable URL, redacted)",
		"postgres://lfsync:s3cret@[::1]:5432/app?sslmode=allow": "postgres://lfsync:xxxxx@[::1]:5432/app?sslmode=allow",
	} {
		got := serve.Redact(in)
		if got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "s3%25cret") {
			t.Errorf("Redact(%q) leaks the password: %q", in, got)
		}
	}
}

func TestNodeAndDBSettings(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for _, tc := range []struct {
		env      map[string]string
		args     []string
		node, db string
	}{
		{nil, nil, host, "./data/lfsync.db"},
		{map[string]string{"LFSYNC_NODE": "eu-1", "LFSYNC_DB": "postgres://db/app"}, nil, "eu-1", "postgres://db/app"},
		{map[string]string{"LFSYNC_NODE": "eu-1", "LFSYNC_DB": "postgres://db/app"}, []string{"--node", "eu-2", "--db", "/tmp/x.db"}, "eu-2", "/tmp/x.db"},
		{nil, []string{"--db", "postgresql://u@db/app"}, host, "postgresql://u@db/app"},
	} {
		m := serve.NewMain()
		m.Getenv = func(k string) string { return tc.env[k] }
		if err := m.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		if m.Node != tc.node || m.DB != tc.db {
			t.Errorf("env %v args %v: node %q db %q, want %q %q", tc.env, tc.args, m.Node, m.DB, tc.node, tc.db)
		}
	}
	m := serve.NewMain()
	m.Getenv = func(k string) string {
		return map[string]string{"LFSYNC_WATCH_POLL": "250ms", "LFSYNC_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}[k]
	}
	if err := m.ParseFlags(nil); err != nil || m.WatchPoll.String() != "250ms" || strings.Join(m.Proxies, " ") != "10.0.0.0/8 192.0.2.1" {
		t.Fatalf("LFSYNC_WATCH_POLL, LFSYNC_TRUSTED_PROXIES: %v %v %v", m.WatchPoll, m.Proxies, err)
	}
	if err := m.ParseFlags([]string{"--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::1"}); err != nil || strings.Join(m.Proxies, " ") != "127.0.0.1 ::1" {
		t.Fatalf("--trusted-proxy: %v %v", m.Proxies, err)
	}
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestRunSQLiteNamesNode: the SQLite backend is chosen for a path, and the
// node's name is in every log line, /api/health and /metrics.
func TestRunSQLiteNamesNode(t *testing.T) {
	t.Parallel()
	m, logs := newMain(t, nil, "--open", "--node", "edge-7", "--log-format", "json")
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.Addr()
	_, body := get(t, base+"/api/health", nil)
	if !strings.Contains(body, `"node":"edge-7"`) {
		t.Fatalf("health: %s", body)
	}
	if _, body := get(t, base+"/metrics", nil); !strings.Contains(body, `lfsync_node_info{node="edge-7"} 1`) {
		t.Fatalf("metrics lack the node:\n%s", body)
	}
	m.Close()
	for _, l := range logLines(t, logs.String()) {
		if l["node"] != "edge-7" {
			t.Errorf("log line without the node: %v", l)
		}
		if l["msg"] == "lfsync listening" && l["backend"] != "sqlite" {
			t.Errorf("listening line: %v, want backend sqlite", l)
		}
	}
}

// TestRunPostgres: a postgres:// URL selects PostgreSQL; the password never
// reaches the logs; pushes are stored in the database and connections carry
// application_name lfsync/<node>.
func TestRunPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t) // trust authentication: any password is accepted
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "Pa55-w0rd")
	m, logs := newMain(t, nil, "--token", "tok", "--node", "pg-1", "--log-format", "json", "--db", u.String())
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.Addr()
	res := post(t, base+"/api/events/todos", "tok", `{"_event_id":"01890000-0000-7000-8000-000000000001","_operation":0,"_created_at":"2026-01-02T03:04:05.000Z","_data_id":"d1","_data":{"id":"d1"}}`)
	if !strings.Contains(res, `"01890000-0000-7000-8000-000000000001":1`) {
		t.Fatalf("push: %s", res)
	}
	if _, body := get(t, base+"/api/events/todos?seq=0", map[string]string{"Authorization": "Bearer tok"}); !strings.Contains(body, "01890000-0000-7000-8000-000000000001") {
		t.Fatalf("read back: %s", body)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if strings.Contains(logs.String(), "Pa55-w0rd") {
		t.Fatalf("the logs hold the password:\n%s", logs)
	}
	found := false
	for _, l := range logLines(t, logs.String()) {
		if l["msg"] == "lfsync listening" {
			found = true
			if l["backend"] != "postgres" || !strings.Contains(l["db"].(string), ":xxxxx@") {
				t.Errorf("listening line: %v, want backend postgres and the password redacted", l)
			}
		}
	}
	if !found {
		t.Fatalf("no listening line:\n%s", logs)
	}
}

// TestRunPostgresFailureHidesPassword: a database that cannot be reached
// fails Run with an error that names it without its password.
func TestRunPostgresFailureHidesPassword(t *testing.T) {
	t.Parallel()
	m, logs := newMain(t, nil, "--open", "--db", "postgres://lfsync:Pa55-w0rd@127.0.0.1:1/nodb?connect_timeout=2&sslmode=disable")
	err := m.Run(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("Run succeeded without a database")
	}
	if strings.Contains(err.Error(), "Pa55-w0rd") || strings.Contains(logs.String(), "Pa55-w0rd") {
		t.Fatalf("the password leaked: %v\n%s", err, logs)
	}
	t.Logf("Run: %v", err)
	if !strings.Contains(err.Error(), "lfsync:xxxxx@127.0.0.1:1/nodb") {
		t.Fatalf("error does not name the database: %v", err)
	}
	// A SQLite path in a directory that cannot be made fails clearly too.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, _ := newMain(t, nil, "--open", "--db", filepath.Join(file, "x.db"))
	if err := m2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "database directory") {
		if err == nil {
			m2.Close()
		}
		t.Fatalf("Run with an impossible SQLite path: %v", err)
	}
}

// post sends a JSON body with a bearer token and returns the response body;
// it fails the test unless the status is 200.
func post(t *testing.T, url, token, body string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}
