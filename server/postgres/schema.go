package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema steps in order; lfsync_schema holds the number
// of steps applied. Steps are never edited once released, only appended.
var migrations = []string{
	// 1: repositories with their sequence counter, the event log, and the
	// latest sequence of each document (for Latest and LatestSince).
	`CREATE TABLE lfsync_repos (
		id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		ns       text   NOT NULL,
		name     text   NOT NULL,
		last_seq bigint NOT NULL DEFAULT 0,
		events   bigint NOT NULL DEFAULT 0,
		UNIQUE (ns, name)
	);
	CREATE TABLE lfsync_events (
		repo_id       bigint   NOT NULL REFERENCES lfsync_repos (id),
		seq           bigint   NOT NULL,
		id            text     NOT NULL,
		data_id       text     NOT NULL,
		op            smallint NOT NULL,
		created_at_ms bigint   NOT NULL,
		data          bytea,
		meta          bytea,
		PRIMARY KEY (repo_id, seq),
		UNIQUE (repo_id, id)
	);
	CREATE TABLE lfsync_docs (
		repo_id       bigint NOT NULL REFERENCES lfsync_repos (id),
		data_id       text   NOT NULL,
		seq           bigint NOT NULL,
		created_at_ms bigint NOT NULL,
		PRIMARY KEY (repo_id, data_id)
	);
	CREATE UNIQUE INDEX lfsync_docs_by_seq ON lfsync_docs (repo_id, seq);
	CREATE INDEX lfsync_docs_by_created ON lfsync_docs (repo_id, created_at_ms, seq);`,
}

// migrationLock is the advisory lock key that serializes migrations of
// nodes starting together ("lfsync" in ASCII).
const migrationLock = 0x6c6673796e63

// migrate brings the schema to the current version in one transaction,
// under an advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("failed to take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS lfsync_schema (version integer NOT NULL)`); err != nil {
			return fmt.Errorf("failed to create the schema version table: %w", err)
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM lfsync_schema`).Scan(&version)
		if err == pgx.ErrNoRows {
			if _, err = tx.Exec(ctx, `INSERT INTO lfsync_schema (version) VALUES (0)`); err != nil {
				return fmt.Errorf("failed to initialize the schema version: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("failed to read the schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this build knows (%d)", version, len(migrations))
		}
		for v := version; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("failed to migrate schema to version %d: %w", v+1, err)
			}
		}
		if version < len(migrations) {
			if _, err := tx.Exec(ctx, `UPDATE lfsync_schema SET version = $1`, len(migrations)); err != nil {
				return fmt.Errorf("failed to set schema version %d: %w", len(migrations), err)
			}
		}
		return nil
	})
}
