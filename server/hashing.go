package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/server/hashgate"
)

// PasswordParams are argon2id's cost parameters (RFC 9106 §3.1): Memory
// (m, KiB), Time (t, passes) and Threads (p, lanes). See
// Config.PasswordParams.
type PasswordParams = password.Params

// Defaults of the password-hashing settings of Config.
const (
	DefaultHashMemory = 128 << 20 // bytes
	DefaultHashQueue  = 64
	DefaultHashWait   = 5 * time.Second
)

// hashRetryAfter is the Retry-After, in seconds, of a login refused for
// want of hashing memory. At the default settings the queue drains in
// about a second on two cores (64 checks of some 30 ms of CPU each).
const hashRetryAfter = 1

// admitHash waits for n bytes of the hashing memory budget (Config's
// HashMemory, HashQueue and HashWait) and returns the function that gives
// them back. A gate that refuses (hashgate.ErrBusy) is answered 503
// temporarily_unavailable with Retry-After; other errors (ctx's, a hash
// that needs more than the whole budget) are returned as they are.
func (s *Server) admitHash(ctx context.Context, n int64) (release func(), err error) {
	release, err = s.hashing.Acquire(ctx, n)
	if errors.Is(err, hashgate.ErrBusy) {
		return nil, errUnavailable("too many logins in progress; retry later", hashRetryAfter)
	}
	return release, err
}

// errGone answers a login whose client went away while its password was
// being checked: nobody reads the answer, and no family is written.
func errGone() *Error {
	return errUnavailable("the request was cancelled", 1)
}

// hashingDefaults fills in and checks the password-hashing settings of
// cfg.
func hashingDefaults(cfg *Config) error {
	if cfg.PasswordParams == (PasswordParams{}) {
		cfg.PasswordParams = password.DefaultParams()
	}
	if err := cfg.PasswordParams.Validate(); err != nil {
		return fmt.Errorf("server: Config.PasswordParams: %w", err)
	}
	if cfg.HashMemory == 0 {
		cfg.HashMemory = DefaultHashMemory
	}
	if need := cfg.PasswordParams.MemoryBytes(); cfg.HashMemory < need {
		return fmt.Errorf("server: Config.HashMemory (%d bytes) cannot hold one hash of %v (%d bytes)", cfg.HashMemory, cfg.PasswordParams, need)
	}
	switch {
	case cfg.HashQueue == 0:
		cfg.HashQueue = DefaultHashQueue
	case cfg.HashQueue < 0:
		cfg.HashQueue = 0
	}
	if cfg.HashWait <= 0 {
		cfg.HashWait = DefaultHashWait
	}
	return nil
}
