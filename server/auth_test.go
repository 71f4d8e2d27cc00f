package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lfsync/lfsync/server"
)

func TestPrincipalPatterns(t *testing.T) {
	t.Parallel()
	p := server.Principal{Read: []string{"todo*", "notes"}, Write: []string{"notes"}}
	for _, tc := range []struct {
		repo        string
		read, write bool
	}{
		{"todos", true, false}, {"todo", true, false}, {"notes", true, true}, {"notes2", false, false}, {"x", false, false},
	} {
		if p.CanRead(tc.repo) != tc.read || p.CanWrite(tc.repo) != tc.write {
			t.Errorf("%s: read %v write %v, want %v %v", tc.repo, p.CanRead(tc.repo), p.CanWrite(tc.repo), tc.read, tc.write)
		}
	}
}

func TestLoadTokens(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(path, []byte(`[
		{"token": "t1", "user": "ann", "namespace": "acme", "read": ["*"], "write": ["todos"]},
		{"token": "t2", "user": "bob"}
	]`), 0o600)
	v, err := server.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := v.Verify(ctx, "t1", nil)
	if err != nil || p.User != "ann" || p.Namespace != "acme" || !p.CanRead("x") || p.CanWrite("x") || !p.CanWrite("todos") {
		t.Fatalf("t1: %+v %v", p, err)
	}
	p, err = v.Verify(ctx, "t2", nil)
	if err != nil || p.Namespace != "default" || !p.CanWrite("anything") {
		t.Fatalf("t2 (no rights listed = full access to its namespace): %+v %v", p, err)
	}
	for _, tok := range []string{"", "t3", "t1 "} {
		if _, err := v.Verify(ctx, tok, nil); !errors.Is(err, server.ErrUnauthorized) {
			t.Errorf("token %q: err %v, want ErrUnauthorized", tok, err)
		}
	}
	os.WriteFile(path, []byte(`[{"user":"no token"}]`), 0o600)
	if _, err := server.LoadTokens(path); err == nil {
		t.Fatal("a tokens file entry without token loaded")
	}
	if _, err := server.LoadTokens(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing tokens file loaded")
	}
}

func TestJWTVerifier(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	v := &server.JWTVerifier{Secret: secret}
	ctx := context.Background()
	sign := func(claims jwt.MapClaims, method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()

	p, err := v.Verify(ctx, sign(jwt.MapClaims{"sub": "u", "ns": "acme", "read": []string{"a", "b*"}, "write": []string{"a"}, "exp": exp}, jwt.SigningMethodHS256, secret), nil)
	if err != nil || p.User != "u" || p.Namespace != "acme" || !p.CanRead("bx") || p.CanWrite("b") || !p.CanWrite("a") || p.Expires.IsZero() {
		t.Fatalf("claims: %+v %v", p, err)
	}
	p, err = v.Verify(ctx, sign(jwt.MapClaims{"sub": "u", "namespace": "n2"}, jwt.SigningMethodHS256, secret), nil)
	if err != nil || p.Namespace != "n2" || !p.CanWrite("any") {
		t.Fatalf("namespace claim, no rights = full: %+v %v", p, err)
	}
	p, err = v.Verify(ctx, sign(jwt.MapClaims{"sub": "u", "read": []string{"*"}}, jwt.SigningMethodHS256, secret), nil)
	if err != nil || p.Namespace != "default" || p.CanWrite("any") || !p.CanRead("any") {
		t.Fatalf("read only: %+v %v", p, err)
	}
	for name, tok := range map[string]string{
		"expired":      sign(jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()}, jwt.SigningMethodHS256, secret),
		"no sub":       sign(jwt.MapClaims{"ns": "x"}, jwt.SigningMethodHS256, secret),
		"wrong secret": sign(jwt.MapClaims{"sub": "u"}, jwt.SigningMethodHS256, []byte("another secret another secret!!!")),
		"HS512":        sign(jwt.MapClaims{"sub": "u"}, jwt.SigningMethodHS512, secret),
		"none":         sign(jwt.MapClaims{"sub": "u"}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"garbage":      "a.b.c",
		"empty":        "",
	} {
		if _, err := v.Verify(ctx, tok, nil); !errors.Is(err, server.ErrUnauthorized) {
			t.Errorf("%s: err %v, want ErrUnauthorized", name, err)
		}
	}
}

func TestNewRequiresStoreAndVerifier(t *testing.T) {
	t.Parallel()
	if _, err := server.New(server.Config{Verifier: server.OpenVerifier()}); err == nil {
		t.Error("New without a store succeeded")
	}
}
