package wsconn

import (
	"slices"
	"strings"

	"github.com/tokend/tokend/verify"
)

// Why Handler refuses an in-band renewal: the error of its
// TypeRenewFailed answer (on the wire, so their words stay as they are:
// refusedFamily's "login" is the family its sid names). None of them
// echoes the token.
const (
	refusedInvalid  = "invalid token"
	refusedSubject  = "token is for another subject (sub)"
	refusedClient   = "token is of another client (client_id)"
	refusedFamily   = "token is of another login (sid)"
	refusedAudience = "token is of another issuer or audience (iss, aud)"
	refusedScope    = "token has a scope the connection was not opened with"
)

// renewalRefusal returns why the verified token next may not replace the
// token of a connection opened with the token opened, or "" if it may. A
// renewal keeps who the connection is: the same subject, the same client
// (RFC 9068 §5: a client_credentials token's sub is its client's ID, so
// sub alone cannot tell a user from a client of the same name), the same
// family (tokend's sid claim names the family a token was refreshed from; a
// token without sid renews only one without, and the reverse), and the
// same issuer and audience. Its scope may be narrower than the opening
// token's, never wider. A claim absent from one token and present in the
// other differs.
func renewalRefusal(opened, next *verify.Claims) string {
	switch {
	case next.Subject != opened.Subject:
		return refusedSubject
	case next.ClientID != opened.ClientID:
		return refusedClient
	case !sameFamily(opened, next):
		return refusedFamily
	case next.Issuer != opened.Issuer || !sameSet(next.Audience, opened.Audience):
		return refusedAudience
	case !withinScope(next.Scope, opened.Scope):
		return refusedScope
	}
	return ""
}

// sameFamily reports whether a and b have the same sid (the family they
// were refreshed from): both none, or the same string.
func sameFamily(a, b *verify.Claims) bool {
	av, aok := a.Extra["sid"]
	bv, bok := b.Extra["sid"]
	if !aok || !bok {
		return aok == bok
	}
	as, aStr := av.(string)
	bs, bStr := bv.(string)
	return aStr && bStr && as == bs
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// withinScope reports whether every scope of the space-separated scope
// is one of within's.
func withinScope(scope, within string) bool {
	allowed := strings.Fields(within)
	for s := range strings.FieldsSeq(scope) {
		if !slices.Contains(allowed, s) {
			return false
		}
	}
	return true
}
