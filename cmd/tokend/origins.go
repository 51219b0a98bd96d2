package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// parseOrigins checks the values of --origin (each may hold several,
// comma-separated) and returns them in order, without repeats. Each must
// be a browser origin exactly as a browser sends it in its Origin header
// (RFC 6454 §6.2): scheme http or https, lower case, a host, an optional
// port that is not the scheme's default, and nothing else: no path, not
// even "/", no query, no fragment, no user. The server compares origins
// as strings, so any other spelling would never match.
func parseOrigins(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for o := range strings.SplitSeq(v, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			if err := checkOrigin(o); err != nil {
				return nil, err
			}
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// checkOrigin returns a usage error naming o if it is not an origin in
// the form browsers send.
func checkOrigin(o string) error {
	bad := func(why string) error {
		return usageErrorf("--origin %q is not an origin: %s (want scheme://host[:port], e.g. http://localhost:5173)", o, why)
	}
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return bad("it does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return bad("it has no host")
	case u.User != nil:
		return bad("it has a user")
	case u.Path != "" || u.RawPath != "":
		return bad("it has a path (no trailing slash either)")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("it has a query")
	case u.Fragment != "" || strings.Contains(o, "#"):
		return bad("it has a fragment")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return bad("it has no host")
	}
	if strings.HasPrefix(u.Host, "[") {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() || ip.Zone() != "" {
			return bad("the host is not an IPv6 address")
		}
	} else if strings.ContainsFunc(host, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.')
	}) {
		return bad("the host may hold only letters, digits, '-' and '.' (an internationalised name in its xn-- form)")
	}
	if port != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return bad("the port must be a number from 1 to 65535")
		}
		if u.Scheme == "http" && n == 80 || u.Scheme == "https" && n == 443 {
			return bad(fmt.Sprintf("browsers leave the default port out: write %s://%s", u.Scheme, u.Host[:len(u.Host)-len(port)-1]))
		}
	}
	if canon := u.Scheme + "://" + strings.ToLower(u.Host); canon != o {
		return bad("browsers send it in lower case: write " + canon)
	}
	return nil
}
