// Package verify is the resource-server side of tokend: it checks JWT
// access tokens (RFC 9068) against the issuer's published keys, and
// provides HTTP middleware that admits only requests bearing a valid one.
//
//	v := verify.New("https://auth.example.com", nil) // aud must name the issuer, tokend's default audience
//	http.Handle("/orders", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		claims, _ := verify.FromContext(r.Context())
//		fmt.Fprintln(w, "hello", claims.Subject)
//	})))
//
// New makes a Verifier for one issuer; Verify checks a token and returns
// its Claims; Middleware and RequireScope guard an http.Handler, and
// FromContext gives the handler the claims.
//
// The issuer's keys are found through its metadata (RFC 8414) unless
// Options.JWKSURL names them, fetched on first use, and cached by kid. A
// token naming an unknown kid causes one more fetch (rate limited, and
// shared by concurrent callers), which is how a key rotation at the issuer
// is picked up. Only the asymmetric algorithms EdDSA, ES256 and RS256
// are accepted, and a token's alg must match its key's type and the alg
// the JWKS publishes for it: "none", HMAC and algorithm confusion are
// rejected. The keys come only from the JWKS:
// header parameters such as jku, jwk or x5u are ignored.
//
// # Audience
//
// A token is accepted only if its aud names this resource server (RFC 9068
// §4); without one it is ErrAudience, and the middleware's 401
// invalid_token. The names are Options.Audience; by default the issuer
// itself, which is the aud tokend issues unless it is started with
// another (--audience, server.Config.Audience). A resource server behind
// a tokend with its own audience names it:
//
//	verify.New(issuer, &verify.Options{Audience: []string{"https://api.example.com"}})
//
// Options.InsecureSkipAudienceCheck turns the check off, which is not
// recommended: a token meant for any other resource server of the issuer
// is then accepted too.
//
// # Key lifetime
//
// The JWKS is trusted for as long as its response allows, so that a key
// the issuer withdraws stops verifying everywhere within a bounded time:
//
//   - Its lifetime is the Cache-Control max-age (RFC 9111 §5.2.2.1) less
//     the response's Age (§5.1), kept between MinRefresh and MaxKeysAge
//     (default 10s and 1h). Without max-age it is DefaultKeysAge
//     (5 min); no-store and a no-cache without a field list (§5.2.2.5,
//     §5.2.2.4) cap it at DefaultKeysAge too. max-age=0, an invalid max-age, or max-age given
//     twice with different values make the response stale at once
//     (§4.2.1): the lifetime is then MinRefresh.
//   - From 80% of its lifetime, the first Verify that sees the set starts
//     a fetch in the background and keeps answering from the set
//     meanwhile; concurrent callers share that one fetch. A kid the new
//     set does not publish is ErrUnknownKey from then on.
//   - A Verify that finds the set lapsed (nothing asked for the keys since
//     the refresh point) waits for a fetch, as on first use.
//   - If fetching fails, the last good set stays in use until
//     StaleIfError (default 5 min) after it lapsed, in the spirit of
//     RFC 5861 §4, with a new attempt at most once per MinRefresh; after
//     that Verify answers ErrKeys (the middleware 503) until a fetch
//     succeeds. A set is never trusted for longer than MaxKeysAge +
//     StaleIfError after it was fetched.
package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
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

// Errors returned by Verify, wrapped; test them with errors.Is. Their
// messages never contain the token.
var (
	// ErrMalformed reports a token that is not a well-formed JWS compact
	// JWT: bad syntax, no kid, a crit header, a missing exp, a claim of the
	// wrong type, or a token longer than MaxTokenLength.
	ErrMalformed = errors.New("verify: malformed token")
	// ErrSignature reports a signature that does not verify.
	ErrSignature = errors.New("verify: invalid signature")
	// ErrExpired reports a token past its exp (beyond the leeway).
	ErrExpired = errors.New("verify: token expired")
	// ErrNotYetValid reports a token whose nbf or iat is in the future
	// (beyond the leeway).
	ErrNotYetValid = errors.New("verify: token not valid yet")
	// ErrIssuer reports an iss other than the Verifier's issuer.
	ErrIssuer = errors.New("verify: wrong issuer")
	// ErrAudience reports a token whose aud is missing or names none of
	// Options.Audience (by default, the issuer).
	ErrAudience = errors.New("verify: wrong audience")
	// ErrAlgorithm reports an alg that is not allowed, or that does not
	// match the key the kid names.
	ErrAlgorithm = errors.New("verify: algorithm not allowed")
	// ErrUnknownKey reports a kid the issuer does not publish, even after
	// fetching its keys again.
	ErrUnknownKey = errors.New("verify: unknown signing key")
	// ErrType reports a typ other than "at+jwt" or "application/at+jwt":
	// the token is not an access token (RFC 9068 §4).
	ErrType = errors.New("verify: not an access token (typ)")
	// ErrKeys reports that the issuer's keys could not be fetched (or that
	// the context ended while waiting for them): the token may be valid,
	// but it cannot be checked now.
	ErrKeys = errors.New("verify: cannot fetch the issuer's keys")
)

// MaxTokenLength is the length of the longest token Verify parses; longer
// ones are ErrMalformed.
const MaxTokenLength = 16 << 10

// DefaultKeysAge is the lifetime of a JWKS whose response has no
// Cache-Control max-age, and the longest for one with no-store or no-cache
// (see the package doc, "Key lifetime").
const DefaultKeysAge = 5 * time.Minute

// The supported algorithms.
const (
	algEdDSA = "EdDSA"
	algES256 = "ES256"
	algRS256 = "RS256" // RSASSA-PKCS1-v1_5 SHA-256 (RFC 7518 §3.3), keys of 2048 bits or more
)

// Options configures a Verifier. Zero values mean the documented defaults.
type Options struct {
	// Audience are the names this resource server answers to: a token is
	// accepted only if its aud (a string or an array, RFC 7519 §4.1.3)
	// contains one of them, as RFC 9068 §4 requires. Names are compared
	// exactly; empty ones are ignored. Default: the issuer, which is
	// tokend's default audience (server.Config.Audience), so that New(issuer,
	// nil) accepts what a tokend left to its defaults issues. When the keys
	// are found through the metadata and it names the issuer with or without
	// a trailing slash (see New), the default is the issuer it names.
	Audience []string
	// InsecureSkipAudienceCheck accepts a token whatever its aud, or
	// without one. Not recommended: a token issued for another resource
	// server of the same issuer is then accepted here, which RFC 9068 §4
	// forbids. It is ignored, and a warning logged, if Audience names an
	// audience.
	InsecureSkipAudienceCheck bool
	// Leeway allows for clock skew in exp, nbf and iat. Default 30s.
	Leeway time.Duration
	// JWKSURL is where the issuer's keys are. Default: the jwks_uri of the
	// issuer's metadata, read from Issuer + "/.well-known/oauth-authorization-server",
	// then the RFC 8414 location (the well-known path inserted before the
	// issuer's path, if it has one), then Issuer + "/.well-known/openid-configuration".
	JWKSURL string
	// HTTPClient fetches metadata and keys. Default: a client with a 10s
	// timeout. A fetch never takes longer than one minute in any case.
	HTTPClient *http.Client
	// MinRefresh is the least time between two key fetches caused by
	// unknown kids: a flood of tokens with made-up kids causes at most one
	// fetch per MinRefresh. It is also the shortest lifetime of a JWKS
	// (whatever its max-age), and the time between two attempts while
	// fetching fails. Default 10s.
	MinRefresh time.Duration
	// MaxKeysAge is the longest lifetime of a JWKS, whatever its max-age:
	// the longest a key the issuer withdraws keeps verifying while the
	// issuer can be reached. Default 1h; it is at least MinRefresh.
	MaxKeysAge time.Duration
	// StaleIfError is how long after its lifetime a JWKS stays in use
	// while fetching it again fails (RFC 5861 §4 in spirit), so that a
	// short outage of the issuer does not fail every request. Default
	// 5 min; a negative value means none: ErrKeys as soon as the set
	// lapses and cannot be fetched.
	StaleIfError time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives key-fetch failures and rejections at debug level,
	// never a token. Default: discard.
	Logger *slog.Logger
	// Algorithms are the JWS algorithms accepted, among EdDSA, ES256 and
	// RS256. Default all three. "none" and HMAC algorithms are never
	// accepted, nor is anything else this package does not implement.
	Algorithms []string
}

// Verifier checks access tokens of one issuer. It is safe for concurrent
// use. Verify takes no lock unless the token names a kid it has not seen
// or the keys are due for a refresh.
type Verifier struct {
	issuer   string                 // as configured
	iss      atomic.Pointer[string] // the iss tokens must carry; see New
	o        Options
	allowEd  bool                      // EdDSA allowed
	allowES  bool                      // ES256 allowed
	allowRS  bool                      // RS256 allowed
	keys     atomic.Pointer[keySet]    // nil before the first successful fetch
	lastHead atomic.Pointer[headEntry] // the last header parsed, see header

	mu        sync.Mutex // guards the fields below
	jwksURL   string     // discovered on the first fetch unless configured
	lastFetch time.Time  // start of the last fetch, for MinRefresh
	lastErr   error      // of the last fetch
	inflight  *fetchCall // the fetch under way, if any
}

// New returns a Verifier for the tokens issuer issues; issuer is the exact
// iss value (a token without iss is never accepted, even if issuer is "").
// opts may be nil: then aud must name the issuer (see Options.Audience).
// New fetches nothing: the metadata and keys are fetched on the first
// Verify.
//
// A trailing slash: an issuer identifier is compared as a string (RFC 8414
// §3.3), so "https://as.example" and "https://as.example/" are different
// issuers, and some servers use each form. When the keys are found through
// the metadata and the metadata names issuer with or without one trailing
// slash more, the metadata's issuer is taken as the issuer: the server is
// the authority on its own identifier, and from then on iss must equal it
// exactly (the form configured is no longer accepted if it differs), and
// it is the default audience. Any other difference is refused as before
// (ErrKeys, naming each metadata URL tried and the issuer it named). With
// Options.JWKSURL there is no metadata to ask, and iss must equal issuer
// exactly as given.
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
	if o.MaxKeysAge <= 0 {
		o.MaxKeysAge = time.Hour
	}
	o.MaxKeysAge = max(o.MaxKeysAge, o.MinRefresh)
	switch {
	case o.StaleIfError == 0:
		o.StaleIfError = 5 * time.Minute
	case o.StaleIfError < 0:
		o.StaleIfError = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{algEdDSA, algES256, algRS256}
	}
	o.Audience = slices.DeleteFunc(slices.Clone(o.Audience), func(a string) bool { return a == "" })
	if len(o.Audience) > 0 && o.InsecureSkipAudienceCheck {
		o.Logger.Warn("verify: InsecureSkipAudienceCheck ignored: Audience names the audiences to check", "audience", o.Audience)
		o.InsecureSkipAudienceCheck = false
	}
	v := &Verifier{
		issuer: issuer,
		// iss is set below.
		o:       o,
		allowEd: slices.Contains(o.Algorithms, algEdDSA),
		allowES: slices.Contains(o.Algorithms, algES256),
		allowRS: slices.Contains(o.Algorithms, algRS256),
		jwksURL: o.JWKSURL,
	}
	v.iss.Store(&issuer)
	if !v.allowEd && !v.allowES && !v.allowRS {
		o.Logger.Warn("verify: no supported algorithm allowed: every token will be rejected", "algorithms", o.Algorithms)
	}
	return v
}

// Claims are the claims of a verified access token.
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub
	Audience  []string  // aud, as an array even when the token has a string
	Expiry    time.Time // exp
	IssuedAt  time.Time // iat; zero if absent
	NotBefore time.Time // nbf; zero if absent
	ID        string    // jti
	ClientID  string    // client_id
	KeyID     string    // kid of the key that signed the token (a header parameter)
	Scope     string    // scope, space-separated
	// Extra holds every other claim, as encoding/json decodes it into an
	// any (numbers are float64).
	Extra map[string]any
}

// HasScope reports whether the token's scope includes s.
func (c *Claims) HasScope(s string) bool {
	if c == nil || s == "" {
		return false
	}
	for f := range strings.FieldsSeq(c.Scope) {
		if f == s {
			return true
		}
	}
	return false
}

// header is the JOSE header of a token, as far as Verify reads it.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// headEntry caches the last header parsed: an issuer's tokens signed by
// one key all share the same encoded header.
type headEntry struct {
	enc string
	h   header
}

// b64 decodes base64url without padding and rejects non-canonical
// encodings, so a token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Verify parses and verifies token, a JWS compact access token, and
// returns its claims. It checks, in this order: the length (at most
// MaxTokenLength); the syntax; that the header's alg is allowed, its typ
// is "at+jwt" or "application/at+jwt", it has a kid and no crit; that the
// kid names a published key whose algorithm is the header's alg; the
// signature; then that iss is the issuer, aud names one of
// Options.Audience (by default the issuer; unless
// Options.InsecureSkipAudienceCheck), exp is present and not past, and nbf
// and iat are not in the future (all with Options.Leeway). The error wraps one of the package's
// sentinel errors. ctx bounds the wait for a key fetch, if Verify needs
// one.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLength)
	}
	dot1 := strings.IndexByte(token, '.')
	dot2 := strings.LastIndexByte(token, '.')
	if dot1 <= 0 || dot2 == dot1 || strings.IndexByte(token[dot1+1:dot2], '.') >= 0 {
		return nil, fmt.Errorf("%w: not a JWS compact serialization", ErrMalformed)
	}
	h, err := v.header(token[:dot1])
	if err != nil {
		return nil, err
	}
	if !(h.Alg == algEdDSA && v.allowEd || h.Alg == algES256 && v.allowES || h.Alg == algRS256 && v.allowRS) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, truncate(h.Alg))
	}
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return nil, fmt.Errorf("%w: %q", ErrType, truncate(h.Typ))
	}
	if h.Kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrMalformed)
	}
	if h.Crit != nil {
		return nil, fmt.Errorf("%w: critical header parameters are not supported", ErrMalformed)
	}
	key, now, err := v.key(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	if key.alg != h.Alg {
		return nil, fmt.Errorf("%w: %s for a key published for %s", ErrAlgorithm, h.Alg, key.alg)
	}
	var buf [64]byte // an EdDSA or ES256 signature; an RS256 one is longer
	sig := buf[:]
	if n := key.sigLen(); n != len(buf) {
		sig = make([]byte, n)
	}
	if b64.DecodedLen(len(token)-dot2-1) != len(sig) {
		return nil, fmt.Errorf("%w: signature length", ErrSignature)
	}
	if _, err := b64.Decode(sig, []byte(token[dot2+1:])); err != nil {
		return nil, fmt.Errorf("%w: signature encoding", ErrMalformed)
	}
	if !key.verify([]byte(token[:dot2]), sig) {
		return nil, ErrSignature
	}
	payload, err := b64.DecodeString(token[dot1+1 : dot2])
	if err != nil {
		return nil, fmt.Errorf("%w: payload encoding", ErrMalformed)
	}
	return v.claims(payload, h.Kid, now)
}

// KeyID returns the kid of token's JOSE header without verifying
// anything, or "" if the token is malformed or names none. Use it to decide
// where to look for a key (after ErrUnknownKey, say), never to trust the
// token.
func KeyID(token string) string {
	enc, _, ok := strings.Cut(token, ".")
	if !ok || len(token) > MaxTokenLength {
		return ""
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return ""
	}
	var h header
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Kid
}

// header decodes the encoded JOSE header enc, or takes it from the cache.
func (v *Verifier) header(enc string) (header, error) {
	if e := v.lastHead.Load(); e != nil && e.enc == enc {
		return e.h, nil
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return header{}, fmt.Errorf("%w: header encoding", ErrMalformed)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return header{}, fmt.Errorf("%w: header is not a JSON object of strings", ErrMalformed)
	}
	v.lastHead.Store(&headEntry{enc: enc, h: h})
	return h, nil
}

// publicKey is one usable key from the issuer's JWKS.
type publicKey struct {
	alg string // EdDSA, ES256 or RS256
	ed  ed25519.PublicKey
	ec  *ecdsa.PublicKey
	rs  *rsa.PublicKey
}

// sigLen is the length in bytes of k's signatures: 64 for EdDSA and ES256
// (R || S, RFC 7518 §3.4), the modulus's for RS256 (RFC 8017 §8.2.2).
func (k *publicKey) sigLen() int {
	if k.alg == algRS256 {
		return k.rs.Size()
	}
	return 64
}

// verify reports whether sig is k's signature of input.
func (k *publicKey) verify(input, sig []byte) bool {
	switch k.alg {
	case algEdDSA:
		return ed25519.Verify(k.ed, input, sig)
	case algES256:
		d := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, d[:], r, s)
	case algRS256:
		d := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k.rs, crypto.SHA256, d[:], sig) == nil
	}
	return false
}

// truncate shortens attacker-chosen text before it goes into an error.
func truncate(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
