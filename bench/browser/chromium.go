package browser

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/lfsync/lfsync/e2e/headless"
)

// chromium is one headless Chromium process; every figure runs in it.
type chromium struct {
	ctx         context.Context // the browser's first tab; parent of the others
	cancel      context.CancelFunc
	cancelAlloc context.CancelFunc
	version     string
	logf        func(string, ...any)
}

// findChromium returns path, or the Chromium the e2e tests use.
func findChromium(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if p := headless.Find(); p != "" {
		return p, nil
	}
	return "", errors.New("no Chromium found (apt-get install -y chromium, set LFSYNC_CHROMIUM, or pass -chromium PATH)")
}

// startChromium launches headless Chromium on a fresh profile in dir.
func startChromium(path, dir string, logf func(string, ...any)) (*chromium, error) {
	path, err := findChromium(path)
	if err != nil {
		return nil, err
	}
	opts := headless.Options(path, dir)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		return nil, fmt.Errorf("failed to start Chromium %s: %w", path, err)
	}
	c := &chromium{ctx: ctx, cancel: cancel, cancelAlloc: cancelAlloc, logf: logf}
	if v, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{}); err == nil {
		c.version = v.Product
	}
	return c, nil
}

func (c *chromium) close() {
	c.cancel()
	c.cancelAlloc()
}

// tab is one page of the browser.
type tab struct {
	name       string
	ctx        context.Context
	cancel     context.CancelFunc
	profiling  bool
	profileDir string // where close writes the CPU profile, when profiling
	logf       func(string, ...any)
}

// newTab opens a tab; isolated puts it in a new browser context (its own
// storage, cache and cookies, like a separate browser profile).
func (c *chromium) newTab(name string, isolated bool) (*tab, error) {
	var opts []chromedp.ContextOption
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(c.ctx, opts...)
	t := &tab{name: name, ctx: ctx, cancel: cancel, logf: c.logf}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				c.logf("%s console: %s (at %s:%d)", name, m, m.URL, m.Line+1)
			}
		}
	}()
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("failed to open tab %s: %w", name, err)
	}
	return t, nil
}

// close closes the tab, writing its CPU profile first when it has one.
func (t *tab) close() {
	if t.profiling {
		if err := t.stopProfile(t.profileDir); err != nil {
			t.logf("%v", err)
		}
	}
	t.cancel()
}

// navigate loads url and waits until expr is truthy.
func (t *tab) navigate(url, ready string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("%s: failed to load %s: %w", t.name, url, err)
	}
	if ready == "" {
		return nil
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](ready, chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
		return fmt.Errorf("%s: %s not ready: %w", t.name, url, err)
	}
	return nil
}

// eval evaluates expr in the page, awaiting a promise, and decodes the
// result into T.
func eval[T any](t *tab, timeout time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("%s: %s: %w", t.name, expr, err)
	}
	return v, nil
}
