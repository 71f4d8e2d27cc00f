package postgres

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
)

// TestLostCommitAnswer checks how a group commit whose connection died
// during COMMIT is settled: outcome tells a committed transaction from an
// aborted one, and committed reads back the sequences the transaction's
// appendSQL returned, new only for the events it stored first.
func TestLostCommitAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now()
	ev := func(id string) protocol.Event {
		return protocol.Event{ID: id, Operation: protocol.OpInsert, CreatedAt: at, DataID: "d-" + id, Data: []byte(`{}`)}
	}
	if _, err := s.Append(ctx, "ns", "r", []protocol.Event{ev("old")}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// appendSQL in a transaction of our own, as try runs it.
	run := func(commit bool, ids ...string) (xid int64, seqs []int64, news []bool) {
		t.Helper()
		var cols eventColumns
		for _, id := range ids {
			cols.add(ev(id))
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if err := tx.QueryRow(ctx, xidSQL).Scan(&xid); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, lockRepoSQL, "ns", "r"); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, appendSQL, "ns", "r", cols.id, cols.dataID, cols.op, cols.ms, cols.data, cols.meta)
		if err != nil {
			t.Fatal(err)
		}
		var (
			seq   int64
			fresh bool
		)
		if _, err := pgx.ForEachRow(rows, []any{&seq, &fresh}, func() error {
			seqs = append(seqs, seq)
			news = append(news, fresh)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return xid, seqs, news
	}

	xid, _, _ := run(false, "lost")
	if ok, err := s.outcome(ctx, xid); err != nil || ok {
		t.Fatalf("outcome(rolled back transaction) = %v, %v; want false", ok, err)
	}
	ids := []string{"a", "old", "b", "a"}
	xid, seqs, news := run(true, ids...)
	if want := []int64{2, 1, 3, 2}; !reflect.DeepEqual(seqs, want) || !reflect.DeepEqual(news, []bool{true, false, true, false}) {
		t.Fatalf("appendSQL returned sequences %v, new %v; want %v, [true false true false]", seqs, news, want)
	}
	if ok, err := s.outcome(ctx, xid); err != nil || !ok {
		t.Fatalf("outcome(committed transaction) = %v, %v; want true", ok, err)
	}
	gotSeqs, gotNews, err := s.committed(ctx, repoKey{"ns", "r"}, ids, xid)
	if err != nil || !reflect.DeepEqual(gotSeqs, seqs) || !reflect.DeepEqual(gotNews, news) {
		t.Fatalf("committed() = %v, %v, %v; want %v, %v", gotSeqs, gotNews, err, seqs, news)
	}
	if got, err := s.LastSequence(ctx, "ns", "r"); err != nil || got != 3 {
		t.Fatalf("LastSequence() = %d, %v; want 3", got, err)
	}
}
