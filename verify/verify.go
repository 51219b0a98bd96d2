// Package verify is the resource-server side of tokend: it checks JWT
// access tokens (RFC 9068) against the issuer's published keys, and
// provides HTTP middleware that admits only requests bearing a valid one.
//
// The keys are found through the issuer's metadata (RFC 8414), cached, and
// fetched again when a token names an unknown key (rate limited). Only
// asymmetric algorithms are accepted (EdDSA and ES256 by default), and the
// header's alg must match the key's own: "none", HMAC and algorithm
// confusion are rejected.
package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Verify, wrapped; test them with errors.Is.
var (
	ErrMalformed   = errors.New("verify: malformed token")
	ErrAlgorithm   = errors.New("verify: algorithm not allowed")
	ErrType        = errors.New("verify: not an access token (typ)")
	ErrUnknownKey  = errors.New("verify: unknown signing key")
	ErrSignature   = errors.New("verify: bad signature")
	ErrExpired     = errors.New("verify: token expired")
	ErrNotYetValid = errors.New("verify: token not yet valid")
	ErrIssuer      = errors.New("verify: wrong issuer")
	ErrAudience    = errors.New("verify: wrong audience")
	ErrKeys        = errors.New("verify: cannot fetch the issuer's keys")
)

// maxToken bounds the tokens Verify looks at.
const maxToken = 16 << 10

// Options configures a Verifier. Zero values mean the documented defaults.
type Options struct {
	// Audience, if set, must be among the token's aud values.
	Audience string
	// Leeway allows for clock skew in exp, nbf and iat. Default 30s.
	Leeway time.Duration
	// JWKSURL is where the keys are. Default: the jwks_uri of the issuer's
	// metadata, /.well-known/oauth-authorization-server, falling back to
	// /.well-known/openid-configuration.
	JWKSURL string
	// HTTPClient fetches metadata and keys. Default: a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// MinRefresh is the least time between two key fetches caused by
	// unknown kids. Default 10s.
	MinRefresh time.Duration
	// Algorithms are the JWS algorithms accepted. Default EdDSA and ES256.
	// Only asymmetric algorithms can be accepted.
	Algorithms []string
	Now        func() time.Time
	Logger     *slog.Logger
}

// Verifier checks access tokens of one issuer. It is safe for concurrent use.
type Verifier struct {
	issuer string
	o      Options

	keys atomic.Pointer[map[string]publicKey] // by kid; nil before the first fetch

	mu        sync.Mutex // serialises fetches
	jwksURL   string
	lastFetch time.Time
}

type publicKey struct {
	alg string
	ed  ed25519.PublicKey
	ec  *ecdsa.PublicKey
}

// New returns a Verifier for tokens issued by issuer (the exact iss value).
// It fetches nothing until the first Verify.
func New(issuer string, opts *Options) *Verifier {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Leeway <= 0 {
		o.Leeway = 30 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = 10 * time.Second
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{"EdDSA", "ES256"}
	}
	o.Algorithms = slices.DeleteFunc(slices.Clone(o.Algorithms), func(a string) bool { return a != "EdDSA" && a != "ES256" })
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{issuer: issuer, o: o, jwksURL: o.JWKSURL}
}

// Claims are a verified access token's claims.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time // zero if absent
	NotBefore time.Time // zero if absent
	ID        string    // jti
	ClientID  string    // client_id
	Scope     string
	// Extra holds every other claim.
	Extra map[string]any
}

// HasScope reports whether the token's scope includes s.
func (c *Claims) HasScope(s string) bool {
	return slices.Contains(strings.Fields(c.Scope), s)
}

type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

var b64 = base64.RawURLEncoding

// Verify checks token and returns its claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxToken {
		return nil, fmt.Errorf("%w: too long", ErrMalformed)
	}
	dot1 := strings.IndexByte(token, '.')
	dot2 := strings.LastIndexByte(token, '.')
	if dot1 <= 0 || dot2 == dot1 || strings.IndexByte(token[dot1+1:dot2], '.') >= 0 {
		return nil, fmt.Errorf("%w: not a JWS compact serialisation", ErrMalformed)
	}
	var h header
	if err := decodeJSON(token[:dot1], &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if !slices.Contains(v.o.Algorithms, h.Alg) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, truncate(h.Alg))
	}
	if t := strings.ToLower(h.Typ); t != "at+jwt" && t != "application/at+jwt" {
		return nil, ErrType
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: unsupported critical header", ErrMalformed)
	}
	if h.Kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrMalformed)
	}
	key, err := v.key(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	if key.alg != h.Alg {
		return nil, fmt.Errorf("%w: header says %q, key is %s", ErrAlgorithm, truncate(h.Alg), key.alg)
	}
	sig, err := b64.DecodeString(token[dot2+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: signature encoding", ErrMalformed)
	}
	if !key.verify([]byte(token[:dot2]), sig) {
		return nil, ErrSignature
	}
	return v.claims(token[dot1+1 : dot2])
}

func (k publicKey) verify(input, sig []byte) bool {
	switch k.alg {
	case "EdDSA":
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, input, sig)
	case "ES256":
		if len(sig) != 64 {
			return false
		}
		d := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, d[:], r, s)
	}
	return false
}

// claims decodes and checks the payload of a token whose signature holds.
func (v *Verifier) claims(payload string) (*Claims, error) {
	var m map[string]any
	if err := decodeJSON(payload, &m); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	c := &Claims{Extra: m}
	var ok bool
	take := func(k string) string {
		s, _ := m[k].(string)
		delete(m, k)
		return s
	}
	c.Issuer, c.Subject, c.ID, c.ClientID, c.Scope = take("iss"), take("sub"), take("jti"), take("client_id"), take("scope")
	switch aud := m["aud"].(type) {
	case string:
		c.Audience = []string{aud}
	case []any:
		for _, a := range aud {
			if s, isStr := a.(string); isStr {
				c.Audience = append(c.Audience, s)
			}
		}
	}
	delete(m, "aud")
	if c.Expiry, ok = numericDate(m, "exp"); !ok || c.Expiry.IsZero() {
		return nil, fmt.Errorf("%w: exp missing or malformed", ErrMalformed)
	}
	if c.NotBefore, ok = numericDate(m, "nbf"); !ok {
		return nil, fmt.Errorf("%w: nbf malformed", ErrMalformed)
	}
	if c.IssuedAt, ok = numericDate(m, "iat"); !ok {
		return nil, fmt.Errorf("%w: iat malformed", ErrMalformed)
	}
	now := v.o.Now()
	switch {
	case c.Issuer != v.issuer:
		return nil, ErrIssuer
	case v.o.Audience != "" && !slices.Contains(c.Audience, v.o.Audience):
		return nil, ErrAudience
	case !now.Before(c.Expiry.Add(v.o.Leeway)):
		return nil, ErrExpired
	case !c.NotBefore.IsZero() && now.Add(v.o.Leeway).Before(c.NotBefore),
		!c.IssuedAt.IsZero() && now.Add(v.o.Leeway).Before(c.IssuedAt):
		return nil, ErrNotYetValid
	}
	return c, nil
}

// numericDate takes claim k (RFC 7519 NumericDate) out of m. A missing
// claim gives the zero time and true; a malformed one false.
func numericDate(m map[string]any, k string) (time.Time, bool) {
	raw, present := m[k]
	delete(m, k)
	if !present {
		return time.Time{}, true
	}
	f, ok := raw.(float64)
	if !ok || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

func decodeJSON(part string, v any) error {
	raw, err := b64.DecodeString(part)
	if err != nil {
		return errors.New("bad base64url")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("bad JSON")
	}
	return nil
}

// truncate shortens attacker-chosen text before it goes into an error.
func truncate(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
