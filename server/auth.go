package server

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Principal is an authenticated caller: who, in which tenant, with which
// rights.
type Principal struct {
	// User identifies the caller.
	User string `json:"user"`
	// Namespace is the caller's tenant; data of different namespaces never
	// meet. Default "default".
	Namespace string `json:"namespace,omitempty"`
	// Read and Write list the repositories the caller may read and write:
	// exact names, "*" for all, or a prefix followed by "*" ("todo*").
	Read  []string `json:"read,omitempty"`
	Write []string `json:"write,omitempty"`
	// Expires is when the credentials stop being valid; zero for never.
	Expires time.Time `json:"-"`
}

// DefaultNamespace is the namespace of principals that name none.
const DefaultNamespace = "default"

// CanRead reports whether p may read repo.
func (p Principal) CanRead(repo string) bool { return matchAny(p.Read, repo) }

// CanWrite reports whether p may write repo.
func (p Principal) CanWrite(repo string) bool { return matchAny(p.Write, repo) }

// expired reports whether p's credentials have expired at now.
func (p Principal) expired(now time.Time) bool {
	return !p.Expires.IsZero() && !now.Before(p.Expires)
}

func matchAny(patterns []string, repo string) bool {
	for _, pat := range patterns {
		if pat == "*" || pat == repo {
			return true
		}
		if strings.HasSuffix(pat, "*") && strings.HasPrefix(repo, pat[:len(pat)-1]) {
			return true
		}
	}
	return false
}

// Verifier turns the credentials of an auth frame or a REST request into a
// Principal. headers holds the auth frame's custom keys (or the HTTP request
// headers); token is the bearer token already extracted from "token" or an
// "Authorization: Bearer" key. A rejection returns an error wrapping
// ErrUnauthorized.
type Verifier interface {
	Verify(ctx context.Context, token string, headers map[string]string) (Principal, error)
}

// ErrUnauthorized is wrapped by every credential rejection.
var ErrUnauthorized = errors.New("unauthorized")

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(ctx context.Context, token string, headers map[string]string) (Principal, error)

// Verify calls f.
func (f VerifierFunc) Verify(ctx context.Context, token string, headers map[string]string) (Principal, error) {
	return f(ctx, token, headers)
}

// OpenVerifier accepts everyone, with or without a token, as user
// "anonymous" in namespace "default" with full access. Only for development,
// and only when asked for explicitly.
func OpenVerifier() Verifier { return openVerifier{} }

type openVerifier struct{}

func (openVerifier) Verify(context.Context, string, map[string]string) (Principal, error) {
	return Principal{User: "anonymous", Namespace: DefaultNamespace, Read: []string{"*"}, Write: []string{"*"}}, nil
}

// IsOpen reports whether v is the OpenVerifier.
func IsOpen(v Verifier) bool { _, ok := v.(openVerifier); return ok }

// Verifiers tries each verifier in turn and returns the first success; it
// fails when all fail.
type Verifiers []Verifier

// Verify implements Verifier.
func (vs Verifiers) Verify(ctx context.Context, token string, headers map[string]string) (Principal, error) {
	err := error(ErrUnauthorized)
	for _, v := range vs {
		p, verr := v.Verify(ctx, token, headers)
		if verr == nil {
			return p, nil
		}
		err = verr
	}
	return Principal{}, err
}

// unauthorized makes an error wrapping ErrUnauthorized.
func unauthorized(msg string) error { return &authError{msg} }

type authError struct{ msg string }

func (e *authError) Error() string { return "unauthorized: " + e.msg }
func (e *authError) Unwrap() error { return ErrUnauthorized }

// normalize fills a principal's default namespace.
func (p Principal) normalize() Principal {
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	return p
}
