package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"os"
)

// TokenEntry is one static token and the principal it stands for.
type TokenEntry struct {
	Token string `json:"token"`
	Principal
}

// StaticTokens verifies fixed bearer tokens. The zero value rejects all.
type StaticTokens struct {
	byHash map[[32]byte]Principal
}

// NewStaticTokens builds a verifier from token → principal pairs. A
// principal without rights gets full access to its namespace.
func NewStaticTokens(tokens map[string]Principal) *StaticTokens {
	s := &StaticTokens{byHash: make(map[[32]byte]Principal, len(tokens))}
	for tok, p := range tokens {
		if tok == "" {
			continue
		}
		p = p.normalize()
		if p.Read == nil && p.Write == nil {
			p.Read, p.Write = []string{"*"}, []string{"*"}
		}
		if p.User == "" {
			p.User = "token"
		}
		s.byHash[sha256.Sum256([]byte(tok))] = p
	}
	return s
}

// LoadTokens reads a static tokens file: a JSON array of objects
// {"token", "user", "namespace", "read", "write"}.
func LoadTokens(path string) (*StaticTokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read tokens file: %w", err)
	}
	var entries []TokenEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("failed to parse tokens file %s: %w", path, err)
	}
	m := make(map[string]Principal, len(entries))
	for i, e := range entries {
		if e.Token == "" {
			return nil, fmt.Errorf("tokens file %s: entry %d has no token", path, i)
		}
		m[e.Token] = e.Principal
	}
	return NewStaticTokens(m), nil
}

// Len returns the number of tokens.
func (s *StaticTokens) Len() int { return len(s.byHash) }

// Verify implements Verifier. Tokens are compared by SHA-256 digest, so
// lookup time does not depend on how much of a token matched.
func (s *StaticTokens) Verify(_ context.Context, token string, _ map[string]string) (Principal, error) {
	if token == "" {
		return Principal{}, unauthorized("no token")
	}
	h := sha256.Sum256([]byte(token))
	for k, p := range s.byHash {
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			return p, nil
		}
	}
	return Principal{}, unauthorized("unknown token")
}
