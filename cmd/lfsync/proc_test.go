package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// TestMain runs the tests, then stops the shared PostgreSQL cluster and
// removes the lfsync binary built for them.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// bin is the lfsync binary, built once per test binary by lfsyncBinary.
var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// lfsyncBinary builds this package's command with `go build` into a
// temporary directory (once) and returns its path.
func lfsyncBinary(t testing.TB) string {
	t.Helper()
	buildBinary()
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// prebuild starts building the binary in the background, so the build
// overlaps the start of PostgreSQL.
func prebuild() { go buildBinary() }

// buildBinary builds the binary once; concurrent callers wait for it.
func buildBinary() {
	bin.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		bin.dir, bin.err = os.MkdirTemp("", "lfsync-bin-")
		if bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "lfsync")
		cmd := exec.Command(goTool, "build", "-o", bin.path, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("failed to build lfsync: %v\n%s", err, out)
		}
	})
}

// testToken is the static token every test client presents.
const testToken = "multinode-token"

// proc is one `lfsync serve` process.
type proc struct {
	t    testing.TB
	name string
	args []string // after serve, without --addr
	addr string   // host:port it listens on; kept across restarts

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   []string // the last log lines
	done   chan struct{}
	exit   error
	killed bool
}

// startNode starts `lfsync serve --node name --db db` on 127.0.0.1:0 with
// JSON logs, waits for its "lfsync listening" line and parses the address
// from it. The process is killed when the test ends.
func startNode(t testing.TB, name, db string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, addr: "127.0.0.1:0"}
	p.args = append([]string{"--db", db, "--node", name, "--token", testToken, "--log-format", "json", "--log-level", "info"}, extra...)
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("log of node %s:\n%s", p.name, p.logTail())
		}
	})
	return p
}

// start runs the process and waits until it listens.
func (p *proc) start() error {
	args := append([]string{"serve", "--addr", p.addr}, p.args...)
	cmd := exec.Command(lfsyncBinary(p.t), args...)
	cmd.Env = append(os.Environ(), "LFSYNC_OPEN=", "LFSYNC_DB=", "LFSYNC_NODE=")
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start node %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.exit, p.killed = cmd, done, nil, false
	p.mu.Unlock()
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			if len(p.logs) > 400 {
				p.logs = p.logs[len(p.logs)-300:]
			}
			p.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "lfsync listening" {
				select {
				case listening <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		err := cmd.Wait()
		p.mu.Lock()
		p.exit = err
		p.mu.Unlock()
		close(done)
	}()
	select {
	case addr := <-listening:
		p.mu.Lock()
		p.addr = addr
		p.mu.Unlock()
		return nil
	case <-done:
		return fmt.Errorf("node %s exited before listening: %v\n%s", p.name, p.exitErr(), p.logTail())
	case <-time.After(60 * time.Second): // a hang guard
		p.kill()
		return fmt.Errorf("node %s did not log \"lfsync listening\"\n%s", p.name, p.logTail())
	}
}

// restart starts the process again on the same address, retrying while the
// port is still taken by the old socket.
func (p *proc) restart() {
	p.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if err = p.start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// exitErr returns how the process ended.
func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// logTail returns the last log lines.
func (p *proc) logTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// problems returns the node's log lines of level WARN and ERROR.
func (p *proc) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.logs {
		if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

// logged reports whether a log line contains s.
func (p *proc) logged(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// pid returns the process id of the running process, 0 if none.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// rssKB returns the process's resident memory in KiB (Linux), 0 if unknown.
func (p *proc) rssKB() int64 {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb
		}
	}
	return 0
}

// url returns the node's WebSocket endpoint.
func (p *proc) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "ws://" + p.addr + "/sync"
}

// health returns the node's /api/health body.
func (p *proc) health() (map[string]any, error) {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	res, err := http.Get("http://" + addr + "/api/health")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body, nil
}

// metric returns the value of an unlabelled counter or gauge of the node's
// /metrics, or -1 when it cannot be read.
func (p *proc) metric(name string) float64 {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// balancer is a TCP load balancer: each new connection goes to the next
// backend, round robin, skipping backends that refuse it. It pins nothing:
// a reconnecting client may land on any node.
type balancer struct {
	ln net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	live     map[string]int // open connections per backend
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newBalancer(t testing.TB, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: backends, live: make(map[string]int), conns: make(map[net.Conn]struct{})}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.close)
	return b
}

// url returns the WebSocket endpoint behind the balancer.
func (b *balancer) url() string { return "ws://" + b.ln.Addr().String() + "/sync" }

// liveTo returns the number of open connections to a backend.
func (b *balancer) liveTo(backend string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live[backend]
}

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.forward(c)
	}
}

func (b *balancer) forward(c net.Conn) {
	defer b.wg.Done()
	b.mu.Lock()
	order := make([]string, 0, len(b.backends))
	for i := range b.backends {
		order = append(order, b.backends[(b.next+i)%len(b.backends)])
	}
	b.next++
	b.mu.Unlock()
	var up net.Conn
	var to string
	for _, addr := range order {
		var err error
		if up, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			to = addr
			break
		}
	}
	if up == nil {
		c.Close()
		return
	}
	b.mu.Lock()
	b.live[to]++
	b.conns[c], b.conns[up] = struct{}{}, struct{}{}
	b.mu.Unlock()
	var once sync.Once
	closeBoth := func() { once.Do(func() { c.Close(); up.Close() }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(up, c); closeBoth() }()
	go func() { defer wg.Done(); io.Copy(c, up); closeBoth() }()
	wg.Wait()
	b.mu.Lock()
	b.live[to]--
	delete(b.conns, c)
	delete(b.conns, up)
	b.mu.Unlock()
}

func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// waitFor polls cond until it returns "" or the hang guard passes, then
// fails the test with cond's last description of what is missing.
func waitFor(t testing.TB, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
