package core

import (
	"sync"
	"time"
)

// Metrics are the engine's counters since the client was created.
type Metrics struct {
	Reconnects     int64 `json:"reconnects"`
	EventsSent     int64 `json:"eventsSent"`
	EventsReceived int64 `json:"eventsReceived"`
	EventsAcked    int64 `json:"eventsAcked"`
	BytesSent      int64 `json:"bytesSent"`
	BytesReceived  int64 `json:"bytesReceived"`
	// FailedSends counts events the server rejected (marked failed) and
	// pushes that had to be retried.
	FailedSends int64 `json:"failedSends"`
	// StaleWrites counts store writes refused with ErrStale (another client
	// of the same store, such as another tab, wrote the repository since it
	// was read) and recomputed.
	StaleWrites int64 `json:"staleWrites"`
	// QueueSize is the number of pending outbox events.
	QueueSize int `json:"queueSize"`
	// AvgReconnect is the mean time from losing a connection to the next
	// accepted one.
	AvgReconnect     time.Duration `json:"avgReconnect"`
	LastConnected    time.Time     `json:"lastConnected"`
	LastDisconnected time.Time     `json:"lastDisconnected"`
}

// metrics accumulates Metrics.
type metrics struct {
	mu             sync.Mutex
	m              Metrics
	reconnectTotal time.Duration
	reconnectCount int64
	everConnected  bool
}

func (m *metrics) add(fn func(*Metrics)) {
	m.mu.Lock()
	fn(&m.m)
	m.mu.Unlock()
}

// connected records an accepted connection at now.
func (m *metrics) connected(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.everConnected {
		m.m.Reconnects++
		if !m.m.LastDisconnected.IsZero() {
			m.reconnectTotal += now.Sub(m.m.LastDisconnected)
			m.reconnectCount++
			m.m.AvgReconnect = m.reconnectTotal / time.Duration(m.reconnectCount)
		}
	}
	m.everConnected = true
	m.m.LastConnected = now
}

// disconnected records the loss of an accepted connection at now.
func (m *metrics) disconnected(now time.Time) {
	m.mu.Lock()
	m.m.LastDisconnected = now
	m.mu.Unlock()
}

func (m *metrics) snapshot(queue int) Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.m
	out.QueueSize = queue
	return out
}
