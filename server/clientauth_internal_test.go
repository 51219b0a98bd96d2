package server

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// secretMatches takes the current secret always, the previous one only
// before it expires, and nothing else: not the zeros it compares against
// when there is no previous secret.
func TestSecretMatches(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cur, prev := HashClientSecret("new"), HashClientSecret("old")
	rotated := store.Client{SecretHash: cur, PreviousSecretHash: prev, PreviousSecretExpiresAt: now.Add(time.Hour)}
	plain := store.Client{SecretHash: cur}
	var zeros [sha256.Size]byte
	cases := []struct {
		name string
		c    store.Client
		h    []byte
		at   time.Time
		want bool
	}{
		{"current", rotated, cur, now, true},
		{"previous during the overlap", rotated, prev, now, true},
		{"previous at its end", rotated, prev, now.Add(time.Hour), false},
		{"current after the overlap", rotated, cur, now.Add(2 * time.Hour), true},
		{"another secret", rotated, HashClientSecret("other"), now, false},
		{"current without a previous secret", plain, cur, now, true},
		{"zeros without a previous secret", plain, zeros[:], now, false},
		{"previous hash without an expiry", store.Client{SecretHash: cur, PreviousSecretHash: prev}, prev, now, false},
	}
	for _, tc := range cases {
		if got := secretMatches(tc.c, tc.h, tc.at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
