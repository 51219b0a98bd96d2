// Package pkce checks Proof Key for Code Exchange (RFC 7636) with the S256
// method, the only one tokend accepts: an authorization request sends
// code_challenge = BASE64URL(SHA-256(code_verifier)) without padding, and
// the token request that redeems its code sends the code_verifier.
// "plain" is refused (RFC 9700 §2.1.1: it protects nothing against an
// attacker who can read the authorization request).
package pkce

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
)

// MethodS256 is the one code_challenge_method accepted (RFC 7636 §4.2).
const MethodS256 = "S256"

// Sentinel errors, for errors.Is. Their text names the parameter, never
// its value.
var (
	// ErrMethod reports a code_challenge_method other than S256 (or a
	// challenge sent without one: RFC 7636 §4.3 defaults it to plain).
	ErrMethod = errors.New("pkce: code_challenge_method must be S256")
	// ErrChallenge reports a missing or malformed code_challenge: an S256
	// challenge is exactly 43 characters of base64url (RFC 7636 §4.2).
	ErrChallenge = errors.New("pkce: code_challenge must be 43 characters of base64url (S256)")
	// ErrVerifier reports a missing or malformed code_verifier: 43 to 128
	// characters of [A-Z] [a-z] [0-9] - . _ ~ (RFC 7636 §4.1).
	ErrVerifier = errors.New("pkce: code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	// ErrMismatch reports a code_verifier whose S256 is not the challenge.
	ErrMismatch = errors.New("pkce: code_verifier does not match the code_challenge")
)

// CheckChallenge checks an authorization request's code_challenge and
// code_challenge_method: the method must be S256 and the challenge the
// base64url encoding, without padding, of a SHA-256 digest (43
// characters). It returns ErrMethod or ErrChallenge.
func CheckChallenge(challenge, method string) error {
	if method != MethodS256 {
		return ErrMethod
	}
	if len(challenge) != 43 || !base64url(challenge) {
		return ErrChallenge
	}
	// 43 characters carry 258 bits: the last must leave its low two
	// bits zero to be a 32-byte digest's canonical encoding.
	if _, err := base64.RawURLEncoding.Strict().DecodeString(challenge); err != nil {
		return ErrChallenge
	}
	return nil
}

// Challenge returns the S256 code_challenge of verifier (RFC 7636 §4.2).
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Verify checks a token request's code_verifier against the challenge
// its code was issued with (RFC 7636 §4.6), in constant time. It returns
// ErrVerifier for a malformed verifier and ErrMismatch for another one.
func Verify(challenge, verifier string) error {
	if len(verifier) < 43 || len(verifier) > 128 || !unreserved(verifier) {
		return ErrVerifier
	}
	if subtle.ConstantTimeCompare([]byte(Challenge(verifier)), []byte(challenge)) != 1 {
		return ErrMismatch
	}
	return nil
}

// unreserved reports whether s has only RFC 3986 unreserved characters.
func unreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// base64url reports whether s has only base64url characters (no padding).
func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
