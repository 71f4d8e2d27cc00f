package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

// baseTime is the creation time of test events; millisecond precision so
// stores that keep milliseconds only round-trip it exactly.
var baseTime = time.UnixMilli(1_767_225_600_000).UTC() // 2026-01-01T00:00:00Z

func mustWrite(t testing.TB, s core.Store, b *core.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// doc returns a live document whose data carries its id and a title.
func doc(id, title string) core.Doc {
	return core.Doc{
		ID:      id,
		Data:    json.RawMessage(`{"id":` + strconv.Quote(id) + `,"title":` + strconv.Quote(title) + `}`),
		Version: core.Stamp{At: baseTime, EventID: "ev-" + id},
	}
}

// event returns a pending insert of document docID in repo.
func event(repo, id, docID string) core.OutboxEvent {
	return core.OutboxEvent{
		Repo: repo,
		Event: protocol.Event{
			ID:        id,
			Operation: protocol.OpInsert,
			CreatedAt: baseTime,
			DataID:    docID,
			Data:      json.RawMessage(`{"id":` + strconv.Quote(docID) + `}`),
		},
		Status: core.StatusPending,
	}
}

func mustDoc(t testing.TB, s core.Store, repo, id string) core.Doc {
	t.Helper()
	d, ok, err := s.Doc(context.Background(), repo, id)
	if err != nil {
		t.Fatalf("Doc(%q, %q): %v", repo, id, err)
	}
	if !ok {
		t.Fatalf("Doc(%q, %q): not found", repo, id)
	}
	return d
}

func mustNoDoc(t testing.TB, s core.Store, repo, id string) {
	t.Helper()
	d, ok, err := s.Doc(context.Background(), repo, id)
	if err != nil {
		t.Fatalf("Doc(%q, %q): %v", repo, id, err)
	}
	if ok {
		t.Fatalf("Doc(%q, %q) = %+v, want not found", repo, id, d)
	}
}

func mustDocs(t testing.TB, s core.Store, repo string) []core.Doc {
	t.Helper()
	docs, err := s.Docs(context.Background(), repo)
	if err != nil {
		t.Fatalf("Docs(%q): %v", repo, err)
	}
	return docs
}

func mustPending(t testing.TB, s core.Store, limit int) []core.OutboxEvent {
	t.Helper()
	evs, err := s.Pending(context.Background(), limit)
	if err != nil {
		t.Fatalf("Pending(%d): %v", limit, err)
	}
	return evs
}

func mustPendingCount(t testing.TB, s core.Store) int {
	t.Helper()
	n, err := s.PendingCount(context.Background())
	if err != nil {
		t.Fatalf("PendingCount: %v", err)
	}
	return n
}

func mustAcked(t testing.TB, s core.Store, limit int) []string {
	t.Helper()
	ids, err := s.Acked(context.Background(), limit)
	if err != nil {
		t.Fatalf("Acked(%d): %v", limit, err)
	}
	return ids
}

func mustOutbox(t testing.TB, s core.Store, id string) core.OutboxEvent {
	t.Helper()
	e, ok, err := s.Outbox(context.Background(), id)
	if err != nil {
		t.Fatalf("Outbox(%q): %v", id, err)
	}
	if !ok {
		t.Fatalf("Outbox(%q): not found", id)
	}
	return e
}

func mustNoOutbox(t testing.TB, s core.Store, id string) {
	t.Helper()
	e, ok, err := s.Outbox(context.Background(), id)
	if err != nil {
		t.Fatalf("Outbox(%q): %v", id, err)
	}
	if ok {
		t.Fatalf("Outbox(%q) = %+v, want not found", id, e)
	}
}

func mustCursor(t testing.TB, s core.Store, repo string) int64 {
	t.Helper()
	c, err := s.Cursor(context.Background(), repo)
	if err != nil {
		t.Fatalf("Cursor(%q): %v", repo, err)
	}
	return c
}

func mustConfig(t testing.TB, s core.Store, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Config(context.Background(), key)
	if err != nil {
		t.Fatalf("Config(%q): %v", key, err)
	}
	return v, ok
}

// eventIDs lists the event ids of evs in order.
func eventIDs(evs []core.OutboxEvent) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.Event.ID
	}
	return ids
}

// docIDs lists the document ids of docs in order.
func docIDs(docs []core.Doc) []string {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids
}

func equalStrings(a, b []string) bool { return reflect.DeepEqual(a, b) || len(a) == 0 && len(b) == 0 }

// jsonEqual reports whether a and b hold the same JSON value; two empty
// values are equal, so stores may return nil or empty for absent data.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func equalStamp(a, b core.Stamp) bool { return a.At.Equal(b.At) && a.EventID == b.EventID }

// checkDoc fails t unless got holds what want holds.
func checkDoc(t testing.TB, got, want core.Doc) {
	t.Helper()
	if got.ID != want.ID || got.Deleted != want.Deleted || got.Sequence != want.Sequence ||
		!jsonEqual(got.Data, want.Data) || !equalStamp(got.Version, want.Version) || len(got.Fields) != len(want.Fields) {
		t.Fatalf("doc = %s, want %s", showDoc(got), showDoc(want))
	}
	for k, w := range want.Fields {
		if g, ok := got.Fields[k]; !ok || !equalStamp(g, w) {
			t.Fatalf("doc = %s, want %s", showDoc(got), showDoc(want))
		}
	}
}

func showDoc(d core.Doc) string {
	return "{id:" + strconv.Quote(d.ID) + " data:" + string(d.Data) + " deleted:" + strconv.FormatBool(d.Deleted) +
		" version:" + d.Version.At.Format(time.RFC3339Nano) + "/" + d.Version.EventID +
		" fields:" + strconv.Itoa(len(d.Fields)) + " seq:" + strconv.FormatInt(d.Sequence, 10) + "}"
}

// checkOutbox fails t unless got holds what want holds; want.Order is
// checked only when non-zero.
func checkOutbox(t testing.TB, got, want core.OutboxEvent) {
	t.Helper()
	g, w := got.Event, want.Event
	if got.Repo != want.Repo || got.Status != want.Status || got.Error != want.Error ||
		want.Order != 0 && got.Order != want.Order ||
		g.ID != w.ID || g.Operation != w.Operation || !g.CreatedAt.Equal(w.CreatedAt) || g.DataID != w.DataID ||
		!jsonEqual(g.Data, w.Data) || g.ServerSequence != w.ServerSequence || !jsonEqual(g.Meta, w.Meta) {
		t.Fatalf("outbox event = %s, want %s", showOutbox(got), showOutbox(want))
	}
}

func showOutbox(e core.OutboxEvent) string {
	return "{repo:" + strconv.Quote(e.Repo) + " id:" + strconv.Quote(e.Event.ID) + " op:" + e.Event.Operation.String() +
		" at:" + e.Event.CreatedAt.Format(time.RFC3339Nano) + " dataId:" + strconv.Quote(e.Event.DataID) +
		" data:" + string(e.Event.Data) + " meta:" + string(e.Event.Meta) +
		" serverSeq:" + strconv.FormatInt(e.Event.ServerSequence, 10) +
		" status:" + strconv.Itoa(int(e.Status)) + " order:" + strconv.FormatInt(e.Order, 10) +
		" error:" + strconv.Quote(e.Error) + "}"
}

// checkOrders fails t unless the Orders of evs strictly increase.
func checkOrders(t testing.TB, evs []core.OutboxEvent) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Order <= evs[i-1].Order {
			t.Fatalf("event %q has Order %d after %q with Order %d; want strictly increasing",
				evs[i].Event.ID, evs[i].Order, evs[i-1].Event.ID, evs[i-1].Order)
		}
	}
}

// checkEmpty fails t unless s holds nothing of the given repository, the
// outbox is empty, and config key is unset.
func checkEmpty(t testing.TB, s core.Store, repo, key string) {
	t.Helper()
	if docs := mustDocs(t, s, repo); len(docs) != 0 {
		t.Fatalf("Docs(%q) = %v, want none", repo, docIDs(docs))
	}
	if evs := mustPending(t, s, 0); len(evs) != 0 {
		t.Fatalf("Pending = %v, want none", eventIDs(evs))
	}
	if n := mustPendingCount(t, s); n != 0 {
		t.Fatalf("PendingCount = %d, want 0", n)
	}
	if c := mustCursor(t, s, repo); c != 0 {
		t.Fatalf("Cursor(%q) = %d, want 0", repo, c)
	}
	if v, ok := mustConfig(t, s, key); ok {
		t.Fatalf("Config(%q) = %q, want unset", key, v)
	}
}
