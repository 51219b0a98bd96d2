// Package bearer parses the HTTP headers that carry OAuth 2.0 bearer tokens
// (RFC 6750) and the challenges servers send back.
//
// Whitespace: Token follows RFC 6750 strictly and accepts only spaces (SP)
// between "Bearer" and the token; a tab there is ErrMalformed. ParseChallenges
// reads what servers send and is lenient: wherever RFC 9110 allows
// whitespace it accepts spaces and tabs alike.
package bearer

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

var (
	// ErrMalformed reports a header that does not follow the syntax. Parse
	// errors wrap it and never contain the header itself.
	ErrMalformed = errors.New("bearer: malformed header")
	// ErrNoToken reports an empty Authorization header or one with
	// another scheme.
	ErrNoToken = errors.New("bearer: no bearer token")
)

// Limits on what ParseChallenges accepts.
const (
	maxChallenges = 32
	maxParams     = 32
)

// Token extracts the token from an Authorization header value of the form
// "Bearer <token>". The scheme is matched case-insensitively and one or more
// spaces must follow it; the token must match RFC 6750's b64token syntax
// (1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="), with
// nothing after it. It returns ErrNoToken for an empty value or another
// scheme, and ErrMalformed for a Bearer header without a valid token (this
// includes a tab after the scheme). The token is a substring of header, so
// Token does not allocate; errors never contain the header, which is a secret.
func Token(header string) (string, error) {
	const scheme = "bearer"
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", ErrNoToken
	}
	rest := header[len(scheme):]
	if rest != "" && rest[0] != ' ' {
		if isTChar(rest[0]) {
			return "", ErrNoToken // e.g. "Bearerx": another scheme
		}
		return "", fmt.Errorf("%w: scheme not followed by a space", ErrMalformed)
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" {
		return "", fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if !isB64Token(tok) {
		return "", fmt.Errorf("%w: token is not b64token", ErrMalformed)
	}
	return tok, nil
}

// FromHeader is Token for a request's headers: it takes the one
// Authorization header. Several Authorization headers are ErrMalformed (RFC
// 9110 §11.6.2 allows one credential; which of several a proxy and a server
// read could differ); none is ErrNoToken.
func FromHeader(h http.Header) (string, error) {
	switch v := h.Values("Authorization"); len(v) {
	case 0:
		return "", ErrNoToken
	case 1:
		return Token(v[0])
	}
	return "", fmt.Errorf("%w: more than one Authorization header", ErrMalformed)
}

// isB64Token reports whether s is a b64token (RFC 6750), which is also the
// syntax of an RFC 9110 token68.
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && isB64Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isB64Char(c byte) bool { return b64Chars[c] }

// b64Chars holds ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
var b64Chars = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

// isTChar reports whether c may appear in an RFC 9110 token.
func isTChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Challenge is one authentication challenge from a WWW-Authenticate header.
type Challenge struct {
	Scheme string            // as sent, e.g. "Bearer"
	Params map[string]string // auth-params, keys lower-cased, quoted strings unquoted; a token68 under ""; nil if none
}

// ErrorCode returns the "error" parameter, e.g. "invalid_token" or
// "insufficient_scope", or "".
func (c Challenge) ErrorCode() string { return c.Params["error"] }

// ParseChallenges parses a WWW-Authenticate header value (RFC 9110 §11.6.1,
// §11.2): a comma-separated list of challenges, each a scheme followed by a
// token68 or by auth-params (token BWS "=" BWS ( token / quoted-string )).
// Empty list elements are allowed. It returns ErrMalformed for a syntax
// error, a repeated parameter, or more than 32 challenges or 32 parameters
// in one challenge.
func ParseChallenges(header string) ([]Challenge, error) {
	p := parser{s: header}
	var out []Challenge
	for {
		p.skip(" \t,")
		if p.done() {
			return out, nil
		}
		if len(out) == maxChallenges {
			return nil, fmt.Errorf("%w: too many challenges", ErrMalformed)
		}
		scheme := p.token()
		if scheme == "" {
			return nil, fmt.Errorf("%w: expected an auth scheme at offset %d", ErrMalformed, p.i)
		}
		c := Challenge{Scheme: scheme}
		if err := p.params(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// BearerError returns the "error" parameter of the first Bearer challenge
// in the given WWW-Authenticate header values, or "" if there is none. A
// header value that does not parse is skipped.
func BearerError(values []string) string {
	for _, v := range values {
		cs, err := ParseChallenges(v)
		if err != nil {
			continue
		}
		for _, c := range cs {
			if strings.EqualFold(c.Scheme, "Bearer") {
				return c.ErrorCode()
			}
		}
	}
	return ""
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

// skip advances past any of the bytes in set.
func (p *parser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *parser) token() string {
	start := p.i
	for p.i < len(p.s) && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params parses what follows a scheme: nothing, a token68, or auth-params,
// up to the comma that starts the next challenge.
func (p *parser) params(c *Challenge) error {
	if p.done() || p.s[p.i] == ',' {
		return nil
	}
	if p.s[p.i] != ' ' && p.s[p.i] != '\t' {
		return fmt.Errorf("%w: unexpected character after scheme at offset %d", ErrMalformed, p.i)
	}
	p.skip(" \t")
	if t68, ok := p.token68(); ok {
		c.Params = map[string]string{"": t68}
		return nil
	}
	afterComma := false
	for {
		p.skip(" \t")
		if p.done() {
			return nil
		}
		if p.s[p.i] == ',' {
			p.i++ // an empty list element or the end of a parameter
			afterComma = true
			continue
		}
		start := p.i
		name := p.token()
		if name == "" {
			return fmt.Errorf("%w: expected a parameter at offset %d", ErrMalformed, p.i)
		}
		p.skip(" \t")
		if p.done() || p.s[p.i] != '=' {
			if !afterComma {
				return fmt.Errorf("%w: expected '=' at offset %d", ErrMalformed, p.i)
			}
			p.i = start // not a parameter: the next challenge's scheme
			return nil
		}
		p.i++ // '='
		p.skip(" \t")
		val, err := p.value()
		if err != nil {
			return err
		}
		if c.Params == nil {
			c.Params = make(map[string]string, 4)
		}
		name = strings.ToLower(name)
		if _, dup := c.Params[name]; dup {
			return fmt.Errorf("%w: repeated parameter", ErrMalformed)
		}
		if len(c.Params) == maxParams {
			return fmt.Errorf("%w: too many parameters", ErrMalformed)
		}
		c.Params[name] = val
		p.skip(" \t")
		if !p.done() && p.s[p.i] != ',' {
			return fmt.Errorf("%w: expected ',' at offset %d", ErrMalformed, p.i)
		}
		afterComma = false
	}
}

// token68 consumes a token68 if it is followed by the end or a comma, not
// by "=" and a value: that would be an auth-param.
func (p *parser) token68() (string, bool) {
	j := p.i
	for j < len(p.s) && (isB64Char(p.s[j]) || j > p.i && p.s[j] == '=') {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if (k < len(p.s) && p.s[k] != ',') || !isB64Token(p.s[p.i:j]) {
		return "", false
	}
	t := p.s[p.i:j]
	p.i = k
	return t, true
}

// value consumes a token or a quoted-string. An unescaped quoted-string is
// returned as a substring of the header, without allocating.
func (p *parser) value() (string, error) {
	if p.done() || p.s[p.i] != '"' {
		v := p.token()
		if v == "" {
			return "", fmt.Errorf("%w: bad or missing parameter value at offset %d", ErrMalformed, p.i)
		}
		return v, nil
	}
	p.i++
	start, escaped := p.i, false
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c == '\\' {
			p.i++
			escaped = true
			if p.i == len(p.s) {
				break
			}
			c = p.s[p.i]
		} else if c == '"' {
			p.i++
			v := p.s[start : p.i-1]
			if escaped {
				v = unescape(v)
			}
			return v, nil
		}
		if c < 0x20 && c != '\t' || c == 0x7f {
			return "", fmt.Errorf("%w: control character in quoted string at offset %d", ErrMalformed, p.i)
		}
	}
	return "", fmt.Errorf("%w: unterminated quoted string", ErrMalformed)
}

// unescape removes the backslashes of quoted-pairs from a validated
// quoted-string body.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
