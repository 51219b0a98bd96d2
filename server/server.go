// Package server is the tokend token server as an http.Handler: the OAuth
// 2.0 authorization endpoint with its login page (the authorization code
// flow with PKCE) and the token endpoint (authorization_code,
// client_credentials, refresh_token and password grants), revocation (RFC
// 7009), introspection (RFC 7662), the JWKS, the authorization-server
// metadata (RFC 8414), and OpenID Connect (ID tokens, discovery, userinfo,
// RP-initiated logout). Access tokens are JWTs per RFC 9068; refresh
// tokens are opaque, stored only as hashes, rotated on every use, with
// reuse detection and a grace window for retries.
//
//	st := memory.New() // or sqlite.Open(...): any store.Store
//	signer, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, time.Now())
//	...
//	srv, err := server.New(server.Config{
//		Store: st, Signer: signer, Secret: secret, Issuer: "https://auth.example.com",
//	})
//	...
//	http.ListenAndServe(":8080", srv) // /oauth/authorize, /oauth/token, /oauth/revoke, /.well-known/jwks.json, /v1/...
//
// Errors become RFC 6749 JSON answers only at this edge; the grants and the
// rotation policy see plain Go errors.
//
// # Where a request goes
//
// The token endpoint (token.go) reads and checks a request once — form,
// client and how it authenticated, source address, the refresh token it
// presents as parameter or cookie — and hands it to the grant its
// grant_type names in one table (newGrants); each grant is a file,
// grant_*.go, with one signature, and writes nothing: handleToken writes
// the answer and applies cookie mode. The rules of a family (when it ends,
// its current token, whose it is, which scopes a client may have) live in
// package store, beside the rotation decision (store.Decide), and are not
// repeated here. Abuse control is in the packages throttle, clientip and
// hashgate (see Abuse control).
//
// The authorization endpoint (RFC 6749 §4.1; OpenID Connect Core §3.1) is
// a pipeline too, from the browser to the token endpoint:
//
//  1. authorize.go: readAuthorizeRequest reads GET /oauth/authorize's
//     query (or POST's form) once into an authorizeRequest: the client,
//     its redirect URI (matched by package redirecturi: exact, a loopback
//     one on any port), then response_type, PKCE (package pkce: S256
//     only), scope, resource, prompt and max_age. Until the redirect URI
//     is trusted a refusal is tokend's error page (a pageError), never a
//     redirect; after, it is redirected to the client with state and iss
//     (redirectBack, RFC 9207).
//  2. code.go: authorize decides what the browser sees: the login page
//     (no browser session, prompt=login, max_age passed), the consent
//     page (a third-party client without the user's consent), or a code
//     (issueCode: stored as its hash, 60 s, bound to the client, redirect
//     URI, challenge, user, scope, nonce, resources and session).
//     prompt=none turns each page into login_required or consent_required.
//  3. login.go: the forms post to /login and /consent, which read the
//     request again from their hidden fields, check the CSRF token (tied
//     to the browser by a cookie, keyed by the store secret
//     "login-forms"), check the password as the password grant does
//     (checkCredentials: throttle and hashing gate), start the browser
//     session (browsersession.go: the tokend_session cookie, single
//     sign-on) or record the consent, and send the browser back to step 2
//     (303). The pages themselves, their security headers, CSRF tokens and
//     an operator's templates (Config.Templates) are package loginpage.
//  4. grant_authorization_code.go: the app redeems the code at the token
//     endpoint, one entry of newGrants: redirect URI, PKCE verifier and
//     resources checked, the code redeemed and the family started in one
//     store step (a replay revokes that family). oidc.go adds the ID token
//     (RS256, IDSigner) for the openid scope and serves /userinfo;
//     endsession.go is /oauth/logout (RP-Initiated Logout: the browser
//     session, and with end_families=true its families); handleMetadata
//     serves one document at /.well-known/oauth-authorization-server and
//     /.well-known/openid-configuration.
//
// # Browser apps
//
// A browser app is a public client registered with the origins of its
// pages (store.Client.Origins; `tokend client create --id spa --public
// --origin http://localhost:5173`). /oauth/token, /oauth/revoke and /v1/*
// answer CORS for the union of every client's origins (cors.go); a
// request to /oauth/token or /oauth/revoke whose Origin is not its
// client's is refused with 401 invalid_client. The app's first tokens come
// from the authorization code flow (above; store.Client.RedirectURIs), or
// from its backend: a confidential client with Mint and MintFor naming
// the app mints them (POST /v1/tokens, "client_id": "spa") and hands them
// to the page, which then refreshes with client_id alone. A mint for a
// public client always starts a new family with its refresh token (only a
// confidential client's repeated mints for itself are de-duplicated; see
// handleMint), so the backend may mint on every page load. In cookie mode
// (store.Client.Cookie, `--cookie`) the page never holds a refresh token
// after that first exchange: it lives in the HttpOnly cookie
// __Host-tokend-rt, and the page refreshes and logs out by POSTing
// without it, with the header "X-Tokend: 1" (cookie.go). The token
// server and the page must then share a site (SameSite=Strict): serve
// both under one registrable domain, or behind one host.
//
// # Fleets
//
// Any number of Servers (in any number of processes) may share one store
// behind a load balancer: every record and every rotation lives in the
// store. What each keeps in its own memory, and why that is safe:
//
//   - the throttle's tables (Throttle), the first layer, consulted
//     without a round trip; with a store.FailureCounter (Config) each
//     failure is also counted fleet-wide (throttle.Fleet), so the fleet locks
//     a guesser about as soon as one instance would;
//   - with a store.FamiliarSources, a cache of each user's familiar
//     sources (the store holds them; without it, this is all there is);
//   - the mint cache (mintCache) of confidential clients' mints for
//     themselves, which only saves new families: a repeat that reaches
//     another instance starts a new one, and an entry is handed out again
//     only once the store confirms its family and signing key;
//   - the union of the clients' browser origins (cors.go), which only ever
//     refuses on its own: an origin it holds is confirmed in the store;
//   - the signing keys (Signer), re-read from the store before a
//     signature or a JWKS answer once the last read is KeyStaleness
//     (250 ms) old (KeyChecker), so that a revoked key signs nothing
//     after that on any instance;
//   - the hashing memory budget (HashMemory), which is this process's
//     memory.
//
// # Abuse control
//
// Three packages beside this one slow down guessing and bound the cost
// of logins; abuse.go and hashing.go connect them to Config and turn their
// refusals into OAuth errors:
//
//   - throttle: the failure throttle (Config.Throttle, an alias of
//     throttle.Config) and its fleet counter (Config.FailureCounter,
//     Config.FamiliarSources);
//   - clientip: the source address failures count against
//     (Config.TrustedProxies);
//   - hashgate: the memory budget of password checks (Config.HashMemory,
//     HashQueue, HashWait).
//
// Rotation judges grace and expiry on the store's clock (store.Store's
// Rotate), so instances whose clocks disagree rotate alike. Introspection
// and the families listing (GET /v1/subjects/{sub}/sessions) judge a
// family's expiry on this Server's clock (Config.Now): an instance whose
// clock is off by d may report a refresh token active up to d after the
// store has let it expire, never a revoked one.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/server/clientip"
	"github.com/tokend/tokend/server/hashgate"
	"github.com/tokend/tokend/server/loginpage"
	"github.com/tokend/tokend/server/pkce"
	"github.com/tokend/tokend/server/throttle"
	"github.com/tokend/tokend/store"
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
// client_id, scope, sid): the server sets those, and drops (and logs) a
// claim whose name equals one of them under Unicode case folding, such
// as "SUB" or "ſub", which case-insensitive decoders would read in its
// place.
type ClaimsFunc func(ctx context.Context, req ClaimsRequest) (map[string]any, error)

// ClaimsRequest describes the access token being issued, for a ClaimsFunc.
type ClaimsRequest struct {
	ClientID string
	Subject  string
	Scope    string
	Grant    string // the grant type, or "mint"
}

// DefaultGrace is the default Config.Grace: 5 minutes. A client that lost
// the answer to a rotation (a server killed mid-answer, a network cut)
// retries with the same refresh token; the grace window must outlast the
// outage plus the client's longest backoff and fetch timeout. refresh's
// defaults (backoff up to 1 min, fetch timeout 30 s) keep a client logged
// in through an outage of up to 3.5 minutes. Reuse detection loses nothing
// by the longer window: the repeated answer is the successor the first
// presenter already holds, and whichever copy is used second reveals the
// theft.
const DefaultGrace = 5 * time.Minute

// Config configures a Server. Store, Signer, Secret and Issuer are
// required; the other zero values mean the documented defaults.
type Config struct {
	Store  store.Store
	Signer Signer
	// Secret (at least 32 bytes) keys the MAC of refresh tokens and
	// derives the successor of each. It must be the same on every
	// instance and survive restarts: with another secret, every refresh
	// token issued is refused. Ignored if Secrets is set.
	Secret []byte
	// Secrets are the server secrets as a ring (package secrets, which
	// keeps them in the store): the current one tags new refresh tokens,
	// and every one verifies, so a rotation logs no one out (secrets.go
	// says what they key). SetSecrets replaces them while the server
	// runs. If empty, Secret is a ring of one.
	Secrets secrets.Ring
	// Issuer is the server's URL, the iss of its tokens.
	Issuer string
	// Audience is the aud of access tokens, the name resource servers
	// check (verify.Options.Audience, whose default is also the issuer).
	// Default: Issuer.
	Audience string

	AccessTTL       time.Duration // default 15m, at most MaxAccessTTL; a token lives at least this, less than a second more (exp has whole seconds)
	RefreshIdle     time.Duration // a family unused this long ends; default 30 days
	RefreshAbsolute time.Duration // a family ends this long after it started; default 90 days
	// Grace is how long after a rotation the presented refresh token may
	// be presented again and get the same successor, as long as that
	// successor has never been used: a retry whose answer was lost, or a
	// second tab. Once the successor is used, presenting the old token is
	// reuse and ends the family. Default DefaultGrace; negative disables.
	Grace time.Duration

	// Authenticate checks passwords for the password grant and the login
	// page. Default: the store's built-in users (argon2id).
	Authenticate Authenticator

	// The login page and the browser session (authorize.go, login.go).
	//
	// SessionTTL is how long a browser session at tokend logs its user in
	// to any client without the form (single sign-on). Default
	// DefaultSessionTTL (12h).
	SessionTTL time.Duration
	// Templates is a directory whose templates and stylesheet replace the
	// login pages' defaults (package loginpage says which files and what
	// data each gets): operators brand the pages without rebuilding.
	// Default "": the embedded pages.
	Templates string
	// Claims adds custom claims to access tokens. Optional.
	Claims ClaimsFunc

	// Throttling of failures, and the source address they count against.
	//
	// Throttle slows down the guessing of client secrets, passwords and
	// refresh tokens on every endpoint that checks them; successes are
	// never throttled. The zero value means its documented defaults (on).
	Throttle Throttle
	// FailureCounter counts the throttle's failures across the instances
	// that share it, so that they lock a key about as soon as one
	// instance would (see Throttle). Default: the store.FailureCounter
	// of Store, through any wrappers (store.Capability; postgres and
	// redis have one), else nil, and each instance counts alone.
	FailureCounter store.FailureCounter
	// FamiliarSources keeps, across the instances that share it and
	// across restarts, where each user has logged in from lately, the
	// sources exempt from her account's lock (see Throttle). Default:
	// FailureCounter, if it implements store.FamiliarSources, else Store
	// or a store under it (store.Capability; postgres and redis are
	// ones), else nil, and each instance remembers alone. Used only with
	// a FailureCounter; each call is bounded by the throttle itself.
	FamiliarSources store.FamiliarSources
	// TrustedProxies are the reverse proxies (CIDR prefixes; an address
	// is a /32 or /128) whose X-Forwarded-For header names the source of
	// a request. Default: none, and the header is ignored.
	TrustedProxies []netip.Prefix

	// KeyStaleness is how old the keys a signature or a JWKS answer uses
	// may be: with a KeyChecker Signer (*keys.Set), the server reads the
	// keys from the store again when its last read began longer ago, so
	// that a key revoked by another process or instance (`tokend keys
	// revoke`, which waits this long before it returns) signs nothing and
	// is published by no instance once this has passed. Introspection and
	// the mint cache check a token's key in the store at every request.
	// Default DefaultKeyStaleness; negative: read before every signature.
	KeyStaleness time.Duration

	// JWKSMaxAge is the Cache-Control max-age of the JWKS: how long
	// verifiers may trust it, and so how long a withdrawn key may still be
	// accepted by them. Default 1 minute.
	JWKSMaxAge time.Duration
	// AccessLog logs every request to Logger at info level: method, path
	// (never the query), status, authenticated client id and latency.
	AccessLog bool
	// NoMetricsRoute leaves /metrics off the Handler and off Admin, for
	// serving Metrics on a listen address of its own.
	NoMetricsRoute bool
	// NoAdminRoutes leaves the admin plane, the /v1 API and /metrics, off
	// the Handler, which then answers 404 for them: Admin serves them, on
	// a listen address of its own.
	NoAdminRoutes bool

	// StoreTimeout bounds every call the server makes to Store (and to
	// the FailureCounter found on it), so that a database that stops
	// answering costs a request a 503 temporarily_unavailable with
	// Retry-After within it, and /readyz reports not ready, rather than a
	// hang (store.WithTimeout). Default store.DefaultTimeout (5s);
	// negative: none, for a Store already bounded by store.WithTimeout.
	// The Signer's store (keys.Load) is the caller's to bound.
	StoreTimeout time.Duration

	Logger *slog.Logger
	Now    func() time.Time

	// Password hashing, for the built-in users (the default Authenticate;
	// a custom one does its own admission). A check of an argon2id hash
	// holds the hash's m KiB of memory while it runs, so checks are
	// admitted against a memory budget: those that do not fit wait in a
	// short first-in-first-out queue; beyond it, or after waiting
	// HashWait, a login is answered 503 temporarily_unavailable with
	// Retry-After at once (RFC 6749 §4.1.2.1). A login whose client goes
	// away leaves the queue at once, and if its check was running, the
	// result is dropped and no family is written.

	// PasswordParams are the argon2id parameters of new hashes. A user's
	// stored hash made with others is replaced by one made with these at
	// the user's next successful login. Zero value: m=19456 (19 MiB),
	// t=2, p=1, the OWASP Password Storage Cheat Sheet's configuration.
	PasswordParams PasswordParams
	// HashMemory is the memory budget of password checks, in bytes: with
	// the default parameters, HashMemory / 19 MiB checks run at once.
	// Default DefaultHashMemory (128 MiB: six checks). It must hold one
	// hash of PasswordParams; a stored hash that needs more than all of it
	// is refused (500, logged). Go's collector lets the work areas of
	// finished checks linger until its next cycle, so the process's peak
	// RSS is up to about twice this plus the rest of the server: 260 to
	// 315 MiB at the default, measured with 16 to 500 concurrent logins
	// (`tokend bench --grant password`). A GOMEMLIMIT near the budget
	// narrows it (about 220 MiB with GOMEMLIMIT=192MiB).
	HashMemory int64
	// HashQueue is how many logins may wait for hashing memory. Default
	// DefaultHashQueue (64); negative: none, a login that does not fit is
	// refused at once.
	HashQueue int
	// HashWait is the longest a login waits in the queue before it is
	// refused. Default DefaultHashWait (5s), well within an
	// http.Server's usual WriteTimeout, so that no login is ever answered
	// with a dropped connection.
	HashWait time.Duration

	// checkPassword replaces argon2id's check (password.Check) in tests
	// (export_test.go).
	checkPassword func(ctx context.Context, hash, pw string) error
}

// Server is the token server. Create it with New; it is an http.Handler.
type Server struct {
	cfg   Config
	store store.Store
	// refreshKeys issue and check refresh tokens, from Config.Secrets
	// (or Secret); SetSecrets replaces them.
	refreshKeys *refreshKeys
	log         *slog.Logger
	now         func() time.Time
	mux         *http.ServeMux
	admin       *http.ServeMux // the admin plane (Admin)
	// authenticate checks the password grant's credentials: the subject,
	// and the user record when the built-in users checked them (users.go).
	authenticate func(ctx context.Context, username, pw string) (subject string, user *store.User, err error)
	// grants is the token endpoint's table of grants (token.go).
	grants   []grant
	thr      *throttle.Throttler
	clientIP *clientip.Resolver
	metrics  *metrics
	minted   *mintCache
	// keysReadAt is when the last successful reload of the keys began
	// (Unix ns, the server's clock; keysFresh).
	keysReadAt atomic.Int64
	origins    *originSet  // the union of the clients' browser origins (cors.go)
	refusals   *refusalLog // refused origins, logged rate-limited (originlog.go)
	health     storeHealth
	// access verifies the server's own access tokens (introspection).
	access atomic.Pointer[selfVerifier]

	// pages render the login, consent, logout and error pages, and forms
	// ties each form to its browser (login.go).
	pages *loginpage.Pages
	forms formsKey

	// hashing admits password checks (builtinUser).
	hashing *hashgate.Gate
	// checkPassword is password.Check unless a test replaced it.
	checkPassword func(ctx context.Context, hash, pw string) error
	// dummyHash is checked for unknown users, so that a login takes as
	// long whether or not the user exists.
	dummyHash func() string
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Store = store.WithTimeout(cfg.Store, cfg.StoreTimeout)
	rk, err := newSecretKeys(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux(), admin: http.NewServeMux(),
		refreshKeys:   rk,
		hashing:       hashgate.New(cfg.HashMemory, cfg.HashQueue, cfg.HashWait),
		checkPassword: cfg.checkPassword,
		dummyHash: sync.OnceValue(func() string {
			h, _ := cfg.PasswordParams.Hash("tokend: no such user") // validated by hashingDefaults
			return h
		})}
	if s.checkPassword == nil {
		s.checkPassword = func(_ context.Context, hash, pw string) error { return password.Check(hash, pw) }
	}
	s.authenticate = s.builtinUser
	if a := s.cfg.Authenticate; a != nil {
		s.authenticate = func(ctx context.Context, username, pw string) (string, *store.User, error) {
			sub, err := a(ctx, username, pw)
			return sub, nil, err
		}
	}
	if s.thr, err = newThrottler(cfg, s.refreshKeys); err != nil {
		return nil, err
	}
	if s.clientIP, err = clientip.New(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server: Config.TrustedProxies: %w", err)
	}
	s.metrics = newMetrics()
	s.hashing.Register(s.metrics.reg)
	s.refreshKeys.register(s.metrics.reg)
	s.minted = newMintCache()
	s.origins = &originSet{list: cfg.Store.ListClients, get: cfg.Store.GetClient, now: s.now, log: func(ctx context.Context, err error) {
		s.log.WarnContext(ctx, "load the clients' origins for CORS", "err", err)
	}}
	s.refusals = newRefusalLog(s.log, s.now)
	s.metrics.reg.MustRegister(newStoreGauges(s))
	s.grants = s.newGrants()
	if s.pages, err = loginpage.New(loginpage.Options{Dir: cfg.Templates}); err != nil {
		return nil, fmt.Errorf("server: Config.Templates: %w", err)
	}
	s.routes()
	return s, nil
}

// withDefaults checks c's required fields and fills in the documented
// defaults of the others.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Store == nil:
		return c, errors.New("server: Config.Store is required")
	case c.Signer == nil:
		return c, errors.New("server: Config.Signer is required")
	case len(c.Secret) < 32 && len(c.Secrets) == 0:
		return c, errNoSecret
	case c.Issuer == "":
		return c, errors.New("server: Config.Issuer is required")
	}
	c.Audience = cmp.Or(c.Audience, c.Issuer)
	if c.AccessTTL <= 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.AccessTTL > MaxAccessTTL {
		return c, errors.New("server: Config.AccessTTL is longer than MaxAccessTTL (24h)")
	}
	if c.RefreshIdle <= 0 {
		c.RefreshIdle = 30 * 24 * time.Hour
	}
	if c.RefreshAbsolute <= 0 {
		c.RefreshAbsolute = 90 * 24 * time.Hour
	}
	switch {
	case c.Grace == 0:
		c.Grace = DefaultGrace
	case c.Grace < 0:
		c.Grace = 0
	}
	switch {
	case c.KeyStaleness == 0:
		c.KeyStaleness = DefaultKeyStaleness
	case c.KeyStaleness < 0:
		c.KeyStaleness = 0
	}
	if c.JWKSMaxAge <= 0 {
		c.JWKSMaxAge = time.Minute
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, hashingDefaults(&c)
}

func (s *Server) routes() {
	s.mux.HandleFunc("/oauth/token", s.instrument("token", s.handleToken))
	s.mux.HandleFunc("/oauth/revoke", s.instrument("revoke", s.handleRevoke))
	s.mux.HandleFunc("/oauth/introspect", s.instrument("introspect", s.handleIntrospect))
	s.adminRoutes(s.admin)
	if !s.cfg.NoAdminRoutes {
		s.adminRoutes(s.mux)
	}
	s.mux.HandleFunc("GET /.well-known/jwks.json", s.instrument("jwks", s.handleJWKS))
	s.mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.instrument("metadata", s.handleMetadata))
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.instrument("metadata", s.handleMetadata))
	s.mux.HandleFunc(authorizePath, s.instrument("authorize", s.handleAuthorize))
	s.mux.HandleFunc(loginPath, s.instrument("login", s.handleLogin))
	s.mux.HandleFunc(consentPath, s.instrument("consent", s.handleConsent))
	s.mux.HandleFunc(logoutPath, s.instrument("logout", s.handleLogout))
	s.mux.HandleFunc(userinfoPath, s.instrument("userinfo", s.handleUserInfo))
	s.mux.Handle("GET "+loginpage.DefaultStylePath, s.pages.StyleHandler())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.HandleFunc("GET /openapi.yaml", serveOpenAPI)
}

// Metrics returns the handler of the Prometheus metrics, also served at
// /metrics unless Config.NoMetricsRoute is set.
func (s *Server) Metrics() http.Handler { return s.metrics.handler() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(s.mux, w, r)
}

// serve serves r by mux, with CORS on the paths that have it.
func (s *Server) serve(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	// Only the paths mux serves have CORS: /v1 on one of the Handler
	// and Admin, /oauth/token and the like on the Handler.
	p := r.URL.Path
	served := adminPath(p) == (mux == s.admin) || mux == s.mux && !s.cfg.NoAdminRoutes
	if served && corsPath(p) && s.cors(w, r) {
		return // a preflight
	}
	if h, pattern := mux.Handler(r); pattern == "" {
		serveUnrouted(h, w, r) // a 404 or 405 as JSON
		return
	}
	// Every body a handler reads is bounded here, once (form.go).
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	mux.ServeHTTP(w, r)
}

// handleJWKS serves the Signer's keys as the store holds them, read at
// most Config.KeyStaleness before (keysFresh): a key withdrawn by another
// process is gone from every answer that begins KeyStaleness later. If the store cannot be read, the keys loaded
// before are served with max-age=0, so that verifiers keep verifying
// through a store outage but ask again soon.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	maxAge := int(s.cfg.JWKSMaxAge / time.Second)
	if err := s.keysFresh(r.Context()); err != nil {
		if r.Context().Err() == nil { // not a client that went away
			s.log.WarnContext(r.Context(), "reload signing keys for the JWKS; serving the keys loaded before", "err", err)
		}
		maxAge = 0
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	publicCORS(w)
	_, _ = w.Write(s.cfg.Signer.JWKS())
}

// publicCORS lets any page read the answer (Access-Control-Allow-Origin:
// *, without credentials): for the public documents a browser app reads
// before it has a client's origin to show, the metadata (a login's
// discovery) and the JWKS.
func publicCORS(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

// handleMetadata serves the authorization server's metadata (RFC 8414
// §2), which is also its OpenID Provider metadata (OpenID Connect
// Discovery 1.0 §3): one document at both well-known addresses, readable
// by any page (publicCORS), since @tokend/web/login discovers it from the
// app's origin.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	publicCORS(w)
	iss := s.cfg.Issuer
	algs := []string{}
	if is, ok := s.cfg.Signer.(IDSigner); ok {
		algs = append(algs, is.IDAlgorithm())
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + authorizePath,
		"token_endpoint":                                 iss + "/oauth/token",
		"revocation_endpoint":                            iss + "/oauth/revoke",
		"introspection_endpoint":                         iss + "/oauth/introspect",
		"userinfo_endpoint":                              iss + userinfoPath,
		"end_session_endpoint":                           iss + logoutPath,
		"jwks_uri":                                       iss + "/.well-known/jwks.json",
		"grant_types_supported":                          s.grantTypes(),
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"code_challenge_methods_supported":               []string{pkce.MethodS256},
		"authorization_response_iss_parameter_supported": true,
		"prompt_values_supported":                        []string{"none", "login", "consent"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          algs,
		"scopes_supported":                               []string{"openid", "profile", "offline_access"},
		"claims_supported":                               []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid", "preferred_username"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post"},
	})
}
