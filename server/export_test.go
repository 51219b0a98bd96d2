package server

import (
	"context"

	"github.com/tokend/tokend/secrets"
)

// SetPasswordCheck makes the server built from c check passwords with f
// instead of argon2id, so that tests can hold checks while they run.
func SetPasswordCheck(c *Config, f func(ctx context.Context, hash, pw string) error) {
	c.checkPassword = f
}

// FirstRefreshToken returns a new family ID and the first refresh token
// of that family as a server with this secret issues it, for tests that
// store families themselves.
func FirstRefreshToken(secret []byte) (family, token string) {
	family = newID()
	token, err := newRefreshKeys(secret).firstRefreshToken(family)
	if err != nil {
		panic(err)
	}
	return family, token
}

// TaggedUnder returns the Seq of the secret of r whose MAC the refresh
// token tok carries, 0 if none.
func TaggedUnder(r secrets.Ring, tok string) int {
	for _, s := range r {
		if _, ok := newRefreshKeys(s.Value).parseRefreshToken(tok); ok {
			return s.Seq
		}
	}
	return 0
}
