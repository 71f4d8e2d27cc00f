package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

func mustDecode(t *testing.T, frame string) protocol.Message {
	t.Helper()
	m, err := protocol.Decode([]byte(frame))
	if err != nil {
		t.Fatalf("Decode(%s): %v", frame, err)
	}
	return m
}

func TestDecodeCodedPush(t *testing.T) {
	m := mustDecode(t, `{"type":"push_event","repository":"users","event":{
		"_event_id":"0190a4b2-0000-7000-8000-000000000001","_operation":1,
		"_created_at":"2025-01-23T10:00:00.123Z","_data_id":"u1","_data":{"id":"u1","name":"Ada"}}}`)
	if got, want := m.Type, protocol.TypePushEvent; got != want {
		t.Fatalf("Type=%q, want %q", got, want)
	}
	if got, want := len(m.Events), 1; got != want {
		t.Fatalf("len(Events)=%d, want %d", got, want)
	}
	ev := m.Events[0]
	if ev.ID != "0190a4b2-0000-7000-8000-000000000001" || ev.Operation != protocol.OpUpdate || ev.DataID != "u1" {
		t.Fatalf("event=%+v", ev)
	}
	if got, want := ev.CreatedAt, time.Date(2025, 1, 23, 10, 0, 0, 123e6, time.UTC); !got.Equal(want) {
		t.Fatalf("CreatedAt=%v, want %v", got, want)
	}
}

func TestDecodeReadmeAliases(t *testing.T) {
	m := mustDecode(t, `{"type":"push_events_batch","repository":"todos","events":[
		{"eventId":"e1","operation":"insert","createdAt":1737626400000,"data":{"id":"t1","title":"x"}},
		{"eventId":"e2","operation":2,"createdAt":"2025-01-23T10:00:00Z","data":{"id":7}}]}`)
	if got, want := len(m.Events), 2; got != want {
		t.Fatalf("len(Events)=%d, want %d", got, want)
	}
	if got, want := m.Events[0].DataID, "t1"; got != want {
		t.Errorf("DataID=%q, want %q (from data.id)", got, want)
	}
	if got, want := m.Events[0].CreatedAt, time.UnixMilli(1737626400000).UTC(); !got.Equal(want) {
		t.Errorf("CreatedAt=%v, want %v (epoch ms)", got, want)
	}
	if got, want := m.Events[1].DataID, "7"; got != want {
		t.Errorf("numeric data.id=%q, want %q", got, want)
	}
	if m.Events[1].Operation != protocol.OpDelete {
		t.Errorf("Operation=%v, want delete", m.Events[1].Operation)
	}
}

func TestEventEncodesCodedForm(t *testing.T) {
	ev := protocol.Event{
		ID: "e1", Operation: protocol.OpInsert, DataID: "d1",
		CreatedAt:      time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC),
		Data:           json.RawMessage(`{"id":"d1","n":1}`),
		ServerSequence: 42,
		Meta:           json.RawMessage(`{"f":{"n":"x"}}`),
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"_event_id", "_operation", "_created_at", "_data_id", "_data", "serverSequence", "_meta"} {
		if _, ok := m[k]; !ok {
			t.Errorf("encoded event %s lacks %q", b, k)
		}
	}
	if got, want := string(m["_created_at"]), `"2025-01-02T03:04:05.006Z"`; got != want {
		t.Errorf("_created_at=%s, want %s", got, want)
	}
	var back protocol.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if back.ID != ev.ID || back.ServerSequence != 42 || !back.CreatedAt.Equal(ev.CreatedAt) || string(back.Meta) != string(ev.Meta) {
		t.Fatalf("round trip=%+v, want %+v", back, ev)
	}
}

func TestDeleteOmitsData(t *testing.T) {
	b, err := json.Marshal(protocol.Event{ID: "e", Operation: protocol.OpDelete, DataID: "d", CreatedAt: time.Now(), Data: json.RawMessage(`{"id":"d"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "_data\"") {
		t.Fatalf("delete event %s carries _data", b)
	}
}

func TestDecodeAuth(t *testing.T) {
	m := mustDecode(t, `{"type":"auth","Authorization":"Bearer abc","X-Custom":"v","clientId":"c1"}`)
	if got, want := m.Token, "abc"; got != want {
		t.Errorf("Token=%q, want %q", got, want)
	}
	if got, want := m.Headers["X-Custom"], "v"; got != want {
		t.Errorf("Headers[X-Custom]=%q, want %q", got, want)
	}
	if got, want := m.ClientID, "c1"; got != want {
		t.Errorf("ClientID=%q, want %q", got, want)
	}
	if m := mustDecode(t, `{"type":"auth","token":"t","Authorization":"Bearer other"}`); m.Token != "t" {
		t.Errorf("explicit token lost to header: %q", m.Token)
	}
}

func TestAuthHeadersCannotOverrideType(t *testing.T) {
	b, err := protocol.Encode(protocol.Message{Type: protocol.TypeAuth, Token: "t", Headers: map[string]string{"type": "push_event"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustDecode(t, string(b)).Type; got != protocol.TypeAuth {
		t.Fatalf("type=%q after a header named type, want auth", got)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	msgs := []protocol.Message{
		{Type: protocol.TypeAck, EventIDs: []string{"a", "b"}, Repositories: map[string][]string{"r": {"a", "b"}}, Sequences: map[string]int64{"a": 1, "b": 2}},
		{Type: protocol.TypeSyncComplete, Repository: "r", HasMore: true, LastSequence: 9},
		{Type: protocol.TypeRequestEvents, Repository: "r", AfterSequence: 5, Limit: 50, All: true},
		{Type: protocol.TypeEventsReceived, Repository: "r", Count: 3},
		{Type: protocol.TypeError, Code: protocol.CodeForbidden, Text: "no", Repository: "r", EventID: "e"},
		{Type: protocol.TypeRequestAllEvents},
		{Type: protocol.TypePing},
	}
	for _, want := range msgs {
		b, err := protocol.Encode(want)
		if err != nil {
			t.Fatal(err)
		}
		got := mustDecode(t, string(b))
		gb, _ := protocol.Encode(got)
		if string(gb) != string(b) {
			t.Errorf("round trip of %s gave %s", b, gb)
		}
	}
}

func TestAckAlwaysCarriesLists(t *testing.T) {
	b, err := protocol.Encode(protocol.Message{Type: protocol.TypeAck})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"type":"ack","eventIds":[],"repositories":{}}`; got != want {
		t.Fatalf("empty ack=%s, want %s", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string]string{
		`not json`:                               "not a JSON object",
		`[]`:                                     "not a JSON object",
		`{"type":"auth"} {}`:                     "after the JSON object",
		`{}`:                                     "type is missing",
		`{"type":5}`:                             "type is not a string",
		`{"type":"bogus"}`:                       "unknown message type",
		`{"type":"push_event","event":{}}`:       "repository is missing",
		`{"type":"push_event","repository":"r"}`: "event is missing",
		`{"type":"push_events_batch","repository":"r","events":{}}`:                                                                               "not an array",
		`{"type":"push_event","repository":"r","event":{"_operation":0,"_created_at":"2025-01-01T00:00:00Z","_data":{"id":"d"}}}`:                 "event id is missing",
		`{"type":"push_event","repository":"r","event":{"_event_id":"e","_operation":7,"_created_at":"2025-01-01T00:00:00Z","_data":{"id":"d"}}}`: "unknown operation",
		`{"type":"push_event","repository":"r","event":{"_event_id":"e","_operation":0,"_created_at":"yesterday","_data":{"id":"d"}}}`:            "not ISO-8601",
		`{"type":"push_event","repository":"r","event":{"_event_id":"e","_operation":0,"_created_at":"2025-01-01T00:00:00Z"}}`:                    "no document id",
		`{"type":"push_event","repository":"r","event":{"_event_id":"e","_operation":0,"_created_at":"2025-01-01T00:00:00Z","_data":[1]}}`:        "not a JSON object",
		`{"type":"push_event","repository":"r","event":{"_event_id":"e","_operation":0,"_created_at":"2025-01-01T00:00:00Z","_data_id":"d"}}`:     "has no data",
		`{"type":"request_events","repository":"r","afterSequence":"x"}`:                                                                          "afterSequence is not a number",
		`{"type":"request_events","repository":"r","afterSequence":-1}`:                                                                           "afterSequence is negative",
		`{"type":"request_events","repository":"r","limit":1.5}`:                                                                                  "limit is not an integer",
		`{"type":"events_received","repository":"r","count":true}`:                                                                                "count is not a number",
		`{"type":"ack","eventIds":"x"}`: "eventIds",
	}
	for frame, want := range cases {
		_, err := protocol.Decode([]byte(frame))
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			t.Errorf("Decode(%s) error=%v, want a *protocol.Error", frame, err)
			continue
		}
		if perr.Code != protocol.CodeInvalid || !strings.Contains(perr.Message, want) {
			t.Errorf("Decode(%s)=%v, want code invalid and message containing %q", frame, perr, want)
		}
	}
}

// TestEncodeEscapesStrings checks that the encoder's strings read back as
// encoding/json reads them, for every kind of character it must escape.
func TestEncodeEscapesStrings(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "tab\tnewline\nreturn\r",
		"\x00\x01\x1f\x7f", "line\u2028para\u2029", "<script>&amp;</script>",
		"émoji 🙂", "bad utf-8 \xff\xfe end", "\xed\xa0\x80",
	} {
		frame, err := protocol.Encode(protocol.ErrorMessage(protocol.CodeInvalid, s))
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Message string }
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatalf("Encode(%q) wrote invalid JSON %s: %v", s, frame, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got.Message != want {
			t.Errorf("Encode(%q) reads back as %q, encoding/json's as %q", s, got.Message, want)
		}
	}
}
