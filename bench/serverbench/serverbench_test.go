package serverbench_test

import (
	"context"
	"testing"

	"github.com/lfsync/lfsync/bench/serverbench"
)

// TestRunSmoke runs the smoke suite end to end and checks that every figure
// was measured beside a measured baseline.
func TestRunSmoke(t *testing.T) {
	figs, err := serverbench.Run(context.Background(), serverbench.Options{Smoke: true, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(figs) < 11 {
		t.Fatalf("Run returned %d figures, want at least 11", len(figs))
	}
	for _, f := range figs {
		if f.Suite != "server" || f.Name == "" || f.Unit == "" || (f.Better != "lower" && f.Better != "higher") {
			t.Errorf("figure %+v is incomplete", f)
		}
		if f.Value <= 0 || f.BaseVal <= 0 || f.Baseline == "" {
			t.Errorf("figure %q: value %v, baseline %q = %v; want both measured", f.Name, f.Value, f.Baseline, f.BaseVal)
		}
	}
}
