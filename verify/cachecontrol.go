package verify

import (
	"net/http"
	"strings"
	"time"
)

// maxDelta is the largest delta-seconds value kept; larger ones count as
// this (RFC 9111 §1.2.2).
const maxDelta = 1 << 31

// lifetime returns how long a JWKS whose response has the header h may be
// used, between floor and ceil (see the package doc, "Key lifetime").
func lifetime(h http.Header, floor, ceil time.Duration) time.Duration {
	cc := parseCacheControl(h.Values("Cache-Control"))
	life := DefaultKeysAge
	switch {
	case cc.stale:
		life = 0
	case cc.maxAge >= 0:
		life = time.Duration(cc.maxAge-age(h.Values("Age"))) * time.Second
	}
	if cc.noCache {
		life = min(life, DefaultKeysAge)
	}
	return max(floor, min(life, ceil))
}

// cacheControl is what lifetime reads of a Cache-Control field.
type cacheControl struct {
	maxAge  int64 // max-age in seconds, at most maxDelta; -1 if absent
	stale   bool  // max-age invalid, or given twice with different values
	noCache bool  // no-store, or no-cache without a field list
}

// parseCacheControl parses the Cache-Control field lines values (RFC 9111
// §5.2: a list of directives, token [ "=" ( token / quoted-string ) ],
// names in any case). Directives other than max-age, no-cache and no-store
// are ignored, as are elements that are not directives.
func parseCacheControl(values []string) cacheControl {
	cc := cacheControl{maxAge: -1}
	for _, v := range values {
		for v != "" {
			var el string
			el, v = nextElement(v)
			name, arg, hasArg := strings.Cut(el, "=")
			name = strings.TrimRight(name, " \t")
			arg = strings.TrimLeft(arg, " \t")
			switch {
			case strings.EqualFold(name, "max-age"):
				n, ok := deltaSeconds(unquote(arg))
				switch {
				case !hasArg || !ok:
					cc.stale = true // §4.2.1: an invalid lifetime is stale
				case cc.maxAge >= 0 && cc.maxAge != n:
					cc.stale = true // §4.2.1: conflicting values
				default:
					cc.maxAge = n
				}
			case strings.EqualFold(name, "no-store"):
				cc.noCache = true
			case strings.EqualFold(name, "no-cache") && !hasArg:
				// The qualified form, no-cache="field", concerns only the
				// fields it lists (§5.2.2.4).
				cc.noCache = true
			}
		}
	}
	return cc
}

// nextElement returns the first element of the list s, without the
// whitespace around it, and the rest of s after the comma that ends it. A
// comma inside a quoted string (RFC 9110 §5.6.4) does not end an element;
// an unterminated quoted string runs to the end of s.
func nextElement(s string) (el, rest string) {
	quoted, escaped := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			return strings.Trim(s[:i], " \t"), s[i+1:]
		}
	}
	return strings.Trim(s, " \t"), ""
}

// unquote removes the quotes of a quoted string whose content needs no
// unescaping; other values are returned as they are. max-age's argument
// is a token, but RFC 9111 §5.2 asks recipients to accept the quoted form.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.ContainsAny(s[1:len(s)-1], `"\`) {
		return s[1 : len(s)-1]
	}
	return s
}

// deltaSeconds parses delta-seconds, 1*DIGIT (RFC 9111 §1.2.2), keeping
// values above maxDelta as maxDelta.
func deltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = min(n*10+int64(s[i]-'0'), maxDelta)
	}
	return n, true
}

// age returns the Age of a response, in seconds, from its Age field lines
// (RFC 9111 §5.1): the largest valid value, or 0 if there is none.
func age(values []string) int64 {
	var a int64
	for _, v := range values {
		if n, ok := deltaSeconds(strings.Trim(v, " \t")); ok {
			a = max(a, n)
		}
	}
	return a
}
