// Package redirecturi validates the redirect URIs a client registers and
// matches the one an authorization or logout request presents against
// them.
//
// Matching is by exact string comparison (RFC 6749 §3.1.2.2, RFC 9700
// §4.1.3: no pattern, no normalisation, so that case, a trailing slash, an
// extra segment, a query, percent-encoding or a look-alike host never
// match), with one exception: a registered http URI on a loopback IP
// literal (127.0.0.1 or [::1]) matches the same URI on any port, because
// a native app listens on a port the operating system gives it (RFC 8252
// §7.3). "localhost" is matched exactly, port included (RFC 8252 §8.3
// advises against it).
package redirecturi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxLength is the longest redirect URI accepted, in bytes.
const MaxLength = 2000

// ErrInvalid reports a redirect URI that cannot be registered, or that an
// authorization request presents in a form no registration can match.
var ErrInvalid = errors.New("redirecturi: invalid redirect URI")

// loopbacks are the hosts whose port a match ignores (RFC 8252 §7.3).
var loopbacks = [...]string{"http://127.0.0.1", "http://[::1]"}

// Validate checks raw for registration and returns nil or an error
// wrapping ErrInvalid that says why (without echoing raw). A redirect
// URI is absolute and has no fragment (RFC 6749 §3.1.2), no user
// information, no white space or control characters, and is at most
// MaxLength bytes. Its scheme is one of:
//   - https, with a host;
//   - http on a loopback host: 127.0.0.1, [::1] or localhost (RFC 8252
//     §7.3, for native apps and development);
//   - a private-use scheme in reverse domain name form, with a period,
//     such as com.example.app:/callback (RFC 8252 §7.1).
func Validate(raw string) error {
	if err := syntax(raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%w: not an absolute URI", ErrInvalid)
	}
	switch {
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%w: a fragment is not allowed (RFC 6749 §3.1.2)", ErrInvalid)
	case u.User != nil:
		return fmt.Errorf("%w: user information is not allowed", ErrInvalid)
	case !strings.HasPrefix(raw, u.Scheme+":"): // url.Parse lowers the scheme
		return fmt.Errorf("%w: the scheme must be in lower case", ErrInvalid)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return fmt.Errorf("%w: https without a host", ErrInvalid)
		}
	case "http":
		if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && h != "localhost" {
			return fmt.Errorf("%w: http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https", ErrInvalid)
		}
		if u.Host != strings.ToLower(u.Host) {
			return fmt.Errorf("%w: the host must be in lower case", ErrInvalid)
		}
	default:
		if !privateUse(u.Scheme) {
			return fmt.Errorf("%w: the scheme must be https, http on loopback, or a private-use scheme with a period such as com.example.app (RFC 8252 §7.1)", ErrInvalid)
		}
		if u.Host != "" {
			return fmt.Errorf("%w: a private-use scheme's URI has a path, not a host (com.example.app:/callback)", ErrInvalid)
		}
	}
	return nil
}

// Match returns the registered URI that presented matches and true, or
// "" and false: presented equals one of registered exactly, or differs
// from a registered loopback IP-literal http URI (127.0.0.1 or [::1]) in
// its port alone (RFC 8252 §7.3). A presented URI that Validate would
// refuse matches nothing.
func Match(registered []string, presented string) (string, bool) {
	if syntax(presented) != nil {
		return "", false
	}
	for _, r := range registered {
		if r == presented {
			return r, true
		}
	}
	for _, r := range registered {
		if loopbackMatch(r, presented) && Validate(presented) == nil {
			return r, true
		}
	}
	return "", false
}

// loopbackMatch reports whether r and p are the same http URI on the same
// loopback IP literal but for the port. It compares the text after the
// host and port byte for byte, so nothing a URI parser would normalise
// can make two URIs match.
func loopbackMatch(r, p string) bool {
	for _, host := range loopbacks {
		rr, ok1 := strings.CutPrefix(r, host)
		pr, ok2 := strings.CutPrefix(p, host)
		if !ok1 || !ok2 {
			continue
		}
		rr, ok1 = cutPort(rr)
		pr, ok2 = cutPort(pr)
		return ok1 && ok2 && rr == pr && (pr == "" || pr[0] == '/' || pr[0] == '?')
	}
	return false
}

// cutPort removes a leading ":port" (1 to 65535, no leading zero) from
// rest and reports whether what remains can follow an authority.
func cutPort(rest string) (string, bool) {
	if !strings.HasPrefix(rest, ":") {
		return rest, true
	}
	i := 1
	for i < len(rest) && i <= 6 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	digits := rest[1:i]
	if digits == "" || len(digits) > 5 || digits[0] == '0' {
		return rest, false
	}
	port := 0
	for _, c := range digits {
		port = port*10 + int(c-'0')
	}
	return rest[i:], port <= 65535
}

// syntax refuses what no registered URI can be: empty, too long, white
// space, control characters, a backslash (which browsers read as a slash)
// or non-ASCII bytes (a look-alike host must be registered in its
// punycode form to match).
func syntax(raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(raw) > MaxLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLength)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fmt.Errorf("%w: white space, a control character, a backslash or a non-ASCII byte at byte %d", ErrInvalid, i)
		}
	}
	return nil
}

// privateUse reports whether scheme is a private-use URI scheme in
// reverse domain name form (RFC 8252 §7.1): it contains a period, and is
// not one a browser runs or reads (javascript, data, file, ...).
func privateUse(scheme string) bool {
	switch scheme {
	case "javascript", "data", "file", "blob", "about", "vbscript", "ftp", "ws", "wss":
		return false
	}
	return strings.Contains(scheme, ".")
}
