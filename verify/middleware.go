package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/tokend/tokend/internal/bearer"
	"github.com/tokend/tokend/internal/oauth"
)

type claimsKey struct{}

// FromContext returns the claims Middleware put in a request's context.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware returns a handler that admits only requests with a valid
// access token in their "Authorization: Bearer" header (RFC 6750 §2.1:
// the scheme in any case, one token of the b64token syntax, one
// Authorization header), and calls next with the token's claims in the
// request context (see FromContext). Tokens in the query or the form are
// not accepted.
//
// It answers every other request with 401 and a WWW-Authenticate challenge
// (RFC 6750 §3): a request without a bearer token gets a bare "Bearer"
// challenge, and a request with a token that fails gets
// error="invalid_token" and an error_description (which never contains
// the token), which is what tells a client to refresh it. The body is a
// small JSON object with the same error and error_description. When the
// issuer's keys cannot be fetched (ErrKeys) the answer is 503 instead, so
// that clients retry rather than discard a token that may be valid.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) > 1 {
			v.deny(w, r, errors.New("several Authorization headers"), "more than one Authorization header")
			return
		}
		var header string
		if len(values) == 1 {
			header = values[0]
		}
		tok, err := bearer.Token(header)
		if errors.Is(err, bearer.ErrNoToken) {
			requireToken(w)
			return
		}
		if err != nil {
			v.deny(w, r, err, "malformed Authorization header")
			return
		}
		c, err := v.Verify(r.Context(), tok)
		if errors.Is(err, ErrKeys) {
			v.o.Logger.DebugContext(r.Context(), "verify: cannot check a token", "err", err) // the fetch logs a warning
			a := oauth.Answer{Status: http.StatusServiceUnavailable, RetryAfter: int(math.Ceil(v.o.MinRefresh.Seconds()))}
			oauth.WriteError(w, a, oauth.TemporarilyUnavailable, "cannot fetch the issuer's keys")
			return
		}
		if err != nil {
			v.deny(w, r, err, describe(err))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// RequireScope returns a handler, to be used behind Middleware, that calls
// next only if the token's scope includes scope, and answers 403 with
// error="insufficient_scope" and the scope otherwise (RFC 6750 §3.1). A
// request without claims in its context (not behind Middleware) gets 401.
// RequireScope panics if scope is not a single RFC 6749 scope token.
func RequireScope(scope string, next http.Handler) http.Handler {
	if !oauth.IsScopeToken(scope) {
		panic(fmt.Sprintf("verify: RequireScope: %q is not a scope token", scope))
	}
	desc := "the token lacks scope " + scope
	forbidden := oauth.Answer{Status: http.StatusForbidden, Challenge: oauth.BearerChallenge("", oauth.InsufficientScope, desc, scope)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			requireToken(w)
			return
		}
		if !c.HasScope(scope) {
			oauth.WriteError(w, forbidden, oauth.InsufficientScope, desc)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireToken answers a request without a bearer token: 401 with a bare
// challenge and no error code (RFC 6750 §3.1).
func requireToken(w http.ResponseWriter) {
	oauth.WriteError(w, oauth.Answer{Status: http.StatusUnauthorized, Challenge: oauth.BearerChallenge("", "", "", "")}, "", "bearer token required")
}

// deny answers 401 invalid_token with desc, a fixed description.
func (v *Verifier) deny(w http.ResponseWriter, r *http.Request, err error, desc string) {
	v.o.Logger.DebugContext(r.Context(), "verify: token rejected", "err", err)
	a := oauth.Answer{Status: http.StatusUnauthorized, Challenge: oauth.BearerChallenge("", oauth.InvalidToken, desc, "")}
	oauth.WriteError(w, a, oauth.InvalidToken, desc)
}

// descriptions are the error_description of each sentinel error: fixed
// texts, so that nothing of the token reaches the response, and all in the
// character set RFC 6750 §3 allows.
var descriptions = []struct {
	err  error
	desc string
}{
	{ErrExpired, "the access token expired"},
	{ErrNotYetValid, "the access token is not valid yet"},
	{ErrSignature, "invalid signature"},
	{ErrIssuer, "wrong issuer"},
	{ErrAudience, "wrong audience"},
	{ErrAlgorithm, "signing algorithm not allowed"},
	{ErrType, "not an access token"},
	{ErrUnknownKey, "unknown signing key"},
}

// describe returns the error_description for a Verify error.
func describe(err error) string {
	for _, d := range descriptions {
		if errors.Is(err, d.err) {
			return d.desc
		}
	}
	return "malformed token"
}
