package browser

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
)

// startProfile starts the V8 CPU profiler in the tab (100 µs sampling).
func (t *tab) startProfile() error {
	if _, err := chromedp.Call(t.ctx, profiler.Enable, cdp.Empty{}); err != nil {
		return fmt.Errorf("%s: failed to enable the profiler: %w", t.name, err)
	}
	if _, err := chromedp.Call(t.ctx, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 100}); err != nil {
		return fmt.Errorf("%s: failed to set the sampling interval: %w", t.name, err)
	}
	if _, err := chromedp.Call(t.ctx, profiler.Start, cdp.Empty{}); err != nil {
		return fmt.Errorf("%s: failed to start the profiler: %w", t.name, err)
	}
	t.profiling = true
	return nil
}

// stopProfile stops the profiler and writes the profile to
// dir/<tab>-<time>.cpuprofile (open it in the DevTools Performance panel).
func (t *tab) stopProfile(dir string) error {
	if !t.profiling {
		return nil
	}
	t.profiling = false
	res, err := chromedp.Call(t.ctx, profiler.Stop, cdp.Empty{})
	if err != nil {
		return fmt.Errorf("%s: failed to stop the profiler: %w", t.name, err)
	}
	b, err := json.Marshal(res.Profile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.cpuprofile", t.name, time.Now().Format("150405")))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("failed to write the profile: %w", err)
	}
	return nil
}
