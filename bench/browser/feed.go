package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/lfsync/lfsync/core/protocol"
)

// feed writes n insert events into repo through a native Go WebSocket
// client, in batches of batch events each acknowledged before the next: the
// "written elsewhere" of the catch-up figure. Document ids are
// prefix+zero-padded index; it returns the last one.
func feed(ctx context.Context, syncURL, token, repo, prefix string, n, batch int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, syncURL, nil)
	if err != nil {
		return "", fmt.Errorf("failed to dial %s: %w", syncURL, err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	send := func(m protocol.Message) error {
		b, err := protocol.Encode(m)
		if err != nil {
			return err
		}
		return ws.Write(ctx, websocket.MessageText, b)
	}
	// await reads frames until one of type want (an error frame fails).
	await := func(want string) error {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return err
			}
			m, err := protocol.Decode(b)
			if err != nil {
				return fmt.Errorf("undecodable frame: %w", err)
			}
			switch m.Type {
			case want:
				return nil
			case protocol.TypeError:
				return fmt.Errorf("server error %s: %s", m.Code, m.Text)
			case protocol.TypePing:
				if err := send(protocol.Message{Type: protocol.TypePong}); err != nil {
					return err
				}
			}
		}
	}
	if err := send(protocol.Message{Type: protocol.TypeAuth, Token: token}); err != nil {
		return "", fmt.Errorf("failed to send auth: %w", err)
	}
	if err := await(protocol.TypeAuthSuccess); err != nil {
		return "", fmt.Errorf("failed to authenticate: %w", err)
	}
	last := ""
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		events := make([]protocol.Event, 0, end-start)
		for i := start; i < end; i++ {
			id, err := uuid.NewV7()
			if err != nil {
				return "", err
			}
			last = docID(prefix, i)
			data, err := json.Marshal(feedRecord(last, i))
			if err != nil {
				return "", err
			}
			events = append(events, protocol.Event{ID: id.String(), Operation: protocol.OpInsert, CreatedAt: time.Now(), DataID: last, Data: data})
		}
		if err := send(protocol.Message{Type: protocol.TypePushEventsBatch, Repository: repo, Events: events}); err != nil {
			return "", fmt.Errorf("failed to push events %d-%d: %w", start, end, err)
		}
		if err := await(protocol.TypeAck); err != nil {
			return "", fmt.Errorf("no ack for events %d-%d: %w", start, end, err)
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
	return last, nil
}

func docID(prefix string, i int) string { return fmt.Sprintf("%s%06d", prefix, i) }

// feedRecord has the shape of bench.js's record().
func feedRecord(id string, i int) map[string]any {
	return map[string]any{
		"id":    id,
		"title": fmt.Sprintf("document number %d", i),
		"group": i % 10,
		"score": (i * 7919) % 10007,
		"done":  i%3 == 0,
		"tags":  []string{"bench", fmt.Sprintf("g%d", i%7)},
		"body":  "lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit amet ",
	}
}
