package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// The REST mirror of the protocol: the same auth (Authorization: Bearer),
// the same checks and semantics, and REST pushes fan out to WebSocket
// clients.

type errorBody struct {
	Error   protocol.Code `json:"error"`
	Code    protocol.Code `json:"code"`
	Message string        `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code protocol.Code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Code: code, Message: msg})
}

// statusOf maps an error code to an HTTP status.
func statusOf(code protocol.Code) int {
	switch code {
	case protocol.CodeInvalid:
		return http.StatusBadRequest
	case protocol.CodeUnauthorized:
		return http.StatusUnauthorized
	case protocol.CodeForbidden:
		return http.StatusForbidden
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func (s *Server) restError(w http.ResponseWriter, perr *protocol.Error) {
	s.metrics.countError(perr.Code)
	writeError(w, statusOf(perr.Code), perr.Code, perr.Message)
}

// authenticate verifies a request's bearer token, after the per-address
// rate limit.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	if !s.restLimit.allow(s.clientAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		s.restError(w, protocol.Errorf(protocol.CodeRateLimited, "rate limit exceeded; request dropped"))
		return Principal{}, false
	}
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	token := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		token = strings.TrimSpace(h[7:])
	}
	p, err := s.cfg.Verifier.Verify(r.Context(), token, headers)
	if err == nil && p.expired(time.Now()) {
		err = unauthorized("credentials expired")
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lfsync"`)
		s.restError(w, protocol.Errorf(protocol.CodeUnauthorized, "authentication failed: "+err.Error()))
		return Principal{}, false
	}
	return p.normalize(), true
}

func (s *Server) restHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		body := map[string]any{"status": "shutting_down"}
		if s.cfg.Node != "" {
			body["node"] = s.cfg.Node
		}
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body := map[string]any{"status": "ok", "connections": s.Connections()}
	if s.cfg.Node != "" {
		body["node"] = s.cfg.Node
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) restRepositories(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	infos, err := s.cfg.Store.Repositories(r.Context(), p.Namespace)
	if err != nil {
		s.log.Error("failed to list repositories", "err", err)
		s.restError(w, protocol.Errorf(protocol.CodeInternal, "failed to list repositories"))
		return
	}
	out := make([]RepoInfo, 0, len(infos))
	for _, in := range infos {
		if p.CanRead(in.Name) {
			out = append(out, in)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"repositories": out})
}

// readable authenticates and checks read access to the path's repository.
func (s *Server) readable(w http.ResponseWriter, r *http.Request) (Principal, string, bool) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return p, "", false
	}
	repo := r.PathValue("repo")
	if perr := checkRead(p, repo); perr != nil {
		s.restError(w, perr)
		return p, "", false
	}
	return p, repo, true
}

func (s *Server) restEvents(w http.ResponseWriter, r *http.Request) {
	p, repo, ok := s.readable(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	m := protocol.Message{Type: protocol.TypeRequestEvents, Repository: repo}
	if v := q.Get("seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.restError(w, protocol.Errorf(protocol.CodeInvalid, "seq is not a non-negative integer"))
			return
		}
		m.AfterSequence = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.restError(w, protocol.Errorf(protocol.CodeInvalid, "limit is not a non-negative integer"))
			return
		}
		m.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := protocol.ParseTime(json.RawMessage(strconv.Quote(v)))
		if err != nil {
			s.restError(w, protocol.Errorf(protocol.CodeInvalid, "since: "+err.Error()))
			return
		}
		m.Since = t
	}
	if q.Get("reduce") == "false" {
		m.All = true
	}
	pg, perr := s.readPage(r.Context(), p.Namespace, repo, m, s.cfg.MaxPage)
	if perr != nil {
		s.restError(w, perr)
		return
	}
	events := pg.events
	if events == nil {
		events = []protocol.Event{}
	}
	s.metrics.eventsOut.Add(int64(len(events)))
	writeJSON(w, http.StatusOK, map[string]any{
		"repository": repo, "events": events, "count": len(events),
		"hasMore": pg.more, "lastSequence": pg.last,
	})
}

func (s *Server) restEvent(w http.ResponseWriter, r *http.Request) {
	p, repo, ok := s.readable(w, r)
	if !ok {
		return
	}
	s.writeOne(w, r.Context(), func(ctx context.Context) (protocol.Event, error) {
		return s.cfg.Store.Event(ctx, p.Namespace, repo, r.PathValue("eventId"))
	})
}

func (s *Server) restByDataID(w http.ResponseWriter, r *http.Request) {
	p, repo, ok := s.readable(w, r)
	if !ok {
		return
	}
	s.writeOne(w, r.Context(), func(ctx context.Context) (protocol.Event, error) {
		return s.cfg.Store.ByDataID(ctx, p.Namespace, repo, r.PathValue("dataId"))
	})
}

func (s *Server) writeOne(w http.ResponseWriter, ctx context.Context, get func(context.Context) (protocol.Event, error)) {
	e, err := get(ctx)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such event")
		return
	}
	if err != nil {
		s.log.Error("failed to read an event", "err", err)
		s.restError(w, protocol.Errorf(protocol.CodeInternal, "failed to read the event"))
		return
	}
	s.metrics.eventsOut.Add(1)
	writeJSON(w, http.StatusOK, e)
}

// readBody reads a JSON body of at most MaxFrameBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxFrameBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.restError(w, protocol.Errorf(protocol.CodeTooLarge, "request body is larger than "+strconv.FormatInt(s.cfg.MaxFrameBytes, 10)+" bytes"))
		} else {
			s.restError(w, protocol.Errorf(protocol.CodeInvalid, "failed to read the request body"))
		}
		return nil, false
	}
	return body, true
}

func (s *Server) restPush(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var e protocol.Event
	if err := json.Unmarshal(body, &e); err != nil {
		s.restError(w, protocol.Errorf(protocol.CodeInvalid, "invalid event: "+err.Error()))
		return
	}
	s.restStore(w, r, p, []protocol.Event{e})
}

func (s *Server) restPushBatch(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	// Reuse the WebSocket decoder, so both paths validate alike.
	var in struct {
		Events json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.restError(w, protocol.Errorf(protocol.CodeInvalid, "body is not a JSON object"))
		return
	}
	frame, _ := json.Marshal(map[string]any{"type": protocol.TypePushEventsBatch, "repository": r.PathValue("repo"), "events": in.Events})
	m, err := protocol.Decode(frame)
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			s.restError(w, pe)
		} else {
			s.restError(w, protocol.Errorf(protocol.CodeInvalid, err.Error()))
		}
		return
	}
	if len(m.Events) > s.cfg.MaxBatch {
		s.restError(w, protocol.Errorf(protocol.CodeTooLarge, "batch has more than "+strconv.Itoa(s.cfg.MaxBatch)+" events; nothing stored"))
		return
	}
	s.restStore(w, r, p, m.Events)
}

func (s *Server) restStore(w http.ResponseWriter, r *http.Request, p Principal, events []protocol.Event) {
	repo := r.PathValue("repo")
	if perr := s.beginPush(); perr != nil {
		s.restError(w, perr)
		return
	}
	defer s.endPush()
	b, perr := s.checkWrite(r.Context(), p, repo)
	if perr != nil {
		s.restError(w, perr)
		return
	}
	res, perr := s.pushTo(r.Context(), b, origin{}, events)
	if perr != nil {
		s.restError(w, perr)
		return
	}
	s.metrics.acks.Add(1)
	writeJSON(w, http.StatusOK, ackMessage(repo, res))
}
