package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// dirPrefix starts the name of every directory New and NewDB make; the
// owning process's id follows, so a later run can remove what a killed run
// left behind.
const dirPrefix = "lfsync-pgtest-"

// New starts a cluster of its own for t in a new temporary directory, and
// stops it and removes the directory when t ends. It skips t when
// PostgreSQL is unavailable, and fails it instead when CI=true.
//
// The clusters of New and NewDB run with fsync=off and
// full_page_writes=off, which only an operating system crash would make
// matter: commits still reach the kernel before they are acknowledged, so
// killing postgres or a test's server loses nothing acknowledged. Use
// Start for a cluster with PostgreSQL's durability defaults (benchmarks).
func New(t testing.TB) *Cluster {
	t.Helper()
	c, err := startTemp(context.Background())
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("%v", err)
		}
		if err := os.RemoveAll(c.dir); err != nil {
			t.Errorf("pgtest: failed to remove %s: %v", c.dir, err)
		}
	})
	return c
}

// shared is the cluster NewDB hands out databases of.
var shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
	n   int // databases created
}

// NewDB creates a fresh database for t in the test binary's shared cluster,
// started by the first call, and returns its DSN. It skips t when
// PostgreSQL is unavailable, and fails it instead when CI=true.
//
// The shared cluster lives until the process ends: Main (or StopShared in
// a TestMain of one's own) stops it and removes its directory. Without
// them the server still shuts down when the test binary exits, and the
// next run removes the directory left behind. Databases are not dropped.
func NewDB(t testing.TB) string {
	t.Helper()
	shared.mu.Lock()
	if shared.c == nil && shared.err == nil {
		removeStale()
		shared.c, shared.err = startTemp(context.Background())
	}
	c, err := shared.c, shared.err
	shared.n++
	name := dbNameFor(t.Name(), shared.n)
	shared.mu.Unlock()
	if err != nil {
		fail(t, err)
	}
	dsn, err := c.CreateDB(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Main runs the tests of m, then stops the shared cluster and removes its
// directory, and exits; use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// StopShared stops NewDB's shared cluster, if it was started, and removes
// its directory. A later NewDB starts a new one.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	c := shared.c
	shared.c, shared.err = nil, nil
	if c == nil {
		return nil
	}
	return errors.Join(c.Stop(), os.RemoveAll(c.dir))
}

// startTemp starts a cluster in a new temporary directory, removed again
// when the start fails.
func startTemp(ctx context.Context) (*Cluster, error) {
	base := os.TempDir()
	if cred, err := serverUser(); err == nil && reachable(filepath.Join(base, "x"), cred) != nil {
		base = "/tmp" // TMPDIR is private to root; the postgres user needs a way in
	}
	dir, err := os.MkdirTemp(base, dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: failed to make a directory for PostgreSQL: %w", err)
	}
	c, err := start(ctx, dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// removeStale removes the directories of shared clusters whose test binary
// and server have both ended without cleaning up.
func removeStale() {
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
		for _, dir := range dirs {
			pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-", 2)[0])
			if err != nil || pid == os.Getpid() || alive(pid) {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
				if p, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil && alive(p) {
					continue
				}
			}
			_ = os.RemoveAll(dir)
		}
	}
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// dbNameFor returns a database name made of the test's name and a serial
// number, within PostgreSQL's 63 bytes.
func dbNameFor(test string, n int) string {
	var b strings.Builder
	b.WriteString("t" + strconv.Itoa(n) + "_")
	for _, r := range strings.ToLower(test) {
		if b.Len() >= 63 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// fail skips t when PostgreSQL is unavailable here and CI is not set, and
// fails it otherwise.
func fail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	t.Fatal(err)
}
