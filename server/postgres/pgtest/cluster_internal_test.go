package pgtest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("PGTEST_CHILD") == "orphan" {
		orphanChild()
		return
	}
	Main(m)
}

// psql runs one SQL command in database db and returns its unaligned output.
func psql(t *testing.T, c *Cluster, db, sql string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", c.DSN(db), "-c", sql)
	cmd.Env = environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q on %s failed: %v\n%s", sql, db, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestStartStopRestart(t *testing.T) {
	c := New(t)
	ctx := context.Background()
	if _, err := c.CreateDB(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	psql(t, c, "app", "CREATE TABLE kv (k text PRIMARY KEY, v text); INSERT INTO kv VALUES ('a', 'b')")
	if got := psql(t, c, "app", "SHOW fsync"); got != "off" {
		t.Fatalf("New's cluster has fsync = %q, want off", got)
	}
	if got := psql(t, c, "app", "SHOW synchronous_commit"); got != "on" {
		t.Fatalf("New's cluster has synchronous_commit = %q, want on", got)
	}
	if os.Geteuid() == 0 {
		if got := psql(t, c, "app", "SELECT current_setting('data_directory')"); got != filepath.Join(c.dir, "data") {
			t.Fatalf("data_directory = %q", got)
		}
	}
	pid := c.cmd.Process.Pid
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop() failed: %v", err)
	}
	if alive(pid) {
		t.Fatalf("postmaster %d is still running after Stop", pid)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop() failed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed the data directory: %v", err)
	}

	c2, err := Start(ctx, c.dir)
	if err != nil {
		t.Fatalf("Start() on the stopped cluster's directory failed: %v", err)
	}
	defer c2.Stop()
	if c2.DSN("app") != c.DSN("app") {
		t.Errorf("restarted cluster's DSN = %s, want the old %s", c2.DSN("app"), c.DSN("app"))
	}
	if got := psql(t, c2, "app", "SELECT v FROM kv WHERE k = 'a'"); got != "b" {
		t.Fatalf("after restart kv[a] = %q, want b", got)
	}
	if got := psql(t, c2, "app", "SHOW fsync"); got != "on" {
		t.Fatalf("Start's cluster has fsync = %q, want on", got)
	}
	if err := c2.Stop(); err != nil {
		t.Fatalf("Stop() after restart failed: %v", err)
	}
}

func TestNewDB(t *testing.T) {
	a, b := NewDB(t), NewDB(t)
	if a == b {
		t.Fatalf("NewDB returned %s twice", a)
	}
	shared.mu.Lock()
	c := shared.c
	shared.mu.Unlock()
	for _, dsn := range []string{a, b} {
		db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
		psql(t, c, db, "CREATE TABLE t (x int)") // each database is empty
	}
}

func TestCreateDBRejectsBadNames(t *testing.T) {
	c := &Cluster{port: 1}
	for _, name := range []string{"", "1abc", "a-b", "a;drop", strings.Repeat("a", 64)} {
		if _, err := c.CreateDB(context.Background(), name); err == nil {
			t.Errorf("CreateDB(%q) succeeded", name)
		}
	}
}

func TestDBNameFor(t *testing.T) {
	n := dbNameFor("TestX/sub test-"+strings.Repeat("y", 100), 12)
	if !dbName.MatchString(n) || !strings.HasPrefix(n, "t12_testx_sub_test_") {
		t.Fatalf("dbNameFor = %q", n)
	}
}

// orphanChild starts the shared cluster, prints the postmaster's pid and
// the cluster directory, and exits without stopping it.
func orphanChild() {
	c, err := startTemp(context.Background())
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(2)
	}
	os.Stdout.WriteString(strconv.Itoa(c.cmd.Process.Pid) + " " + c.dir + "\n")
	os.Exit(0) // no Stop: the parent-death signal must end the server
}

// TestNoOrphanServer checks that a test binary that exits without stopping
// its cluster leaves no server running.
func TestNoOrphanServer(t *testing.T) {
	if _, err := findBin(); err != nil {
		fail(t, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=orphan")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	line, _ := bufio.NewReader(strings.NewReader(string(out))).ReadString('\n')
	pidText, dir, ok := strings.Cut(strings.TrimSpace(line), " ")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil {
		t.Fatalf("child printed %q", out)
	}
	defer os.RemoveAll(dir)
	// The server shuts down on its own; give it ample time.
	deadline := time.Now().Add(time.Minute)
	for alive(pid) && !zombieOrGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d outlived the process that started it", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// zombieOrGone reports whether pid has exited (a zombie awaiting its
// reaper counts as exited).
func zombieOrGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}
