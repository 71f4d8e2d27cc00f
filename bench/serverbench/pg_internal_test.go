package serverbench

import (
	"testing"

	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// TestPostgresSmoke runs the PostgreSQL figures at smoke sizes and checks
// that each was measured beside its baseline.
func TestPostgresSmoke(t *testing.T) {
	pgtest.NewDB(t) // skips when PostgreSQL is missing (fails under CI=true)
	r := &runner{
		o: Options{Smoke: true, Dir: t.TempDir(), Logf: t.Logf,
			PostgresDSN: func() (string, error) { return pgtest.NewDB(t), nil }},
		sz:           sizesFor(true),
		sqliteIngest: map[int]float64{},
	}
	r.postgres()
	if len(r.errs) > 0 {
		t.Fatalf("postgres figures failed: %v", r.errs)
	}
	if want := len(r.sz.pushers) + 2; len(r.figs) != want {
		t.Fatalf("%d figures, want %d", len(r.figs), want)
	}
	for _, f := range r.figs {
		if f.Value <= 0 || f.BaseVal <= 0 {
			t.Errorf("figure %q: value %v, baseline %v; want both measured", f.Name, f.Value, f.BaseVal)
		}
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }
