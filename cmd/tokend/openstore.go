package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/sqlite"
)

// storeURL is a parsed store URL: memory:, sqlite with the path of its
// file, or a database server (postgres://, redis://).
type storeURL struct {
	raw    string
	scheme string // "memory", "sqlite", "postgres" or "redis"
	path   string // sqlite: the file, as written (relative to the working directory or absolute)
}

// parseStoreURL parses sqlite:///abs/path.db, sqlite://relative.db,
// memory:, postgres://… (or postgresql://…), and redis://… or rediss://…
// (whose query may carry prefix=, the key prefix: see redisPrefix). Its
// errors show the URL redacted.
func parseStoreURL(raw string) (storeURL, error) {
	u, err := parseStoreURLText(raw)
	return u, redactErr(err, raw)
}

// schemeText is a URL scheme (RFC 3986 §3.1).
var schemeText = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

func parseStoreURLText(raw string) (storeURL, error) {
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok || !schemeText.MatchString(scheme) {
		return storeURL{}, fmt.Errorf("%q is not a store URL: use sqlite:///path/tokend.db, sqlite://tokend.db, postgres://HOST/DB, redis://HOST:6379/0 or memory: (in-process)", redacted(raw))
	}
	switch scheme {
	case "memory":
		return storeURL{raw: raw, scheme: scheme}, nil
	case "sqlite":
		u, err := url.Parse(raw)
		if err != nil {
			return storeURL{}, err // redactErr says what
		}
		path := u.Host + u.Path // sqlite://rel.db → rel.db; sqlite:///abs → /abs
		if path == "" {
			return storeURL{}, fmt.Errorf("store URL %q names no file: use sqlite:///path/tokend.db or sqlite://tokend.db", redacted(raw))
		}
		return storeURL{raw: raw, scheme: scheme, path: path}, nil
	case "postgres", "postgresql":
		return storeURL{raw: raw, scheme: "postgres"}, nil
	case "redis", "rediss":
		return storeURL{raw: raw, scheme: "redis"}, nil
	}
	return storeURL{}, fmt.Errorf("store URL %q: unknown scheme %q: use memory:, sqlite:///path/tokend.db, postgres://HOST/DB or redis://HOST:6379/0", redacted(raw), scheme)
}

// String is the URL with an absolute path, as the admin commands report
// it.
func (u storeURL) String() string {
	if u.scheme != "sqlite" {
		return redacted(u.raw)
	}
	abs, err := filepath.Abs(u.path)
	if err != nil {
		return redacted(u.raw)
	}
	return "sqlite://" + abs
}

// openStore opens the store a URL names, creating a missing SQLite file:
// what serve and the in-process bench do. Every call of the store returned
// has the deadline timeout (see storeURL.open).
func openStore(ctx context.Context, raw string, timeout time.Duration) (store.Store, error) {
	u, err := parseStoreURL(raw)
	if err != nil {
		return nil, err
	}
	return u.open(ctx, timeout)
}

// open opens the store u names, with a deadline of timeout (0:
// store.DefaultTimeout) on each of its calls (store.WithTimeout), those of
// the optional interfaces too: every command's store comes from here, so
// that no request, admin command or background job (the GC, its lease,
// the key reload, the fleet's failure counts) waits longer for a database
// that holds its bytes.
//
// It creates the store and its schema if they are missing, and migrates
// an older schema, as serve does; the admin commands' openAdminStore
// does not (openAs).
//
// Its errors, and a panic of a driver, show the URL redacted, and none of
// its secrets.
func (u storeURL) open(ctx context.Context, timeout time.Duration) (store.Store, error) {
	return u.openAs(ctx, timeout, true)
}

// openAs is open if migrate is set. Otherwise it creates and migrates
// nothing: a store without this tokend's schema is an error wrapping
// store.ErrNoSchema or store.ErrSchemaOutdated, and nothing is written.
func (u storeURL) openAs(ctx context.Context, timeout time.Duration, migrate bool) (store.Store, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("store-timeout must be positive, such as %v, not %v", store.DefaultTimeout, timeout)
	}
	defer redactPanic(u.raw)
	st, err := u.openBackend(ctx, !migrate)
	if err != nil {
		return nil, redactErr(err, u.raw)
	}
	return store.WithTimeout(st, timeout), nil
}

func (u storeURL) openBackend(ctx context.Context, requireSchema bool) (store.Store, error) {
	switch u.scheme {
	case "memory":
		return memory.New(), nil
	case "postgres":
		var opts []postgres.Option
		if requireSchema {
			opts = append(opts, postgres.RequireSchema())
		}
		return postgres.Open(ctx, u.raw, opts...)
	case "redis":
		raw, prefix, err := redisPrefix(u.raw)
		if err != nil {
			return nil, err
		}
		return redis.Open(ctx, raw, &redis.Options{Prefix: prefix, RequireSchema: requireSchema})
	}
	st, err := sqlite.OpenWithOptions(ctx, u.path, sqlite.Options{RequireSchema: requireSchema})
	if err != nil {
		if abs, _ := filepath.Abs(u.path); !strings.Contains(err.Error(), u.path) && !strings.Contains(err.Error(), abs) {
			return nil, fmt.Errorf("store %s: %w", abs, err)
		}
		return nil, err
	}
	return st, nil
}

// redisPrefix takes the query parameter prefix out of a redis:// URL: the
// key prefix of the store (redis.Options.Prefix; default redis.DefaultPrefix),
// so that several deployments, or tests, share one Redis database. It
// returns the URL without it, as go-redis reads URLs.
func redisPrefix(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err // open's redactErr says what
	}
	q := u.Query()
	if !q.Has("prefix") {
		return raw, "", nil
	}
	prefix := q.Get("prefix")
	if prefix == "" {
		return "", "", fmt.Errorf("store URL %s: prefix is empty: leave it out for the default %q, or give one such as %q", redacted(raw), redis.DefaultPrefix, "tokend-eu:")
	}
	q.Del("prefix")
	u.RawQuery = q.Encode()
	return u.String(), prefix, nil
}

// errNoStore reports an admin command's store that does not exist.
var errNoStore = errors.New("no store")

// openAdminStore opens the store an admin command acts on: never memory:
// (a store inside this process would vanish with it), and a SQLite file
// only if it exists, unless init is set. It creates and migrates no schema
// unless init is set: a store without this tokend's schema is an error
// that says to run `tokend migrate`. from says where the URL came from,
// for messages.
func openAdminStore(ctx context.Context, raw, from string, init bool, timeout time.Duration) (store.Store, error) {
	return openAdminStoreAs(ctx, raw, from, init, init, timeout)
}

// openAdminStoreAs is openAdminStore, which migrates the schema if
// migrate is set (`tokend migrate`) and creates a missing SQLite file only
// if init is.
func openAdminStoreAs(ctx context.Context, raw, from string, init, migrate bool, timeout time.Duration) (store.Store, error) {
	u, err := parseStoreURL(raw)
	if err != nil {
		return nil, err
	}
	if u.scheme == "memory" {
		return nil, fmt.Errorf("--store memory: (from %s) lives inside one process, so what this command changes would vanish as it exits; point --store or TOKEND_STORE at the server's file, such as sqlite:///var/lib/tokend/tokend.db", from)
	}
	if !init && u.scheme == "sqlite" {
		abs, _ := filepath.Abs(u.path)
		if _, err := os.Stat(u.path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s (--store %s, from %s): start tokend serve there, which creates it, run this command where the server's tokend.db is, point --store or TOKEND_STORE at it, or add --init to create an empty store", errNoStore, abs, redacted(raw), from)
		}
	}
	st, err := u.openAs(ctx, timeout, init || migrate)
	switch {
	case errors.Is(err, store.ErrNoSchema):
		return nil, fmt.Errorf("no tokend schema in %s (from %s): run `tokend migrate --store %s` first, or add --init to this command (%w)", u, from, shellQuote(u.String()), err)
	case errors.Is(err, store.ErrSchemaOutdated):
		return nil, fmt.Errorf("the tokend schema in %s (from %s) is older than this tokend's: run `tokend migrate --store %s` (%w)", u, from, shellQuote(u.String()), err)
	}
	return st, err
}

// shellQuote quotes s for a shell command line if it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/:.-_@%+=,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
