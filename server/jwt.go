package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTVerifier verifies HS256 JSON Web Tokens signed with Secret.
//
// Claims: "sub" (required) is the user; "ns" or "namespace" the namespace
// (default "default"); "read" and "write" list the repositories the user may
// read and write (patterns as in Principal; both absent means full access to
// the namespace, one absent means none of that kind); "exp" is honoured.
type JWTVerifier struct {
	Secret []byte
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
}

type lfsyncClaims struct {
	jwt.RegisteredClaims
	NS        string   `json:"ns,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Read      []string `json:"read,omitempty"`
	Write     []string `json:"write,omitempty"`
}

// Verify implements Verifier.
func (v *JWTVerifier) Verify(_ context.Context, token string, _ map[string]string) (Principal, error) {
	if token == "" {
		return Principal{}, unauthorized("no token")
	}
	if len(v.Secret) == 0 {
		return Principal{}, errors.New("jwt verifier has no secret")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(5 * time.Second)}
	if v.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.Issuer))
	}
	if v.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.Audience))
	}
	var c lfsyncClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.Secret, nil }, opts...)
	if err != nil {
		return Principal{}, unauthorized(fmt.Sprintf("invalid token: %v", err))
	}
	if c.Subject == "" {
		return Principal{}, unauthorized("token has no sub")
	}
	p := Principal{User: c.Subject, Namespace: c.NS, Read: c.Read, Write: c.Write}
	if p.Namespace == "" {
		p.Namespace = c.Namespace
	}
	if c.Read == nil && c.Write == nil {
		p.Read, p.Write = []string{"*"}, []string{"*"}
	}
	if c.ExpiresAt != nil {
		p.Expires = c.ExpiresAt.Time
	}
	return p.normalize(), nil
}

// SignJWT makes an HS256 token for p valid for ttl (0: no expiry); for
// tests and tooling.
func SignJWT(secret []byte, p Principal, ttl time.Duration) (string, error) {
	c := lfsyncClaims{NS: p.Namespace, Read: p.Read, Write: p.Write}
	c.Subject = p.User
	c.IssuedAt = jwt.NewNumericDate(time.Now())
	if ttl != 0 {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(ttl))
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("failed to sign token: %w", err)
	}
	return s, nil
}
