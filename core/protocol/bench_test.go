package protocol_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// benchEvents returns n events shaped like a todo app's.
func benchEvents(n int) []protocol.Event {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	evs := make([]protocol.Event, n)
	for i := range evs {
		id := "t" + strconv.Itoa(i)
		evs[i] = protocol.Event{
			ID:             "019ab2c4-1f00-7000-8000-" + strconv.Itoa(100000000000+i),
			Operation:      protocol.OpUpdate,
			CreatedAt:      at.Add(time.Duration(i) * time.Millisecond),
			DataID:         id,
			Data:           json.RawMessage(`{"id":"` + id + `","title":"Buy milk and bread","done":false,"order":` + strconv.Itoa(i) + `}`),
			ServerSequence: int64(i + 1),
		}
	}
	return evs
}

func BenchmarkDecodePushEvent(b *testing.B) {
	frame, err := protocol.Encode(protocol.Message{Type: protocol.TypePushEvent, Repository: "todos", Events: benchEvents(1)})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvents100(b *testing.B) {
	frame, err := protocol.Encode(protocol.Message{Type: protocol.TypeEvents, Repository: "todos", Events: benchEvents(100)})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEvents100(b *testing.B) {
	m := protocol.Message{Type: protocol.TypeEvents, Repository: "todos", Events: benchEvents(100)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAck(b *testing.B) {
	m := protocol.Message{
		Type:         protocol.TypeAck,
		EventIDs:     []string{"019ab2c4-1f00-7000-8000-100000000001"},
		Repositories: map[string][]string{"todos": {"019ab2c4-1f00-7000-8000-100000000001"}},
		Sequences:    map[string]int64{"019ab2c4-1f00-7000-8000-100000000001": 42},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}
