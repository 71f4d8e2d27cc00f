package postgres

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is the LISTEN/NOTIFY channel of appends.
const channel = "lfsync"

// payload is a notification: a repository grew to Seq.
type payload struct {
	NS   string `json:"ns"`
	Repo string `json:"repo"`
	Seq  int64  `json:"seq"`
}

const notifySQL = `SELECT pg_notify('` + channel + `', p) FROM unnest($1::text[]) AS p`

// notifier announces committed appends with pg_notify on a connection of
// its own. It coalesces what piles up while a notification is being sent
// into one statement holding the highest sequence of each repository.
type notifier struct {
	cfg *pgx.ConnConfig

	mu      sync.Mutex
	pending map[repoKey]int64
	wake    chan struct{} // buffered 1
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when run returns
	once    sync.Once
}

func newNotifier(cfg *pgx.ConnConfig) *notifier {
	c := cfg.Copy()
	// A notification is a hint, not data: its commit need not wait for a
	// WAL flush, which keeps the cluster-wide notify lock short.
	c.RuntimeParams["synchronous_commit"] = "off"
	c.RuntimeParams["application_name"] = appName(cfg, "notifier")
	return &notifier{
		cfg:     c,
		pending: map[repoKey]int64{},
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// add queues the news that a repository grew to seq.
func (n *notifier) add(key repoKey, seq int64) {
	n.mu.Lock()
	if seq > n.pending[key] {
		n.pending[key] = seq
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the pending notifications.
func (n *notifier) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending) == 0 {
		return nil
	}
	out := make([]string, 0, len(n.pending))
	for k, seq := range n.pending {
		b, _ := json.Marshal(payload{NS: k.ns, Repo: k.name, Seq: seq})
		out = append(out, string(b))
	}
	clear(n.pending)
	return out
}

// putBack returns unsent notifications to the pending set.
func (n *notifier) putBack(batch []string) {
	for _, s := range batch {
		var p payload
		if json.Unmarshal([]byte(s), &p) == nil {
			n.mu.Lock()
			k := repoKey{p.NS, p.Repo}
			if p.Seq > n.pending[k] {
				n.pending[k] = p.Seq
			}
			n.mu.Unlock()
		}
	}
}

// stop sends what is pending, giving up after a few seconds when the
// database is unreachable, and ends run.
func (n *notifier) stop() {
	n.once.Do(func() { close(n.quit) })
	<-n.done
}

// run sends pending notifications until stop. A failed send is retried on
// a new connection with backoff; notifications are hints, so when the
// database stays unreachable through stop they are dropped (watchers poll).
func (n *notifier) run() {
	defer close(n.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(ctx)
			cancel()
		}
	}()
	backoff := 50 * time.Millisecond
	var deadline time.Time // set once stopping
	for {
		select {
		case <-n.wake:
		case <-n.quit:
			if deadline.IsZero() {
				deadline = time.Now().Add(3 * time.Second)
			}
		}
		batch := n.take()
		if len(batch) == 0 {
			if !deadline.IsZero() {
				return
			}
			continue
		}
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if conn == nil {
				c, err := pgx.ConnectConfig(ctx, n.cfg)
				if err != nil {
					return err
				}
				conn = c
			}
			_, err := conn.Exec(ctx, notifySQL, batch)
			return err
		}()
		if err == nil {
			backoff = 50 * time.Millisecond
			if !deadline.IsZero() {
				select {
				case n.wake <- struct{}{}: // look again before returning
				default:
				}
			}
			continue
		}
		if conn != nil {
			_ = conn.Close(context.Background())
			conn = nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return
		}
		n.putBack(batch)
		select {
		case n.wake <- struct{}{}: // retry after the backoff
		default:
		}
		if deadline.IsZero() {
			select {
			case <-time.After(backoff):
			case <-n.quit:
			}
		} else {
			time.Sleep(min(backoff, time.Until(deadline)))
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
