package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Refresh tokens are "rt_" followed by 43 base64url characters: 256 bits.
// The prefix lets secret scanners recognise them.
const (
	refreshPrefix = "rt_"
	refreshLen    = len(refreshPrefix) + 43
)

// newRefreshToken returns a refresh token of 256 random bits.
func newRefreshToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// validRefreshToken reports whether s has the shape of a refresh token. It
// is checked before any lookup so that junk costs nothing.
func validRefreshToken(s string) bool {
	if len(s) != refreshLen || !strings.HasPrefix(s, refreshPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(refreshPrefix):])
	return err == nil
}

// hashToken is how a refresh token is stored: SHA-256. A 256-bit random
// token needs no slow hash: guessing a preimage is as hard as guessing the
// token.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// successor derives the refresh token that replaces tok, with the server's
// secret: a retry of tok within the grace window gets the same successor
// again without the successor ever being stored in clear.
func successor(secret []byte, tok string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tokend refresh successor v1\x00"))
	m.Write([]byte(tok))
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
