package serve

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres"
	"github.com/lfsync/lfsync/server/sqlite"
)

// Backend names the kind of store a --db value selects.
type Backend string

// The backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// BackendOf says which backend a --db value selects: a postgres:// or
// postgresql:// URL is PostgreSQL, anything else a SQLite file path.
func BackendOf(db string) Backend {
	scheme, _, ok := strings.Cut(db, "://")
	if ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")) {
		return Postgres
	}
	return SQLite
}

// Redact returns a --db value fit for logs: a PostgreSQL URL without its
// password (in the user info or a password= parameter); a SQLite path as
// it is.
func Redact(db string) string {
	if BackendOf(db) != Postgres {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		// Say nothing of a URL we cannot take apart: it may hold a
		// password anywhere.
		scheme, _, _ := strings.Cut(db, "://")
		return scheme + "://(unparsable URL, redacted)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// withApplicationName adds application_name=lfsync/<node> to a PostgreSQL
// URL that names none, so pg_stat_activity shows which node holds each
// connection.
func withApplicationName(dsn, node string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("invalid PostgreSQL URL %s: %w", Redact(dsn), errRedacted(err))
	}
	q := u.Query()
	if q.Get("application_name") != "" || node == "" {
		return dsn, nil
	}
	q.Set("application_name", "lfsync/"+node)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// scrub makes sure err's text holds no password of the URL db, whatever the
// layers below put in it.
func scrub(err error, db string) error {
	u, perr := url.Parse(db)
	if perr != nil {
		return errors.New("(error text redacted: the URL does not parse)")
	}
	var secrets []string
	if p, ok := u.User.Password(); ok && p != "" {
		secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
	}
	for k, vs := range u.Query() {
		if strings.EqualFold(k, "password") {
			for _, v := range vs {
				if v != "" {
					secrets = append(secrets, v, url.QueryEscape(v))
				}
			}
		}
	}
	msg := err.Error()
	leaked := false
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			leaked = true
		}
	}
	if !leaked {
		return err
	}
	return errors.New(msg)
}

// errRedacted drops the URL that url.Parse puts in its errors.
func errRedacted(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// openStore opens the store --db selects: PostgreSQL (shared by every node
// on the database; its Watcher fans other nodes' appends out) or a SQLite
// file, whose directory is created.
func openStore(ctx context.Context, db, node string) (server.Store, error) {
	if BackendOf(db) == Postgres {
		dsn, err := withApplicationName(db, node)
		if err != nil {
			return nil, err
		}
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("failed to open PostgreSQL database %s: %w", Redact(db), scrub(err, db))
		}
		return st, nil
	}
	if dir := filepath.Dir(db); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("failed to create the database directory: %w", err)
		}
	}
	st, err := sqlite.Open(db)
	if err != nil {
		return nil, fmt.Errorf("failed to open database %s: %w", db, err)
	}
	return st, nil
}
