package refresh

import (
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, 30*time.Second
	top := func(n int64) int64 { return n - 1 } // the largest value jitter may return
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i, w := range want {
		n := i + 1
		if got := backoff(n, lo, hi, top); got != w*time.Second-1 {
			t.Errorf("backoff(%d) ceiling = %v, want %v", n, got+1, w*time.Second)
		}
		if got := backoff(n, lo, hi, func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("backoff(%d) floor = %v, want 0 (full jitter)", n, got)
		}
	}
	if got := backoff(1000, lo, hi, top); got != hi-1 {
		t.Errorf("backoff(1000) = %v, want capped below %v", got, hi)
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	o := (*Options)(nil).withDefaults()
	seen := map[time.Duration]bool{}
	for range 2000 {
		d := backoff(3, o.MinBackoff, o.MaxBackoff, o.jitter)
		if d < 0 || d >= 4*time.Second {
			t.Fatalf("backoff(3) = %v, want in [0, 4s)", d)
		}
		seen[d/time.Second] = true
	}
	if len(seen) < 4 {
		t.Errorf("2000 draws hit only %d of the 4 one-second buckets: no jitter?", len(seen))
	}
}

func TestMakePlan(t *testing.T) {
	got := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	none := func(int64) int64 { return 0 }
	top := func(n int64) int64 { return n - 1 }
	cases := []struct {
		name          string
		life          time.Duration
		o             Options
		jitter        func(int64) int64
		refresh, dead time.Duration // offsets from got
	}{
		{"default 80%", time.Hour, Options{}, none, 48 * time.Minute, time.Hour - 10*time.Second},
		{"lead comes first", time.Hour, Options{Lead: 20 * time.Minute}, none, 40 * time.Minute, time.Hour - 10*time.Second},
		{"lead comes later", time.Hour, Options{Lead: time.Minute}, none, 48 * time.Minute, time.Hour - 10*time.Second},
		{"full jitter moves earlier", time.Hour, Options{}, top, 45*time.Minute + 1, time.Hour - 10*time.Second},
		{"short token caps margin", 10 * time.Second, Options{}, none, 8 * time.Second, 9 * time.Second},
		{"refresh clamped to deadline", time.Minute, Options{RefreshAt: 1}, none, 54 * time.Second, 54 * time.Second},
		{"huge lead clamps to now", time.Minute, Options{Lead: time.Hour}, none, 0, 54 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o.withDefaults()
			p := makePlan(got, tc.life, &o, tc.jitter)
			if d := p.refreshAt.Sub(got); d != tc.refresh {
				t.Errorf("refresh after %v, want %v", d, tc.refresh)
			}
			if d := p.deadline.Sub(got); d != tc.dead {
				t.Errorf("deadline after %v, want %v", d, tc.dead)
			}
			if d := p.expiry.Sub(got); d != tc.life {
				t.Errorf("expiry after %v, want %v", d, tc.life)
			}
		})
	}
}

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"EdDSA","typ":"at+jwt"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestLifetime(t *testing.T) {
	// Options.Now (now) runs three hours ahead of time.Now (real): an
	// Expiry is read on real, a JWT's exp on now, and expires_in and
	// exp-iat on neither.
	now := time.Unix(1_800_000_000, 0)
	real := now.Add(-3 * time.Hour)
	cases := []struct {
		name  string
		tok   oauth2.Token
		fresh bool
		want  time.Duration
		known bool
	}{
		{"expires_in wins when fresh", oauth2.Token{ExpiresIn: 300, Expiry: real.Add(time.Hour)}, true, 5 * time.Minute, true},
		{"expiry wins when stored", oauth2.Token{ExpiresIn: 300, Expiry: real.Add(time.Hour)}, false, time.Hour, true},
		{"fresh expiry alone, on time.Now's clock", oauth2.Token{Expiry: real.Add(time.Hour)}, true, time.Hour, true},
		{"expired expiry", oauth2.Token{Expiry: real.Add(-time.Second)}, true, -time.Second, true},
		{"expires_in alone", oauth2.Token{ExpiresIn: 60}, false, time.Minute, true},
		{"jwt exp-iat ignores skew", oauth2.Token{AccessToken: jwt(`{"iat":1000,"exp":1600}`)}, true, 10 * time.Minute, true},
		{"jwt exp alone, on Options.Now", oauth2.Token{AccessToken: jwt(fmt.Sprintf(`{"exp":%d}`, now.Unix()+90))}, true, 90 * time.Second, true},
		{"jwt float exp", oauth2.Token{AccessToken: jwt(fmt.Sprintf(`{"exp":%d.5}`, now.Unix()+90))}, true, 90 * time.Second, true},
		{"opaque token", oauth2.Token{AccessToken: "opaque"}, true, 0, false},
		{"jwt without exp", oauth2.Token{AccessToken: jwt(`{"sub":"x"}`)}, true, 0, false},
		{"jwt with bad exp", oauth2.Token{AccessToken: jwt(`{"exp":"soon"}`)}, true, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := lifetime(&tc.tok, now, real, tc.fresh)
			if ok != tc.known || d != tc.want {
				t.Errorf("lifetime = %v, %v; want %v, %v", d, ok, tc.want, tc.known)
			}
		})
	}
}

var jwtCases = []string{
	jwt(`{"iat":1000,"exp":1600}`),
	jwt(`{"exp":1e9}`),
	jwt(`{"exp":-5}`),
	jwt(`{"exp":1e300}`),
	"a.b",
	"a.b.c.d",
	"..",
	"x." + base64.RawURLEncoding.EncodeToString([]byte("null")) + ".y",
	"x.%%%.y",
}

func FuzzJWTTimes(f *testing.F) {
	for _, c := range jwtCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, iat, ok := jwtTimes(s)
		if ok && exp <= 0 {
			t.Fatalf("ok with exp %d", exp)
		}
		if !ok && (exp != 0 || iat != 0) {
			t.Fatalf("not ok but exp=%d iat=%d", exp, iat)
		}
	})
}
