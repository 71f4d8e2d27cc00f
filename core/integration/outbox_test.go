package integration_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/servertest"
)

func TestPushFramesShrinkToTheServerLimitAndOversizedEventsFail(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.MaxFrameBytes = 4096 }))
	c, store := newClient(t, fastOptions(srv.WSURL(), "todos"))
	waitSynced(t, c)
	r := c.Repository("todos")
	filler := strings.Repeat("x", 400)
	var puts []core.Put
	for i := 0; i < 30; i++ {
		puts = append(puts, core.Put{ID: "doc" + itoa(i), Data: []byte(`{"text":"` + filler + `"}`)})
	}
	if err := r.UpsertMany(context.Background(), puts); err != nil {
		t.Fatal(err)
	}
	upsert(t, r, "huge", `{"text":"`+strings.Repeat("y", 8000)+`"}`)
	waitSynced(t, c)
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 100)
	if err != nil || len(events) != 30 {
		t.Fatalf("server stored %d events (%v), want the 30 that fit", len(events), err)
	}
	pending, _ := store.Pending(context.Background(), 0)
	if len(pending) != 0 {
		t.Fatalf("%d events still pending", len(pending))
	}
	if m := c.Metrics(); m.FailedSends < 1 {
		t.Fatalf("metrics %+v: the oversized event is not counted as failed", m)
	}
}

func TestOutboxFlushesInBatchesInOrder(t *testing.T) {
	srv := servertest.Start(t)
	opts := fastOptions(srv.WSURL(), "todos", "notes")
	opts.BatchSize = 7
	a, _ := newClient(t, opts)
	b, _ := newClient(t, fastOptions(srv.WSURL(), "todos", "notes"))
	waitSynced(t, a, b)
	a.Stop()
	for i := 0; i < 40; i++ {
		upsert(t, a.Repository("todos"), "t"+itoa(i%10), `{"n":`+itoa(i)+`}`)
		upsert(t, a.Repository("notes"), "n"+itoa(i), `{"n":`+itoa(i)+`}`)
	}
	a.Start()
	waitSynced(t, a, b)
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 1000)
	if err != nil || len(events) != 40 {
		t.Fatalf("server holds %d todos events (%v), want 40", len(events), err)
	}
	for i, e := range events {
		if !strings.Contains(string(e.Data), `"n":`+itoa(i)+`}`) {
			t.Fatalf("event %d on the server is %s: the outbox order was not kept", i, e.Data)
		}
	}
	if got, want := all(t, b.Repository("todos")), all(t, a.Repository("todos")); got != want {
		t.Fatalf("b %s, a %s", got, want)
	}
	if m := a.Metrics(); m.EventsSent != 80 || m.EventsAcked != 80 {
		t.Fatalf("metrics %+v, want 80 sent and acked", m)
	}
}

func TestRateLimitedPushesAreRetriedUntilAcked(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.RatePerSecond = 20
		c.RateBurst = 3
	}))
	opts := fastOptions(srv.WSURL(), "todos")
	opts.BatchSize = 1
	c, store := newClient(t, opts)
	waitSynced(t, c)
	// Written offline, then flushed as fast as the push window allows.
	c.Stop()
	for i := 0; i < 15; i++ {
		upsert(t, c.Repository("todos"), "d"+itoa(i), `{"n":`+itoa(i)+`}`)
	}
	c.Start()
	waitSynced(t, c)
	if n, _ := store.PendingCount(context.Background()); n != 0 || c.Status().Pending != 0 {
		t.Fatalf("pending %d in the store, %d in the status", n, c.Status().Pending)
	}
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 100)
	if err != nil || len(events) != 15 {
		t.Fatalf("server stored %d events (%v), want 15", len(events), err)
	}
	if m := c.Metrics(); m.FailedSends == 0 {
		t.Fatalf("metrics %+v: no push was rate limited, the test did not test anything", m)
	}
}

func TestEventLargerThanMaxEventBytesFailsWithoutSending(t *testing.T) {
	srv := servertest.Start(t)
	opts := fastOptions(srv.WSURL(), "todos")
	opts.MaxEventBytes = 2000
	c, store := newClient(t, opts)
	waitSynced(t, c)
	upsert(t, c.Repository("todos"), "big", `{"text":"`+strings.Repeat("z", 3000)+`"}`)
	upsert(t, c.Repository("todos"), "small", `{"text":"ok"}`)
	waitSynced(t, c)
	events, _, err := srv.Store().Range(context.Background(), server.DefaultNamespace, "todos", 0, 10)
	if err != nil || len(events) != 1 || events[0].DataID != "small" {
		t.Fatalf("server holds %v (%v), want only the small event", events, err)
	}
	if n, _ := store.PendingCount(context.Background()); n != 0 || c.Status().Pending != 0 {
		t.Fatalf("pending %d / %d", n, c.Status().Pending)
	}
	if m := c.Metrics(); m.Reconnects != 0 || m.FailedSends != 1 {
		t.Fatalf("metrics %+v, want no reconnect and one failed send", m)
	}
	if !strings.Contains(c.Status().LastError, "MaxEventBytes") {
		t.Fatalf("lastError %q", c.Status().LastError)
	}
}
