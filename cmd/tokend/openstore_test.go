package main

import (
	"strings"
	"testing"
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
