package server

import (
	"net/http"
	"net/netip"
)

// The server's side of abuse control: the failure throttle (package
// throttle, with its fleet counter), the source address failures count
// against (package clientip) and the password-hashing gate (package
// hashgate) are packages of their own; this file connects them to the
// Config and turns their refusals into OAuth errors.

// sourceAddr returns the source address of r, the one the throttle
// counts r's failures against (Config.TrustedProxies).
func (s *Server) sourceAddr(r *http.Request) netip.Addr { return s.clientIP.Source(r) }
