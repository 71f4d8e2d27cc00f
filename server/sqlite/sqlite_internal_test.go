package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// TestConnectionSettings checks the settings durability and concurrency rest
// on: WAL, synchronous=FULL and foreign keys on the writer, query-only
// readers.
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "settings.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
	} {
		var got string
		if err := s.wc.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
			t.Errorf("writer PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
	if _, err := s.rdb.ExecContext(ctx, "INSERT INTO repos (ns, name) VALUES ('ns', 'r')"); err == nil {
		t.Error("a write through the read pool succeeded; readers must be query-only")
	}
	var busy int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
		t.Errorf("reader busy_timeout = %d, %v; want 5000", busy, err)
	}
}
