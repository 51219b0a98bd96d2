package verify_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/verify"
)

// An unknown kid causes exactly one JWKS fetch, which finds the key the
// issuer rotated to; within MinRefresh of the last fetch it causes none.
func TestUnknownKidAfterRotation(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Verify(ctx, sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))); err != nil {
		t.Fatal(err)
	}
	if j, m := f.is.jwksFetches.Load(), f.is.metaFetches.Load(); j != 1 || m != 1 {
		t.Fatalf("first use: %d JWKS and %d metadata fetches, want 1 and 1", j, m)
	}

	// The issuer rotates to a new key.
	f.is.publish("ed2", "EdDSA", otherEd.Public())
	f.clock.Advance(5 * time.Second)
	rotated := sign(hdr("EdDSA", "ed2"), f.claims("exp", t0.Add(time.Hour).Unix()), edSign(otherEd))
	if _, err := f.v.Verify(ctx, rotated); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("within MinRefresh of the last fetch: %v, want ErrUnknownKey", err)
	}
	if n := f.is.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches within MinRefresh, want 1", n)
	}

	f.clock.Advance(5 * time.Second) // MinRefresh (10s) after the first fetch
	if _, err := f.v.Verify(ctx, rotated); err != nil {
		t.Fatalf("after MinRefresh: %v", err)
	}
	for range 3 {
		if _, err := f.v.Verify(ctx, rotated); err != nil {
			t.Fatal(err)
		}
	}
	if j, m := f.is.jwksFetches.Load(), f.is.metaFetches.Load(); j != 2 || m != 1 {
		t.Fatalf("%d JWKS and %d metadata fetches, want 2 and 1 (jwks_uri is discovered once)", j, m)
	}
}

// A flood of tokens with made-up kids causes at most one fetch per
// MinRefresh.
func TestUnknownKidFlood(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	good := sign(hdr("EdDSA", "ed"), f.claims("exp", t0.Add(time.Hour).Unix()), edSign(edKey))
	if _, err := f.v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	for window := range 3 {
		f.clock.Advance(10 * time.Second)
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				kid := fmt.Sprintf("made-up-%d-%d", window, i)
				_, err := f.v.Verify(ctx, sign(hdr("EdDSA", kid), f.claims(), edSign(edKey)))
				if !errors.Is(err, verify.ErrUnknownKey) {
					t.Errorf("kid %s: %v", kid, err)
				}
				// Known kids keep working meanwhile.
				if _, err := f.v.Verify(ctx, good); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := f.is.jwksFetches.Load(); n != int64(window)+2 {
			t.Fatalf("window %d: %d JWKS fetches in all, want %d", window, n, window+2)
		}
	}
}

// Concurrent callers that need a fetch share one, and all see its result.
func TestConcurrentRefreshCollapses(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.is.publish("ed2", "EdDSA", otherEd.Public())
	gate, requested := make(chan struct{}), make(chan struct{}, 100)
	f.is.set(func(is *issuer) { is.gate, is.requested = gate, requested })
	tok := sign(hdr("EdDSA", "ed2"), f.claims(), edSign(otherEd))

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := f.v.Verify(ctx, tok); err != nil {
				t.Error(err)
			}
		})
	}
	<-requested // the fetch is under way and held: callers pile up behind it
	close(gate)
	wg.Wait()
	if j, m := f.is.jwksFetches.Load(), f.is.metaFetches.Load(); j != 1 || m != 1 {
		t.Fatalf("%d JWKS and %d metadata fetches for 50 concurrent callers, want 1 and 1", j, m)
	}
}

// A caller whose context ends stops waiting; the fetch goes on for the
// others.
func TestContextEndsWhileWaiting(t *testing.T) {
	f := newFixture(t)
	gate := make(chan struct{})
	f.is.set(func(is *issuer) { is.gate = gate })
	tok := sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, verify.ErrKeys) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	close(gate)
	if _, err := f.v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if n := f.is.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
}

// When the keys cannot be fetched, Verify says ErrKeys, retries no sooner
// than MinRefresh, and the middleware answers 503.
func TestFetchFailure(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.is.set(func(is *issuer) { is.jwksStatus = http.StatusInternalServerError })
	tok := sign(hdr("EdDSA", "ed"), f.claims("exp", t0.Add(time.Hour).Unix()), edSign(edKey))
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, verify.ErrKeys) {
		t.Fatalf("JWKS 500: %v", err)
	}
	rec := serve(f.v.Middleware(http.NotFoundHandler()), "Bearer "+tok)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "10" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("middleware: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if n := f.is.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches within MinRefresh of a failure, want 1", n)
	}
	f.is.set(func(is *issuer) { is.jwksStatus = 0 })
	f.clock.Advance(10 * time.Second)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatalf("after the issuer is back: %v", err)
	}
	// A failed refresh keeps the keys fetched before.
	f.is.set(func(is *issuer) { is.jwksStatus = http.StatusBadGateway })
	f.clock.Advance(10 * time.Second)
	if _, err := f.v.Verify(ctx, sign(hdr("EdDSA", "new"), f.claims(), edSign(edKey))); !errors.Is(err, verify.ErrKeys) {
		t.Fatalf("unknown kid while the issuer is down: %v", err)
	}
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatalf("known kid while the issuer is down: %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	jwks := must(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: edKey.Public(), KeyID: "ed", Algorithm: "EdDSA"}}}))
	// server serves the JWKS at /keys and metadata at the given paths, with
	// the issuer issuerPath under its URL.
	server := func(t *testing.T, issuerPath string, metaPaths ...string) string {
		var srv *httptest.Server
		mux := http.NewServeMux()
		for _, p := range metaPaths {
			mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL + issuerPath, "jwks_uri": srv.URL + "/keys"})
			})
		}
		mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) })
		srv = httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL + issuerPath
	}
	check := func(t *testing.T, iss string, o *verify.Options, want error) {
		t.Helper()
		o.Now = newClock().Now
		c := map[string]any{"iss": iss, "aud": iss, "exp": t0.Add(time.Minute).Unix()}
		_, err := verify.New(iss, o).Verify(t.Context(), sign(hdr("EdDSA", "ed"), c, edSign(edKey)))
		if !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
	t.Run("oauth-authorization-server", func(t *testing.T) {
		check(t, server(t, "", "/.well-known/oauth-authorization-server"), &verify.Options{}, nil)
	})
	t.Run("openid-configuration fallback", func(t *testing.T) {
		check(t, server(t, "", "/.well-known/openid-configuration"), &verify.Options{}, nil)
	})
	t.Run("issuer with a path", func(t *testing.T) {
		check(t, server(t, "/tenant", "/tenant/.well-known/oauth-authorization-server"), &verify.Options{}, nil)
	})
	t.Run("issuer with a path, RFC 8414 location", func(t *testing.T) {
		check(t, server(t, "/tenant", "/.well-known/oauth-authorization-server/tenant"), &verify.Options{}, nil)
	})
	t.Run("JWKSURL skips discovery", func(t *testing.T) {
		iss := server(t, "")
		check(t, iss, &verify.Options{JWKSURL: iss + "/keys"}, nil)
	})
	t.Run("no metadata", func(t *testing.T) {
		check(t, server(t, ""), &verify.Options{}, verify.ErrKeys)
	})
	t.Run("metadata of another issuer", func(t *testing.T) {
		// The metadata names the issuer at /other, the verifier wants /tenant.
		iss := server(t, "/other", "/tenant/.well-known/oauth-authorization-server", "/tenant/.well-known/openid-configuration")
		check(t, iss[:len(iss)-len("/other")]+"/tenant", &verify.Options{}, verify.ErrKeys)
	})
}

// Keys the verifier cannot or must not use are skipped; the others work.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	f := newFixture(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	entries := []any{
		map[string]any{"kty": "bogus", "kid": "bogus"},
		"not an object",
		jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "rsa", Algorithm: "RS256"},
		jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256"},
		jose.JSONWebKey{Key: edKey.Public(), KeyID: "mislabelled", Algorithm: "ES256"},
		jose.JSONWebKey{Key: edKey.Public(), KeyID: "enc", Use: "enc"},
		jose.JSONWebKey{Key: edKey, KeyID: "private", Algorithm: "EdDSA"},
		jose.JSONWebKey{Key: edKey.Public(), Algorithm: "EdDSA"}, // no kid
		jose.JSONWebKey{Key: edKey.Public(), KeyID: "ed"},        // no alg: taken from the key
		jose.JSONWebKey{Key: otherEd.Public(), KeyID: "ed", Algorithm: "EdDSA"},
	}
	f.is.set(func(is *issuer) { is.rawJWKS = string(must(json.Marshal(map[string]any{"keys": entries}))) })
	if _, err := f.v.Verify(t.Context(), sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))); err != nil {
		t.Fatalf("the usable key: %v", err)
	}
	for _, tc := range []struct {
		kid, alg string
		sign     func([]byte) []byte
		want     error
	}{
		{"rsa", "EdDSA", edSign(edKey), verify.ErrUnknownKey},
		{"oct", "EdDSA", hmacSign([]byte("0123456789abcdef0123456789abcdef")), verify.ErrUnknownKey},
		{"mislabelled", "EdDSA", edSign(edKey), verify.ErrUnknownKey},
		{"enc", "EdDSA", edSign(edKey), verify.ErrUnknownKey},
		{"private", "EdDSA", edSign(edKey), verify.ErrUnknownKey},
		{"ed", "EdDSA", edSign(otherEd), verify.ErrSignature}, // the duplicate kid is ignored
	} {
		if _, err := f.v.Verify(t.Context(), sign(hdr(tc.alg, tc.kid), f.claims(), tc.sign)); !errors.Is(err, tc.want) {
			t.Errorf("kid %s: %v, want %v", tc.kid, err, tc.want)
		}
	}
}

// An issuer configured with a trailing slash the server does not use (or
// without one it uses) is found through the metadata, and from then on iss
// must be exactly the form the metadata names (RFC 8414 §3.3).
func TestIssuerTrailingSlash(t *testing.T) {
	jwks := must(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: edKey.Public(), KeyID: "ed", Algorithm: "EdDSA"}}}))
	// server publishes metadata naming its URL plus suffix as the issuer.
	server := func(t *testing.T, suffix string) string {
		var srv *httptest.Server
		mux := http.NewServeMux()
		mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL + suffix, "jwks_uri": srv.URL + "/keys"})
		})
		mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) })
		srv = httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	tok := func(iss, aud string) string {
		return sign(hdr("EdDSA", "ed"), map[string]any{"iss": iss, "aud": aud, "exp": t0.Add(time.Minute).Unix()}, edSign(edKey))
	}
	// The default audience is the issuer, in the form the metadata names.
	cases := []struct {
		name                 string
		published, configure string // suffixes of the server's URL
		jwksURL              bool
		iss, aud             string // suffixes of the token's iss and aud
		want                 error
	}{
		{"configured with a slash, published without", "", "/", false, "", "", nil},
		{"configured with a slash, published without: iss with the slash", "", "/", false, "/", "/", verify.ErrIssuer},
		{"configured with a slash, published without: aud with the slash", "", "/", false, "", "/", verify.ErrAudience},
		{"configured without a slash, published with", "/", "", false, "/", "/", nil},
		{"configured without a slash, published with: iss without", "/", "", false, "", "", verify.ErrIssuer},
		{"configured without a slash, published with: aud without", "/", "", false, "/", "", verify.ErrAudience},
		{"two slashes are another issuer", "", "//", false, "", "", verify.ErrKeys},
		{"a path is another issuer", "", "/x", false, "", "", verify.ErrKeys},
		{"JWKSURL: exactly as configured", "", "/", true, "/", "/", nil},
		{"JWKSURL: no metadata to learn the form from", "", "/", true, "", "", verify.ErrIssuer},
		{"JWKSURL: aud exactly as configured", "", "/", true, "/", "", verify.ErrAudience},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := server(t, tc.published)
			o := &verify.Options{Now: newClock().Now}
			if tc.jwksURL {
				o.JWKSURL = base + "/keys"
			}
			v := verify.New(base+tc.configure, o)
			_, err := v.Verify(t.Context(), tok(base+tc.iss, base+tc.aud))
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == verify.ErrKeys && !strings.Contains(err.Error(), base+tc.configure) {
				t.Errorf("error does not name the URL tried: %v", err)
			}
		})
	}
}

// RSA keys are used for RS256 only, and only from 2048 bits: a smaller
// key, an RSA key published for PS256, or another key published for
// RS256 is skipped, and a token naming it is ErrUnknownKey.
func TestJWKSRSAKeys(t *testing.T) {
	f := newFixture(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	f.is.set(func(is *issuer) {
		is.keys = []jose.JSONWebKey{
			{Key: rsKey.Public(), KeyID: "rs", Algorithm: "RS256", Use: "sig"},
			{Key: rsKey.Public(), KeyID: "rs-noalg", Use: "sig"},
			{Key: small.Public(), KeyID: "small", Algorithm: "RS256", Use: "sig"},
			{Key: rsKey.Public(), KeyID: "pss", Algorithm: "PS256", Use: "sig"},
			{Key: ecKey.Public(), KeyID: "ec-as-rs", Algorithm: "RS256", Use: "sig"},
		}
	})
	for _, tc := range []struct {
		kid  string
		sign func([]byte) []byte
		want error
	}{
		{"rs", rsSign(rsKey), nil},
		{"rs-noalg", rsSign(rsKey), nil}, // no alg: RS256, from the key
		{"small", rsSign(small), verify.ErrUnknownKey},
		{"pss", rsSign(rsKey), verify.ErrUnknownKey},
		{"ec-as-rs", rsSign(rsKey), verify.ErrUnknownKey},
	} {
		if _, err := f.v.Verify(t.Context(), sign(hdr("RS256", tc.kid), f.claims(), tc.sign)); !errors.Is(err, tc.want) {
			t.Errorf("kid %s: %v, want %v", tc.kid, err, tc.want)
		}
	}
}
