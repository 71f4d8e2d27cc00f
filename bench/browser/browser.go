// Package browser is the browser suite of `go run ./bench`: it drives
// headless Chromium through the DevTools protocol against a running lfsync
// server and measures the lfsync JS API beside plain IndexedDB and plain
// WebSocket code doing the same work, in the same browser and the same run.
// The pages it runs live in pages/ (embedded; WriteSite installs them).
package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lfsync/lfsync/bench/report"
)

// Options configure a browser suite run.
type Options struct {
	Smoke bool
	// BaseURL is the lfsync server, e.g. "http://127.0.0.1:4321"; it must
	// serve the site WriteSite made.
	BaseURL string
	// Token authenticates the pages and the Go feeder.
	Token string
	// Web is the built web/dist, whose lfsync.wasm(.gz/.br) are measured.
	Web string
	// Dir is scratch space (the Chromium profile).
	Dir string
	// Chromium is the browser binary; "" looks for chromium on PATH.
	Chromium string
	// Profile, when set, is a directory for V8 CPU profiles of the bench
	// tabs (one .cpuprofile per tab; build the wasm without -s -w to see
	// Go function names).
	Profile string
	Logf    func(string, ...any)
}

// Result is what the suite measured.
type Result struct {
	Figures  []report.Figure
	Chromium string // the browser's product name and version
}

// sizes of one run.
type sizes struct {
	writes, bulk, bulkAll, prop, catchup, cold, queryDocs, queryRuns int
}

func (o Options) sizes() sizes {
	if o.Smoke {
		return sizes{writes: 50, bulk: 500, bulkAll: 100, prop: 50, catchup: 500, cold: 1, queryDocs: 500, queryRuns: 1}
	}
	return sizes{writes: 500, bulk: 10000, bulkAll: 2000, prop: 500, catchup: 10000, cold: 5, queryDocs: 10000, queryRuns: 5}
}

// suite is one run in progress.
type suite struct {
	o       Options
	n       sizes
	c       *chromium
	pageURL string // bench.html with the query string
	syncURL string
	figures []report.Figure
}

// Run measures every browser figure. A figure that fails is reported in the
// error after the others ran.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil {
		return Result{}, fmt.Errorf("invalid base URL %q: %w", o.BaseURL, err)
	}
	ws := *base
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	ws.Path = "/sync"
	profile := filepath.Join(o.Dir, "chromium")
	if err := os.MkdirAll(profile, 0o755); err != nil {
		return Result{}, fmt.Errorf("failed to create the Chromium profile directory: %w", err)
	}
	c, err := startChromium(o.Chromium, profile, o.Logf)
	if err != nil {
		return Result{}, err
	}
	defer c.close()
	s := &suite{o: o, n: o.sizes(), c: c, syncURL: ws.String()}
	q := url.Values{"sync": {s.syncURL}, "token": {o.Token}}
	s.pageURL = strings.TrimSuffix(o.BaseURL, "/") + "/" + PagesDir + "/bench.html?" + q.Encode()

	var errs []string
	for _, step := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"wasm size", s.wasmSize},
		{"cold start", s.coldStart},
		{"local writes", s.localWrites},
		{"bulk writes", s.bulkWrites},
		{"queries", s.queries},
		{"propagation", s.propagation},
		{"catch-up", s.catchup},
	} {
		if ctx.Err() != nil {
			errs = append(errs, step.name+": "+ctx.Err().Error())
			break
		}
		start := time.Now()
		o.Logf("browser: %s ...", step.name)
		if err := step.fn(ctx); err != nil {
			o.Logf("browser: %s FAILED: %v", step.name, err)
			errs = append(errs, step.name+": "+err.Error())
			continue
		}
		o.Logf("browser: %s done in %s", step.name, time.Since(start).Round(time.Millisecond))
	}
	res := Result{Figures: s.figures, Chromium: c.version}
	if len(errs) > 0 {
		return res, fmt.Errorf("browser suite: %s", strings.Join(errs, "; "))
	}
	return res, nil
}

// add records a figure of the browser suite.
func (s *suite) add(f report.Figure) {
	f.Suite = "browser"
	s.figures = append(s.figures, f)
	if f.BaseVal != 0 {
		s.o.Logf("browser: %s = %s (baseline %s)", f.Name, report.Quantity(f.Value, f.Unit), report.Quantity(f.BaseVal, f.Unit))
	} else {
		s.o.Logf("browser: %s = %s", f.Name, report.Quantity(f.Value, f.Unit))
	}
}

// fullOnly returns target in a full run; a smoke run's smaller sizes make
// absolute targets meaningless.
func (s *suite) fullOnly(target string) string {
	if s.o.Smoke {
		return ""
	}
	return target
}

// openBench opens a bench page in a tab (a new browser context when
// isolated) and waits for its module to load.
func (s *suite) openBench(name string, isolated bool) (*tab, error) {
	t, err := s.c.newTab(name, isolated)
	if err != nil {
		return nil, err
	}
	u := s.pageURL + "&prefix=" + url.QueryEscape(fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	if err := t.navigate(u, "window.benchReady === true", 60*time.Second); err != nil {
		t.close()
		return nil, err
	}
	if s.o.Profile != "" {
		t.profileDir = s.o.Profile
		if err := t.startProfile(); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

func count(n int) string { return report.Number(float64(n)) }
