package serverbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lfsync/lfsync/bench/report"
	"github.com/lfsync/lfsync/server/postgres"
)

// postgres measures ingest and fan-out on PostgreSQL.
func (r *runner) postgres() {
	r.step("ingest (postgres)", r.ingestPostgres)
	r.step("fan-out (postgres)", r.fanoutPostgres)
}

// postgresNode starts a server on a store in a fresh PostgreSQL database
// and returns it with the database's DSN.
func (r *runner) postgresNode(ctx context.Context) (*node, string, error) {
	dsn, err := r.o.PostgresDSN()
	if err != nil {
		return nil, "", fmt.Errorf("failed to get a PostgreSQL database: %w", err)
	}
	if r.pgSettings == "" {
		if r.pgSettings, err = durability(ctx, dsn); err != nil {
			return nil, "", err
		}
	}
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, "", err
	}
	n, err := startNode(st, r.o.Logf, nil)
	if err != nil {
		st.Close()
		return nil, "", err
	}
	return n, dsn, nil
}

func (r *runner) ingestPostgres() error {
	ctx := context.Background()
	var errs []error
	for _, p := range r.sz.pushers {
		if err := r.ingestPostgresOnce(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("%d pushers: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func (r *runner) ingestPostgresOnce(ctx context.Context, pushers int) error {
	n, dsn, err := r.postgresNode(ctx)
	if err != nil {
		return err
	}
	res, err := ingestLoad(ctx, n, pushers, 1, tokenWriteOnly, "ingest", r.sz.ingestWarm, r.sz.ingestWindow)
	if cerr := n.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	base, err := plainPostgresInsert(ctx, dsn, pushers, r.sz.ingestWarm, r.sz.ingestWindow)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	note := "each pusher: push_event of 1 event, waits for its ack; write-only token; clients in-process over loopback WebSockets; PostgreSQL on the same machine with " + r.pgSettings
	if res.perCommit > 0 {
		note += fmt.Sprintf("; %.1f events per group commit", res.perCommit)
	}
	if v, ok := r.sqliteIngest[pushers]; ok {
		note += fmt.Sprintf("; SQLite in this run: %.0f events/s", v)
	}
	r.add(report.Figure{
		Name: fmt.Sprintf("ingest %d pusher%s (postgres)", pushers, plural(pushers)), Unit: "events/s", Better: "higher",
		Value:    res.rate,
		Baseline: fmt.Sprintf("plain pgx: %d connections each INSERTing 1 row per transaction into a plain table, same database", pushers),
		BaseVal:  base,
		Note:     note,
	}, 0)
	return nil
}

// plainPostgresInsert runs conns connections that each insert one row per
// transaction (autocommit) for warm and then the measured window, and
// returns the rows per second in the window.
func plainPostgresInsert(ctx context.Context, dsn string, conns int, warm, window time.Duration) (float64, error) {
	setup, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("failed to connect: %w", err)
	}
	defer setup.Close(context.Background())
	if _, err := setup.Exec(ctx, `CREATE TABLE plain_events (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE,
		data_id text NOT NULL, op smallint NOT NULL, created_at_ms bigint NOT NULL, data bytea)`); err != nil {
		return 0, fmt.Errorf("failed to create the table: %w", err)
	}
	var (
		rows, seq atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		errs      []error
	)
	pcs := make([]*pgx.Conn, conns)
	for i := range pcs {
		if pcs[i], err = pgx.Connect(ctx, dsn); err != nil {
			for _, c := range pcs[:i] {
				c.Close(context.Background())
			}
			return 0, fmt.Errorf("failed to connect: %w", err)
		}
	}
	for _, c := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close(context.Background())
			for !stop.Load() {
				n := seq.Add(1)
				e := benchEvent(uuid.Must(uuid.NewV7()).String(), docID(n, docCount), n)
				if _, err := c.Exec(ctx, `INSERT INTO plain_events (id, data_id, op, created_at_ms, data) VALUES ($1, $2, $3, $4, $5)`,
					e.ID, e.DataID, int16(e.Operation), e.CreatedAt.UnixMilli(), []byte(e.Data)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					stop.Store(true)
					return
				}
				rows.Add(1)
			}
		}()
	}
	settle(warm, rows.Load, 0, int64(conns), stop.Load)
	r0, t0 := rows.Load(), time.Now()
	settle(window, rows.Load, r0, minWindowCount(conns), stop.Load)
	r1, t1 := rows.Load(), time.Now()
	stop.Store(true)
	wg.Wait()
	if len(errs) > 0 {
		return 0, fmt.Errorf("failed to insert: %w", errs[0])
	}
	return float64(r1-r0) / t1.Sub(t0).Seconds(), nil
}

func (r *runner) fanoutPostgres() error {
	n, _, err := r.postgresNode(context.Background())
	if err != nil {
		return err
	}
	err = r.fanoutFigures(n, "postgres")
	return errors.Join(err, n.close())
}

// durability reports the database server's durability settings, which
// the PostgreSQL figures depend on.
func durability(ctx context.Context, dsn string) (string, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("failed to connect: %w", err)
	}
	defer c.Close(context.Background())
	var fsync, syncCommit string
	if err := c.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil {
		return "", fmt.Errorf("failed to read the durability settings: %w", err)
	}
	return "fsync=" + fsync + ", synchronous_commit=" + syncCommit, nil
}
