package server_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

// keys returns an object's keys, sorted and joined.
func keys(m map[string]any) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestLocalFirstClientFrames replays the frames the real Dart
// local_first_websocket client sends (see protocol-as-coded.md) and checks
// that the replies have exactly the shape it reads.
func TestLocalFirstClientFrames(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithTokens(map[string]server.Principal{"secret-token": {User: "dart"}}))

	// Auth with the token field.
	a := dial(t, s)
	a.sendRaw(`{"type":"auth","token":"secret-token"}`)
	if m := a.readRaw(); keys(m) != "type" || m["type"] != "auth_success" {
		t.Fatalf("auth reply %v, want exactly {type: auth_success}", m)
	}
	// Auth with custom headers spread as top-level keys.
	b := dial(t, s)
	b.sendRaw(`{"type":"auth","Authorization":"Bearer secret-token","X-App-Version":"1.2.3"}`)
	if m := b.readRaw(); keys(m) != "type" || m["type"] != "auth_success" {
		t.Fatalf("auth reply %v", m)
	}
	// b subscribes by requesting from sequence 0.
	b.sendRaw(`{"type":"request_events","repository":"users","afterSequence":0,"limit":100}`)
	if m := b.readRaw(); keys(m) != "hasMore,lastSequence,repository,type" || m["type"] != "sync_complete" || m["repository"] != "users" {
		t.Fatalf("empty request_events reply %v", m)
	}

	// push_events_batch in coded form, as the Dart client flushes its queue.
	a.sendRaw(`{"type":"push_events_batch","repository":"users","events":[` +
		`{"_event_id":"0190a1b2-0000-7000-8000-000000000001","_operation":0,"_created_at":"2026-03-01T10:00:00.000Z","_data_id":"u1","_data":{"id":"u1","name":"Ada"}},` +
		`{"_event_id":"0190a1b2-0000-7000-8000-000000000002","_operation":1,"_created_at":"2026-03-01T10:00:01.123Z","_data_id":"u1","_data":{"id":"u1","name":"Ada L."}},` +
		`{"_event_id":"0190a1b2-0000-7000-8000-000000000003","_operation":2,"_created_at":"2026-03-01T10:00:02.000Z","_data_id":"u2"}]}`)
	ack := a.readRaw()
	if keys(ack) != "eventIds,repositories,sequences,type" || ack["type"] != "ack" {
		t.Fatalf("ack %v", ack)
	}
	wantIDs := `[0190a1b2-0000-7000-8000-000000000001 0190a1b2-0000-7000-8000-000000000002 0190a1b2-0000-7000-8000-000000000003]`
	if got := fmtAny(ack["eventIds"]); got != wantIDs {
		t.Fatalf("ack eventIds %v, want %s", ack["eventIds"], wantIDs)
	}
	repos, _ := ack["repositories"].(map[string]any)
	if keys(repos) != "users" || fmtAny(repos["users"]) != wantIDs {
		t.Fatalf("ack repositories %v", ack["repositories"])
	}

	// b receives the events live, with serverSequence and coded keys.
	live := b.readRaw()
	if keys(live) != "events,repository,type" || live["type"] != "events" || live["repository"] != "users" {
		t.Fatalf("live events %v", live)
	}
	evs, _ := live["events"].([]any)
	if len(evs) != 3 {
		t.Fatalf("live events %v", live)
	}
	iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for i, raw := range evs {
		e := raw.(map[string]any)
		want := "_created_at,_data,_data_id,_event_id,_operation,serverSequence"
		if i == 2 {
			want = "_created_at,_data_id,_event_id,_operation,serverSequence" // a delete has no _data
		}
		if keys(e) != want {
			t.Fatalf("event keys %s, want %s", keys(e), want)
		}
		if e["serverSequence"] != float64(i+1) || e["_operation"] != float64(i) || !iso.MatchString(e["_created_at"].(string)) {
			t.Fatalf("event %d: %v", i, e)
		}
	}
	if evs[1].(map[string]any)["_created_at"] != "2026-03-01T10:00:01.123Z" {
		t.Fatalf("created at changed: %v", evs[1])
	}
	b.sendRaw(`{"type":"events_received","repository":"users","count":3}`)

	// request_events with afterSequence + limit: latest per document.
	c := dial(t, s)
	c.sendRaw(`{"type":"auth","token":"secret-token"}`)
	c.readRaw()
	c.sendRaw(`{"type":"request_events","repository":"users","afterSequence":0,"limit":100}`)
	page := c.readRaw()
	if keys(page) != "events,repository,type" || page["type"] != "events" {
		t.Fatalf("request_events reply %v", page)
	}
	pevs := page["events"].([]any)
	if len(pevs) != 2 || pevs[0].(map[string]any)["serverSequence"] != float64(2) || pevs[1].(map[string]any)["_data_id"] != "u2" {
		t.Fatalf("latest per document: %v", pevs)
	}
	done := c.readRaw()
	if done["type"] != "sync_complete" || done["repository"] != "users" || done["lastSequence"] != float64(3) || done["hasMore"] != false {
		t.Fatalf("sync_complete %v", done)
	}
	c.sendRaw(`{"type":"events_received","repository":"users","count":2}`)

	// The client answers a server ping with pong, and pings itself.
	c.sendRaw(`{"type":"pong"}`)
	c.sendRaw(`{"type":"ping"}`)
	if m := c.readRaw(); keys(m) != "type" || m["type"] != "pong" {
		t.Fatalf("ping reply %v", m)
	}
	// request_all_events without repository ends with a sync_complete
	// without repository.
	c.sendRaw(`{"type":"request_all_events"}`)
	if m := c.readRaw(); m["type"] != "events" || len(m["events"].([]any)) != 3 {
		t.Fatalf("request_all_events %v", m)
	}
	if m := c.readRaw(); m["type"] != "sync_complete" || m["repository"] != nil {
		t.Fatalf("request_all_events end %v", m)
	}
	// An error frame carries message (and code).
	c.sendRaw(`{"type":"bogus"}`)
	if m := c.readRaw(); m["type"] != "error" || m["message"] == "" || m["code"] != "invalid" {
		t.Fatalf("error %v", m)
	}
}

func fmtAny(v any) string {
	arr, ok := v.([]any)
	if !ok {
		return "<not an array>"
	}
	parts := make([]string, len(arr))
	for i, x := range arr {
		s, _ := x.(string)
		parts[i] = s
	}
	return "[" + strings.Join(parts, " ") + "]"
}
