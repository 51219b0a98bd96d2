package server

import "context"

// SetPasswordCheck makes the server built from c check passwords with f
// instead of argon2id, so that tests can hold checks while they run.
func SetPasswordCheck(c *Config, f func(ctx context.Context, hash, pw string) error) {
	c.checkPassword = f
}
