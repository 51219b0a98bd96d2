package server

import (
	"net/http"
	"strings"
)

// The admin plane is what a token server offers its operators and the
// services beside it, never browsers of strangers: the /v1 API (minting,
// listing and ending sessions; families.go, mint.go) and the Prometheus
// metrics. The Handler serves it with the public endpoints unless
// Config.NoAdminRoutes is set; Admin serves it alone, for a listen address
// that only the operator's network reaches.

// adminRoutes adds the admin plane's routes to mux: /v1, and /metrics
// unless Config.NoMetricsRoute is set.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/tokens", s.instrument("mint", s.handleMint))
	// The /v1 sessions endpoints list and end families (families.go).
	mux.HandleFunc("GET /v1/subjects/{sub}/sessions", s.instrument("sessions", s.handleListFamilies))
	mux.HandleFunc("DELETE /v1/subjects/{sub}/sessions", s.instrument("sessions", s.handleRevokeSubject))
	mux.HandleFunc("DELETE /v1/sessions/{id}", s.instrument("sessions", s.handleRevokeFamily))
	if !s.cfg.NoMetricsRoute {
		mux.Handle("GET /metrics", s.metrics.handler())
	}
}

// adminPath reports whether path belongs to the admin plane: /v1/... or
// /metrics.
func adminPath(path string) bool {
	return strings.HasPrefix(path, "/v1/") || path == "/v1" || path == "/metrics"
}

// Admin returns the handler of the admin plane alone: the /v1 API and,
// unless Config.NoMetricsRoute is set, GET /metrics; every other path is
// 404. Serve it on a listen address of its own with Config.NoAdminRoutes
// set, so that the public address answers 404 for them.
func (s *Server) Admin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(s.admin, w, r) })
}
