package verify_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/verify"
)

// The issuer's keys are derived from fixed seeds, so that the tokens in
// the fuzz corpus stay valid from run to run.
var (
	edKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	ecKey = mustECKey(bytes.Repeat([]byte{2}, 32))
	// otherEd is a key the issuer does not publish.
	otherEd = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	// rsKey is a 2048-bit RSA key, fixed in testdata (Go makes RSA keys
	// from no seed), a test key of no other use.
	rsKey = mustRSAKey("testdata/rs256-test-key.pem")
)

func mustRSAKey(path string) *rsa.PrivateKey {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		panic(path + ": no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
}

func mustECKey(d []byte) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		panic(err)
	}
	return k
}

// issuerID is the fixture issuer's identifier, fixed like the keys. Its
// requests go to an httptest server (see rewrite).
const issuerID = "https://issuer.example"

// t0 is the fixed time of every test's clock.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a settable clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// At sets the clock to d after t0.
func (c *clock) At(d time.Duration) { c.ns.Store(t0.Add(d).UnixNano()) }

// issuer is a fake authorization server: metadata and a JWKS that tests
// can change, with its Cache-Control and Age, fetch counters and an
// optional gate that holds JWKS requests.
type issuer struct {
	srv         *httptest.Server
	jwksFetches atomic.Int64
	metaFetches atomic.Int64

	mu         sync.Mutex
	keys       []jose.JSONWebKey
	rawJWKS    string        // served instead of keys if set
	jwksStatus int           // served instead of 200 if set
	cacheCtl   string        // the JWKS's Cache-Control, if set
	age        string        // the JWKS's Age, if set
	gate       chan struct{} // if set, JWKS requests wait until it is closed
	requested  chan struct{} // if set, receives a value per JWKS request
}

func newIssuer(tb testing.TB) *issuer {
	tb.Helper()
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		is.metaFetches.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuerID, "jwks_uri": issuerID + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksFetches.Add(1)
		is.mu.Lock()
		gate, status, raw, requested := is.gate, is.jwksStatus, is.rawJWKS, is.requested
		doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: is.keys})
		if is.cacheCtl != "" {
			w.Header().Set("Cache-Control", is.cacheCtl)
		}
		if is.age != "" {
			w.Header().Set("Age", is.age)
		}
		is.mu.Unlock()
		if requested != nil {
			requested <- struct{}{}
		}
		if gate != nil {
			<-gate
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		if raw != "" {
			doc = []byte(raw)
		}
		_, _ = w.Write(doc)
	})
	is.srv = httptest.NewServer(mux)
	tb.Cleanup(is.srv.Close)
	is.publish("ed", "EdDSA", edKey.Public())
	is.publish("ec", "ES256", ecKey.Public())
	is.publish("rs", "RS256", rsKey.Public())
	return is
}

// client returns an HTTP client that sends every request to the issuer's
// server, whatever the URL's host.
func (is *issuer) client() *http.Client {
	return &http.Client{Transport: rewrite{is.srv.Listener.Addr().String(), is.srv.Client().Transport}}
}

type rewrite struct {
	host string
	base http.RoundTripper
}

func (rt rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", rt.host
	return rt.base.RoundTrip(r)
}

func (is *issuer) publish(kid, alg string, pub crypto.PublicKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append(is.keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
}

// withdraw stops publishing kid.
func (is *issuer) withdraw(kid string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = slices.DeleteFunc(is.keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

func (is *issuer) set(f func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

var enc = base64.RawURLEncoding

// sign builds a compact JWS by hand, so that tests can forge any header.
func sign(header, claims any, signer func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	return input + "." + enc.EncodeToString(signer([]byte(input)))
}

func edSign(k ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k, in) }
}

func ecSign(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// rsSign signs RS256 (RSASSA-PKCS1-v1_5 with SHA-256), deterministic.
func rsSign(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

// psSign signs PS256 (RSASSA-PSS with SHA-256).
func psSign(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], nil)
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func hmacSign(key []byte) func([]byte) []byte {
	return func(in []byte) []byte { m := hmac.New(sha256.New, key); m.Write(in); return m.Sum(nil) }
}

func noSign([]byte) []byte { return nil }

func hdr(alg, kid string) map[string]any {
	return map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"}
}

type fixture struct {
	is    *issuer
	clock *clock
	v     *verify.Verifier
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{is: newIssuer(tb), clock: newClock()}
	f.v = f.verifier(nil)
	return f
}

// verifier returns a Verifier of the fixture's issuer with Audience "api"
// and the fixture's clock, changed by opts.
func (f *fixture) verifier(opts func(*verify.Options)) *verify.Verifier {
	o := &verify.Options{Audience: []string{"api"}, Now: f.clock.Now, HTTPClient: f.is.client()}
	if opts != nil {
		opts(o)
	}
	return verify.New(issuerID, o)
}

// claims returns valid claims, changed by kv (name, value pairs; a nil
// value deletes the claim).
func (f *fixture) claims(kv ...any) map[string]any {
	c := map[string]any{"iss": issuerID, "sub": "alice", "aud": "api", "exp": t0.Add(time.Minute).Unix(),
		"iat": t0.Unix(), "nbf": t0.Unix(), "jti": "j1", "client_id": "app", "scope": "read write", "tenant": "t1"}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

type verifyCase struct {
	name  string
	token string
	want  error // nil: accepted
}

// cases are the table of TestVerify; they also seed FuzzVerify.
func cases(f *fixture) []verifyCase {
	ed := func(claims map[string]any) string { return sign(hdr("EdDSA", "ed"), claims, edSign(edKey)) }
	good := ed(f.claims())
	dot := strings.LastIndexByte(good, '.')
	other := ed(f.claims("sub", "mallory"))
	edPub := []byte(edKey.Public().(ed25519.PublicKey))
	rsPub := must(x509.MarshalPKIXPublicKey(rsKey.Public()))
	rsGood := sign(hdr("RS256", "rs"), f.claims(), rsSign(rsKey))
	rsDot := strings.LastIndexByte(rsGood, '.')
	// A signature whose last character has non-zero trailing bits decodes
	// to the same bytes in a lenient decoder.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", good[len(good)-1])
	nonCanonical := good[:len(good)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	now := t0.Unix()
	return []verifyCase{
		{"valid EdDSA", good, nil},
		{"valid ES256", sign(hdr("ES256", "ec"), f.claims(), ecSign(ecKey)), nil},
		{"valid RS256", rsGood, nil},
		{"typ application/at+jwt", sign(map[string]any{"alg": "EdDSA", "kid": "ed", "typ": "application/at+jwt"}, f.claims(), edSign(edKey)), nil},
		{"typ in upper case", sign(map[string]any{"alg": "EdDSA", "kid": "ed", "typ": "AT+JWT"}, f.claims(), edSign(edKey)), nil},
		{"aud array", ed(f.claims("aud", []string{"other", "api"})), nil},
		{"expired within leeway", ed(f.claims("exp", now-10)), nil},
		{"nbf within leeway", ed(f.claims("nbf", now+10)), nil},
		{"fractional dates", ed(f.claims("exp", float64(now)+60.5, "iat", float64(now)-0.25)), nil},
		{"only the required claims", ed(map[string]any{"iss": issuerID, "aud": "api", "exp": now + 60}), nil},

		{"expired", ed(f.claims("exp", now-60)), verify.ErrExpired},
		{"expired at the end of the leeway", ed(f.claims("exp", now-30)), verify.ErrExpired},
		{"no exp", ed(f.claims("exp", nil)), verify.ErrMalformed},
		{"exp a string", ed(f.claims("exp", "2030-01-01")), verify.ErrMalformed},
		{"exp negative", ed(f.claims("exp", -1)), verify.ErrMalformed},
		{"nbf in the future", ed(f.claims("nbf", now+3600)), verify.ErrNotYetValid},
		{"iat in the future", ed(f.claims("iat", now+3600)), verify.ErrNotYetValid},
		{"wrong issuer", ed(f.claims("iss", "https://evil.example")), verify.ErrIssuer},
		{"no issuer", ed(f.claims("iss", nil)), verify.ErrIssuer},
		{"issuer not a string", ed(f.claims("iss", 42)), verify.ErrMalformed},
		{"wrong audience", ed(f.claims("aud", []string{"other", "x"})), verify.ErrAudience},
		{"no audience", ed(f.claims("aud", nil)), verify.ErrAudience},
		{"audience a number", ed(f.claims("aud", 7)), verify.ErrMalformed},
		{"audience array of numbers", ed(f.claims("aud", []int{7})), verify.ErrMalformed},
		{"scope not a string", ed(f.claims("scope", []string{"read"})), verify.ErrMalformed},
		{"claims not an object", sign(hdr("EdDSA", "ed"), []string{"a"}, edSign(edKey)), verify.ErrMalformed},
		{"claims null", sign(hdr("EdDSA", "ed"), nil, edSign(edKey)), verify.ErrMalformed},

		{"bad signature", good[:dot+1] + enc.EncodeToString(make([]byte, 64)), verify.ErrSignature},
		{"signature of another key", sign(hdr("EdDSA", "ed"), f.claims(), edSign(otherEd)), verify.ErrSignature},
		{"claims swapped", good[:strings.IndexByte(good, '.')] + other[strings.IndexByte(other, '.'):dot] + good[dot:], verify.ErrSignature},
		{"signature too short", good[:len(good)-4], verify.ErrSignature},
		{"no signature", good[:dot+1], verify.ErrSignature},
		{"padded signature", good + "==", verify.ErrSignature},
		{"non-canonical signature encoding", nonCanonical, verify.ErrMalformed},
		{"signature not base64url", good[:dot+1] + strings.Repeat("*", 86), verify.ErrMalformed},

		{"alg none", sign(map[string]any{"alg": "none", "kid": "ed", "typ": "at+jwt"}, f.claims(), noSign), verify.ErrAlgorithm},
		{"alg None", sign(map[string]any{"alg": "None", "kid": "ed", "typ": "at+jwt"}, f.claims(), noSign), verify.ErrAlgorithm},
		{"no alg", sign(map[string]any{"kid": "ed", "typ": "at+jwt"}, f.claims(), edSign(edKey)), verify.ErrAlgorithm},
		{"HS256 with the public key as secret", sign(hdr("HS256", "ed"), f.claims(), hmacSign(edPub)), verify.ErrAlgorithm},
		{"RS256", sign(hdr("RS256", "ed"), f.claims(), edSign(edKey)), verify.ErrAlgorithm},
		{"ES256 header on an Ed25519 key", sign(hdr("ES256", "ed"), f.claims(), ecSign(ecKey)), verify.ErrAlgorithm},
		{"EdDSA header on a P-256 key", sign(hdr("EdDSA", "ec"), f.claims(), edSign(edKey)), verify.ErrAlgorithm},
		{"RS256 header on a P-256 key", sign(hdr("RS256", "ec"), f.claims(), rsSign(rsKey)), verify.ErrAlgorithm},
		{"ES256 header on an RSA key", sign(hdr("ES256", "rs"), f.claims(), ecSign(ecKey)), verify.ErrAlgorithm},
		{"EdDSA header on an RSA key", sign(hdr("EdDSA", "rs"), f.claims(), edSign(edKey)), verify.ErrAlgorithm},
		{"HS256 with the RSA public key as secret", sign(hdr("HS256", "rs"), f.claims(), hmacSign(rsPub)), verify.ErrAlgorithm},
		{"HS256 with the RSA modulus as secret", sign(hdr("HS256", "rs"), f.claims(), hmacSign(rsKey.N.Bytes())), verify.ErrAlgorithm},
		{"PS256 on an RSA key", sign(hdr("PS256", "rs"), f.claims(), psSign(rsKey)), verify.ErrAlgorithm},
		{"RS384 on an RSA key", sign(hdr("RS384", "rs"), f.claims(), rsSign(rsKey)), verify.ErrAlgorithm},
		{"alg none on an RSA key", sign(map[string]any{"alg": "none", "kid": "rs", "typ": "at+jwt"}, f.claims(), noSign), verify.ErrAlgorithm},
		{"RS256 bad signature", rsGood[:rsDot+1] + enc.EncodeToString(make([]byte, 256)), verify.ErrSignature},
		{"RS256 signature of 64 bytes", rsGood[:rsDot+1] + enc.EncodeToString(make([]byte, 64)), verify.ErrSignature},
		{"RS256 signature too short", rsGood[:len(rsGood)-4], verify.ErrSignature},
		{"RS256 typ JWT (an ID token)", sign(map[string]any{"alg": "RS256", "kid": "rs", "typ": "JWT"}, f.claims(), rsSign(rsKey)), verify.ErrType},
		{"no kid", sign(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, f.claims(), edSign(edKey)), verify.ErrMalformed},
		{"empty kid", sign(hdr("EdDSA", ""), f.claims(), edSign(edKey)), verify.ErrMalformed},
		{"unknown kid", sign(hdr("EdDSA", "nope"), f.claims(), edSign(edKey)), verify.ErrUnknownKey},
		{"typ JWT", sign(map[string]any{"alg": "EdDSA", "kid": "ed", "typ": "JWT"}, f.claims(), edSign(edKey)), verify.ErrType},
		{"no typ", sign(map[string]any{"alg": "EdDSA", "kid": "ed"}, f.claims(), edSign(edKey)), verify.ErrType},
		{"crit header", sign(map[string]any{"alg": "EdDSA", "kid": "ed", "typ": "at+jwt", "crit": []string{"exp"}, "exp": 1}, f.claims(), edSign(edKey)), verify.ErrMalformed},
		{"kid not a string", sign(map[string]any{"alg": "EdDSA", "kid": 1, "typ": "at+jwt"}, f.claims(), edSign(edKey)), verify.ErrMalformed},

		{"too long", ed(f.claims("pad", strings.Repeat("x", verify.MaxTokenLength))), verify.ErrMalformed},
		{"empty", "", verify.ErrMalformed},
		{"garbage", "not-a-jwt", verify.ErrMalformed},
		{"dots only", "..", verify.ErrMalformed},
		{"three junk parts", "a.b.c", verify.ErrMalformed},
		{"two parts", good[:dot], verify.ErrMalformed},
		{"four parts", good + ".x", verify.ErrMalformed},
		{"header not base64url", "e30=" + good[strings.IndexByte(good, '.'):], verify.ErrMalformed},
		{"header not JSON", enc.EncodeToString([]byte("alg:EdDSA")) + good[strings.IndexByte(good, '.'):], verify.ErrMalformed},
		{"payload not base64url", good[:strings.IndexByte(good, '.')+1] + "%%%" + good[dot:], verify.ErrSignature},
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.FromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
		}
		_, _ = w.Write([]byte(c.Subject))
	}))
	for _, tc := range cases(f) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.v.Verify(t.Context(), tc.token)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && c.Issuer != issuerID {
				t.Fatalf("claims %+v", c)
			}
			if err != nil && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
				t.Fatalf("the error holds the token: %v", err)
			}
			if strings.ContainsAny(tc.token, " \t\r\n") {
				return // not a b64token: the middleware's parser rejects it first
			}
			rec := serve(h, "Bearer "+tc.token)
			if tc.want == nil {
				if rec.Code != http.StatusOK {
					t.Fatalf("middleware: %d %s", rec.Code, rec.Body)
				}
				return
			}
			checkDenied(t, rec, tc.token)
		})
	}
}

// serve runs h on a GET with the Authorization header auth, if any.
func serve(h http.Handler, auth ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkDenied checks a 401 invalid_token answer that does not give away
// the token.
func checkDenied(t *testing.T, rec *httptest.ResponseRecorder, token string) {
	t.Helper()
	ch := rec.Header().Get("WWW-Authenticate")
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(ch, `Bearer error="invalid_token", error_description="`) ||
		body.Error != "invalid_token" || body.Description == "" || !strings.Contains(ch, body.Description) ||
		rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d, WWW-Authenticate %q, body %q", rec.Code, ch, rec.Body)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && (strings.Contains(ch, part) || strings.Contains(rec.Body.String(), part)) {
			t.Fatalf("the answer holds the token: %q %q", ch, rec.Body)
		}
	}
}

func TestClaims(t *testing.T) {
	f := newFixture(t)
	c, err := f.v.Verify(t.Context(), sign(hdr("EdDSA", "ed"), f.claims("aud", []string{"api", "web"}, "n", 1.5), edSign(edKey)))
	if err != nil {
		t.Fatal(err)
	}
	want := verify.Claims{Issuer: issuerID, Subject: "alice", Audience: []string{"api", "web"}, Expiry: t0.Add(time.Minute),
		IssuedAt: t0, NotBefore: t0, ID: "j1", ClientID: "app", KeyID: "ed", Scope: "read write"}
	extra := c.Extra
	c.Extra = nil
	if got, _ := json.Marshal(c); string(got) != string(must(json.Marshal(want))) {
		t.Fatalf("claims\n%s\nwant\n%s", got, must(json.Marshal(want)))
	}
	if len(extra) != 2 || extra["tenant"] != "t1" || extra["n"] != 1.5 {
		t.Fatalf("extra %v", extra)
	}
	for s, want := range map[string]bool{"read": true, "write": true, "rea": false, "": false, "read write": false} {
		if c.HasScope(s) != want {
			t.Errorf("HasScope(%q) = %v", s, !want)
		}
	}
	if (*verify.Claims)(nil).HasScope("read") {
		t.Error("nil claims have a scope")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAlgorithmsOption(t *testing.T) {
	f := newFixture(t)
	edTok := sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))
	ecTok := sign(hdr("ES256", "ec"), f.claims(), ecSign(ecKey))
	onlyES := f.verifier(func(o *verify.Options) { o.Algorithms = []string{"ES256"} })
	if _, err := onlyES.Verify(t.Context(), edTok); !errors.Is(err, verify.ErrAlgorithm) {
		t.Fatalf("EdDSA with only ES256 allowed: %v", err)
	}
	if _, err := onlyES.Verify(t.Context(), ecTok); err != nil {
		t.Fatalf("ES256 with only ES256 allowed: %v", err)
	}
	// Asking for what is never allowed allows nothing.
	unsafe := f.verifier(func(o *verify.Options) { o.Algorithms = []string{"none", "HS256"} })
	for _, tok := range []string{edTok, ecTok, sign(hdr("HS256", "ed"), f.claims(), hmacSign([]byte("k"))), sign(hdr("none", "ed"), f.claims(), noSign)} {
		if _, err := unsafe.Verify(t.Context(), tok); !errors.Is(err, verify.ErrAlgorithm) {
			t.Fatalf("%v", err)
		}
	}
	if n := f.is.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 (none for rejected algorithms)", n)
	}
}

// A token without iss fails even a Verifier made for issuer "".
func TestEmptyIssuer(t *testing.T) {
	f := newFixture(t)
	v := verify.New("", &verify.Options{JWKSURL: issuerID + "/jwks", HTTPClient: f.is.client(), Now: f.clock.Now})
	if _, err := v.Verify(t.Context(), sign(hdr("EdDSA", "ed"), f.claims("iss", nil), edSign(edKey))); !errors.Is(err, verify.ErrIssuer) {
		t.Fatalf("no iss: %v", err)
	}
	if _, err := v.Verify(t.Context(), sign(hdr("EdDSA", "ed"), f.claims("iss", ""), edSign(edKey))); !errors.Is(err, verify.ErrIssuer) {
		t.Fatalf("empty iss: %v", err)
	}
}

func TestLeewayOption(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(func(o *verify.Options) { o.Leeway = 2 * time.Minute })
	tok := sign(hdr("EdDSA", "ed"), f.claims("exp", t0.Add(-90*time.Second).Unix()), edSign(edKey))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("within a 2m leeway: %v", err)
	}
	if _, err := f.v.Verify(t.Context(), tok); !errors.Is(err, verify.ErrExpired) {
		t.Fatalf("beyond the default leeway: %v", err)
	}
}

func TestKeyID(t *testing.T) {
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) }
	cases := []struct{ token, want string }{
		{enc(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`) + ".e30.sig", "k1"},
		{enc(`{"alg":"EdDSA"}`) + ".e30.sig", ""},
		{enc(`{"kid":7}`) + ".e30.sig", ""},
		{"not-base64!.e30.sig", ""},
		{"no-dots", ""},
		{"", ""},
		{enc(`{"kid":"k1"}`) + "." + strings.Repeat("A", verify.MaxTokenLength), ""},
	}
	for _, tc := range cases {
		if got := verify.KeyID(tc.token); got != tc.want {
			t.Errorf("KeyID(%.40q) = %q, want %q", tc.token, got, tc.want)
		}
	}
}

// Algorithms restricts RS256 as the others: left out, an RS256 token is
// refused before any key is looked at.
func TestAlgorithmsOptionRS256(t *testing.T) {
	f := newFixture(t)
	rsTok := sign(hdr("RS256", "rs"), f.claims(), rsSign(rsKey))
	if _, err := f.v.Verify(t.Context(), rsTok); err != nil {
		t.Fatalf("RS256 by default: %v", err)
	}
	noRS := f.verifier(func(o *verify.Options) { o.Algorithms = []string{"EdDSA", "ES256"} })
	if _, err := noRS.Verify(t.Context(), rsTok); !errors.Is(err, verify.ErrAlgorithm) {
		t.Fatalf("RS256 with only EdDSA and ES256 allowed: %v", err)
	}
}
