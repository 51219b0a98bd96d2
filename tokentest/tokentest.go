// Package tokentest provides an OAuth 2.0 token endpoint for tests (RFC 6749 §4.4 client
// credentials and §6 refresh), in the style of net/http/httptest.
//
// A Server issues opaque random access and refresh tokens, remembers them in memory and
// can answer whether an access token is still valid, so a test can exercise token
// fetching, refresh-token rotation, revocation and endpoint failures against a real HTTP
// server on loopback. Tokens are never logged.
package tokentest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/internal/oauth"
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultClientID     = "client"
	DefaultClientSecret = "secret"
	DefaultTTL          = time.Hour
)

// maxBodyBytes limits the size of a token request body.
const maxBodyBytes = 64 << 10

// Server is a fake token endpoint running on loopback. All methods are safe for concurrent use.
type Server struct {
	URL string // base URL, e.g. http://127.0.0.1:1234 (no trailing slash)

	ts   *httptest.Server
	opts Options // defaults applied; never modified after NewServer

	mu        sync.Mutex
	access    map[string]time.Time // access token -> expiry (zero: never expires)
	refresh   map[string]struct{}  // refresh tokens currently accepted
	failN     int                  // remaining one-shot failures (Fail)
	failNext  failure              // answer for one-shot failures
	failing   failure              // persistent failure (SetFailing); zero: off
	retry     string               // Retry-After of injected failures (SetRetryAfter); "": none
	delay     func(*http.Request)
	requests  int
	refreshes int
	failures  int
}

type failure struct {
	status int
	code   string
}

// Options configures a Server. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the only accepted client credentials (default "client"
	// and "secret"). They are accepted with client_secret_basic (HTTP Basic, form-encoded
	// per RFC 6749 §2.3.1) or client_secret_post, and compared in constant time.
	ClientID, ClientSecret string
	// TTL is the access token lifetime, rounded up to whole seconds: a token is valid
	// for exactly the expires_in it is sent with, never less, as with tokend. Zero means
	// one hour; negative means expires_in is omitted and tokens never expire.
	TTL time.Duration
	// Rotate makes the refresh grant return a new refresh token and invalidate the old
	// one. Without it the response carries no refresh_token and the old one stays valid.
	Rotate bool
	// Now is the clock used for issuing and validating tokens; default time.Now. It is
	// called from handler goroutines, so it must be safe for concurrent use.
	Now func() time.Time
}

// NewServer starts and returns a new Server. opts may be nil. The caller should call
// Close when finished, to shut it down.
func NewServer(opts *Options) *Server {
	s := &Server{
		access:  make(map[string]time.Time),
		refresh: make(map[string]struct{}),
	}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.ClientID == "" {
		s.opts.ClientID = DefaultClientID
	}
	if s.opts.ClientSecret == "" {
		s.opts.ClientSecret = DefaultClientSecret
	}
	if s.opts.TTL == 0 {
		s.opts.TTL = DefaultTTL
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.serveToken)
	s.ts = httptest.NewServer(mux)
	s.URL = s.ts.URL
	return s
}

// Close shuts down the server and blocks until all outstanding requests on it have
// completed. A SetDelay function that never returns makes Close block forever.
func (s *Server) Close() { s.ts.Close() }

// TokenURL returns the URL of the token endpoint, URL + "/token".
func (s *Server) TokenURL() string { return s.URL + "/token" }

// Client returns an HTTP client configured for making requests to the server. It is
// closed together with the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// IssueRefreshToken creates a refresh token the server will accept (as if the user had
// logged in), so tests can start a refresh-token flow without an authorization-code grant.
func (s *Server) IssueRefreshToken() string {
	rt := newToken("rt_")
	s.mu.Lock()
	s.refresh[rt] = struct{}{}
	s.mu.Unlock()
	return rt
}

// Valid reports whether accessToken was issued by this server and has not expired (per
// Options.Now) or been revoked.
func (s *Server) Valid(accessToken string) bool {
	s.mu.Lock()
	exp, ok := s.access[accessToken]
	s.mu.Unlock()
	return ok && (exp.IsZero() || s.opts.Now().Before(exp))
}

// Handler returns an http.Handler that accepts only tokens for which Valid is true
// (Authorization: Bearer) and answers 200 "ok" to them. It answers every other request
// with 401, `WWW-Authenticate: Bearer error="invalid_token"` and an RFC 6750 §3.1 JSON
// error body. It is a stand-in resource server for transport tests.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.Valid(strings.TrimSpace(tok)) {
			oauth.WriteError(w, oauth.Answer{Status: http.StatusUnauthorized, Challenge: oauth.BearerChallenge("", oauth.InvalidToken, "", "")},
				oauth.InvalidToken, "the access token is not valid")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
}

// RevokeAccessToken makes a previously issued access token invalid (simulates
// server-side revocation). Unknown tokens are ignored.
func (s *Server) RevokeAccessToken(accessToken string) {
	s.mu.Lock()
	delete(s.access, accessToken)
	s.mu.Unlock()
}

// Fail makes the next n token requests fail with the given HTTP status and OAuth error
// code (e.g. 503, "temporarily_unavailable" or 400, "invalid_grant"); an empty code means
// "server_error". Answers are RFC 6749 §5.2 JSON bodies. Injected failures are answered
// before the request is examined, so they consume no refresh token. n <= 0 cancels
// pending failures. Note that a client probing auth styles (oauth2.AuthStyleAutoDetect)
// sends a second request when the first fails. Fail panics if status is not 4xx or 5xx.
func (s *Server) Fail(n int, status int, code string) {
	checkStatus(status)
	s.mu.Lock()
	s.failN, s.failNext = max(n, 0), failure{status, code}
	s.mu.Unlock()
}

// SetFailing makes every token request fail like Fail until called again with status 0.
// Pending failures from Fail are answered first.
func (s *Server) SetFailing(status int, code string) {
	if status != 0 {
		checkStatus(status)
	}
	s.mu.Lock()
	s.failing = failure{status, code}
	s.mu.Unlock()
}

// SetRetryAfter makes injected failures (Fail, SetFailing) carry the header Retry-After:
// v, as tokend's 429 and 503 answers do (RFC 9110 §10.2.3: delay-seconds such as "5", or
// an HTTP-date). v is sent as it is, so a test can send one a client cannot read; ""
// sends none (the default).
func (s *Server) SetRetryAfter(v string) {
	s.mu.Lock()
	s.retry = v
	s.mu.Unlock()
}

// SetDelay sets a function called at the start of each token request (in the handler
// goroutine) before it is answered: tests use it to block on a channel or count calls.
// f may be nil to remove it.
func (s *Server) SetDelay(f func(r *http.Request)) {
	s.mu.Lock()
	s.delay = f
	s.mu.Unlock()
}

// Requests returns the total number of token endpoint requests received.
func (s *Server) Requests() int { return s.stat(&s.requests) }

// Refreshes returns the number of successful refresh_token grants.
func (s *Server) Refreshes() int { return s.stat(&s.refreshes) }

// Failures returns the number of token requests answered with an error.
func (s *Server) Failures() int { return s.stat(&s.failures) }

func (s *Server) stat(p *int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *p
}

func checkStatus(status int) {
	if status < 400 || status > 599 {
		panic("tokentest: failure status must be 4xx or 5xx")
	}
}

func newToken(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never returns an error; crashes the program on failure
	return prefix + hex.EncodeToString(b)
}

// injectedFailure returns the injected failure to answer with, if any.
func (s *Server) injectedFailure() failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN > 0 {
		s.failN--
		return s.failNext
	}
	return s.failing
}

// refusal is a token request's error response (RFC 6749 §5.2): its HTTP
// status, error code and error_description.
type refusal struct {
	status     int
	code, desc string
}

// serveToken answers a token request: an injected failure if one is due,
// otherwise the grant the request asks for.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.receive(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")

	if f := s.injectedFailure(); f.status != 0 {
		s.failInjected(w, f)
		return
	}
	form, ref := readTokenForm(w, r)
	if ref != nil {
		s.fail(w, ref.status, ref.code, ref.desc)
		return
	}
	if ref := s.authenticate(r, form); ref != nil {
		s.fail(w, ref.status, ref.code, ref.desc)
		return
	}
	resp, ref := s.grant(form)
	if ref != nil {
		s.fail(w, ref.status, ref.code, ref.desc)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// receive counts a token request and runs the SetDelay function, if any.
func (s *Server) receive(r *http.Request) {
	s.mu.Lock()
	s.requests++
	delay := s.delay
	s.mu.Unlock()
	if delay != nil {
		delay(r)
	}
}

// failInjected answers with the injected failure f (error code
// server_error if f has none), and the Retry-After set by SetRetryAfter.
func (s *Server) failInjected(w http.ResponseWriter, f failure) {
	if f.code == "" {
		f.code = oauth.ServerError
	}
	s.mu.Lock()
	if s.retry != "" {
		w.Header().Set("Retry-After", s.retry)
	}
	s.mu.Unlock()
	s.fail(w, f.status, f.code, "failure injected by tokentest")
}

// readTokenForm reads the form of a token request (RFC 6749 §3.2: a POST
// of application/x-www-form-urlencoded parameters, none repeated), at most
// maxBodyBytes of it, and checks that it names a grant_type. Parameters in
// the URL query are ignored.
func readTokenForm(w http.ResponseWriter, r *http.Request) (url.Values, *refusal) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &refusal{http.StatusMethodNotAllowed, oauth.InvalidRequest, "token requests must use POST"}
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return nil, &refusal{http.StatusBadRequest, oauth.InvalidRequest, "Content-Type must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &refusal{http.StatusRequestEntityTooLarge, oauth.InvalidRequest, "request body too large"}
		}
		return nil, &refusal{http.StatusBadRequest, oauth.InvalidRequest, "malformed form body"}
	}
	form := r.PostForm // parameters in the URL query are ignored
	for k, v := range form {
		if len(v) > 1 {
			return nil, &refusal{http.StatusBadRequest, oauth.InvalidRequest, "parameter " + k + " repeated"}
		}
	}
	if form.Get("grant_type") == "" {
		return nil, &refusal{http.StatusBadRequest, oauth.InvalidRequest, "missing grant_type"}
	}
	return form, nil
}

// grant runs the grant named by form's grant_type, client_credentials or
// refresh_token, and returns the successful response (RFC 6749 §5.1),
// echoing the requested scope.
func (s *Server) grant(form url.Values) (map[string]any, *refusal) {
	resp := map[string]any{"token_type": "Bearer"}
	if scope := form.Get("scope"); scope != "" {
		resp["scope"] = scope
	}
	switch form.Get("grant_type") {
	case "client_credentials":
		s.mu.Lock()
		s.issueAccess(resp)
		s.mu.Unlock()
	case "refresh_token":
		if ref := s.refreshGrant(form.Get("refresh_token"), resp); ref != nil {
			return nil, ref
		}
	default:
		return nil, &refusal{http.StatusBadRequest, oauth.UnsupportedGrantType, "grant_type must be client_credentials or refresh_token"}
	}
	return resp, nil
}

// refreshGrant redeems the refresh token old (RFC 6749 §6), adding a new
// access token to resp and, with Options.Rotate, a new refresh token that
// replaces old.
func (s *Server) refreshGrant(old string, resp map[string]any) *refusal {
	if old == "" {
		return &refusal{http.StatusBadRequest, oauth.InvalidRequest, "missing refresh_token"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refresh[old]; !ok {
		return &refusal{http.StatusBadRequest, oauth.InvalidGrant, "refresh token is invalid, expired, revoked or already used"}
	}
	s.refreshes++
	s.issueAccess(resp)
	if s.opts.Rotate {
		delete(s.refresh, old)
		rt := newToken("rt_")
		s.refresh[rt] = struct{}{}
		resp["refresh_token"] = rt
	}
	return nil
}

// issueAccess records a new access token and adds it to resp. s.mu must be held.
func (s *Server) issueAccess(resp map[string]any) {
	at := newToken("at_")
	var exp time.Time
	if life := s.opts.TTL; life > 0 {
		if r := life % time.Second; r > 0 {
			life += time.Second - r
		}
		exp = s.opts.Now().Add(life)
		resp["expires_in"] = int64(life / time.Second)
	}
	s.access[at] = exp
	resp["access_token"] = at
}

// authenticate checks client credentials (RFC 6749 §2.3.1) and returns a refusal
// if they are missing or wrong.
func (s *Server) authenticate(r *http.Request, form url.Values) *refusal {
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.Has("client_secret") {
			return &refusal{http.StatusBadRequest, oauth.InvalidRequest, "more than one client authentication method used"}
		}
		var errID, errSecret error
		id, errID = url.QueryUnescape(id)
		secret, errSecret = url.QueryUnescape(secret)
		if errID != nil || errSecret != nil {
			return &refusal{http.StatusUnauthorized, oauth.InvalidClient, "malformed client credentials"}
		}
	} else if r.Header.Get("Authorization") != "" {
		return &refusal{http.StatusUnauthorized, oauth.InvalidClient, "unsupported authentication scheme"}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret))
	if idOK&secretOK != 1 {
		return &refusal{http.StatusUnauthorized, oauth.InvalidClient, "client authentication failed"}
	}
	return nil
}

// fail writes an RFC 6749 §5.2 error response, with a Basic challenge if status is 401.
func (s *Server) fail(w http.ResponseWriter, status int, code, desc string) {
	a := oauth.Answer{Status: status}
	if status == http.StatusUnauthorized {
		a.Challenge = oauth.BasicChallenge("tokentest")
	}
	s.mu.Lock()
	s.failures++
	s.mu.Unlock()
	oauth.WriteError(w, a, code, desc)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
