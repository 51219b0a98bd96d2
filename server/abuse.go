package server

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/tokend/tokend/server/throttle"
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
