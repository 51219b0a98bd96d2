// Package server is the tokend token server as an http.Handler: the OAuth
// 2.0 token endpoint (client_credentials, refresh_token and password
// grants), revocation (RFC 7009), introspection (RFC 7662), the JWKS and the
// authorization-server metadata (RFC 8414). Access tokens are JWTs per RFC
// 9068; refresh tokens are opaque, stored only as hashes, rotated on every
// use, with reuse detection and a grace window for retries.
//
// Errors become RFC 6749 JSON answers only at this edge; the grants and the
// rotation policy see plain Go errors.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// Signer signs access tokens and publishes the public keys; *keys.Set is one.
type Signer interface {
	// Sign returns claims as a signed JWS compact JWT with typ at+jwt.
	Sign(claims any) (string, error)
	// JWKS returns the JSON Web Key Set document.
	JWKS() []byte
}

// Authenticator checks a resource owner's credentials for the password
// grant and returns the subject to issue tokens for. It returns
// ErrBadCredentials (or an error wrapping it) when they do not match.
type Authenticator func(ctx context.Context, username, password string) (subject string, err error)

// ErrBadCredentials is returned by an Authenticator for a wrong username or
// password. The token endpoint answers it with invalid_grant.
var ErrBadCredentials = errors.New("bad credentials")

// ClaimsFunc adds custom claims to an access token. The claims it returns
// cannot replace the registered ones (iss, sub, aud, exp, iat, jti,
// client_id, scope, sid).
type ClaimsFunc func(ctx context.Context, req ClaimsRequest) (map[string]any, error)

// ClaimsRequest describes the access token being issued, for a ClaimsFunc.
type ClaimsRequest struct {
	ClientID string
	Subject  string
	Scope    string
	Grant    string // the grant type, or "mint"
}

// Config configures a Server. Store, Signer, Secret and Issuer are
// required; the other zero values mean the documented defaults.
type Config struct {
	Store  store.Store
	Signer Signer
	// Secret (at least 32 bytes) derives the successor of each refresh
	// token. It must be the same on every instance and survive restarts.
	Secret []byte
	// Issuer is the server's URL, the iss of its tokens.
	Issuer string
	// Audience is the aud of access tokens. Default: Issuer.
	Audience string

	AccessTTL       time.Duration // default 15m
	RefreshIdle     time.Duration // a family unused this long ends; default 30 days
	RefreshAbsolute time.Duration // a family ends this long after login; default 90 days
	Grace           time.Duration // default 30s; negative disables

	// Authenticate checks passwords for the password grant. Default: the
	// store's built-in users (argon2id).
	Authenticate Authenticator
	// Claims adds custom claims to access tokens. Optional.
	Claims ClaimsFunc

	// Throttling of failures, and the source address they count against.
	//
	// Throttle slows down the guessing of client secrets, passwords and
	// refresh tokens on every endpoint that checks them; successes are
	// never throttled. The zero value means its documented defaults (on).
	Throttle Throttle
	// TrustedProxies are the reverse proxies (CIDR prefixes; an address
	// is a /32 or /128) whose X-Forwarded-For header names the source of
	// a request. Default: none, and the header is ignored.
	TrustedProxies []netip.Prefix

	Logger *slog.Logger
	Now    func() time.Time
}

// Server is the token server. Create it with New; it is an http.Handler.
type Server struct {
	cfg     Config
	store   store.Store
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	thr     *throttler
	proxies proxySet
	metrics *metrics
	minted  *mintCache
	// access verifies the server's own access tokens (introspection).
	access *verify.Verifier

	// dummyHash is checked for unknown users, so that a login takes as
	// long whether or not the user exists.
	dummyHash func() string
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("server: Config.Store is required")
	case cfg.Signer == nil:
		return nil, errors.New("server: Config.Signer is required")
	case len(cfg.Secret) < 32:
		return nil, errors.New("server: Config.Secret must have at least 32 bytes")
	case cfg.Issuer == "":
		return nil, errors.New("server: Config.Issuer is required")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Issuer
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshIdle <= 0 {
		cfg.RefreshIdle = 30 * 24 * time.Hour
	}
	if cfg.RefreshAbsolute <= 0 {
		cfg.RefreshAbsolute = 90 * 24 * time.Hour
	}
	if cfg.Grace == 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Grace < 0 {
		cfg.Grace = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux(),
		dummyHash: sync.OnceValue(func() string { return password.Hash("tokend: no such user") })}
	if s.cfg.Authenticate == nil {
		s.cfg.Authenticate = s.builtinUsers
	}
	var err error
	if s.thr, err = newThrottler(cfg.Throttle, cfg.Logger); err != nil {
		return nil, err
	}
	if s.proxies, err = normalizeProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	s.access = s.newAccessVerifier()
	s.metrics = newMetrics()
	s.minted = newMintCache()
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("/oauth/token", s.instrument("token", s.handleToken))
	s.mux.HandleFunc("/oauth/revoke", s.instrument("revoke", s.handleRevoke))
	s.mux.HandleFunc("/oauth/introspect", s.instrument("introspect", s.handleIntrospect))
	s.mux.HandleFunc("POST /v1/tokens", s.instrument("mint", s.handleMint))
	s.mux.HandleFunc("GET /v1/subjects/{sub}/sessions", s.instrument("sessions", s.handleListSessions))
	s.mux.HandleFunc("DELETE /v1/subjects/{sub}/sessions", s.instrument("sessions", s.handleRevokeSubject))
	s.mux.HandleFunc("DELETE /v1/sessions/{id}", s.instrument("sessions", s.handleRevokeSession))
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	s.mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleMetadata)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.handleReady)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "store not ready", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.cfg.Signer.JWKS())
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	iss := s.cfg.Issuer
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                        iss,
		"token_endpoint":                                iss + "/oauth/token",
		"revocation_endpoint":                           iss + "/oauth/revoke",
		"introspection_endpoint":                        iss + "/oauth/introspect",
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"grant_types_supported":                         []string{grantClientCredentials, grantRefreshToken, grantPassword},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"response_types_supported":                      []string{},
	})
}
