package loginpage

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Headers sets the security headers of every page this package renders,
// and of any other HTML page of the authorization server (the render
// methods call it; a caller writing its own page should too):
//
//	Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' <targets>; frame-ancestors 'none'; base-uri 'none'
//	X-Frame-Options: DENY
//	Referrer-Policy: no-referrer
//	Cache-Control: no-store
//	X-Content-Type-Options: nosniff
//	Content-Type: text/html; charset=utf-8
//
// formTargets are the places a form of the page may lead to besides the
// page's own origin: Chromium applies form-action to the redirect that
// answers a form's POST, so a login form whose answer redirects to the
// client's redirect URI must name that URI's origin here (CSP Level 3
// §6.4.1). Each is a redirect URI or a CSP source; it is reduced to its
// source by FormActionSource, and one that has none is dropped, so
// nothing a caller passes can add a directive to the policy.
func Headers(w http.ResponseWriter, formTargets ...string) {
	var b strings.Builder
	b.WriteString("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'")
	seen := make(map[string]bool, len(formTargets))
	for _, t := range formTargets {
		src := FormActionSource(t)
		if src == "" || seen[src] {
			continue
		}
		seen[src] = true
		b.WriteByte(' ')
		b.WriteString(src)
	}
	b.WriteString("; frame-ancestors 'none'; base-uri 'none'")
	h := w.Header()
	h.Set("Content-Security-Policy", b.String())
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

// broadSchemes are the schemes whose scheme-only source would let a form
// go anywhere on the web; FormActionSource never returns one alone.
var broadSchemes = map[string]bool{
	"http": true, "https": true, "ws": true, "wss": true, "ftp": true,
	"data": true, "blob": true, "filesystem": true, "javascript": true,
}

// FormActionSource returns the CSP source (CSP Level 3 §2.3.1) that
// allows a form's submission, or the redirect answering it, to reach
// uri: for an absolute URI with a host, its origin in lower case,
// "scheme://host[:port]" (https://app.example/cb → "https://app.example";
// http://127.0.0.1:53682/cb → "http://127.0.0.1:53682"); for a URI of a
// private-use scheme without a host (RFC 8252 §7.1), the scheme source
// "scheme:" (com.example.app:/cb → "com.example.app:"). It returns ""
// when uri has no such source: unparsable, relative, a host or port
// outside the CSP grammar, or a scheme alone that would allow the whole
// web (http:, https:, data:, …). The result never holds a space, ';' or
// ',', and so cannot change the policy's structure.
func FormActionSource(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || !validScheme(u.Scheme) {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if u.Host == "" {
		if broadSchemes[scheme] {
			return ""
		}
		return scheme + ":"
	}
	host, port := u.Hostname(), u.Port()
	if strings.HasSuffix(u.Host, ":") || (port != "" && !allDigits(port)) {
		return ""
	}
	host = strings.ToLower(host)
	switch {
	case strings.Contains(u.Host, "["):
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() != nil || strings.Contains(host, "%") {
			return ""
		}
		host = "[" + ip.String() + "]"
	case !validHost(host):
		return ""
	}
	src := scheme + "://" + host
	if port != "" {
		src += ":" + port
	}
	return src
}

// validScheme reports whether s is a URI scheme (RFC 3986 §3.1):
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validHost reports whether h is a host of the CSP grammar without
// wildcards: 1*host-char *( "." 1*host-char ), host-char = ALPHA / DIGIT
// / "-" (CSP Level 3 §2.3.1).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlpha(c) && !isDigit(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 5
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
