package core

import (
	"testing"
	"time"
)

func TestBackoffStateAttemptsAndReset(t *testing.T) {
	s := backoffState{cfg: Backoff{Initial: 10 * time.Millisecond, Max: time.Second, MaxAttempts: 3}, rnd: func() float64 { return 0.999999999 }}
	want := []time.Duration{10, 20, 40}
	for i, w := range want {
		d, ok := s.next()
		if !ok || d != w*time.Millisecond {
			t.Fatalf("attempt %d: next()=%v,%v, want %v,true", i, d, ok, w*time.Millisecond)
		}
	}
	if _, ok := s.next(); ok {
		t.Fatal("a fourth attempt was allowed with MaxAttempts 3")
	}
	s.reset()
	if d, ok := s.next(); !ok || d != 10*time.Millisecond {
		t.Fatalf("after reset next()=%v,%v, want 10ms,true", d, ok)
	}
}

func TestBackoffStateUnlimited(t *testing.T) {
	s := backoffState{cfg: Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}}
	for i := 0; i < 1000; i++ {
		d, ok := s.next()
		if !ok {
			t.Fatalf("attempt %d refused with unlimited attempts", i)
		}
		if d > 5*time.Millisecond {
			t.Fatalf("attempt %d: delay %v above max", i, d)
		}
	}
}
