package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lfsync/lfsync/core/protocol"
)

// Server is the lfsync sync server: the local_first_websocket protocol at
// /sync, its REST mirror under /api/, and Prometheus metrics at /metrics.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	hub     *hub
	mux     *http.ServeMux

	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc
	nextID atomic.Uint64

	mu       sync.Mutex
	conns    map[*conn]struct{}
	closing  bool
	inflight sync.WaitGroup // appends in progress
	connWG   sync.WaitGroup

	restLimit *restLimiter
	proxies   []netip.Prefix // Config.TrustedProxies

	// dropAcks is a test hook (see DropAcks).
	dropAcks atomic.Int64
}

// New makes a Server. cfg.Store and cfg.Verifier are required.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		proxies: proxies,
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: newMetrics(),
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*conn]struct{}),
	}
	s.restLimit = newRESTLimiter(cfg.RatePerSecond, cfg.RateBurst)
	s.hub = newHub(ctx, cfg.Store, cfg.Logger, s.metrics, cfg.MaxPage, cfg.MaxSendBytes)
	if w, ok := cfg.Store.(Watcher); ok {
		s.hub.shared.Store(true)
		go s.hub.watch(w, cfg.WatchPoll)
	}
	if IsOpen(cfg.Verifier) {
		s.log.Warn("AUTHENTICATION IS DISABLED: every client is user \"anonymous\" with full access to namespace \"default\"; never run open mode in production")
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sync", s.serveWS)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	mux.HandleFunc("GET /api/health", s.restHealth)
	mux.HandleFunc("GET /api/repositories", s.restRepositories)
	mux.HandleFunc("GET /api/events/{repo}", s.restEvents)
	mux.HandleFunc("GET /api/events/{repo}/{eventId}", s.restEvent)
	mux.HandleFunc("GET /api/events/{repo}/byDataId/{dataId}", s.restByDataID)
	mux.HandleFunc("POST /api/events/{repo}", s.restPush)
	mux.HandleFunc("POST /api/events/{repo}/batch", s.restPushBatch)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, protocol.CodeInvalid, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	s.mux = mux
}

// ServeHTTP routes /sync, /api/... and /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.connWG.Add(1)
	}
	s.mu.Unlock()
	if closing {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.connWG.Done()
	opts := &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" {
			opts.InsecureSkipVerify = true
		}
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		s.log.Info("websocket upgrade refused", "remote", s.clientAddr(r), "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	c := s.newConn(ws, s.clientAddr(r))
	s.mu.Lock()
	if s.closing {
		// Shutdown began during the upgrade and did not see this socket.
		s.mu.Unlock()
		c.cancel()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.metrics.connections.Add(1)
	s.metrics.accepted.Add(1)
	defer func() {
		if rec := recover(); rec != nil {
			s.log.Error("panic in connection", "conn", c.id, "panic", rec)
			ws.CloseNow()
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.metrics.connections.Add(-1)
	}()
	c.serve()
}

// Connections returns the number of live WebSocket connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// CloseConnections drops every WebSocket abruptly, as a network failure
// would, and keeps serving.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.cancel()
		c.ws.CloseNow()
	}
}

// Shutdown stops accepting pushes and connections, waits for in-flight
// appends to commit (and be acked), then closes every socket with "going
// away". It returns ctx's error if ctx ends first; the sockets are then
// dropped. The Store is the caller's to close afterwards.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}

	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Close after the replies already queued (the acks of the batches just
	// committed) are written.
	for _, c := range conns {
		c.closeAfterReplies(websocket.StatusGoingAway, "server shutting down")
	}
	closed := make(chan struct{})
	go func() { s.connWG.Wait(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		// Drop whatever is left, including sockets that were mid-upgrade.
		for done := false; !done; {
			s.mu.Lock()
			for c := range s.conns {
				c.cancel()
				c.ws.CloseNow()
			}
			s.mu.Unlock()
			select {
			case <-closed:
				done = true
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err == nil {
			err = ctx.Err()
		}
	}
	s.cancel()
	return err
}

// DropAcks is a test hook: the next n acks of WebSocket pushes are not sent
// after their events commit; the socket is closed abruptly instead,
// simulating a crash between commit and ack. Not for production use.
func (s *Server) DropAcks(n int) { s.dropAcks.Add(int64(n)) }

func (s *Server) takeDroppedAck() bool {
	for {
		n := s.dropAcks.Load()
		if n <= 0 {
			return false
		}
		if s.dropAcks.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// checkWrite checks that p may write repo and returns its broadcaster.
func (s *Server) checkWrite(ctx context.Context, p Principal, repo string) (*broadcaster, *protocol.Error) {
	if perr := validRepo(repo); perr != nil {
		return nil, perr
	}
	if !p.CanWrite(repo) {
		return nil, protocol.Errorf(protocol.CodeForbidden, "not allowed to write repository "+repo)
	}
	b, err := s.hub.get(ctx, p.Namespace, repo)
	if err != nil {
		s.log.Error("failed to open repository", "namespace", p.Namespace, "repository", repo, "err", err)
		return nil, protocol.Errorf(protocol.CodeInternal, "failed to open repository")
	}
	return b, nil
}

// beginPush registers a push in flight, so Shutdown waits for its commit
// and its ack; it fails once Shutdown started. Pair with endPush.
func (s *Server) beginPush() *protocol.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return protocol.Errorf(protocol.CodeInternal, errClosing.Error()+"; nothing stored, retry after reconnecting")
	}
	s.inflight.Add(1)
	return nil
}

func (s *Server) endPush() { s.inflight.Done() }

// pushTo appends events (all or nothing), deduplicating ids within the
// batch; the result holds one Appended per distinct id, in input order.
func (s *Server) pushTo(ctx context.Context, b *broadcaster, from origin, events []protocol.Event) ([]Appended, *protocol.Error) {
	s.metrics.eventsIn.Add(int64(len(events)))
	if len(events) == 0 {
		return nil, nil
	}
	seen := make(map[string]bool, len(events))
	uniq := events[:0:0]
	for _, e := range events {
		if !seen[e.ID] {
			seen[e.ID] = true
			e.ServerSequence = 0
			uniq = append(uniq, e)
		}
	}
	// A socket that drops mid-append must not abort the commit.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	res, err := b.append(actx, from, uniq)
	if err != nil {
		s.log.Error("failed to append events", "namespace", b.key.ns, "repository", b.key.repo, "events", len(uniq), "err", err)
		return nil, protocol.Errorf(protocol.CodeInternal, "failed to store events; nothing stored")
	}
	return res, nil
}

// ackMessage builds the ack for appended events.
func ackMessage(repo string, res []Appended) protocol.Message {
	ids := make([]string, len(res))
	seqs := make(map[string]int64, len(res))
	for i, r := range res {
		ids[i] = r.ID
		seqs[r.ID] = r.Sequence
	}
	return protocol.Message{
		Type:         protocol.TypeAck,
		EventIDs:     ids,
		Repositories: map[string][]string{repo: ids},
		Sequences:    seqs,
	}
}
