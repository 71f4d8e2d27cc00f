package serverbench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lfsync/lfsync/server"
)

// BenchmarkIngest runs the ingest load through the real server for a fixed
// window per case (run with -benchtime=1x; for profiling with -cpuprofile,
// -mutexprofile, -blockprofile). Subscribed pushers may read the
// repository, so every push is also fanned out to the other pushers.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		pushers, batch int
		subscribed     bool
	}{{1, 1, false}, {10, 1, false}, {100, 1, false}, {100, 10, false}, {100, 1, true}} {
		b.Run(fmt.Sprintf("pushers=%d/batch=%d/subscribed=%v", c.pushers, c.batch, c.subscribed), func(b *testing.B) {
			st, err := openSQLite(b.TempDir(), "ingest")
			if err != nil {
				b.Fatal(err)
			}
			n, err := startNode(st, b.Logf, func(cfg *server.Config) { cfg.SendQueue = 4096 })
			if err != nil {
				b.Fatal(err)
			}
			defer n.close()
			token := tokenWriteOnly
			if c.subscribed {
				token = tokenReadWrite
			}
			b.ResetTimer()
			for range b.N {
				res, err := ingestLoad(context.Background(), n, c.pushers, c.batch, token, "ingest", 200*time.Millisecond, 3*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.rate, "events/s")
				b.ReportMetric(res.perCommit, "events/commit")
				b.ReportMetric(res.commit, "ms/commit")
				b.ReportMetric(res.sync, "ms-sync/commit")
				b.ReportMetric(res.cpu, "µs-cpu/event")
			}
		})
	}
}
