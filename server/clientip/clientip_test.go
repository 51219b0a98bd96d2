package clientip

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

var testProxies = proxySet{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("192.0.2.1/32"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
}

var forwardedCases = []struct {
	name  string
	peer  string
	lines []string
	want  string
}{
	{"untrusted peer: header ignored", "203.0.113.9", []string{"198.51.100.1"}, "203.0.113.9"},
	{"trusted peer without header", "10.1.1.1", nil, "10.1.1.1"},
	{"one proxy", "10.1.1.1", []string{"198.51.100.1"}, "198.51.100.1"},
	{"spoofed leftmost entries ignored", "10.1.1.1", []string{"1.1.1.1, 6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
	{"chain of trusted proxies", "10.1.1.1", []string{"198.51.100.1, 192.0.2.1, 10.2.2.2"}, "198.51.100.1"},
	{"stops at the first untrusted hop", "10.1.1.1", []string{"198.51.100.1, 203.0.113.5, 10.2.2.2"}, "203.0.113.5"},
	{"several header lines", "10.1.1.1", []string{"6.6.6.6", "198.51.100.1, 10.2.2.2"}, "198.51.100.1"},
	{"several header lines, trusted end", "10.1.1.1", []string{"198.51.100.1", "10.2.2.2"}, "198.51.100.1"},
	{"all hops trusted", "10.1.1.1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
	{"empty elements skipped", "10.1.1.1", []string{" , 198.51.100.1 ,, "}, "198.51.100.1"},
	{"optional whitespace", "10.1.1.1", []string{"\t198.51.100.1\t"}, "198.51.100.1"},
	{"IPv4 with port", "10.1.1.1", []string{"198.51.100.1:4711"}, "198.51.100.1"},
	{"IPv6", "10.1.1.1", []string{"2001:db8::1"}, "2001:db8::1"},
	{"IPv6 in brackets", "10.1.1.1", []string{"[2001:db8::1]"}, "2001:db8::1"},
	{"IPv6 with port", "10.1.1.1", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
	{"IPv4-mapped IPv6 is IPv4", "10.1.1.1", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
	{"IPv6 proxy", "2001:db8:ffff::1", []string{"198.51.100.1"}, "198.51.100.1"},
	{"mapped peer is trusted as IPv4", "::ffff:10.1.1.1", []string{"198.51.100.1"}, "198.51.100.1"},
	{"malformed entry: the last trusted hop", "10.1.1.1", []string{"198.51.100.1, unknown"}, "10.1.1.1"},
	{"malformed behind a trusted hop", "10.1.1.1", []string{"junk, 10.2.2.2"}, "10.2.2.2"},
	{"malformed left of the source: ignored", "10.1.1.1", []string{"junk, 198.51.100.1"}, "198.51.100.1"},
	{"obfuscated identifier", "10.1.1.1", []string{"_hidden"}, "10.1.1.1"},
	{"zone", "10.1.1.1", []string{"fe80::1%eth0"}, "10.1.1.1"},
	{"IPv4 in brackets", "10.1.1.1", []string{"[198.51.100.1]"}, "10.1.1.1"},
	{"IPv6 with port, no brackets", "10.1.1.1", []string{"2001:db8::1:443x"}, "10.1.1.1"},
	{"bad port", "10.1.1.1", []string{"198.51.100.1:99999"}, "10.1.1.1"},
	{"name", "10.1.1.1", []string{"example.com"}, "10.1.1.1"},
	{"too many trusted hops", "10.1.1.1", []string{"198.51.100.1," + strings.Repeat("10.0.0.1,", maxForwardedHops)}, "10.0.0.1"},
}

func TestForwardedSource(t *testing.T) {
	for _, tc := range forwardedCases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/oauth/token", nil)
			req.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(tc.peer), 40000).String()
			for _, l := range tc.lines {
				req.Header.Add("X-Forwarded-For", l)
			}
			s := &Resolver{proxies: testProxies}
			if got := s.Source(req); got != netip.MustParseAddr(tc.want) {
				t.Fatalf("source %v, want %s", got, tc.want)
			}
		})
	}
}

func TestPeerAddr(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:80":         "192.0.2.1",
		"[2001:db8::1]:80":     "2001:db8::1",
		"[fe80::1%eth0]:80":    "fe80::1",
		"[::ffff:192.0.2.1]:1": "192.0.2.1",
		"192.0.2.1":            "192.0.2.1",
		"@":                    "invalid IP",
		"":                     "invalid IP",
	} {
		if got := peerAddr(remote).String(); got != want {
			t.Errorf("peerAddr(%q) = %s, want %s", remote, got, want)
		}
	}
}

// forwardedReference is forwardedSource written the obvious way: split
// everything, then walk the list from the right.
func forwardedReference(peer netip.Addr, lines []string, trusted proxySet) netip.Addr {
	var entries []string
	for _, l := range lines {
		for e := range strings.SplitSeq(l, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				entries = append(entries, e)
			}
		}
	}
	addr := peer
	for i, hops := len(entries)-1, 0; i >= 0 && hops < maxForwardedHops; i, hops = i-1, hops+1 {
		a, ok := parseForwardedEntry(entries[i])
		if !ok {
			break
		}
		if addr = a; !trusted.trusts(a) {
			break
		}
	}
	return addr
}

// FuzzForwardedSource checks the walk against forwardedReference and the
// entry parser's promises: never a panic, an address without zone and
// unmapped, one that was in the header or is the peer.
func FuzzForwardedSource(f *testing.F) {
	for _, tc := range forwardedCases {
		f.Add(tc.peer, strings.Join(tc.lines, "\n"))
	}
	f.Fuzz(func(t *testing.T, peer, header string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		p = p.WithZone("").Unmap()
		lines := strings.Split(header, "\n")
		got := forwardedSource(p, lines, testProxies)
		if want := forwardedReference(p, lines, testProxies); got != want {
			t.Fatalf("forwardedSource(%v, %q) = %v, reference %v", p, lines, got, want)
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("source %v", got)
		}
		if got != p && !strings.Contains(header, strings.TrimPrefix(got.String(), "::ffff:")) && !containsAddr(header, got) {
			t.Fatalf("source %v is neither the peer nor in %q", got, header)
		}
	})
}

// containsAddr reports whether some entry of header parses to a.
func containsAddr(header string, a netip.Addr) bool {
	for e := range strings.FieldsFuncSeq(header, func(r rune) bool { return r == ',' || r == '\n' }) {
		if b, ok := parseForwardedEntry(strings.Trim(e, " \t")); ok && b == a {
			return true
		}
	}
	return false
}

func BenchmarkSourceAddr(b *testing.B) {
	s := &Resolver{proxies: testProxies}
	for _, bc := range []struct {
		name, peer, xff string
	}{
		{"direct", "203.0.113.9:40000", ""},
		{"spoofed header from an untrusted peer", "203.0.113.9:40000", "1.1.1.1"},
		{"two trusted proxies", "10.1.1.1:40000", "6.6.6.6, 198.51.100.1, 192.0.2.1"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/oauth/token", nil)
			req.RemoteAddr = bc.peer
			if bc.xff != "" {
				req.Header.Set("X-Forwarded-For", bc.xff)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Source(req)
			}
		})
	}
}
