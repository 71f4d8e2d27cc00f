package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/lfsync/lfsync/e2e/headless"
)

// browser is one Chromium process with its own profile directory.
type browser struct {
	dir         string
	allocCtx    context.Context
	cancelAlloc context.CancelFunc
	ctx         context.Context // the browser's first tab; pages are new tabs
	cancel      context.CancelFunc
	// isolate opens every page in a new browser context (separate storage
	// inside one process); false opens pages on the persistent profile.
	isolate bool
}

var (
	sharedOnce sync.Once
	shared     *browser
	sharedErr  error
	sharedDir  string
)

// sharedBrowser returns the test binary's one long-lived browser. Its pages
// each get a fresh browser context, so they share nothing but the process.
func sharedBrowser(t *testing.T) *browser {
	t.Helper()
	requireBrowser(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lfsync-e2e-chromium-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedDir = dir
		shared, sharedErr = startBrowser(dir)
		if shared != nil {
			shared.isolate = true
		}
	})
	if sharedErr != nil {
		t.Fatalf("failed to start the shared browser: %v", sharedErr)
	}
	return shared
}

func closeSharedBrowser() {
	if shared != nil {
		shared.close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}

// newBrowser starts a browser process of the test's own on the profile
// directory dir (reused when a test relaunches on the same profile); it is
// closed when the test ends.
func newBrowser(t *testing.T, dir string) *browser {
	t.Helper()
	requireBrowser(t)
	b, err := startBrowser(dir)
	if err != nil {
		t.Fatalf("failed to start Chromium on %s: %v", dir, err)
	}
	t.Cleanup(b.close)
	return b
}

func startBrowser(dir string) (*browser, error) {
	opts := append(headless.Options(chromiumPath, dir),
		chromedp.WindowSize(1100, 900),
		chromedp.Flag("hide-scrollbars", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// Protocol noise (events chromedp cannot decode) is not a test failure.
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	// The first Do starts the browser and binds its life to ctx (so no
	// timeout here; a browser that cannot start fails within chromedp's own
	// 20 s wait for its debugging pipe).
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		return nil, err
	}
	return &browser{dir: dir, allocCtx: allocCtx, cancelAlloc: cancelAlloc, ctx: ctx, cancel: cancel}, nil
}

// close ends the browser gracefully (when it still runs) and frees the
// allocator.
func (b *browser) close() {
	b.cancel()
	b.cancelAlloc()
	killProfileProcesses(b.dir)
}

// kill ends the browser the hard way: SIGKILL to the main process, as a
// crash or an out-of-memory kill would, then to any child left on the same
// profile. Nothing is flushed or closed cleanly.
func (b *browser) kill(t *testing.T) {
	t.Helper()
	c := chromedp.FromContext(b.ctx)
	if c == nil || c.Browser == nil || c.Browser.Process() == nil {
		t.Fatal("browser has no process to kill")
	}
	proc := c.Browser.Process()
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("failed to kill Chromium (pid %d): %v", proc.Pid, err)
	}
	killProfileProcesses(b.dir)
	b.cancel()
	b.cancelAlloc()
	// Wait until no process uses the profile any more, so a relaunch does
	// not meet a half-dead one holding its locks.
	deadline := time.Now().Add(10 * time.Second)
	for len(profileProcesses(b.dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Chromium processes on %s still alive 10s after SIGKILL: %v", b.dir, profileProcesses(b.dir))
		}
		killProfileProcesses(b.dir)
		time.Sleep(50 * time.Millisecond)
	}
}

// profileProcesses returns the pids whose command line names the profile
// directory dir: the browser this harness started and its children.
func profileProcesses(dir string) []int {
	want := "--user-data-dir=" + dir
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if arg == want {
				// A zombie waits for its parent; it holds nothing.
				if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(stat) {
					break
				}
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func isZombie(stat []byte) bool {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func killProfileProcesses(dir string) {
	for _, pid := range profileProcesses(dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// page is one browser tab. console.error calls and uncaught exceptions in it
// fail the test unless they match an allow-listed pattern.
type page struct {
	t      *testing.T
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	allow  []*regexp.Regexp
	errs   []string
	closed bool
}

// newPage opens a tab. name labels its console output in the test log.
func (b *browser) newPage(t *testing.T, name string) *page {
	t.Helper()
	var opts []chromedp.ContextOption
	if b.isolate {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	return openPage(t, b.ctx, name, opts...)
}

// newTab opens another tab in p's browser context (the same storage, Web
// Locks and BroadcastChannels: the same origin state, as a person opening
// a second tab). Closing it leaves p open; closing p, when p created the
// browser context, disposes of every tab in it.
func (p *page) newTab(t *testing.T, name string) *page {
	t.Helper()
	return openPage(t, p.ctx, name)
}

// openPage opens a tab under parent (a browser or a tab context).
func openPage(t *testing.T, parent context.Context, name string, opts ...chromedp.ContextOption) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	p := &page{t: t, name: name, ctx: ctx, cancel: cancel}
	// Console opens the tab and subscribes before anything runs in it.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.consoleMessage(m)
		}
	}()
	t.Cleanup(func() {
		p.close()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errs {
			t.Errorf("%s: %s", name, e)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: failed to open a tab: %v", name, err)
	}
	// No animations or transitions: what a click changes is on screen at
	// once, and screenshots show the settled page.
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
	})
	if err != nil {
		t.Fatalf("%s: failed to emulate reduced motion: %v", name, err)
	}
	return p
}

// allowErrors allow-lists console errors and exceptions matching the
// regular expressions (an expected failure the test provokes).
func (p *page) allowErrors(patterns ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range patterns {
		p.allow = append(p.allow, regexp.MustCompile(s))
	}
}

func (p *page) consoleMessage(m chromedp.ConsoleMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	isErr := m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "")
	if !isErr {
		where := ""
		if m.Source != "" {
			where = " [" + m.Source + "]"
		}
		p.t.Logf("%s console%s: %s", p.name, where, m)
		return
	}
	for _, re := range p.allow {
		if re.MatchString(m.Text) {
			p.t.Logf("%s console (allowed): %s", p.name, m)
			return
		}
	}
	p.t.Logf("%s console: %s (at %s:%d)", p.name, m, m.URL, m.Line+1)
	p.errs = append(p.errs, fmt.Sprintf("unexpected %s at %s:%d", m, m.URL, m.Line+1))
}

// ignoreConsole stops collecting the tab's console output (it is about to
// die with its browser).
func (p *page) ignoreConsole() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// close closes the tab; its console output is ignored from here on.
func (p *page) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
}

// do runs actions in the tab, failing the test on error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// navigate loads url and waits for the load event.
func (p *page) navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// eval evaluates a JavaScript expression in the page, awaiting a promise
// result, and decodes the result into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := tryEval[T](p, expr)
	if err != nil {
		p.t.Fatalf("%s: failed to evaluate %s: %v", p.name, expr, err)
	}
	return v
}

func tryEval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitFor polls the JavaScript expression cond (which may return a promise)
// every 50 ms until it is truthy, and returns its value. After timeout it
// fails the test with what, and the value of the diagnostic expression diag
// when given.
func waitFor[T any](p *page, timeout time.Duration, what, cond, diag string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](cond,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		state := ""
		if diag != "" {
			if s, derr := tryEval[string](p, diag); derr == nil {
				state = "; state: " + s
			} else {
				state = "; state unavailable: " + derr.Error()
			}
		}
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			p.t.Fatalf("%s: timed out after %v waiting for %s%s", p.name, timeout, what, state)
		}
		p.t.Fatalf("%s: failed waiting for %s: %v%s", p.name, what, err, state)
	}
	return v
}

// screenshot captures the tab as PNG.
func (p *page) screenshot() []byte {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: failed to take a screenshot: %v", p.name, err)
	}
	return buf
}
