package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/tokend/tokend/server/throttle"
	"github.com/tokend/tokend/store"
)

// The server's side of abuse control: the failure throttle (package
// throttle, with its fleet counter), the source address failures count
// against (package clientip) and the password-hashing gate (package
// hashgate) are packages of their own; this file connects them to the
// Config and turns their refusals into OAuth errors.

// sourceAddr returns the source address of r, the one the throttle
// counts r's failures against (Config.TrustedProxies).
func (s *Server) sourceAddr(r *http.Request) netip.Addr { return s.clientIP.Source(r) }

// Throttle configures how the server slows down guessing of client
// secrets and passwords (Config.Throttle); see throttle.Config.
type Throttle = throttle.Config

// errThrottledFor is the answer to a request that must wait d: 429 with
// Retry-After in whole seconds, rounded up.
func errThrottledFor(d time.Duration) *Error {
	return errThrottled("too many attempts; retry later", int((d+time.Second-1)/time.Second))
}

// newThrottler returns the throttle of cfg (nil if it is disabled), which
// counts failures across the fleet in cfg.FailureCounter, by default the
// store's, and keeps familiar sources in cfg.FamiliarSources, by default
// the counter's or the store's (see Config). keys make the fleet's store
// keys.
func newThrottler(cfg Config, keys throttle.Keys) (*throttle.Throttler, error) {
	if cfg.FailureCounter == nil {
		cfg.FailureCounter, _ = store.Capability[store.FailureCounter](cfg.Store)
	}
	if cfg.FamiliarSources == nil && cfg.FailureCounter != nil {
		if fs, ok := cfg.FailureCounter.(store.FamiliarSources); ok {
			cfg.FamiliarSources = fs
		} else {
			cfg.FamiliarSources, _ = store.Capability[store.FamiliarSources](cfg.Store)
		}
	}
	thr, err := throttle.New(cfg.Throttle, throttle.NewFleet(cfg.FailureCounter, cfg.FamiliarSources, keys, cfg.Logger), cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("server: Config.Throttle: %w", err)
	}
	return thr, nil
}
