package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema steps in order; the database's user_version is
// the number of steps applied. Steps are never edited once released, only
// appended.
var migrations = []string{
	// 1: repositories with their sequence counter, and the event log.
	`CREATE TABLE repos (
		id       INTEGER PRIMARY KEY,
		ns       TEXT    NOT NULL,
		name     TEXT    NOT NULL,
		last_seq INTEGER NOT NULL DEFAULT 0,
		events   INTEGER NOT NULL DEFAULT 0,
		UNIQUE (ns, name)
	);
	CREATE TABLE events (
		repo_id       INTEGER NOT NULL REFERENCES repos (id),
		seq           INTEGER NOT NULL,
		id            TEXT    NOT NULL,
		data_id       TEXT    NOT NULL,
		op            INTEGER NOT NULL,
		created_at_ms INTEGER NOT NULL,
		data          BLOB,
		meta          BLOB,
		PRIMARY KEY (repo_id, seq),
		UNIQUE (repo_id, id)
	);`,
	// 2: the latest sequence of each document, so that reading the latest
	// event per document is an index range scan, not a max() per row.
	`CREATE TABLE docs (
		repo_id       INTEGER NOT NULL REFERENCES repos (id),
		data_id       TEXT    NOT NULL,
		seq           INTEGER NOT NULL,
		created_at_ms INTEGER NOT NULL,
		PRIMARY KEY (repo_id, data_id)
	) WITHOUT ROWID;
	INSERT INTO docs (repo_id, data_id, seq, created_at_ms)
		SELECT repo_id, data_id, max(seq), created_at_ms
		FROM events GROUP BY repo_id, data_id;
	CREATE UNIQUE INDEX docs_by_seq ON docs (repo_id, seq);
	CREATE INDEX docs_by_created ON docs (repo_id, created_at_ms, seq);`,
}

// migrate brings the database on conn to schema version target (at most
// len(migrations)) in one transaction.
func migrate(ctx context.Context, conn *sql.Conn, target int) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("failed to begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("failed to read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this build knows (%d)", version, len(migrations))
	}
	for v := version; v < target; v++ {
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("failed to migrate schema to version %d: %w", v+1, err)
		}
	}
	if target > version {
		// PRAGMA takes no parameters; target is an int we control.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", target)); err != nil {
			return fmt.Errorf("failed to set schema version %d: %w", target, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("failed to commit migration: %w", err)
	}
	return nil
}
