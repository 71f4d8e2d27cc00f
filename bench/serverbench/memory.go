package serverbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/bench/report"
)

// The idle-connection memory figure runs each server in a child process:
// the bench binary itself, re-executed with these variables set. The child
// prints "addr <ws url>", then answers each "mem" line on stdin with
// "mem <connections> <rss KiB> <heap bytes> <stack bytes>", and exits on
// "quit" or end of input.
const (
	childEnv    = "LFSYNC_SERVERBENCH_CHILD" // "lfsync" or "plain"
	childDirEnv = "LFSYNC_SERVERBENCH_DIR"
)

func init() {
	if mode := os.Getenv(childEnv); mode != "" {
		if err := runChild(mode, os.Getenv(childDirEnv), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "serverbench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// runChild serves one server until quit.
func runChild(mode, dir string, in io.Reader, out io.Writer) error {
	if err := raiseFileLimit(); err != nil {
		return err
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	var (
		url   string
		count func() int
		stop  func() error
	)
	switch mode {
	case "lfsync":
		st, err := openSQLite(dir, "idle")
		if err != nil {
			return err
		}
		n, err := startNode(st, logf, nil)
		if err != nil {
			st.Close()
			return err
		}
		url, count, stop = n.url, n.srv.Connections, n.close
	case "plain":
		var conns atomic.Int64
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("failed to listen: %w", err)
		}
		hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: echoHandler(&conns)}
		go hs.Serve(ln)
		url = "ws://" + ln.Addr().String() + "/"
		count = func() int { return int(conns.Load()) }
		stop = hs.Close
	default:
		return fmt.Errorf("unknown child mode %q", mode)
	}
	fmt.Fprintln(out, "addr", url)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "mem":
			runtime.GC()
			debug.FreeOSMemory()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			rss, err := rssKiB()
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "mem", count(), rss, m.HeapInuse, m.StackInuse)
		case "quit":
			return stop()
		}
	}
	return stop()
}

// echoHandler is a minimal coder/websocket request/response server: it
// writes every frame back, and counts its connections in conns.
func echoHandler(conns *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		conns.Add(1)
		defer conns.Add(-1)
		for {
			typ, b, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if err := ws.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	})
}

// rssKiB returns this process's resident set size.
func rssKiB() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("failed to read the resident set size: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("failed to read the resident set size: no VmRSS in /proc/self/status")
}

// memSample is one "mem" answer.
type memSample struct {
	conns               int
	rssKiB, heap, stack int64
}

// child is a running child server.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	url string
}

func startChild(ctx context.Context, mode, dir string, logf func(string, ...any)) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("failed to find the bench binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childDirEnv+"="+dir)
	cmd.Stderr = logWriter{logf}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the child server: %w", err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(outR)}
	line, err := c.line()
	if err != nil {
		c.stop()
		return nil, err
	}
	url, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		c.stop()
		return nil, fmt.Errorf("child server said %q, want its address", line)
	}
	c.url = url
	return c, nil
}

func (c *child) line() (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", fmt.Errorf("failed to read from the child server: %w", err)
		}
		return "", errors.New("the child server exited")
	}
	return c.out.Text(), nil
}

func (c *child) mem() (memSample, error) {
	if _, err := io.WriteString(c.in, "mem\n"); err != nil {
		return memSample{}, fmt.Errorf("failed to ask the child server: %w", err)
	}
	line, err := c.line()
	if err != nil {
		return memSample{}, err
	}
	var s memSample
	if _, err := fmt.Sscanf(line, "mem %d %d %d %d", &s.conns, &s.rssKiB, &s.heap, &s.stack); err != nil {
		return memSample{}, fmt.Errorf("child server said %q: %w", line, err)
	}
	return s, nil
}

func (c *child) stop() error {
	io.WriteString(c.in, "quit\n")
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		return errors.Join(errors.New("child server did not quit in 15 s"), <-done)
	}
}

// idleResult is the memory one idle connection costs a server.
type idleResult struct {
	rssKiB, goKiB float64 // per connection: resident set, Go heap + stacks
}

// idleMemory measures idle connections held by a child server of mode.
func idleOnce(ctx context.Context, mode, dir string, conns int, logf func(string, ...any)) (idleResult, error) {
	c, err := startChild(ctx, mode, dir, logf)
	if err != nil {
		return idleResult{}, err
	}
	defer c.stop()
	m0, err := c.mem()
	if err != nil {
		return idleResult{}, err
	}
	clients := make([]*websocket.Conn, conns)
	defer closeAll(clients)
	open := func(ws **websocket.Conn) error {
		if mode == "lfsync" {
			w, err := dial(ctx, c.url, tokenReadWrite)
			if err != nil {
				return err
			}
			*ws = w
			return subscribe(ctx, w, "idle")
		}
		w, _, err := websocket.Dial(ctx, c.url, nil)
		if err != nil {
			return fmt.Errorf("failed to dial: %w", err)
		}
		*ws = w
		hello := []byte(`{"type":"auth","token":"x"}`)
		if err := w.Write(ctx, websocket.MessageText, hello); err != nil {
			return err
		}
		_, _, err = w.Read(ctx)
		return err
	}
	sem := make(chan struct{}, 100)
	errs := make(chan error, conns)
	for i := range clients {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- open(&clients[i])
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			return idleResult{}, fmt.Errorf("failed to open an idle connection: %w", err)
		}
	}
	var m1 memSample
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m1, err = c.mem(); err != nil {
			return idleResult{}, err
		}
		if m1.conns >= conns {
			break
		}
		if time.Now().After(deadline) {
			return idleResult{}, fmt.Errorf("the server holds %d of %d connections", m1.conns, conns)
		}
	}
	n := float64(conns)
	return idleResult{
		rssKiB: float64(m1.rssKiB-m0.rssKiB) / n,
		goKiB:  float64(m1.heap+m1.stack-m0.heap-m0.stack) / 1024 / n,
	}, nil
}

func (r *runner) idleMemory() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conns := r.sz.idleConns
	// Each process holds one descriptor per connection, plus a margin.
	if lim := fileLimit(); lim > 0 && uint64(conns)+256 > lim {
		conns = int(lim) - 256
		r.o.Logf("serverbench: open-file limit %d: idle connections cut to %d", lim, conns)
	}
	ours, err := idleOnce(ctx, "lfsync", r.o.Dir, conns, r.o.Logf)
	if err != nil {
		return err
	}
	plain, err := idleOnce(ctx, "plain", r.o.Dir, conns, r.o.Logf)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	r.add(report.Figure{
		Name: fmt.Sprintf("memory per idle connection (%d conns)", conns), Unit: "KB/conn", Better: "lower",
		Value:    ours.rssKiB * 1.024,
		Baseline: fmt.Sprintf("%d plain coder/websocket connections to an echo server (one goroutine each)", conns),
		BaseVal:  plain.rssKiB * 1.024,
		Note: fmt.Sprintf("server RSS delta / connections, after GC; server in a child process, clients in the bench process; ours authenticated and subscribed; Go heap+stacks %.1f KB/conn (plain %.1f)",
			ours.goKiB*1.024, plain.goKiB*1.024),
	}, 0)
	return nil
}
