package verify_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/verify"
)

// fetches fails the test unless the issuer served exactly want JWKS
// documents.
func (f *fixture) fetches(t *testing.T, want int64) {
	t.Helper()
	if n := f.is.jwksFetches.Load(); n != want {
		t.Fatalf("%d JWKS fetches, want %d", n, want)
	}
}

// verifyAt checks tok at d after t0 and fails the test unless the error is
// want (nil: accepted).
func (f *fixture) verifyAt(t *testing.T, d time.Duration, tok string, want error) {
	t.Helper()
	f.clock.At(d)
	_, err := f.v.Verify(t.Context(), tok)
	if !errors.Is(err, want) || (err == nil) != (want == nil) {
		t.Fatalf("at %s: err = %v, want %v", d, err, want)
	}
}

// longLived returns a token of kid signed by edKey that expires in a day,
// so that only the keys decide its fate.
func (f *fixture) longLived(kid string) string {
	return sign(hdr("EdDSA", kid), f.claims("exp", t0.Add(24*time.Hour).Unix()), edSign(edKey))
}

// The reported fault: a key the issuer withdraws stops verifying once the
// JWKS is refreshed, which happens before its max-age lapses.
func TestWithdrawnKeyRefusedAfterRefresh(t *testing.T) {
	f := newFixture(t)
	f.is.set(func(is *issuer) { is.cacheCtl = "public, max-age=100" })
	tok := f.longLived("ed")
	f.verifyAt(t, 0, tok, nil)
	f.fetches(t, 1)

	f.is.withdraw("ed")
	// Before the refresh point (80% of 100s) the set answers as it is.
	for _, at := range []time.Duration{10 * time.Second, 40 * time.Second, 80*time.Second - 1} {
		f.verifyAt(t, at, tok, nil)
	}
	f.fetches(t, 1)
	// At 80s, Verify still answers from the set, and starts a refresh.
	f.verifyAt(t, 80*time.Second, tok, nil)
	verify.WaitFetch(f.v)
	f.fetches(t, 2)
	// From then on the withdrawn kid is unknown, 20s before the set would
	// have lapsed. Within MinRefresh of the refresh it causes no fetch.
	f.verifyAt(t, 80*time.Second, tok, verify.ErrUnknownKey)
	f.verifyAt(t, 85*time.Second, tok, verify.ErrUnknownKey)
	f.fetches(t, 2)
	checkDenied(t, serve(f.v.Middleware(http.NotFoundHandler()), "Bearer "+tok), tok)
	// After MinRefresh, an unknown kid fetches once more, as it always has.
	f.verifyAt(t, 90*time.Second, tok, verify.ErrUnknownKey)
	f.fetches(t, 3)
	// The key still published is unaffected.
	f.verifyAt(t, 90*time.Second, sign(hdr("ES256", "ec"), f.claims("exp", t0.Add(time.Hour).Unix()), ecSign(ecKey)), nil)
	f.fetches(t, 3)
}

// The refresh at 80% of the lifetime runs in the background: Verify does
// not wait for it, concurrent callers share it, and the new set's max-age
// sets the next refresh point. An unknown kid seen while it is due waits
// for that same fetch.
func TestRefreshBeforeLapse(t *testing.T) {
	f := newFixture(t)
	f.is.set(func(is *issuer) { is.cacheCtl = "max-age=100" })
	tok := f.longLived("ed")
	f.verifyAt(t, 0, tok, nil)

	gate, requested := make(chan struct{}), make(chan struct{}, 10)
	f.is.set(func(is *issuer) { is.gate, is.requested, is.cacheCtl = gate, requested, "max-age=20" })
	// The refresh is held at the issuer until gate closes, and Verify does
	// not wait for it: with a context that has ended, waiting would be
	// ErrKeys.
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	f.clock.At(80 * time.Second)
	if _, err := f.v.Verify(ended, tok); err != nil {
		t.Fatalf("at the refresh point: %v", err)
	}
	if !verify.Fetching(f.v) {
		t.Fatal("no refresh under way at the refresh point")
	}
	<-requested
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for j := range 10 {
				if j == 5 && i == 0 {
					f.clock.At(95 * time.Second)
				}
				if _, err := f.v.Verify(ended, tok); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	close(gate)
	verify.WaitFetch(f.v)
	f.fetches(t, 2)

	// The new set was fetched at 80s for 20s: due at 96s.
	f.verifyAt(t, 96*time.Second-1, tok, nil)
	f.fetches(t, 2)
	f.is.publish("ed2", "EdDSA", otherEd.Public())
	// A kid the set does not know, once the set is due, waits for the
	// refresh that Verify starts; a flood of them causes that one fetch.
	f.clock.At(96 * time.Second)
	rotated := sign(hdr("EdDSA", "ed2"), f.claims("exp", t0.Add(time.Hour).Unix()), edSign(otherEd))
	for range 20 {
		wg.Go(func() {
			if _, err := f.v.Verify(t.Context(), rotated); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	f.fetches(t, 3)
}

// A set that lapsed with no refresh (nothing asked for a key since its
// refresh point) is not used as it is: Verify waits for one fetch, shared
// by concurrent callers, and a withdrawn kid is refused at once.
func TestLapsedSetWaitsForFetch(t *testing.T) {
	f := newFixture(t)
	f.is.set(func(is *issuer) { is.cacheCtl = "max-age=100" })
	tok := f.longLived("ed")
	f.verifyAt(t, 0, tok, nil)
	f.is.withdraw("ed")
	f.is.publish("ed2", "EdDSA", otherEd.Public())

	gate, requested := make(chan struct{}), make(chan struct{}, 10)
	f.is.set(func(is *issuer) { is.gate, is.requested = gate, requested })
	f.clock.At(150 * time.Second)
	rotated := sign(hdr("EdDSA", "ed2"), f.claims("exp", t0.Add(time.Hour).Unix()), edSign(otherEd))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.v.Verify(t.Context(), tok); !errors.Is(err, verify.ErrUnknownKey) {
				t.Errorf("withdrawn kid after the lapse: %v", err)
			}
		})
		wg.Go(func() {
			if _, err := f.v.Verify(t.Context(), rotated); err != nil {
				t.Errorf("new kid after the lapse: %v", err)
			}
		})
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-requested: // the callers wait for the fetch the gate holds
	case <-allDone:
	}
	close(gate)
	<-allDone
	f.fetches(t, 2)
}

// When fetching fails after the refresh point, the last good set stays in
// use until StaleIfError (5 min) after it lapsed, with one attempt per
// MinRefresh; then Verify answers ErrKeys (the middleware 503) until the
// issuer is back.
func TestStaleIfError(t *testing.T) {
	f := newFixture(t)
	f.is.set(func(is *issuer) { is.cacheCtl = "max-age=100" })
	tok := f.longLived("ed")
	f.verifyAt(t, 0, tok, nil)
	f.is.set(func(is *issuer) { is.jwksStatus = http.StatusInternalServerError })

	f.verifyAt(t, 80*time.Second, tok, nil) // the refresh starts, and fails
	verify.WaitFetch(f.v)
	f.fetches(t, 2)
	f.verifyAt(t, 89*time.Second, tok, nil) // within MinRefresh of it: no attempt
	f.fetches(t, 2)
	f.verifyAt(t, 90*time.Second, tok, nil) // the next attempt, in the background
	verify.WaitFetch(f.v)
	f.fetches(t, 3)
	f.verifyAt(t, 150*time.Second, tok, nil) // lapsed at 100s: stale, and another attempt
	verify.WaitFetch(f.v)
	f.fetches(t, 4)
	f.verifyAt(t, 155*time.Second, f.longLived("new"), verify.ErrKeys) // an unknown kid cannot be checked
	f.verifyAt(t, 399*time.Second, tok, nil)
	verify.WaitFetch(f.v)
	f.fetches(t, 5)

	// 300s after the lapse the set is no longer used.
	f.verifyAt(t, 400*time.Second, tok, verify.ErrKeys)
	rec := serve(f.v.Middleware(http.NotFoundHandler()), "Bearer "+tok)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "10" {
		t.Fatalf("middleware with no usable keys: %d %v", rec.Code, rec.Header())
	}
	f.fetches(t, 5) // the last attempt was less than MinRefresh ago

	f.is.set(func(is *issuer) { is.jwksStatus = 0 })
	f.verifyAt(t, 409*time.Second-1, tok, verify.ErrKeys)
	f.fetches(t, 5)
	f.verifyAt(t, 409*time.Second, tok, nil) // MinRefresh after the last attempt: a fetch, which succeeds
	f.fetches(t, 6)
}

// StaleIfError < 0: no stale period.
func TestNoStaleIfError(t *testing.T) {
	f := newFixture(t)
	f.v = f.verifier(func(o *verify.Options) { o.StaleIfError = -1 })
	f.is.set(func(is *issuer) { is.cacheCtl = "max-age=100" })
	tok := f.longLived("ed")
	f.verifyAt(t, 0, tok, nil)
	f.is.set(func(is *issuer) { is.jwksStatus = http.StatusBadGateway })
	f.verifyAt(t, 80*time.Second, tok, nil)
	verify.WaitFetch(f.v)
	f.verifyAt(t, 100*time.Second-1, tok, nil)
	f.verifyAt(t, 100*time.Second, tok, verify.ErrKeys)
}

// An idle verifier whose set lapsed while the issuer is down waits for one
// fetch, which fails, and then answers from the stale set.
func TestLapsedWhileIssuerDown(t *testing.T) {
	f := newFixture(t)
	f.is.set(func(is *issuer) { is.cacheCtl = "max-age=100" })
	tok := f.longLived("ed")
	f.verifyAt(t, 0, tok, nil)
	f.is.set(func(is *issuer) { is.jwksStatus = http.StatusServiceUnavailable })
	f.verifyAt(t, 150*time.Second, tok, nil)
	f.fetches(t, 2)
	f.verifyAt(t, 155*time.Second, tok, nil) // stale, no new attempt within MinRefresh
	f.fetches(t, 2)
	f.verifyAt(t, 400*time.Second, tok, verify.ErrKeys)
}

// The lifetime a response gives the keys, seen through the fetches: the
// refresh starts at 80% of it.
func TestKeysLifetime(t *testing.T) {
	for _, tc := range []struct {
		name, cacheCtl, age string
		opts                func(*verify.Options)
		want                time.Duration
	}{
		{"no Cache-Control: the default", "", "", nil, verify.DefaultKeysAge},
		{"max-age", "public, max-age=120", "", nil, 120 * time.Second},
		{"max-age less Age", "max-age=600", "590", nil, 10 * time.Second},
		{"below the floor (MinRefresh)", "max-age=1", "", nil, 10 * time.Second},
		{"max-age=0", "max-age=0", "", nil, 10 * time.Second},
		{"invalid max-age", "max-age=soon", "", nil, 10 * time.Second},
		{"above the ceiling (MaxKeysAge)", "max-age=86400", "", nil, time.Hour},
		{"no-store caps at the default", "no-store, max-age=3600", "", nil, verify.DefaultKeysAge},
		{"no-cache caps at the default", "no-cache", "", nil, verify.DefaultKeysAge},
		{"MaxKeysAge", "max-age=86400", "", func(o *verify.Options) { o.MaxKeysAge = 10 * time.Minute }, 10 * time.Minute},
		{"MinRefresh", "max-age=1", "", func(o *verify.Options) { o.MinRefresh = 30 * time.Second }, 30 * time.Second},
		{"MaxKeysAge below MinRefresh", "max-age=600", "", func(o *verify.Options) {
			o.MinRefresh, o.MaxKeysAge = 30*time.Second, time.Second
		}, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.v = f.verifier(tc.opts)
			f.is.set(func(is *issuer) { is.cacheCtl, is.age = tc.cacheCtl, tc.age })
			tok := f.longLived("ed")
			f.verifyAt(t, 0, tok, nil)
			due := tc.want - tc.want/5
			f.verifyAt(t, due-1, tok, nil)
			f.fetches(t, 1)
			f.verifyAt(t, due, tok, nil)
			verify.WaitFetch(f.v)
			f.fetches(t, 2)
		})
	}
}

// lifetimeCases are the table of TestLifetime; they also seed
// FuzzCacheControl.
var lifetimeCases = []struct {
	cacheCtl []string // Cache-Control field lines
	age      string
	want     time.Duration // with floor 10s and ceiling 1h
}{
	{nil, "", 5 * time.Minute},
	{[]string{"max-age=120"}, "", 2 * time.Minute},
	{[]string{"MAX-AGE=120"}, "", 2 * time.Minute},
	{[]string{`max-age="120"`}, "", 2 * time.Minute},
	{[]string{"public,max-age=120,immutable"}, "", 2 * time.Minute},
	{[]string{" public ,  max-age=120 , "}, "", 2 * time.Minute},
	{[]string{"public", "max-age=120"}, "", 2 * time.Minute},
	{[]string{"max-age=120, max-age=120"}, "", 2 * time.Minute},
	{[]string{"max-age=120, max-age=600"}, "", 10 * time.Second}, // conflicting: stale
	{[]string{"max-age=120", "max-age=60"}, "", 10 * time.Second},
	{[]string{"max-age=-1"}, "", 10 * time.Second},
	{[]string{"max-age=1.5"}, "", 10 * time.Second},
	{[]string{"max-age="}, "", 10 * time.Second},
	{[]string{"max-age"}, "", 10 * time.Second},
	{[]string{`max-age="12`}, "", 10 * time.Second},
	{[]string{"max-age=99999999999999999999999999"}, "", time.Hour},
	{[]string{"max-age=120"}, "60", time.Minute},
	{[]string{"max-age=120"}, "600", 10 * time.Second},
	{[]string{"max-age=120"}, "junk", 2 * time.Minute},
	{[]string{"max-age=120"}, "99999999999999999999", 10 * time.Second},
	{[]string{"s-maxage=60"}, "", 5 * time.Minute},
	{[]string{"max-age=7200, no-cache"}, "", 5 * time.Minute},
	{[]string{"max-age=60, no-store"}, "", time.Minute},
	{[]string{`no-cache="Set-Cookie", max-age=3600`}, "", time.Hour},
	{[]string{`private="a, max-age=1", max-age=600`}, "", 10 * time.Minute},
	{[]string{`private="a\", max-age=1", max-age=600`}, "", 10 * time.Minute},
	{[]string{`x="unterminated, max-age=1`}, "", 5 * time.Minute},
	{[]string{"max-age =120"}, "", 2 * time.Minute},
	{[]string{"maxage=120"}, "", 5 * time.Minute},
	{[]string{",,,"}, "", 5 * time.Minute},
}

func TestLifetime(t *testing.T) {
	for _, tc := range lifetimeCases {
		h := http.Header{"Cache-Control": tc.cacheCtl}
		if tc.age != "" {
			h.Set("Age", tc.age)
		}
		if got := verify.Lifetime(h, 10*time.Second, time.Hour); got != tc.want {
			t.Errorf("Cache-Control %q, Age %q: %s, want %s", tc.cacheCtl, tc.age, got, tc.want)
		}
	}
}

// FuzzCacheControl feeds lifetime arbitrary Cache-Control and Age fields,
// seeded from TestLifetime's table and testdata/fuzz/FuzzCacheControl. The
// lifetime is always within its bounds, and neither no-store nor an Age
// can make it longer.
func FuzzCacheControl(f *testing.F) {
	for _, tc := range lifetimeCases {
		var cc string
		if len(tc.cacheCtl) > 0 {
			cc = tc.cacheCtl[0]
		}
		f.Add(cc, tc.age)
	}
	const floor, ceil = 10 * time.Second, time.Hour
	f.Fuzz(func(t *testing.T, cc, age string) {
		h := http.Header{"Cache-Control": {cc}}
		got := verify.Lifetime(h, floor, ceil)
		if got < floor || got > ceil {
			t.Fatalf("%q: lifetime %s out of [%s, %s]", cc, got, floor, ceil)
		}
		if ns := verify.Lifetime(http.Header{"Cache-Control": {cc, "no-store"}}, floor, ceil); ns > got {
			t.Fatalf("%q: no-store lengthens the lifetime from %s to %s", cc, got, ns)
		}
		if aged := verify.Lifetime(http.Header{"Cache-Control": {cc}, "Age": {age}}, floor, ceil); aged > got {
			t.Fatalf("%q: Age %q lengthens the lifetime from %s to %s", cc, age, got, aged)
		}
	})
}
