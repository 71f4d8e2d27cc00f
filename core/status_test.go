package core

import (
	"sync"
	"testing"
)

func TestStatusFeedDeliversEveryStateInOrderAndCoalescesCounters(t *testing.T) {
	f := newStatusFeed()
	block := make(chan struct{})
	var mu sync.Mutex
	var got []SyncStatus
	first := true
	f.subscribe(func(s SyncStatus) {
		if first {
			first = false
			<-block // hold delivery so later updates queue up
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	})
	go f.run()
	f.update(func(s *SyncStatus) { s.State = StateConnecting })
	for i := 1; i <= 100; i++ {
		n := i
		f.update(func(s *SyncStatus) { s.State = StateConnected; s.Pending = n })
	}
	f.update(func(s *SyncStatus) { s.LastError = "boom" })
	f.update(func(s *SyncStatus) { s.State = StateReconnecting })
	close(block)
	f.stop()
	mu.Lock()
	defer mu.Unlock()
	var states []State
	for _, s := range got {
		states = append(states, s.State)
	}
	if len(got) < 4 || got[len(got)-1].State != StateReconnecting || got[0].State != StateConnecting {
		t.Fatalf("delivered %v", states)
	}
	if len(got) > 10 {
		t.Fatalf("%d deliveries for 100 counter changes: not coalesced", len(got))
	}
	sawLast := false
	for _, s := range got {
		if s.State == StateConnected && s.Pending == 100 {
			sawLast = true
		}
	}
	if !sawLast {
		t.Fatalf("the latest counter value was not delivered: %+v", got)
	}
	if f.get().State != StateReconnecting || f.get().LastError != "boom" {
		t.Fatalf("current status %+v", f.get())
	}
}
