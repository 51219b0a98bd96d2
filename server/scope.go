package server

import (
	"net/url"
	"slices"
	"strings"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/store"
)

// scopeSyntax says what a scope parameter must be, for messages.
const scopeSyntax = `scope tokens of printable ASCII other than " and \, separated by single spaces (RFC 6749 §3.3)`

// errMalformedScope is 400 invalid_scope for a scope that parseScope
// refuses; kind says where it came from: "parameter" or "field".
func errMalformedScope(kind string) *Error {
	return &Error{Status: 400, Code: oauth.InvalidScope, Description: kind + ` "scope" must be ` + scopeSyntax}
}

// parseScope splits a scope parameter (RFC 6749 §3.3) into its tokens and
// checks their characters.
func parseScope(s string) ([]string, bool) {
	parts := strings.Split(s, " ")
	if !slices.ContainsFunc(parts, func(p string) bool { return !oauth.IsScopeToken(p) }) {
		return parts, true
	}
	return nil, false
}

// requestedScope checks a request's scope against what client c may ask
// for (store.Client.AllowsScope) and returns it normalised; without a
// scope parameter, all of c's scopes.
func requestedScope(form url.Values, c store.Client) (string, error) {
	if !form.Has("scope") {
		return strings.Join(c.Scopes, " "), nil
	}
	parts, ok := parseScope(form.Get("scope"))
	if !ok {
		return "", errMalformedScope("parameter")
	}
	for _, p := range parts {
		if !c.AllowsScope(p) {
			return "", &Error{Status: 400, Code: oauth.InvalidScope, Description: "scope not allowed for this client"}
		}
	}
	return strings.Join(dedupe(parts), " "), nil
}

// allowedScope returns the tokens of scope (space-separated) that client
// c still allows (store.Client.AllowsScope), in their order. A family
// keeps the scope it was granted, but once `tokend client update` has
// removed a scope from its client, the access tokens it is issued no
// longer carry that scope: the login goes on, narrowed (RFC 6749 §5.1
// then returns the narrower scope).
func allowedScope(c store.Client, scope string) string {
	if len(c.Scopes) == 0 || scope == "" {
		return scope
	}
	parts := strings.Fields(scope)
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return !c.AllowsScope(p) }), " ")
}

// narrowScope checks that requested is within granted (RFC 6749 §6).
func narrowScope(requested, granted string) (string, error) {
	parts, ok := parseScope(requested)
	if !ok {
		return "", errMalformedScope("parameter")
	}
	have := strings.Fields(granted)
	for _, p := range parts {
		if !slices.Contains(have, p) {
			return "", &Error{Status: 400, Code: oauth.InvalidScope, Description: "scope exceeds the granted scope"}
		}
	}
	return strings.Join(dedupe(parts), " "), nil
}

func dedupe(parts []string) []string {
	out := parts[:0:0]
	for _, p := range parts {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
