package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis/redistest"
)

// Every kind of store is chosen by its URL, and a URL is never shown with
// its password.
func TestStoreURLs(t *testing.T) {
	cases := []struct{ raw, scheme, shown string }{
		{"memory:", "memory", "memory:"},
		{"postgres://tokend:s3cret@db.internal:5432/tokend?sslmode=require", "postgres", "postgres://tokend:xxxxx@db.internal:5432/tokend?sslmode=require"},
		{"postgresql://db.internal/tokend", "postgres", "postgresql://db.internal/tokend"},
		{"redis://:s3cret@cache:6379/0", "redis", "redis://:xxxxx@cache:6379/0"},
		{"rediss://cache:6380/1", "redis", "rediss://cache:6380/1"},
	}
	for _, tc := range cases {
		u, err := parseStoreURL(tc.raw)
		if err != nil || u.scheme != tc.scheme || u.String() != tc.shown {
			t.Errorf("parseStoreURL(%q) = %q %q, %v; want %q %q", tc.raw, u.scheme, u.String(), err, tc.scheme, tc.shown)
		}
	}
	_, err := parseStoreURL("mysql://root:s3cret@db/tokend")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "postgres://HOST/DB") {
		t.Errorf("an unknown scheme: %v", err)
	}
}

// A redis:// URL's prefix parameter is the key prefix, taken out of the
// URL go-redis reads; an empty one is refused.
func TestRedisPrefix(t *testing.T) {
	cases := []struct{ raw, url, prefix string }{
		{"redis://cache:6379/0", "redis://cache:6379/0", ""},
		{"redis://cache:6379/0?prefix=eu:", "redis://cache:6379/0", "eu:"},
		{"rediss://:pw@cache:6380/1?dial_timeout=2s&prefix=t1:", "rediss://:pw@cache:6380/1?dial_timeout=2s", "t1:"},
	}
	for _, tc := range cases {
		u, p, err := redisPrefix(tc.raw)
		if err != nil || u != tc.url || p != tc.prefix {
			t.Errorf("redisPrefix(%q) = %q %q, %v; want %q %q", tc.raw, u, p, err, tc.url, tc.prefix)
		}
	}
	if _, _, err := redisPrefix("redis://:s3cret@cache:6379/0?prefix="); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("an empty prefix: %v", err)
	}
}

// Every store a command opens is the backend under store.WithTimeout (the
// deadline of --store-timeout on each call), which keeps the capabilities
// of its backend: the fleet's failure counts and the GC's lease
// (PostgreSQL, Redis), the legacy tokens (SQLite, PostgreSQL).
func TestOpenStoreBounded(t *testing.T) {
	cases := []struct {
		url     func(t *testing.T) string
		backend string
		caps    string
	}{
		{func(*testing.T) string { return "memory:" }, "*memory.Store", "FailureCounter=false Leaser=false LegacyTokens=false"},
		{func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "t.db") }, "*sqlite.Store", "FailureCounter=false Leaser=false LegacyTokens=true"},
		{func(t *testing.T) string { return pgtest.ServerURL + pgtest.Schema(t) }, "*postgres.Store", "FailureCounter=true Leaser=true LegacyTokens=true"},
		{func(t *testing.T) string {
			return redistest.ServerURL + "?prefix=" + url.QueryEscape(redistest.Prefix(t))
		}, "*redis.Store", "FailureCounter=true Leaser=true LegacyTokens=false"},
	}
	for _, tc := range cases {
		t.Run(tc.backend, func(t *testing.T) {
			st, err := openStore(t.Context(), tc.url(t), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_, fc := store.Capability[store.FailureCounter](st)
			_, le := store.Capability[store.Leaser](st)
			_, lt := store.Capability[store.LegacyTokens](st)
			caps := fmt.Sprintf("FailureCounter=%v Leaser=%v LegacyTokens=%v", fc, le, lt)
			if b := fmt.Sprintf("%T", store.Unwrap(st)); b != tc.backend || caps != tc.caps {
				t.Errorf("opened %s with %s; want %s with %s", b, caps, tc.backend, tc.caps)
			}
		})
	}
}
