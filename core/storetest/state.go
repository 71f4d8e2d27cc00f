package storetest

import (
	"encoding/json"
	"testing"

	"github.com/lfsync/lfsync/core"
)

func testCursors(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Cursors: map[string]int64{"todos": 10, "notes": 3}})
	mustWrite(t, s, &core.Batch{Cursors: map[string]int64{"todos": 12}})
	for repo, want := range map[string]int64{"todos": 12, "notes": 3, "tags": 0} {
		if got := mustCursor(t, s, repo); got != want {
			t.Fatalf("Cursor(%q) = %d, want %d", repo, got, want)
		}
	}
	// A cursor may be set back (a server reset) and to zero.
	mustWrite(t, s, &core.Batch{Cursors: map[string]int64{"todos": 0, "notes": 1 << 40}})
	if got := mustCursor(t, s, "todos"); got != 0 {
		t.Fatalf("Cursor(todos) = %d, want 0", got)
	}
	if got := mustCursor(t, s, "notes"); got != 1<<40 {
		t.Fatalf("Cursor(notes) = %d, want %d", got, int64(1<<40))
	}
}

func testConfig(t *testing.T, s core.Store) {
	mustWrite(t, s, &core.Batch{Config: map[string]string{"clientId": "c1", "schema": "1", "empty": ""}})
	mustWrite(t, s, &core.Batch{Config: map[string]string{"schema": "2"}})
	for key, want := range map[string]string{"clientId": "c1", "schema": "2", "empty": ""} {
		if got, ok := mustConfig(t, s, key); !ok || got != want {
			t.Fatalf("Config(%q) = %q, %v; want %q, true", key, got, ok, want)
		}
	}
	if got, ok := mustConfig(t, s, "missing"); ok {
		t.Fatalf("Config(missing) = %q, want unset", got)
	}
}

func testCopies(t *testing.T, s core.Store) {
	d := doc("a", "original")
	d.Fields = map[string]core.Stamp{"title": {At: baseTime, EventID: "ev-a"}}
	e := event("todos", "e1", "a")
	e.Event.Meta = json.RawMessage(`{"k":"original"}`)
	want, wantEvent := d, e
	want.Data = append(json.RawMessage(nil), d.Data...)
	want.Fields = map[string]core.Stamp{"title": d.Fields["title"]}
	wantEvent.Event.Data = append(json.RawMessage(nil), e.Event.Data...)
	wantEvent.Event.Meta = append(json.RawMessage(nil), e.Event.Meta...)

	b := &core.Batch{Docs: []core.DocWrite{{Repo: "todos", Doc: d}}, Events: []core.OutboxEvent{e}}
	mustWrite(t, s, b)
	// Change what was written.
	scribble(d.Data)
	scribble(e.Event.Data)
	scribble(e.Event.Meta)
	d.Fields["title"] = core.Stamp{EventID: "changed"}
	d.Fields["extra"] = core.Stamp{EventID: "changed"}
	checkDoc(t, mustDoc(t, s, "todos", "a"), want)
	checkOutbox(t, mustOutbox(t, s, "e1"), wantEvent)

	// Change what was read.
	got := mustDoc(t, s, "todos", "a")
	scribble(got.Data)
	if got.Fields != nil {
		got.Fields["title"] = core.Stamp{EventID: "changed"}
	}
	docs := mustDocs(t, s, "todos")
	scribble(docs[0].Data)
	ev := mustOutbox(t, s, "e1")
	scribble(ev.Event.Data)
	scribble(ev.Event.Meta)
	pending := mustPending(t, s, 0)
	scribble(pending[0].Event.Data)
	checkDoc(t, mustDoc(t, s, "todos", "a"), want)
	checkDoc(t, mustDocs(t, s, "todos")[0], want)
	checkOutbox(t, mustOutbox(t, s, "e1"), wantEvent)
	checkOutbox(t, mustPending(t, s, 0)[0], wantEvent)
}

// scribble overwrites b with other valid JSON of the same length where it
// can, so a store that kept b would return different data.
func scribble(b []byte) {
	for i := range b {
		if b[i] >= 'a' && b[i] <= 'z' {
			b[i] = 'q'
		}
	}
}
