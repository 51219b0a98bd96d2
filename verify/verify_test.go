package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/tokend/tokend/verify"
)

// issuer is a fake authorization server: metadata and a JWKS it can
// change, with a fetch counter.
type issuer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
}

func newIssuer(t testing.TB) *issuer {
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) publish(kid, alg string, pub crypto.PublicKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append(is.keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
}

var enc = base64.RawURLEncoding

// sign builds a compact JWS by hand, so tests can forge any header.
func sign(header map[string]any, claims map[string]any, signer func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	return input + "." + enc.EncodeToString(signer([]byte(input)))
}

func edSigner(k ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k, in) }
}

var now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	is     *issuer
	ed     ed25519.PrivateKey
	ec     *ecdsa.PrivateKey
	v      *verify.Verifier
	claims func() map[string]any
}

func newFixture(t testing.TB) *fixture {
	is := newIssuer(t)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.publish("ed", "EdDSA", ed.Public())
	is.publish("ec", "ES256", ec.Public())
	f := &fixture{is: is, ed: ed, ec: ec}
	f.v = verify.New(is.srv.URL, &verify.Options{Audience: "api", Now: func() time.Time { return now }})
	f.claims = func() map[string]any {
		return map[string]any{"iss": is.srv.URL, "sub": "alice", "aud": "api", "exp": now.Add(time.Minute).Unix(),
			"iat": now.Unix(), "jti": "j1", "client_id": "app", "scope": "read write", "tenant": "t1"}
	}
	return f
}

func hdr(alg, kid string) map[string]any {
	return map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"}
}

func ecSign(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, _ := ecdsa.Sign(rand.Reader, k, d[:])
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	good := sign(hdr("EdDSA", "ed"), f.claims(), edSigner(f.ed))
	c, err := f.v.Verify(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.ClientID != "app" || !c.HasScope("write") || c.Extra["tenant"] != "t1" || c.Audience[0] != "api" || !c.Expiry.Equal(now.Add(time.Minute)) {
		t.Fatalf("claims %+v", c)
	}
	if _, err := f.v.Verify(ctx, sign(hdr("ES256", "ec"), f.claims(), ecSign(f.ec))); err != nil {
		t.Fatalf("ES256: %v", err)
	}

	with := func(k string, v any) map[string]any { c := f.claims(); c[k] = v; return c }
	without := func(k string) map[string]any { c := f.claims(); delete(c, k); return c }
	hmacWith := func(key []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, key); m.Write(in); return m.Sum(nil) }
	}
	edPub := []byte(f.ed.Public().(ed25519.PublicKey))
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", sign(hdr("EdDSA", "ed"), with("exp", now.Add(-time.Minute).Unix()), edSigner(f.ed)), verify.ErrExpired},
		{"expired within leeway is fine", "", nil},
		{"no exp", sign(hdr("EdDSA", "ed"), without("exp"), edSigner(f.ed)), verify.ErrMalformed},
		{"nbf in the future", sign(hdr("EdDSA", "ed"), with("nbf", now.Add(time.Hour).Unix()), edSigner(f.ed)), verify.ErrNotYetValid},
		{"iat in the future", sign(hdr("EdDSA", "ed"), with("iat", now.Add(time.Hour).Unix()), edSigner(f.ed)), verify.ErrNotYetValid},
		{"wrong issuer", sign(hdr("EdDSA", "ed"), with("iss", "https://evil.example"), edSigner(f.ed)), verify.ErrIssuer},
		{"wrong audience", sign(hdr("EdDSA", "ed"), with("aud", []string{"other", "x"}), edSigner(f.ed)), verify.ErrAudience},
		{"bad signature", good[:len(good)-4] + "AAAA", verify.ErrSignature},
		{"alg none", sign(map[string]any{"alg": "none", "kid": "ed", "typ": "at+jwt"}, f.claims(), func([]byte) []byte { return nil }), verify.ErrAlgorithm},
		{"HS256 with the public key as secret", sign(hdr("HS256", "ed"), f.claims(), hmacWith(edPub)), verify.ErrAlgorithm},
		{"ES256 header on an Ed25519 key", sign(hdr("ES256", "ed"), f.claims(), ecSign(f.ec)), verify.ErrAlgorithm},
		{"EdDSA header on a P-256 key", sign(hdr("EdDSA", "ec"), f.claims(), edSigner(f.ed)), verify.ErrAlgorithm},
		{"no kid", sign(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, f.claims(), edSigner(f.ed)), verify.ErrMalformed},
		{"wrong typ", sign(map[string]any{"alg": "EdDSA", "kid": "ed", "typ": "JWT"}, f.claims(), edSigner(f.ed)), verify.ErrType},
		{"critical header", sign(map[string]any{"alg": "EdDSA", "kid": "ed", "typ": "at+jwt", "crit": []string{"x"}}, f.claims(), edSigner(f.ed)), verify.ErrMalformed},
		{"too long", good + strings.Repeat("A", 16<<10), verify.ErrMalformed},
		{"garbage", "not-a-jwt", verify.ErrMalformed},
		{"four parts", good + ".x", verify.ErrMalformed},
		{"dots only", "..", verify.ErrMalformed},
	}
	for _, tc := range cases {
		if tc.token == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.v.Verify(ctx, tc.token); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// Within the 30s leeway an expired token still passes.
	if _, err := f.v.Verify(ctx, sign(hdr("EdDSA", "ed"), with("exp", now.Add(-10*time.Second).Unix()), edSigner(f.ed))); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
}

// An unknown kid triggers one fetch, which finds a rotated key; a flood of
// unknown kids causes no more than one fetch per MinRefresh.
func TestKeyRotationAndRateLimit(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	clock := now
	f.v = verify.New(f.is.srv.URL, &verify.Options{Now: func() time.Time { return clock }, MinRefresh: 10 * time.Second})
	claims := f.claims()
	claims["exp"] = now.Add(time.Hour).Unix()
	if _, err := f.v.Verify(ctx, sign(hdr("EdDSA", "ed"), claims, edSigner(f.ed))); err != nil {
		t.Fatal(err)
	}
	_, newKey, _ := ed25519.GenerateKey(rand.Reader)
	f.is.publish("ed2", "EdDSA", newKey.Public())
	clock = clock.Add(11 * time.Second)
	if _, err := f.v.Verify(ctx, sign(hdr("EdDSA", "ed2"), claims, edSigner(newKey))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := f.is.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			kid := "unknown-" + string(rune('a'+i%26))
			_, err := f.v.Verify(ctx, sign(hdr("EdDSA", kid), claims, edSigner(newKey)))
			if !errors.Is(err, verify.ErrUnknownKey) {
				t.Errorf("unknown kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.is.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after a flood of unknown kids within MinRefresh, want 2", n)
	}
	clock = clock.Add(11 * time.Second)
	_, _ = f.v.Verify(ctx, sign(hdr("EdDSA", "unknown-z"), claims, edSigner(newKey)))
	if n := f.is.fetches.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches after MinRefresh, want 3", n)
	}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	h := f.v.Middleware(verify.RequireScope("write", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.FromContext(r.Context())
		_, _ = w.Write([]byte("hello " + c.Subject))
	})))
	do := func(auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	good := sign(hdr("EdDSA", "ed"), f.claims(), edSigner(f.ed))
	if rec := do("Bearer " + good); rec.Code != 200 || rec.Body.String() != "hello alice" {
		t.Fatalf("valid: %d %q", rec.Code, rec.Body.String())
	}
	rec := do("")
	if rec.Code != 401 || strings.Contains(rec.Header().Get("WWW-Authenticate"), "error=") {
		t.Fatalf("no token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	expired := f.claims()
	expired["exp"] = now.Add(-time.Hour).Unix()
	bad := sign(hdr("EdDSA", "ed"), expired, edSigner(f.ed))
	rec = do("Bearer " + bad)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || strings.Contains(rec.Body.String(), bad) {
		t.Fatalf("expired: %d %q %q", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	}
	readOnly := f.claims()
	readOnly["scope"] = "read"
	rec = do("Bearer " + sign(hdr("EdDSA", "ed"), readOnly, edSigner(f.ed)))
	if rec.Code != 403 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("missing scope: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	if rec := do("Basic dXNlcjpwYXNz"); rec.Code != 401 {
		t.Fatalf("Basic: %d", rec.Code)
	}
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := sign(hdr("EdDSA", "ed"), fx.claims(), edSigner(fx.ed))
	goodEC := sign(hdr("ES256", "ec"), fx.claims(), ecSign(fx.ec))
	f.Add(good)
	f.Add(goodEC)
	f.Add(sign(map[string]any{"alg": "none", "kid": "ed", "typ": "at+jwt"}, fx.claims(), func([]byte) []byte { return nil }))
	f.Add("..")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := fx.v.Verify(t.Context(), tok)
		if err != nil {
			return
		}
		// Only the header and claims the issuer signed may pass.
		for _, legit := range []string{good, goodEC} {
			if strings.HasPrefix(tok, legit[:strings.LastIndexByte(legit, '.')+1]) {
				return
			}
		}
		t.Fatalf("accepted a token that was not signed by the issuer: %q (%+v)", tok, c)
	})
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok := sign(hdr("EdDSA", "ed"), f.claims(), edSigner(f.ed))
	if _, err := f.v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(tok, '.')
	input, sig := []byte(tok[:dot]), mustDecode(tok[dot+1:])
	pub := f.ed.Public().(ed25519.PublicKey)
	b.Run("verify.Verifier", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.v.Verify(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ed25519.Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, input, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}

func mustDecode(s string) []byte {
	b, err := enc.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
