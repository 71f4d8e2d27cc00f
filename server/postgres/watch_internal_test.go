package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// TestWatchPollsLostNotifications: appends whose notification is lost (a
// node that dies between its commit and its notification) are reported by
// the poll of last sequences; repositories as they were when Watch
// started are not news.
func TestWatchPollsLostNotifications(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	a, err := Open(context.Background(), dsn, WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.notes.stop() // b sends no notification from now on
	ev := func() []protocol.Event {
		return []protocol.Event{{ID: uuid.NewString(), Operation: protocol.OpInsert, CreatedAt: time.Now(), DataID: "d", Data: []byte(`{}`)}}
	}
	if _, err := b.Append(context.Background(), "ns", "old", ev()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch() failed: %v", err)
	}
	if _, err := b.Append(context.Background(), "ns", "quiet", ev()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(context.Background(), "ns", "old", ev()); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	timeout := time.After(time.Minute) // a deadlock guard, not a speed check
	for got["quiet"] < 1 || got["old"] < 2 {
		select {
		case adv := <-ch:
			if adv.Repository == "old" && adv.Sequence < 2 {
				t.Fatalf("Watch reported %+v, which predates it", adv)
			}
			got[adv.Repository] = max(got[adv.Repository], adv.Sequence)
		case <-timeout:
			t.Fatalf("advances seen %v; want quiet at 1 and old at 2", got)
		}
	}
	var _ server.Watcher = a
}
