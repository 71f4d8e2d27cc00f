package serverbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lfsync/lfsync/core/protocol"
)

// dial opens a WebSocket to url and authenticates with token.
func dial(ctx context.Context, url, token string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to dial %s: %w", url, err)
	}
	ws.SetReadLimit(-1) // catch-up pages are far above the 32 KiB default
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"auth","token":"`+token+`"}`)); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("failed to send auth: %w", err)
	}
	if _, err := readUntil(ctx, ws, protocol.TypeAuthSuccess); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("failed to authenticate: %w", err)
	}
	return ws, nil
}

// readUntil reads frames until one of type typ, which it returns; an error
// frame fails it.
func readUntil(ctx context.Context, ws *websocket.Conn, typ string) ([]byte, error) {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		switch t := frameType(b); t {
		case typ:
			return b, nil
		case protocol.TypeError:
			return nil, fmt.Errorf("server error: %s", b)
		}
	}
}

var typeKey = []byte(`"type":"`)

// frameType returns a server frame's type without decoding it: the server
// writes "type" as the first key (core/protocol's encoder) or, in older
// builds, as the last of its sorted keys.
func frameType(b []byte) string {
	var rest []byte
	if r, ok := bytes.CutPrefix(b, append([]byte{'{'}, typeKey...)); ok {
		rest = r
	} else if i := bytes.LastIndex(b, typeKey); i >= 0 {
		rest = b[i+len(typeKey):]
	} else {
		return ""
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// subscribe asks for the repository's latest event, which subscribes the
// connection to its fan-out, and waits for sync_complete.
func subscribe(ctx context.Context, ws *websocket.Conn, repo string) error {
	req := `{"type":"request_events","repository":"` + repo + `","afterSequence":0,"limit":1}`
	if err := ws.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		return fmt.Errorf("failed to send request_events: %w", err)
	}
	if _, err := readUntil(ctx, ws, protocol.TypeSyncComplete); err != nil {
		return fmt.Errorf("failed to subscribe to %s: %w", repo, err)
	}
	return nil
}

// createdAt is every bench event's creation time; created its wire form.
var (
	createdAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	created   = protocol.FormatTime(createdAt)
)

// docCount is how many documents the ingest and fan-out events update.
const docCount = 5000

// docID names the document event n updates.
func docID(n int64, docs int) string { return "doc-" + strconv.FormatInt(n%int64(docs), 10) }

// pushFrame appends a push_event frame of a fresh small todo event to buf,
// the kind of document a client writes.
func pushFrame(buf []byte, repo string, n int64) []byte {
	buf = append(buf, `{"type":"push_event","repository":"`...)
	buf = append(buf, repo...)
	buf = append(buf, `","event":`...)
	buf = appendEvent(buf, uuid.Must(uuid.NewV7()).String(), docID(n, docCount), n)
	return append(buf, '}')
}

// batchFrame appends a push_events_batch frame of count fresh events,
// numbered from n, to buf.
func batchFrame(buf []byte, repo string, n int64, count int) []byte {
	buf = append(buf, `{"type":"push_events_batch","repository":"`...)
	buf = append(buf, repo...)
	buf = append(buf, `","events":[`...)
	for i := range int64(count) {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendEvent(buf, uuid.Must(uuid.NewV7()).String(), docID(n+i, docCount), n+i)
	}
	return append(buf, "]}"...)
}

// appendEvent appends one event object in the coded wire form.
func appendEvent(buf []byte, id, doc string, n int64) []byte {
	buf = append(buf, `{"_event_id":"`...)
	buf = append(buf, id...)
	buf = append(buf, `","_operation":1,"_created_at":"`...)
	buf = append(buf, created...)
	buf = append(buf, `","_data_id":"`...)
	buf = append(buf, doc...)
	buf = append(buf, `","_data":`...)
	buf = appendData(buf, doc, n)
	return append(buf, '}')
}

// appendData appends the document of event n.
func appendData(buf []byte, doc string, n int64) []byte {
	buf = append(buf, `{"id":"`...)
	buf = append(buf, doc...)
	buf = append(buf, `","title":"Buy milk and some bread","done":false,"n":`...)
	buf = strconv.AppendInt(buf, n, 10)
	return append(buf, '}')
}

// benchEvent is the event appendEvent writes, as the store takes it.
func benchEvent(id, doc string, n int64) protocol.Event {
	return protocol.Event{
		ID: id, Operation: protocol.OpUpdate, CreatedAt: createdAt, DataID: doc,
		Data: appendData(nil, doc, n),
	}
}

var fileSeq atomic.Int64

// freshPath returns a path under dir that no earlier call returned.
func freshPath(dir, name string) string {
	p := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.db", name, os.Getpid(), fileSeq.Add(1)))
	return p
}
