package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// watchFor reads advances until one reports ns/repo at seq or beyond,
// failing the test when the channel closes or a minute passes first.
func watchFor(t *testing.T, ch <-chan server.Advance, ns, repo string, seq int64) {
	t.Helper()
	timeout := time.After(time.Minute) // a deadlock guard, not a speed check
	for {
		select {
		case a, ok := <-ch:
			if !ok {
				t.Fatalf("Watch channel closed before %s/%s reached %d", ns, repo, seq)
			}
			if a.Namespace == ns && a.Repository == repo && a.Sequence >= seq {
				return
			}
		case <-timeout:
			t.Fatalf("no advance of %s/%s to %d", ns, repo, seq)
		}
	}
}

// TestWatchSeesOtherNodes: appends through one store are reported by
// another store's Watch, in increasing sequences per repository.
func TestWatchSeesOtherNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	// An hour between polls: what arrives comes by notification.
	a, b := open(t, dsn, postgres.WithPollInterval(time.Hour)), open(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch() failed: %v", err)
	}
	last := map[string]int64{}
	for i := range 20 {
		repo := label("r%d", i%3)
		res, err := b.Append(context.Background(), "ns", repo, []protocol.Event{event(t, "d"), event(t, "e")})
		if err != nil {
			t.Fatal(err)
		}
		last[repo] = res[1].Sequence
	}
	reported := map[string]int64{}
	timeout := time.After(time.Minute)
	for reported["r0"] < last["r0"] || reported["r1"] < last["r1"] || reported["r2"] < last["r2"] {
		select {
		case adv := <-ch:
			if adv.Namespace != "ns" || adv.Sequence <= reported[adv.Repository] || adv.Sequence > last[adv.Repository] {
				t.Fatalf("advance %+v after %d; last appended %d", adv, reported[adv.Repository], last[adv.Repository])
			}
			reported[adv.Repository] = adv.Sequence
		case <-timeout:
			t.Fatalf("advances reported %v, appended %v", reported, last)
		}
	}
	cancel()
	for range ch { // the channel closes once ctx ends
	}
}
