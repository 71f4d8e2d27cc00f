package core

import (
	"sync"
	"time"
)

// State is the sync engine's connection state.
type State string

// The states; docs/architecture.md shows the transitions.
const (
	// StateDisconnected: not started, or gave up after MaxAttempts.
	StateDisconnected State = "disconnected"
	// StateConnecting: dialing the server.
	StateConnecting State = "connecting"
	// StateAuthenticating: the socket is open, auth sent, no auth_success yet.
	StateAuthenticating State = "authenticating"
	// StateConnected: the server accepted the credentials.
	StateConnected State = "connected"
	// StateReconnecting: the connection was lost; waiting out the backoff.
	StateReconnecting State = "reconnecting"
	// StateUnauthorized: the server rejected the credentials; waiting for
	// new ones (RefreshToken or UpdateToken).
	StateUnauthorized State = "unauthorized"
	// StateStopped: Stop or Close was called.
	StateStopped State = "stopped"
)

// SyncStatus is what a UI shows about sync. (The contract calls it Status;
// that name is the outbox event status of store.go.)
type SyncStatus struct {
	State     State     `json:"state"`
	Pending   int       `json:"pending"`
	LastSync  time.Time `json:"lastSync"`
	LastError string    `json:"lastError,omitempty"`
}

// statusFeed holds the current status and delivers its changes, in order,
// to listeners on its own goroutine (never under an engine lock); counter
// changes queued behind each other are coalesced.
type statusFeed struct {
	mu        sync.Mutex
	cur       SyncStatus
	listeners map[int]func(SyncStatus)
	nextID    int
	queue     []SyncStatus
	wake      chan struct{}
	done      chan struct{}
	stopped   bool
}

func newStatusFeed() *statusFeed {
	f := &statusFeed{
		cur:       SyncStatus{State: StateDisconnected},
		listeners: make(map[int]func(SyncStatus)),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	return f
}

// run delivers queued statuses until stop; it is the feed's goroutine.
func (f *statusFeed) run() {
	defer close(f.done)
	for range f.wake {
		for {
			f.mu.Lock()
			if len(f.queue) == 0 {
				stopped := f.stopped
				f.mu.Unlock()
				if stopped {
					return
				}
				break
			}
			s := f.queue[0]
			f.queue = f.queue[1:]
			ids := make([]int, 0, len(f.listeners))
			for id := range f.listeners {
				ids = append(ids, id)
			}
			f.mu.Unlock()
			for _, id := range ids {
				f.mu.Lock()
				fn := f.listeners[id]
				f.mu.Unlock()
				if fn != nil {
					fn(s)
				}
			}
		}
	}
}

// stop delivers what is queued, then ends run.
func (f *statusFeed) stop() {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	f.mu.Unlock()
	f.signal()
	<-f.done
}

func (f *statusFeed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// get returns the current status.
func (f *statusFeed) get() SyncStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// update changes the status with fn and queues it if it changed.
func (f *statusFeed) update(fn func(*SyncStatus)) {
	f.mu.Lock()
	next := f.cur
	fn(&next)
	if next == f.cur || f.stopped {
		f.mu.Unlock()
		return
	}
	f.cur = next
	// Changes of the counters alone (Pending, LastSync) replace a status
	// still queued; every state and error change is delivered.
	if n := len(f.queue); n > 0 && f.queue[n-1].State == next.State && f.queue[n-1].LastError == next.LastError {
		f.queue[n-1] = next
	} else {
		f.queue = append(f.queue, next)
	}
	f.mu.Unlock()
	f.signal()
}

// subscribe adds a listener.
func (f *statusFeed) subscribe(fn func(SyncStatus)) func() {
	f.mu.Lock()
	id := f.nextID
	f.nextID++
	f.listeners[id] = fn
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.listeners, id)
			f.mu.Unlock()
		})
	}
}
