package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/lfsync/lfsync/core/protocol"
)

// seedFrames are the frames a real local_first client and our engine send,
// plus the README's alias forms and a few broken ones. They run as the fuzz
// seed corpus on every `go test`.
var seedFrames = []string{
	`{"type":"auth","token":"abc"}`,
	`{"type":"auth","Authorization":"Bearer abc","X-Tenant":"acme"}`,
	`{"type":"auth","token":"t","clientId":"c1","type2":1}`,
	`{"type":"ping"}`,
	`{"type":"pong"}`,
	`{"type":"push_event","repository":"users","event":{"_event_id":"0190a4b2-0000-7000-8000-000000000001","_operation":0,"_created_at":"2025-01-23T10:00:00.123Z","_data_id":"u1","_data":{"id":"u1","name":"Ada"}}}`,
	`{"type":"push_events_batch","repository":"todos","events":[{"_event_id":"e1","_operation":1,"_created_at":"2025-01-23T10:00:00.000Z","_data_id":"t1","_data":{"id":"t1","done":true},"_meta":{"fields":{}}},{"_event_id":"e2","_operation":2,"_created_at":"2025-01-23T10:00:01.000Z","_data_id":"t2"}]}`,
	`{"type":"push_events_batch","repository":"todos","events":[{"eventId":"e1","operation":"insert","createdAt":1737626400000,"data":{"id":"t1"}}]}`,
	`{"type":"request_events","repository":"todos","afterSequence":41,"limit":100}`,
	`{"type":"request_events","repository":"todos","since":"2025-01-23T10:00:00.000Z"}`,
	`{"type":"request_events","repository":"todos","afterSequence":0,"limit":500,"reduce":false}`,
	`{"type":"request_all_events"}`,
	`{"type":"request_all_events","repository":"todos"}`,
	`{"type":"events_received","repository":"todos","count":3}`,
	`{"type":"auth_success"}`,
	`{"type":"events","repository":"todos","events":[{"_event_id":"e1","_operation":0,"_created_at":"2025-01-23T10:00:00.000Z","_data_id":"t1","_data":{"id":"t1"},"serverSequence":7}]}`,
	`{"type":"ack","eventIds":["e1"],"repositories":{"todos":["e1"]},"sequences":{"e1":7}}`,
	`{"type":"sync_complete","repository":"todos","hasMore":true,"lastSequence":9}`,
	`{"type":"error","message":"no","code":"forbidden","repository":"r","eventId":"e"}`,
	`{"type":"push_event","repository":"r","event":{"_event_id":"e","_operation":0,"_created_at":1e15,"_data_id":"d","_data":{}}}`,
	`{"type":"request_events","repository":"r","afterSequence":1e300}`,
	`{"type":"error","message":"line\nbreak \"quoted\" \\ \u0001 \u2028 <&> \ud800 é"}`,
	`{"type":"push_event","repository":"r\u0000","event":{"_event_id":"e\t","_operation":"delete","_created_at":"2025-01-23T10:00:00Z","_data_id":7}}`,
	`{"type":"bogus"}`,
	`{"type":"push_event"`,
	`[]`,
	``,
}

// FuzzDecode checks that Decode never panics, that every failure is a
// *protocol.Error with a code, and that a decoded frame survives an
// Encode/Decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range seedFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := protocol.Decode(frame)
		if err != nil {
			var perr *protocol.Error
			if !errors.As(err, &perr) || perr.Code != protocol.CodeInvalid {
				t.Fatalf("Decode(%q) error %v is not an invalid *protocol.Error", frame, err)
			}
			return
		}
		first, err := protocol.Encode(m)
		if err != nil {
			t.Fatalf("Encode of decoded %q: %v", frame, err)
		}
		if !json.Valid(first) {
			t.Fatalf("Encode of decoded %q wrote invalid JSON %s", frame, first)
		}
		again, err := protocol.Decode(first)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v; encoded %s", frame, err, first)
		}
		second, err := protocol.Encode(again)
		if err != nil {
			t.Fatalf("second Encode: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("round trip not stable:\n first %s\nsecond %s", first, second)
		}
	})
}
