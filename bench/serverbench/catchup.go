package serverbench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lfsync/lfsync/bench/report"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// catchPage is the page size a catching-up client asks for (the server's
// default maximum).
const catchPage = server.DefaultMaxPage

var eventKey = []byte(`"_event_id"`)

// catchUpOnce pages through repo with request_events from sequence 0 and
// returns the events received and the time taken. all asks for every event
// (reduce: false) instead of the latest per document.
func catchUpOnce(ctx context.Context, ws *websocket.Conn, repo string, all bool) (int, time.Duration, error) {
	start := time.Now()
	var after int64
	total := 0
	for {
		req := `{"type":"request_events","repository":"` + repo + `","afterSequence":` + strconv.FormatInt(after, 10) +
			`,"limit":` + strconv.Itoa(catchPage)
		if all {
			req += `,"reduce":false`
		}
		if err := ws.Write(ctx, websocket.MessageText, []byte(req+"}")); err != nil {
			return 0, 0, fmt.Errorf("failed to send request_events: %w", err)
		}
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return 0, 0, fmt.Errorf("failed to read a page: %w", err)
			}
			switch frameType(b) {
			case protocol.TypeEvents:
				total += bytes.Count(b, eventKey)
				continue
			case protocol.TypeError:
				return 0, 0, fmt.Errorf("server error: %s", b)
			case protocol.TypeSyncComplete:
			default:
				continue
			}
			var done struct {
				HasMore      bool  `json:"hasMore"`
				LastSequence int64 `json:"lastSequence"`
			}
			if err := json.Unmarshal(b, &done); err != nil {
				return 0, 0, fmt.Errorf("failed to decode sync_complete: %w", err)
			}
			if !done.HasMore {
				return total, time.Since(start), nil
			}
			after = done.LastSequence
			break
		}
	}
}

// plainSelect pages through table with plain SELECTs, page rows at a time,
// scanning every column, and returns the rows read and the time taken.
func plainSelect(ctx context.Context, db *sql.DB, table string) (int, time.Duration, error) {
	start := time.Now()
	var after int64
	total := 0
	for {
		rows, err := db.QueryContext(ctx, `SELECT seq, id, data_id, op, created_at_ms, data FROM `+table+` WHERE seq > ? ORDER BY seq LIMIT ?`, after, catchPage)
		if err != nil {
			return 0, 0, fmt.Errorf("failed to select: %w", err)
		}
		n := 0
		for rows.Next() {
			var (
				seq, op, ms int64
				id, doc     string
				data        []byte
			)
			if err := rows.Scan(&seq, &id, &doc, &op, &ms, &data); err != nil {
				rows.Close()
				return 0, 0, fmt.Errorf("failed to scan: %w", err)
			}
			after = seq
			n++
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return 0, 0, fmt.Errorf("failed to select: %w", err)
		}
		total += n
		if n < catchPage {
			return total, time.Since(start), nil
		}
	}
}

// median returns the median rate of passes, each (items, time).
func median(rates []float64) float64 {
	s := slices.Clone(rates)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *runner) catchUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const repo = "catchup"
	total, docs := r.sz.catchEvents, r.sz.catchDocs
	events := make([]protocol.Event, total)
	for i := range events {
		events[i] = benchEvent(uuid.Must(uuid.NewV7()).String(), docID(int64(i), docs), int64(i))
	}
	st, err := openSQLite(r.o.Dir, "catchup")
	if err != nil {
		return err
	}
	for i := 0; i < total; i += 1000 {
		if _, err := st.Append(ctx, server.DefaultNamespace, repo, events[i:min(i+1000, total)]); err != nil {
			st.Close()
			return fmt.Errorf("failed to fill the repository: %w", err)
		}
	}
	plain, err := plainCatchUpDB(ctx, r.o.Dir, events, docs)
	if err != nil {
		st.Close()
		return fmt.Errorf("baseline: %w", err)
	}
	defer plain.Close()
	n, err := startNode(st, r.o.Logf, nil)
	if err != nil {
		st.Close()
		return err
	}
	defer n.close()
	ws, err := dial(ctx, n.url, tokenReadWrite)
	if err != nil {
		return err
	}
	defer ws.CloseNow()
	for _, c := range []struct {
		all   bool
		table string
		want  int
		what  string
	}{
		{false, "latest", docs, fmt.Sprintf("request_events, the latest event of each of %d documents in a %d-event log", docs, total)},
		{true, "log", total, fmt.Sprintf(`request_events with "reduce": false, all %d events`, total)},
	} {
		var ours, base []float64
		for range r.sz.catchRepeat {
			got, d, err := catchUpOnce(ctx, ws, repo, c.all)
			if err != nil {
				return err
			}
			if got != c.want {
				return fmt.Errorf("catch-up received %d events, want %d", got, c.want)
			}
			ours = append(ours, float64(got)/d.Seconds())
			got, d, err = plainSelect(ctx, plain, c.table)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			if got != c.want {
				return fmt.Errorf("baseline read %d rows, want %d", got, c.want)
			}
			base = append(base, float64(got)/d.Seconds())
		}
		name := "catch-up request_events (sqlite)"
		if c.all {
			name = "catch-up request_events, every event (sqlite)"
		}
		r.add(report.Figure{
			Name: name, Unit: "events/s", Better: "higher",
			Value:    median(ours),
			Baseline: fmt.Sprintf("plain SQL SELECT of the same %d rows in pages of %d from one table (database/sql, modernc.org/sqlite)", c.want, catchPage),
			BaseVal:  median(base),
			Note: fmt.Sprintf("%s, pages of %d over one WebSocket, the client counts events without decoding them; median of %d passes",
				c.what, catchPage, r.sz.catchRepeat),
		}, 0)
	}
	return nil
}

// plainCatchUpDB makes the catch-up baseline's database: table log holds
// every event, table latest the latest event of each document.
func plainCatchUpDB(ctx context.Context, dir string, events []protocol.Event, docs int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+freshPath(dir, "plain-catchup")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*sql.DB, error) { db.Close(); return nil, err }
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	for _, t := range []string{"log", "latest"} {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE `+t+` (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,
			data_id TEXT NOT NULL, op INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, data BLOB)`); err != nil {
			return fail(fmt.Errorf("failed to create %s: %w", t, err))
		}
	}
	for i, e := range events {
		tables := []string{"log"}
		if i >= len(events)-docs { // the last write of each document
			tables = append(tables, "latest")
		}
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+t+` VALUES (?, ?, ?, ?, ?, ?)`,
				i+1, e.ID, e.DataID, int(e.Operation), e.CreatedAt.UnixMilli(), []byte(e.Data)); err != nil {
				return fail(fmt.Errorf("failed to fill %s: %w", t, err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return db, nil
}
