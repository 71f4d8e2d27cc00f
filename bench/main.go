// Command bench is `make bench`: it measures the lfsync browser runtime and
// server against plain baselines in one run and writes docs/benchmarks.md
// and docs/benchmarks.json. It starts the real lfsync server in-process
// (SQLite in a temp dir, a static token, the built web/dist plus the bench
// pages), drives headless Chromium for the browser suite and runs the
// native server suite.
//
//	go run ./bench [-smoke] [-suite browser,server] [-web web/dist] [-md docs/benchmarks.md] [-json docs/benchmarks.json]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lfsync/lfsync/bench/browser"
	"github.com/lfsync/lfsync/bench/report"
	"github.com/lfsync/lfsync/bench/serverbench"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
	"github.com/lfsync/lfsync/server/serve"
)

// token authenticates the bench pages and clients against the bench server.
const token = "bench-token"

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("bench: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	smoke := flag.Bool("smoke", false, "small sizes (under 90 s), for CI; figures not comparable with a full run")
	suites := flag.String("suite", "browser,server", "suites to run, comma-separated: browser, server")
	web := flag.String("web", "web/dist", "the built web bundle (make build)")
	md := flag.String("md", "docs/benchmarks.md", "Markdown file to write the run into (between its bench markers); empty: none")
	jsonPath := flag.String("json", "docs/benchmarks.json", "JSON file to write; empty: none")
	chromium := flag.String("chromium", "", "Chromium binary (default: $LFSYNC_CHROMIUM, /usr/bin/chromium, or Chromium on PATH)")
	pg := flag.String("postgres", "auto", `PostgreSQL for the server suite: "auto" (a throwaway cluster when PostgreSQL is installed), "off", or a postgres:// DSN of a database to create test databases beside`)
	verbose := flag.Bool("v", false, "log the lfsync server too")
	profile := flag.String("profile", "", "directory for V8 CPU profiles of the browser suite's tabs (build the wasm without -s -w for Go names)")
	flag.Parse()
	want := map[string]bool{}
	for _, s := range strings.Split(*suites, ",") {
		switch s = strings.TrimSpace(s); s {
		case "browser", "server":
			want[s] = true
		case "":
		default:
			return fmt.Errorf("unknown suite %q (browser, server)", s)
		}
	}

	if want["browser"] {
		if _, err := os.Stat(filepath.Join(*web, "lfsync.wasm")); err != nil {
			return fmt.Errorf("%s has no lfsync.wasm: run make build first (%w)", *web, err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "lfsync-bench-")
	if err != nil {
		return fmt.Errorf("failed to create a scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)

	r := &report.Run{Started: time.Now().UTC(), Smoke: *smoke, Machine: report.Probe(dir)}
	loadBefore := loadAverage()
	var errs []error
	if want["browser"] {
		figs, version, err := browserSuite(ctx, dir, *web, *chromium, *profile, *smoke, *verbose)
		r.Figures = append(r.Figures, figs...)
		r.Machine.Chromium = version
		if err != nil {
			errs = append(errs, err)
		}
	}
	if want["server"] {
		start := time.Now()
		log.Printf("server suite ...")
		o := serverbench.Options{Smoke: *smoke, Dir: filepath.Join(dir, "server"), Logf: log.Printf}
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return err
		}
		var closePG func()
		o.PostgresDSN, closePG = postgres(ctx, *pg)
		figs, err := serverbench.Run(ctx, o)
		closePG()
		r.Figures = append(r.Figures, figs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("server suite: %w", err))
		}
		log.Printf("server suite done in %s", time.Since(start).Round(time.Second))
	}
	r.Duration = time.Since(r.Started)
	r.Evaluate()
	header := preamble(loadBefore, loadAverage())
	fmt.Print(header + "\n" + r.Markdown())
	if len(errs) > 0 {
		// A partial run does not replace the last complete one.
		errs = append(errs, fmt.Errorf("not writing %q and %q: the run had failures", *md, *jsonPath))
	} else if err := write(r, header, *md, *jsonPath); err != nil {
		errs = append(errs, err)
	}
	log.Printf("took %s", r.Duration.Round(time.Second))
	return errors.Join(errs...)
}

// browserSuite starts the lfsync server on a copy of web with the bench
// pages beside it and runs the browser suite against it.
func browserSuite(ctx context.Context, dir, web, chromium, profile string, smoke, verbose bool) ([]report.Figure, string, error) {
	site := filepath.Join(dir, "site")
	if err := browser.WriteSite(site, web); err != nil {
		return nil, "", err
	}
	m := serve.NewMain()
	m.Getenv = func(string) string { return "" } // the bench's settings only
	m.Stderr = io.Discard
	if verbose {
		m.Stderr = os.Stderr
	}
	// --rate 0: the per-connection frame limit (200/s by default) would
	// throttle the sequential propagation probe, which is not what it
	// measures.
	args := []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "lfsync.db"), "--token", token,
		"--web", site, "--rate", "0", "--log-level", "warn"}
	if err := m.ParseFlags(args); err != nil {
		return nil, "", fmt.Errorf("failed to configure the lfsync server: %w", err)
	}
	if err := m.Run(ctx); err != nil {
		return nil, "", fmt.Errorf("failed to start the lfsync server: %w", err)
	}
	defer m.Close()
	<-m.Ready()
	start := time.Now()
	log.Printf("browser suite against lfsync serve %s ...", strings.Join(args, " "))
	res, err := browser.Run(ctx, browser.Options{
		Smoke: smoke, BaseURL: "http://" + m.Addr(), Token: token, Web: web,
		Dir: dir, Chromium: chromium, Profile: profile, Logf: log.Printf,
	})
	log.Printf("browser suite done in %s", time.Since(start).Round(time.Second))
	return res.Figures, res.Chromium, err
}

// postgres returns the server suite's PostgresDSN for the -postgres flag
// (nil: skip PostgreSQL) and a function that stops what it started.
func postgres(ctx context.Context, flagValue string) (func() (string, error), func()) {
	switch {
	case flagValue == "off":
		return nil, func() {}
	case flagValue != "auto":
		return func() (string, error) { return flagValue, nil }, func() {}
	}
	if _, err := exec.LookPath("initdb"); err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(matches) == 0 {
			log.Printf("no PostgreSQL installed: the server suite skips its PostgreSQL figures")
			return nil, func() {}
		}
	}
	var (
		mu       sync.Mutex
		cluster  *pgtest.Cluster
		dir      string
		startErr error
		n        int
	)
	dsn := func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if cluster == nil && startErr == nil {
			// A directory of its own that the postgres OS user can enter
			// (pgtest runs the server as that user when we are root).
			if dir, startErr = os.MkdirTemp("", "lfsync-bench-pg-"); startErr == nil {
				if startErr = os.Chmod(dir, 0o755); startErr == nil {
					if cluster, startErr = pgtest.Start(ctx, filepath.Join(dir, "cluster")); startErr == nil {
						log.Printf("PostgreSQL cluster started on port %d", cluster.Port())
					}
				}
			}
		}
		if startErr != nil {
			return "", fmt.Errorf("failed to start PostgreSQL: %w", startErr)
		}
		n++
		return cluster.CreateDB(ctx, fmt.Sprintf("bench%d", n))
	}
	return dsn, func() {
		mu.Lock()
		defer mu.Unlock()
		if cluster != nil {
			cluster.Stop()
		}
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
}

// write saves the run: the Markdown between the markers of md (the file is
// created with them when missing), the JSON whole.
func write(r *report.Run, header, md, jsonPath string) error {
	if jsonPath != "" {
		b, err := r.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
			return fmt.Errorf("failed to write %s: %w", jsonPath, err)
		}
		log.Printf("wrote %s", jsonPath)
	}
	if md == "" {
		return nil
	}
	old, err := os.ReadFile(md)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to read %s: %w", md, err)
	}
	doc := report.Embed(string(old), header+"\n"+r.Markdown())
	if err := os.WriteFile(md, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", md, err)
	}
	log.Printf("wrote %s", md)
	return nil
}

// preamble says what was measured against what, from which commit, and how
// busy the machine was.
func preamble(loadBefore, loadAfter string) string {
	var b strings.Builder
	b.WriteString("Browser suite server: `lfsync serve` in-process on 127.0.0.1, SQLite in a temp dir, a static token, " +
		"`--rate 0` (no per-connection frame limit), serving web/dist as built plus the bench pages (bench/browser/pages). " +
		"Ratio = value / baseline; \"met\" is computed from numeric targets.")
	if c := commit(); c != "" {
		b.WriteString(" Commit " + c + ".")
	}
	if loadBefore != "" && loadAfter != "" {
		b.WriteString(" Load average (1, 5, 15 min) " + loadBefore + " at the start, " + loadAfter + " at the end.")
	}
	b.WriteString("\n")
	return b.String()
}

// commit names the checked-out commit, marked when the tree has changes;
// empty outside a git checkout.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

// loadAverage returns the first three fields of /proc/loadavg; empty
// elsewhere.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}
