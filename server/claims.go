package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Custom claims. A mint's "claims" may not set a claim whose name is
// reserved, and the test is Unicode case folding (strings.EqualFold),
// not equality: Go's encoding/json, and so the golang-jwt and go-jose
// pattern of decoding claims into a struct, matches a JSON name to a
// field case-insensitively under folding, so that "ſub" (U+017F, which
// folds to s), "SUB" or "Sub" is read as sub by a resource server, and
// the last one in the token wins.

// serverClaims are the claims the server sets in every access token
// (issue): a custom claim may never carry one of their names, under
// folding.
var serverClaims = []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid"}

// reservedClaims are the names a mint's "claims" may not use, under
// folding: the server's own (serverClaims), and the registered claims
// whose value only the authorization server can vouch for:
//   - RFC 7519 §4.1: nbf;
//   - RFC 9068 §2.2.1 (and OpenID Connect Core §2): auth_time, acr, amr;
//   - RFC 8693 §4.1 and §4.4: act, may_act;
//   - RFC 7800 §3.1: cnf;
//   - OpenID Connect Core §2 and §3.1.3.6: azp, nonce, at_hash, c_hash;
//   - RFC 9396 §9: authorization_details.
//
// Attributes of the user, such as roles, groups, entitlements (RFC 9068
// §2.2.3.1), email or name, are the minting backend's to state.
var reservedClaims = append([]string{"nbf", "auth_time", "acr", "amr", "act", "may_act", "cnf",
	"azp", "nonce", "at_hash", "c_hash", "authorization_details"}, serverClaims...)

// reservedByFold maps the folded form of each reserved name to it.
var reservedByFold = func() map[string]string {
	m := make(map[string]string, len(reservedClaims))
	for _, n := range reservedClaims {
		m[foldName(n)] = n
	}
	return m
}()

// foldName returns a string that is the same for two names exactly when
// strings.EqualFold says they are equal: each character replaced by the
// smallest of its case-folding orbit (unicode.SimpleFold), as
// encoding/json folds names. Invalid UTF-8 folds to U+FFFD.
func foldName(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			r = min(r, f)
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// checkClaims checks the custom claims of a mint, raw JSON whose top
// level is an object. It returns a description of the first fault, or ""
// if there is none:
//   - a top-level name that is reserved (reservedClaims) under folding;
//   - two names of one object (at any depth) that are equal under
//     folding, the same name twice included: encoding/json keeps the
//     last of each, and decoders that fold pick one by order;
//   - a number beyond the range of an IEEE 754 double, which a resource
//     server cannot read (RFC 7493 §2.2).
//
// Names in descriptions are quoted with quoteParam.
func checkClaims(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	desc, err := walkClaims(dec, 0)
	if err != nil {
		return `field "claims" must be a JSON object`
	}
	return desc
}

// walkClaims reads one JSON value from dec and checks it (checkClaims);
// depth is 0 for the claims object itself.
func walkClaims(dec *json.Decoder, depth int) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	if depth == 0 && tok != json.Delim('{') {
		return "", errors.New("not an object")
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return walkObject(dec, depth)
		}
		for dec.More() { // [
			if desc, err := walkClaims(dec, depth+1); desc != "" || err != nil {
				return desc, err
			}
		}
		_, err := dec.Token() // ]
		return "", err
	case json.Number:
		if _, err := strconv.ParseFloat(string(v), 64); errors.Is(err, strconv.ErrRange) {
			return `field "claims" holds a number beyond the range of a double (RFC 7493 §2.2)`, nil
		}
	}
	return "", nil
}

// walkObject checks the members of an object whose { dec has read.
func walkObject(dec *json.Decoder, depth int) (string, error) {
	seen := map[string]string{} // folded name -> name
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		name, ok := tok.(string)
		if !ok {
			return "", errors.New("object key is not a string")
		}
		folded := foldName(name)
		if depth == 0 {
			if r, ok := reservedByFold[folded]; ok {
				if name == r {
					return `field "claims" may not set ` + r, nil
				}
				return `field "claims" may not set ` + quoteParam(name) + `: under Unicode case folding it is ` + r + `, which resource servers may read in its place`, nil
			}
		}
		if prev, ok := seen[folded]; ok {
			if prev == name {
				return `field "claims" has ` + quoteParam(name) + ` twice in one object`, nil
			}
			return `field "claims" has ` + quoteParam(prev) + ` and ` + quoteParam(name) + ` in one object, one name under Unicode case folding`, nil
		}
		seen[folded] = name
		if desc, err := walkClaims(dec, depth+1); desc != "" || err != nil {
			return desc, err
		}
	}
	_, err := dec.Token() // }
	return "", err
}

// canonicalClaims returns raw (checked by checkClaims) with its members
// sorted and its numbers as written: the form stored with a family and
// keyed in the mint cache.
func canonicalClaims(raw []byte) ([]byte, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return json.Marshal(m) // sorted keys
}

// customClaims returns the claims of an access token before the server
// sets its own: the family's stored claims (numbers as written), then
// those of Config.Claims. A claim whose name folds onto one the server
// sets (serverClaims) without being it is dropped and logged: a family
// minted before mints were checked may hold one, and a hook may return
// one; the exact names are replaced by the server's values.
func (s *Server) customClaims(ctx context.Context, req issueRequest) (map[string]any, error) {
	claims := map[string]any{}
	if len(req.claims) > 0 {
		dec := json.NewDecoder(bytes.NewReader(req.claims))
		dec.UseNumber()
		if err := dec.Decode(&claims); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("custom claims: %w", err)
		}
		if claims == nil {
			claims = map[string]any{}
		}
	}
	if s.cfg.Claims != nil {
		extra, err := s.cfg.Claims(ctx, ClaimsRequest{ClientID: req.client.ID, Subject: req.subject, Scope: req.scope, Grant: req.grant})
		if err != nil {
			return nil, fmt.Errorf("claims hook: %w", err)
		}
		for k, v := range extra {
			claims[k] = v
		}
	}
	for k := range claims {
		if r, ok := reservedByFold[foldName(k)]; ok && k != r && slices.Contains(serverClaims, r) {
			delete(claims, k)
			s.log.WarnContext(ctx, "custom claim dropped: its name folds onto one the server sets", "claim", quoteParam(k), "folds_to", r, "client", req.client.ID)
		}
	}
	return claims, nil
}
