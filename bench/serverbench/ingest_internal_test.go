package serverbench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkIngest runs the ingest load through the real server for a fixed
// window per pusher count (run with -benchtime=1x; for profiling with
// -cpuprofile, -mutexprofile, -blockprofile).
func BenchmarkIngest(b *testing.B) {
	for _, pushers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("pushers=%d", pushers), func(b *testing.B) {
			st, err := openSQLite(b.TempDir(), "ingest")
			if err != nil {
				b.Fatal(err)
			}
			n, err := startNode(st, b.Logf, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer n.close()
			b.ResetTimer()
			for range b.N {
				res, err := ingestLoad(context.Background(), n, pushers, 1, tokenWriteOnly, "ingest", 200*time.Millisecond, 3*time.Second)
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
