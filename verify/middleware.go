package verify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/tokend/tokend/internal/bearer"
)

type claimsKey struct{}

// FromContext returns the claims Middleware put in a request's context.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware admits only requests with a valid access token in
// "Authorization: Bearer", and puts its claims in the request context (see
// FromContext). Others get 401 with a WWW-Authenticate challenge: with
// error="invalid_token" when a token was sent, which is what tells a client
// to refresh (RFC 6750 §3.1).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := bearer.Token(r.Header.Get("Authorization"))
		if errors.Is(err, bearer.ErrNoToken) {
			deny(w, http.StatusUnauthorized, "", "")
			return
		}
		if err != nil {
			deny(w, http.StatusUnauthorized, "invalid_request", "malformed Authorization header")
			return
		}
		c, err := v.Verify(r.Context(), tok)
		if errors.Is(err, ErrKeys) {
			http.Error(w, "cannot verify tokens now", http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			deny(w, http.StatusUnauthorized, "invalid_token", describe(err))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// RequireScope wraps next, behind Middleware, so that it answers 403
// insufficient_scope unless the token's scope includes scope.
func RequireScope(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok || !c.HasScope(scope) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`"`)
			writeDenial(w, http.StatusForbidden, "insufficient_scope", "the token lacks scope "+scope)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// describe turns a verification error into a description that names the
// problem and never the token.
func describe(err error) string {
	for _, e := range []error{ErrExpired, ErrNotYetValid, ErrSignature, ErrIssuer, ErrAudience, ErrAlgorithm, ErrType, ErrUnknownKey} {
		if errors.Is(err, e) {
			return strings.TrimPrefix(e.Error(), "verify: ")
		}
	}
	return "malformed token"
}

func deny(w http.ResponseWriter, status int, code, desc string) {
	challenge := `Bearer realm="tokend"`
	if code != "" {
		challenge += `, error="` + code + `", error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeDenial(w, status, code, desc)
}

func writeDenial(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if code == "" {
		code = "invalid_token"
		desc = "no access token"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
