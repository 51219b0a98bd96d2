package pkce_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokend/tokend/server/pkce"
)

// The example of RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestChallengeRFC7636AppendixB(t *testing.T) {
	if got := pkce.Challenge(rfcVerifier); got != rfcChallenge {
		t.Fatalf("Challenge = %q, want %q", got, rfcChallenge)
	}
	if err := pkce.Verify(rfcChallenge, rfcVerifier); err != nil {
		t.Fatalf("Verify of the RFC's pair: %v", err)
	}
}

func TestCheckChallenge(t *testing.T) {
	for _, tc := range []struct {
		name, challenge, method string
		want                    error
	}{
		{"S256", rfcChallenge, "S256", nil},
		{"plain refused", rfcChallenge, "plain", pkce.ErrMethod},
		{"method missing (plain by default)", rfcChallenge, "", pkce.ErrMethod},
		{"method in lower case", rfcChallenge, "s256", pkce.ErrMethod},
		{"challenge missing", "", "S256", pkce.ErrChallenge},
		{"challenge too short", rfcChallenge[:42], "S256", pkce.ErrChallenge},
		{"challenge too long", rfcChallenge + "A", "S256", pkce.ErrChallenge},
		{"padding", rfcChallenge[:42] + "=", "S256", pkce.ErrChallenge},
		{"standard base64 alphabet", strings.ReplaceAll(rfcChallenge, "-", "+"), "S256", pkce.ErrChallenge},
		{"non-canonical last character", rfcChallenge[:42] + "N", "S256", pkce.ErrChallenge},
		{"a verifier sent as the challenge", rfcVerifier + "AAAA", "S256", pkce.ErrChallenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := pkce.CheckChallenge(tc.challenge, tc.method); !errors.Is(err, tc.want) {
				t.Fatalf("CheckChallenge = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	long := strings.Repeat("a", 128)
	for _, tc := range []struct {
		name, challenge, verifier string
		want                      error
	}{
		{"right verifier", rfcChallenge, rfcVerifier, nil},
		{"128 characters", pkce.Challenge(long), long, nil},
		{"wrong verifier", rfcChallenge, strings.Repeat("b", 43), pkce.ErrMismatch},
		{"the challenge itself as verifier (plain)", rfcChallenge, rfcChallenge, pkce.ErrMismatch},
		{"verifier missing", rfcChallenge, "", pkce.ErrVerifier},
		{"42 characters", pkce.Challenge(long[:42]), long[:42], pkce.ErrVerifier},
		{"129 characters", pkce.Challenge(long + "a"), long + "a", pkce.ErrVerifier},
		{"reserved character", pkce.Challenge(long[:42] + "+"), long[:42] + "+", pkce.ErrVerifier},
		{"space", pkce.Challenge(long[:42] + " "), long[:42] + " ", pkce.ErrVerifier},
		{"non-ASCII", pkce.Challenge(long[:41] + "é"), long[:41] + "é", pkce.ErrVerifier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := pkce.Verify(tc.challenge, tc.verifier); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzVerify: no input panics, a verifier accepted is well formed, and
// only the challenge of the verifier itself is accepted.
func FuzzVerify(f *testing.F) {
	f.Add(rfcChallenge, rfcVerifier)
	f.Add(rfcChallenge, rfcChallenge)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, challenge, verifier string) {
		err := pkce.Verify(challenge, verifier)
		if err == nil && (pkce.Challenge(verifier) != challenge || len(verifier) < 43 || len(verifier) > 128) {
			t.Fatalf("Verify(%q, %q) accepted a pair it should refuse", challenge, verifier)
		}
		if cerr := pkce.CheckChallenge(challenge, pkce.MethodS256); err == nil && cerr != nil {
			t.Fatalf("a verifier matched a challenge CheckChallenge refuses: %v", cerr)
		}
	})
}
