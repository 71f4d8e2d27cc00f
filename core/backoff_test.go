package core_test

import (
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
)

func TestBackoffCeilingGrowsToMax(t *testing.T) {
	b := core.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Ceiling(i); got != w*time.Millisecond {
			t.Errorf("Ceiling(%d)=%v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := b.Ceiling(10000); got != time.Second {
		t.Errorf("Ceiling(10000)=%v, want the max", got)
	}
}

func TestBackoffDefaults(t *testing.T) {
	var b core.Backoff
	if got := b.Ceiling(0); got != core.DefaultBackoffInitial {
		t.Errorf("Ceiling(0)=%v, want %v", got, core.DefaultBackoffInitial)
	}
	if got := b.Ceiling(1); got != 2*core.DefaultBackoffInitial {
		t.Errorf("Ceiling(1)=%v, want %v", got, 2*core.DefaultBackoffInitial)
	}
	if got := b.Ceiling(100); got != core.DefaultBackoffMax {
		t.Errorf("Ceiling(100)=%v, want %v", got, core.DefaultBackoffMax)
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	b := core.Backoff{Initial: 50 * time.Millisecond, Max: 400 * time.Millisecond, Multiplier: 3}
	for attempt := 0; attempt < 6; attempt++ {
		c := b.Ceiling(attempt)
		if got := b.Delay(attempt, func() float64 { return 0 }); got != 0 {
			t.Errorf("Delay(%d, 0)=%v, want 0", attempt, got)
		}
		if got := b.Delay(attempt, func() float64 { return 0.999999999 }); got != c {
			t.Errorf("Delay(%d, ~1)=%v, want the ceiling %v", attempt, got, c)
		}
		if got := b.Delay(attempt, func() float64 { return 0.5 }); got < c/2-1 || got > c/2+1 {
			t.Errorf("Delay(%d, 0.5)=%v, want about %v", attempt, got, c/2)
		}
		for i := 0; i < 200; i++ {
			if got := b.Delay(attempt, nil); got < 0 || got > c {
				t.Fatalf("Delay(%d)=%v, outside [0, %v]", attempt, got, c)
			}
		}
	}
}

func TestBackoffJitterSpreads(t *testing.T) {
	b := core.Backoff{Initial: time.Second, Max: time.Second}
	seen := make(map[time.Duration]bool)
	for i := 0; i < 50; i++ {
		seen[b.Delay(0, nil)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 jittered delays gave only %d distinct values", len(seen))
	}
}
