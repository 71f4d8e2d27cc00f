package serverbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lfsync/lfsync/bench/report"
)

// Options configures Run.
type Options struct {
	// Smoke runs tiny sizes (well under 30 s), for CI.
	Smoke bool
	// Dir is scratch space for databases (required).
	Dir string
	// PostgresDSN returns the DSN of a fresh PostgreSQL database; nil skips
	// the PostgreSQL figures.
	PostgresDSN func() (string, error)
	// Logf receives progress lines; nil discards them.
	Logf func(string, ...any)
}

// sizes are the workload sizes of one run.
type sizes struct {
	pushers      []int         // ingest: concurrent pushers per figure
	ingestWarm   time.Duration // ingest: load before the measured window
	ingestWindow time.Duration // ingest: the measured window
	fanClients   int           // fan-out: subscribed clients
	fanRounds    int           // fan-out: pushes, each timed at every client
	idleConns    int           // memory: idle connections
	catchEvents  int           // catch-up: events in the repository
	catchDocs    int           // catch-up: documents they update
	catchRepeat  int           // catch-up: timed passes (median kept)
}

func sizesFor(smoke bool) sizes {
	if smoke {
		return sizes{
			pushers: []int{1, 10, 100}, ingestWarm: 50 * time.Millisecond, ingestWindow: 250 * time.Millisecond,
			fanClients: 100, fanRounds: 3, idleConns: 200,
			catchEvents: 2000, catchDocs: 400, catchRepeat: 1,
		}
	}
	return sizes{
		pushers: []int{1, 10, 100}, ingestWarm: 500 * time.Millisecond, ingestWindow: 3 * time.Second,
		fanClients: 1000, fanRounds: 40, idleConns: 5000,
		catchEvents: 50000, catchDocs: 10000, catchRepeat: 3,
	}
}

// Run measures the server suite and returns its figures. A failing
// measurement is reported in the error, and the others still run: the
// figures returned are the ones measured.
func Run(ctx context.Context, o Options) ([]report.Figure, error) {
	if o.Dir == "" {
		return nil, errors.New("serverbench: Options.Dir is required")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := raiseFileLimit(); err != nil {
		o.Logf("serverbench: %v", err)
	}
	r := &runner{o: o, sz: sizesFor(o.Smoke), sqliteIngest: make(map[int]float64)}
	start := time.Now()
	r.step("ingest (sqlite)", r.ingestSQLite)
	r.step("ingest, pushers subscribed (sqlite)", r.ingestSubscribedSQLite)
	r.step("fan-out (sqlite)", r.fanoutSQLite)
	r.step("idle connection memory", r.idleMemory)
	r.step("catch-up (sqlite)", r.catchUp)
	if o.PostgresDSN == nil {
		o.Logf("serverbench: no PostgreSQL: PostgreSQL figures skipped")
	} else {
		r.postgres()
	}
	o.Logf("serverbench: %d figures in %s", len(r.figs), time.Since(start).Round(time.Millisecond))
	return r.figs, errors.Join(r.errs...)
}

// runner collects the figures and errors of one Run.
type runner struct {
	o    Options
	sz   sizes
	figs []report.Figure
	errs []error

	sqliteIngest map[int]float64 // SQLite ingest events/s by pushers, for the PostgreSQL notes
	pgSettings   string          // PostgreSQL's durability settings, for the notes
}

// step runs one measurement, logging its duration and keeping its error.
func (r *runner) step(name string, fn func() error) {
	r.o.Logf("serverbench: %s ...", name)
	t := time.Now()
	if err := fn(); err != nil {
		r.o.Logf("serverbench: %s failed: %v", name, err)
		r.errs = append(r.errs, fmt.Errorf("serverbench: %s: %w", name, err))
		return
	}
	r.o.Logf("serverbench: %s done in %s", name, time.Since(t).Round(time.Millisecond))
}

// add records a figure, computing its ratio and whether its target is met.
func (r *runner) add(f report.Figure, target float64) {
	f.Suite = "server"
	if f.BaseVal != 0 {
		f.Ratio = round(f.Value/f.BaseVal, 3)
	}
	if target > 0 {
		met := f.Value >= target
		if f.Better == "lower" {
			met = f.Value <= target
		}
		f.Met = &met
	}
	f.Value, f.BaseVal = round(f.Value, 3), round(f.BaseVal, 3)
	if l := loadAverage(); l != "" {
		f.Note += "; machine load average " + l + " when recorded"
	}
	r.o.Logf("serverbench: %s = %g %s (baseline %g, ratio %g)", f.Name, f.Value, f.Unit, f.BaseVal, f.Ratio)
	r.figs = append(r.figs, f)
}

// round rounds v to d decimals, keeping small figures readable.
func round(v float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1) of xs.
func percentile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// raiseFileLimit raises the soft limit on open files to the hard limit:
// the memory figure holds thousands of sockets.
func raiseFileLimit() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("failed to read the open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return fmt.Errorf("failed to raise the open-file limit: %w", err)
		}
	}
	return nil
}

// fileLimit returns the soft limit on open files.
func fileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the 1-minute load average, "" when unknown: on a
// shared machine it says how much the figures were disturbed.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
