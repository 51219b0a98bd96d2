// Package clientip finds the source address of an HTTP request: the
// address the token server's throttle counts failures against (package
// throttle). It was server/clientip.go and the trusted-proxy check of
// server/ratelimit.go.
//
// A request's source is the TCP peer (http.Request.RemoteAddr) unless the
// peer is one of the trusted proxies (server.Config.TrustedProxies,
// `tokend serve --trusted-proxies`); then it is read from
// X-Forwarded-For, the list "client, proxy1, proxy2" to which each proxy
// on the way appends the address it received the request from. Anyone
// can send that header, so it is read from the right only: an entry was
// written by the hop to its right, and is believed only while that hop is
// trusted. The first untrusted address met is the source; whatever is
// left of it was written by the client and is ignored. The Forwarded
// header (RFC 7239) is not read.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds the X-Forwarded-For entries walked: no sane
// chain of trusted proxies is longer.
const maxForwardedHops = 32

// proxySet is the list of trusted proxies.
type proxySet []netip.Prefix

func (p proxySet) trusts(a netip.Addr) bool {
	for _, pfx := range p {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Resolver finds the source address of requests behind a list of trusted
// proxies. The zero Resolver trusts no proxy: every request's source is
// its peer. It is safe for concurrent use.
type Resolver struct {
	proxies proxySet
}

// New returns the Resolver that trusts the proxies of trusted (CIDR
// prefixes; an address is a /32 or /128). It fails on an invalid prefix.
func New(trusted []netip.Prefix) (*Resolver, error) {
	ps, err := normalizeProxies(trusted)
	if err != nil {
		return nil, err
	}
	return &Resolver{proxies: ps}, nil
}

// normalizeProxies checks the trusted proxies and puts them in the form
// Source compares with: masked, IPv4 as IPv4.
func normalizeProxies(ps []netip.Prefix) (proxySet, error) {
	out := make(proxySet, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid prefix %q", p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Source returns the source address of r: the peer, or, when the peer
// is a trusted proxy, what its X-Forwarded-For says. The zero Addr stands
// for a peer whose address cannot be parsed (a Unix socket).
func (s *Resolver) Source(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(s.proxies) == 0 || !s.proxies.trusts(peer) {
		return peer
	}
	return forwardedSource(peer, r.Header.Values("X-Forwarded-For"), s.proxies)
}

// peerAddr parses http.Request.RemoteAddr ("IP:port"), without zone and
// with IPv4-mapped IPv6 addresses unmapped.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, err := netip.ParseAddr(remote)
		if err != nil {
			return netip.Addr{}
		}
		return a.WithZone("").Unmap()
	}
	return ap.Addr().WithZone("").Unmap()
}

// forwardedSource walks the X-Forwarded-For header lines (in the order
// received; a later line continues the list) from the right, starting
// from the trusted peer, and returns the first untrusted address. Empty
// list elements are skipped (RFC 9110 §5.6.1.2). An entry that is not an
// address stops the walk at the last trusted hop, which is then the
// source: nothing left of a malformed entry can be believed. So does a
// chain longer than maxForwardedHops.
func forwardedSource(peer netip.Addr, lines []string, trusted proxySet) netip.Addr {
	addr, hops := peer, 0
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			entry := strings.Trim(rest[j+1:], " \t")
			if entry != "" {
				a, ok := parseForwardedEntry(entry)
				if !ok {
					return addr
				}
				addr = a
				if hops++; !trusted.trusts(addr) || hops == maxForwardedHops {
					return addr
				}
			}
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return addr
}

// parseForwardedEntry parses one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443")
// or in brackets ("[2001:db8::1]"). Zones, names and obfuscated
// identifiers ("unknown", "_hidden") are not addresses.
func parseForwardedEntry(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(s); err2 == nil {
			a, err = ap.Addr(), nil
		} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err == nil && !a.Is6() {
				return netip.Addr{}, false
			}
		}
	}
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
