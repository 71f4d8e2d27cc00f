package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir  string // the cluster's directory: data/, postgres.log, the unix socket
	fast bool   // fsync off: see New
	bin  string // the directory of initdb, postgres and createdb
	port int
	cred *syscall.Credential // who the server runs as; nil for ourselves

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the postmaster has exited
	waitErr error         // the postmaster's exit, valid once exited is closed

	stopOnce sync.Once
	stopErr  error
}

// settings are the server's configuration, passed on its command line so
// that the data directory stays stock. Durability settings (fsync,
// synchronous_commit, full_page_writes) keep their defaults, except in
// the clusters of New and NewDB, which add fastSettings.
var settings = []string{
	"listen_addresses=127.0.0.1",
	"max_connections=200",
	"shared_buffers=32MB",
	"logging_collector=off",
	"log_min_messages=warning",
	"log_timezone=UTC",
	"timezone=UTC",
}

// fastSettings spare New's and NewDB's clusters the disk flushes that
// only an operating system crash or power loss would need. A commit still
// writes its WAL to the kernel before it is acknowledged
// (synchronous_commit stays on), so killing the server or a client loses
// nothing acknowledged, and what tests check stays true.
var fastSettings = []string{"fsync=off", "full_page_writes=off"}

// Start starts a cluster in dir, creating it with initdb unless dir already
// holds one (left by an earlier Start and Stop). The server listens on a
// free 127.0.0.1 port (on a restart, the previous one if still free) with
// trust authentication for the user "postgres", and on a unix socket in
// dir when its path is short enough. As root, dir is handed to the
// "postgres" OS user and the server runs as that user; every directory
// above dir must then be searchable by others.
//
// The server is a child process that gets SIGINT (a fast shutdown) when
// the process that started it ends, so it never outlives a test binary
// that crashed or forgot Stop.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	return start(ctx, dir, false)
}

// start is Start, with fastSettings when fast is set.
func start(ctx context.Context, dir string, fast bool) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, fmt.Errorf("pgtest: failed to start PostgreSQL: %w", err)
	}
	cred, err := serverUser()
	if err != nil {
		return nil, fmt.Errorf("pgtest: failed to start PostgreSQL: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("pgtest: failed to start PostgreSQL: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, cred: cred, fast: fast}
	if err := c.init(ctx); err != nil {
		return nil, fmt.Errorf("pgtest: failed to create a cluster in %s: %w", dir, err)
	}
	// A restarted cluster asks for its previous port first, so that DSNs
	// handed out before stay valid. Another process may take the port
	// before the server binds it; then try another.
	prev := 0
	if b, err := os.ReadFile(filepath.Join(dir, portFile)); err == nil {
		prev, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	for attempt := 0; ; attempt++ {
		port := prev
		if attempt > 0 || port == 0 {
			if port, err = freePort(); err != nil {
				return nil, fmt.Errorf("pgtest: failed to start PostgreSQL in %s: %w", dir, err)
			}
		}
		err = c.start(ctx, port)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 4 {
			return nil, fmt.Errorf("pgtest: failed to start PostgreSQL in %s: %w", dir, err)
		}
	}
}

// init creates the cluster's directory and runs initdb, unless data/
// already holds a cluster.
func (c *Cluster) init(ctx context.Context) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("failed to hand the directory to the postgres user: %w", err)
		}
		if err := reachable(c.dir, c.cred); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", "PG_VERSION")); err == nil {
		return nil
	}
	// --no-sync only skips initdb's final flush of the new files; the
	// server itself runs with fsync on.
	cmd := c.command(ctx, "initdb", "-D", filepath.Join(c.dir, "data"), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb failed: %w\n%s", err, out)
	}
	return nil
}

// command returns a command running one of the cluster's binaries as the
// server user in the cluster's directory.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = environ()
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

var errPortTaken = errors.New("the port was taken by another process")

// start runs the postmaster on a free port and waits until it accepts
// connections.
func (c *Cluster) start(ctx context.Context, port int) error {
	c.port = port
	socketDir := c.dir
	// A unix socket path must fit in 107 bytes.
	if len(filepath.Join(socketDir, ".s.PGSQL.")+strconv.Itoa(port)+".lock") > 100 {
		socketDir = ""
	}
	logPath := filepath.Join(c.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	logStart, _ := logf.Seek(0, 2)

	args := []string{"-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(port),
		"-c", "unix_socket_directories=" + socketDir}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	if c.fast {
		for _, s := range fastSettings {
			args = append(args, "-c", s)
		}
	}
	cmd := c.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// The postmaster gets SIGINT when the thread that started it ends.
	// That thread is locked to the goroutine below, which lives until the
	// postmaster exits; so the signal comes when this process ends.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	c.cmd = cmd
	c.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("failed to run postgres: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		c.kill()
		tail := logTail(logPath, logStart)
		if bytes.Contains(tail, []byte("could not bind")) || bytes.Contains(tail, []byte("already in use")) {
			return fmt.Errorf("%w: %v\n%s", errPortTaken, err, tail)
		}
		return fmt.Errorf("%w; server log:\n%s", err, tail)
	}
	if err := os.WriteFile(filepath.Join(c.dir, portFile), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		c.kill()
		return fmt.Errorf("failed to record the port: %w", err)
	}
	return nil
}

// portFile, in a cluster's directory, holds the port it last ran on.
const portFile = "pgtest.port"

// waitReady polls postmaster.pid until the server reports it is ready.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pidFile := filepath.Join(c.dir, "data", "postmaster.pid")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// Line 8 of postmaster.pid is the server's status (PostgreSQL 10+).
		if b, err := os.ReadFile(pidFile); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) >= 8 && lines[0] == strconv.Itoa(c.cmd.Process.Pid) && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited while starting: %v", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not become ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// kill ends the postmaster at once and waits for it.
func (c *Cluster) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the end of the server log written since offset from.
func logTail(path string, from int64) []byte {
	b, err := os.ReadFile(path)
	if err != nil || from > int64(len(b)) {
		return nil
	}
	b = b[from:]
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return b
}

// Dir returns the cluster's directory (data/ and postgres.log are in it).
func (c *Cluster) Dir() string { return c.dir }

// Port returns the server's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// DSN returns the URL of database db as the superuser "postgres".
func (c *Cluster) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

var dbName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// CreateDB creates database name (letters, digits and underscores, at most
// 63) and returns its DSN.
func (c *Cluster) CreateDB(ctx context.Context, name string) (string, error) {
	if !dbName.MatchString(name) {
		return "", fmt.Errorf("pgtest: failed to create database %q: the name must be 1 to 63 letters, digits or underscores, not starting with a digit", name)
	}
	// FILE_COPY (PostgreSQL 15+) copies the template's files instead of
	// writing them all to the WAL: several times faster here.
	out, err := c.psql(ctx, "CREATE DATABASE "+name+" STRATEGY = FILE_COPY")
	if err != nil && bytes.Contains(out, []byte("STRATEGY")) {
		out, err = c.psql(ctx, "CREATE DATABASE "+name)
	}
	if err != nil {
		return "", fmt.Errorf("pgtest: failed to create database %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return c.DSN(name), nil
}

// psql runs one SQL command in database postgres.
func (c *Cluster) psql(ctx context.Context, sql string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "psql"), "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1",
		"-d", c.DSN("postgres"), "-c", sql)
	cmd.Env = environ()
	return cmd.CombinedOutput()
}

// Stop shuts the server down (a fast shutdown: sessions are ended, a
// checkpoint written) and keeps its directory; Start on the same directory
// starts it again, on the same port when it is still free (so DSNs stay
// valid). Later calls return the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		select {
		case <-c.exited:
			c.stopErr = fmt.Errorf("pgtest: PostgreSQL in %s had exited before Stop: %v", c.dir, c.waitErr)
			return
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(time.Minute):
			c.kill()
			c.stopErr = fmt.Errorf("pgtest: PostgreSQL in %s did not shut down within a minute; killed it", c.dir)
			return
		}
		if c.waitErr != nil {
			c.stopErr = fmt.Errorf("pgtest: PostgreSQL in %s failed to shut down cleanly: %v", c.dir, c.waitErr)
		}
	})
	return c.stopErr
}
