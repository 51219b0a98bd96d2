package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The secrets of a store URL, wherever they are in it, are shown as
// xxxxx; the rest as written.
var redactCases = []struct{ raw, shown string }{
	{"memory:", "memory:"},
	{"sqlite:///var/lib/tokend/tokend.db", "sqlite:///var/lib/tokend/tokend.db"},
	{"postgres://db.internal/tokend", "postgres://db.internal/tokend"},
	{"postgres://u:pw@h/db?password=S3cret", "postgres://u:xxxxx@h/db?password=xxxxx"},
	{"postgres://u:p%40ss@h:5432/db?sslmode=verify-full&sslpassword=Pass1&sslkey=%2Fetc%2Fk.pem&sslcert=/etc/c.pem",
		"postgres://u:xxxxx@h:5432/db?sslmode=verify-full&sslpassword=xxxxx&sslkey=xxxxx&sslcert=/etc/c.pem"},
	{"postgresql://h/db?PassWord=S3cret&search_path=a", "postgresql://h/db?PassWord=xxxxx&search_path=a"},
	{"postgres://h/db?a=b?password=S3cret", "postgres://h/db?a=b?password=xxxxx"},
	{"postgres://h/db#S3cret", "postgres://h/db#xxxxx"},
	{"redis://:S3cret@cache:6379/0?prefix=eu:", "redis://:xxxxx@cache:6379/0?prefix=eu:"},
	{"rediss://default:S3cret@cache:6380/1", "rediss://default:xxxxx@cache:6380/1"},
	{"redis://S3cret@cache:6379/0", "redis://xxxxx@cache:6379/0"},
	{"redis://cache:6379/0?password=S3cret", "redis://cache:6379/0?password=xxxxx"},
	{"host=h user=u password='S3 cr\\'et' dbname=db", "host=h user=u password=xxxxx dbname=db"},
	{"host=h password=S3cret sslpassword = Pass1", "host=h password=xxxxx sslpassword = xxxxx"},
	{"postgres:host=h password=S3cret", "postgres:host=h password=xxxxx"},
	{"postgres://u:p%zzS3cret@h/db?password=S3cret", "postgres://xxxxx@h/db?password=xxxxx"},
	{`postgres://u:p"S3cret@h/db`, "postgres://xxxxx@h/db"},
	// A password with a character that ends a userinfo, not escaped.
	{"postgres://u:Secret#1@h/d", "postgres://u:xxxxx@h/d"},
	{"redis://:Secret#1@h:6379/0", "redis://:xxxxx@h:6379/0"},
	{"postgres://u:123#S3cret@h/d", "postgres://u:xxxxx@h/d"},
	{"postgres://u:a/S3?c#ret@h:5432/d?sslmode=disable", "postgres://u:xxxxx@h:5432/d?sslmode=disable"},
	{"host=h password=a\\ S3cret dbname=d", "host=h password=xxxxx dbname=d"},
}

func TestRedacted(t *testing.T) {
	for _, tc := range redactCases {
		if got := redacted(tc.raw); got != tc.shown {
			t.Errorf("redacted(%q) = %q; want %q", tc.raw, got, tc.shown)
		}
	}
}

// An error that quotes the URL or one of its secrets, as a driver's may,
// keeps neither, and errors.Is still sees what it wraps; a URL that does
// not parse is said so without the parser's quote of it.
func TestRedactErr(t *testing.T) {
	const raw = `postgres://u:S3cret"x@h/db?password=Qu0ted&sslmode=bogus`
	base := errors.New("driver: cannot parse `" + raw + "`: password Qu0ted; " + `user "u:S3cret\"x"`)
	err := redactErr(base, raw)
	if msg := err.Error(); strings.Contains(msg, "S3cret") || strings.Contains(msg, "Qu0ted") || !errors.Is(err, base) {
		t.Errorf("redactErr: %q (errors.Is %v); want no secret, wrapping the error", msg, errors.Is(err, base))
	}
	for _, raw := range []string{"postgres://u:ab%zzS3cret@h/db", "redis://:ab%zzS3cret@h:6379/0", "rediss://u:ab%zzS3cret@h:6380/0"} {
		_, perr := url.Parse(raw)
		err := redactErr(perr, raw)
		if msg := err.Error(); strings.Contains(msg, "%zz") || strings.Contains(msg, "S3cret") || !strings.Contains(msg, "does not parse") {
			t.Errorf("redactErr of %q's parse error: %q; want it said not to parse, without the escape or the secret", raw, msg)
		}
	}
	if redactErr(nil, raw) != nil {
		t.Error("redactErr(nil) is not nil")
	}
}

// FuzzRedact: whatever surrounds it, a secret written where a store URL
// keeps one (the userinfo, a password, sslpassword or sslkey parameter, a
// Redis userinfo without a password, a key=value connection string,
// quoted or not) appears neither in the redacted URL nor, as written or
// decoded, in an error that quotes the URL, as written and as %q does.
func FuzzRedact(f *testing.F) {
	for i, tc := range redactCases {
		f.Add(uint8(i), "S3cret", tc.raw)
	}
	f.Add(uint8(3), "p@ss:w/rd?#&=", "db")
	f.Add(uint8(7), `it's \ here`, "x")
	f.Fuzz(func(t *testing.T, kind uint8, secret, rest string) {
		build := func(secret string) string {
			switch kind % 9 {
			case 0:
				return "postgres://" + url.UserPassword("u", secret).String() + "@h/" + rest
			case 1:
				return "postgres://h/" + rest + "?password=" + url.QueryEscape(secret)
			case 2:
				return "postgres://h/db?" + rest + "&sslpassword=" + url.QueryEscape(secret) + "&sslmode=require"
			case 3:
				return "postgres://h/db?sslinline=true&sslkey=" + url.QueryEscape(secret) + "&" + rest
			case 4:
				return "rediss://" + url.UserPassword("default", secret).String() + "@h:6380/" + rest
			case 5:
				return "redis://" + url.User(secret).String() + "@h:6379/0?" + rest
			case 6:
				return rest + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret) + "' dbname=db"
			case 7:
				return "host=h password=" + secret + " " + rest
			default:
				return "postgres://h/db?" + rest + "#" + url.PathEscape(secret)
			}
		}
		// The secret between markers that no escape or mask produces, so
		// that finding it means finding it: as written, or escaped.
		secret = "S3c" + secret + "r3t"
		if strings.Contains(rest, "S3c") || kind%9 == 7 && (strings.ContainsAny(secret, " \t\n\v\f\r") || secret[0] == '\'') {
			return
		}
		raw := build(secret)
		out := redacted(raw) // never panics
		q := strconv.Quote(secret)
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), q[1 : len(q)-1]} {
			if strings.Contains(out, form) {
				t.Fatalf("redacted(%q) = %q shows the secret %q", raw, out, form)
			}
		}
		msg := redactErr(fmt.Errorf("open %s: parse %q: failed", raw, raw), raw).Error()
		if strings.Contains(msg, secret) {
			t.Fatalf("redactErr of an error quoting %q: %q shows the secret %q", raw, msg, secret)
		}
	})
}
