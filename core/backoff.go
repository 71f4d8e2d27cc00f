package core

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff configures reconnect delays: exponential growth from Initial by
// Multiplier up to Max, with full jitter (each delay is uniform in [0, d]).
// The zero value means the defaults: 1s initial, 30s max, x2, unlimited
// attempts.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// MaxAttempts bounds consecutive failed attempts before the client stops
	// retrying (state disconnected); 0 means unlimited.
	MaxAttempts int
}

// Backoff defaults.
const (
	DefaultBackoffInitial    = time.Second
	DefaultBackoffMax        = 30 * time.Second
	DefaultBackoffMultiplier = 2.0
)

// withDefaults fills zero fields.
func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 {
		b.Multiplier = DefaultBackoffMultiplier
	}
	if b.MaxAttempts < 0 {
		b.MaxAttempts = 0
	}
	return b
}

// Ceiling returns the upper bound of the delay before retry number attempt
// (0-based): min(Max, Initial*Multiplier^attempt).
func (b Backoff) Ceiling(attempt int) time.Duration {
	b = b.withDefaults()
	if attempt < 0 {
		attempt = 0
	}
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(attempt))
	if math.IsInf(d, 0) || math.IsNaN(d) || d >= float64(b.Max) {
		return b.Max
	}
	return time.Duration(d)
}

// Delay returns the jittered delay before retry number attempt: uniform in
// [0, Ceiling(attempt)] ("full jitter"). rnd returns a float in [0, 1); nil
// means math/rand/v2.
func (b Backoff) Delay(attempt int, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	c := b.Ceiling(attempt)
	return time.Duration(rnd() * float64(c+1))
}

// backoffState counts consecutive failures; success resets it.
type backoffState struct {
	cfg      Backoff
	attempts int
	rnd      func() float64
}

// next returns the delay before the next attempt and whether another
// attempt is allowed.
func (s *backoffState) next() (time.Duration, bool) {
	cfg := s.cfg.withDefaults()
	if cfg.MaxAttempts > 0 && s.attempts >= cfg.MaxAttempts {
		return 0, false
	}
	d := cfg.Delay(s.attempts, s.rnd)
	s.attempts++
	return d, true
}

// reset forgets past failures after a successful connection.
func (s *backoffState) reset() { s.attempts = 0 }
