// Package bearer parses the HTTP headers that carry OAuth 2.0 bearer tokens
// (RFC 6750) and the challenges servers send back.
package bearer

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrMalformed reports a header that does not follow the syntax.
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
// spaces may follow it; tabs are not accepted. The token must match RFC
// 6750's b64token syntax. It returns ErrNoToken for an empty value or
// another scheme and ErrMalformed for a bad token. Errors never contain the
// header, which is a secret.
func Token(header string) (string, error) {
	const scheme = "bearer"
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", ErrNoToken
	}
	rest := header[len(scheme):]
	if rest == "" {
		return "", fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if rest[0] != ' ' {
		return "", ErrNoToken // e.g. "Bearerx": another scheme
	}
	tok := strings.TrimLeft(rest, " ")
	if !isB64Token(tok) {
		return "", fmt.Errorf("%w: token is not b64token", ErrMalformed)
	}
	return tok, nil
}

// isB64Token reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~"
// / "+" / "/" ) *"=".
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

func isB64Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isTChar reports whether c may appear in an RFC 9110 token.
func isTChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Challenge is one authentication challenge from a WWW-Authenticate header.
type Challenge struct {
	Scheme string            // as sent, e.g. "Bearer"
	Params map[string]string // auth-params, keys lower-cased, quoted strings unquoted; a token68 under ""
}

// ErrorCode returns the "error" parameter, e.g. "invalid_token" or
// "insufficient_scope", or "".
func (c Challenge) ErrorCode() string { return c.Params["error"] }

// ParseChallenges parses a WWW-Authenticate header value (RFC 9110 §11.6.1):
// a comma-separated list of challenges, each a scheme followed by a token68
// or by auth-params (token BWS "=" BWS ( token / quoted-string )). Empty
// list elements are allowed. It returns ErrMalformed for a syntax error or
// more than 32 challenges or parameters.
func ParseChallenges(header string) ([]Challenge, error) {
	p := parser{s: header}
	var out []Challenge
	for {
		p.skipListSeparators()
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
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		if err := p.params(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// BearerError returns the "error" parameter of the first Bearer challenge
// in the given WWW-Authenticate header values, or "" if there is none or the
// headers do not parse.
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

func (p *parser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) skipListSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
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
	p.skipSpace()
	if t68, ok := p.token68(); ok {
		c.Params[""] = t68
		return nil
	}
	for {
		p.skipSpace()
		if p.done() {
			return nil
		}
		if p.s[p.i] == ',' {
			p.i++ // an empty list element
			continue
		}
		save := p.i
		name := p.token()
		if name == "" {
			return fmt.Errorf("%w: expected a parameter at offset %d", ErrMalformed, p.i)
		}
		p.skipSpace()
		if p.done() || p.s[p.i] != '=' {
			if len(c.Params) == 0 {
				return fmt.Errorf("%w: expected '=' at offset %d", ErrMalformed, p.i)
			}
			p.i = save // not a parameter: the next challenge's scheme
			return nil
		}
		p.i++ // '='
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return err
		}
		if len(c.Params) == maxParams {
			return fmt.Errorf("%w: too many parameters", ErrMalformed)
		}
		c.Params[strings.ToLower(name)] = val
		p.skipSpace()
		if p.done() {
			return nil
		}
		if p.s[p.i] != ',' {
			return fmt.Errorf("%w: expected ',' at offset %d", ErrMalformed, p.i)
		}
		p.i++
	}
}

// token68 consumes a token68 (1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
// "+" / "/" ) *"=") if it is followed by the end or a comma, not by "=" and
// more: that would be an auth-param.
func (p *parser) token68() (string, bool) {
	j := p.i
	for j < len(p.s) && isB64Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return "", false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if k < len(p.s) && p.s[k] != ',' {
		return "", false
	}
	t := p.s[p.i:j]
	p.i = k
	return t, true
}

// value consumes a token or a quoted-string.
func (p *parser) value() (string, error) {
	if p.done() {
		return "", fmt.Errorf("%w: missing parameter value", ErrMalformed)
	}
	if p.s[p.i] != '"' {
		v := p.token()
		if v == "" {
			return "", fmt.Errorf("%w: bad parameter value at offset %d", ErrMalformed, p.i)
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == '\t' || c >= 0x20 && c != 0x7f:
			b.WriteByte(c)
			p.i++
		default:
			return "", fmt.Errorf("%w: control character in quoted string", ErrMalformed)
		}
	}
	return "", fmt.Errorf("%w: unterminated quoted string", ErrMalformed)
}
