package integration_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/server/servertest"
)

// TestStrategiesConvergeUnderReconnectChurn has three clients write,
// delete, lose their sockets and restart at random, then checks that every
// replica holds the same documents under each converging strategy.
func TestStrategiesConvergeUnderReconnectChurn(t *testing.T) {
	for _, strat := range []core.ConflictStrategy{core.LastWriteWins, core.FieldMerge, core.ServerWins} {
		t.Run(string(strat), func(t *testing.T) {
			srv := servertest.Start(t)
			var cs []*core.Client
			for i := 0; i < 3; i++ {
				o := fastOptions(srv.WSURL(), "todos")
				o.Conflict = strat
				o.BatchSize = 3
				c, _ := newClient(t, o)
				cs = append(cs, c)
			}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 9))
			ctx := context.Background()
			for step := 0; step < 300; step++ {
				c := cs[rng.IntN(3)]
				r := c.Repository("todos")
				id := "d" + itoa(rng.IntN(8))
				switch rng.IntN(10) {
				case 0:
					_ = r.Delete(ctx, id)
				case 1:
					srv.CloseConnections()
				case 2:
					c.Stop()
					c.Start()
				default:
					m := map[string]int{}
					for _, f := range []string{"a", "b", "c"} {
						if rng.IntN(2) == 0 {
							m[f] = rng.IntN(100)
						}
					}
					b, _ := json.Marshal(m)
					if err := r.Upsert(ctx, id, b); err != nil {
						t.Fatal(err)
					}
				}
				if rng.IntN(20) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			waitSynced(t, cs...)
			waitSynced(t, cs...)
			a := all(t, cs[0].Repository("todos"))
			for i, c := range cs[1:] {
				if b := all(t, c.Repository("todos")); b != a {
					t.Fatalf("client %d differs:\n%s\n%s", i+1, a, b)
				}
			}
		})
	}
}
