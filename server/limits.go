package server

import (
	"sync"
	"time"
)

// bucket is a token bucket rate limiter; not safe for concurrent use (one
// per connection, used by its read loop).
type bucket struct {
	rate   float64 // tokens per second; 0 = unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes one token if available.
func (b *bucket) allow(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// restLimiter rate-limits REST requests per client address with the same
// token bucket as WebSocket frames.
type restLimiter struct {
	rate  float64
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

func newRESTLimiter(rate float64, burst int) *restLimiter {
	return &restLimiter{rate: rate, burst: burst, buckets: make(map[string]*bucket)}
}

// allow takes a token from host's bucket.
func (l *restLimiter) allow(host string, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Forget buckets that have refilled completely: they hold no state.
	if now.Sub(l.swept) > time.Minute {
		full := time.Duration(float64(l.burst)/l.rate*float64(time.Second)) + time.Second
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[host]
	if b == nil {
		b = newBucket(l.rate, l.burst)
		l.buckets[host] = b
	}
	return b.allow(now)
}
