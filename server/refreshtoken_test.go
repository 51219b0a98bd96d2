package server

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// A token issued for a family and generation parses back to them; the
// successor names the next generation and is the same every time.
func TestRefreshTokenRoundTrip(t *testing.T) {
	k := newRefreshKeys(bytes.Repeat([]byte{1}, 32))
	id := newID()
	tok, err := k.firstRefreshToken(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 100 || !strings.HasPrefix(tok, "rt2_") {
		t.Fatalf("token %q: %d characters", tok, len(tok))
	}
	ref, ok := k.parseRefreshToken(tok)
	if !ok || ref != (tokenRef{id, 0}) {
		t.Fatalf("parse = %+v %v; want %s at 0", ref, ok, id)
	}
	next, err := k.successor(tok, ref)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := k.successor(tok, ref)
	if next != again || next == tok {
		t.Fatalf("successor %q then %q", next, again)
	}
	if ref, ok := k.parseRefreshToken(next); !ok || ref != (tokenRef{id, 1}) {
		t.Fatalf("successor parses to %+v %v; want %s at 1", ref, ok, id)
	}
	if _, err := k.issueRefreshToken(tokenRef{"not base64url!", 0}, make([]byte, bodyLen)); err == nil {
		t.Fatal("a family ID that is not 16 bytes in base64url was accepted")
	}
}

// A token is refused unless its MAC verifies under this secret: another
// secret's token, and any one-bit change of a valid token (family,
// generation, body or MAC), are not tokens at all.
func TestRefreshTokenMAC(t *testing.T) {
	k := newRefreshKeys(bytes.Repeat([]byte{1}, 32))
	other := newRefreshKeys(bytes.Repeat([]byte{2}, 32))
	tok, _ := k.firstRefreshToken(newID())
	foreign, _ := other.firstRefreshToken(newID())
	if _, ok := k.parseRefreshToken(foreign); ok {
		t.Fatal("a token of another secret was accepted")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok[len(refreshPrefix):])
	for i := range raw {
		changed := bytes.Clone(raw)
		changed[i] ^= 1
		if _, ok := k.parseRefreshToken(refreshPrefix + base64.RawURLEncoding.EncodeToString(changed)); ok {
			t.Fatalf("a token with byte %d changed was accepted", i)
		}
	}
	for _, bad := range []string{"", "rt2_", tok[:len(tok)-1], tok + "A", "rt_" + tok[4:], strings.Replace(tok, "rt2_", "rt3_", 1), tok[:50] + "!" + tok[51:]} {
		if _, ok := k.parseRefreshToken(bad); ok {
			t.Fatalf("%q was accepted", bad)
		}
	}
}

// FuzzParseRefreshToken: any input parses without a panic, and whatever
// parses is a token this secret issued (it survives a re-issue unchanged).
func FuzzParseRefreshToken(f *testing.F) {
	k := newRefreshKeys(bytes.Repeat([]byte{1}, 32))
	tok, _ := k.firstRefreshToken("AAAAAAAAAAAAAAAAAAAAAA")
	f.Add(tok)
	f.Add("rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("rt2_" + strings.Repeat("A", 96))
	f.Add("rt2_" + strings.Repeat("_", 96))
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok := k.parseRefreshToken(s)
		if !ok {
			return
		}
		raw, _ := base64.RawURLEncoding.DecodeString(s[len(refreshPrefix):])
		again, err := k.issueRefreshToken(ref, raw[familyIDLen+8:familyIDLen+8+bodyLen])
		if err != nil || again != s {
			t.Fatalf("%q parsed to %+v, which issues %q (%v)", s, ref, again, err)
		}
	})
}
