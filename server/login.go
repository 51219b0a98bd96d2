package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/server/loginpage"
	"github.com/tokend/tokend/store"
)

// The login and consent forms (step 3 of the authorization pipeline,
// authorize.go). Each form carries the authorization request's
// parameters as hidden fields and a CSRF token for its purpose; its POST
// reads the request again as the authorization endpoint does, checks the
// token, acts, and sends the browser back to the authorization endpoint
// with the same parameters (303), which now finds the session or the
// consent. Nothing of the request is kept at tokend between the two.

// Paths of the authorization server's browser endpoints, and the CSRF
// purposes of its forms.
const (
	authorizePath  = "/oauth/authorize"
	userinfoPath   = "/userinfo"
	loginPath      = "/login"
	consentPath    = "/consent"
	purposeLogin   = "login"
	purposeConsent = "consent"
	purposeLogout  = "logout"
)

// formFields are the fields of tokend's own forms, which are not
// parameters of the authorization request they carry.
var formFields = []string{"username", "password", "decision", loginpage.CSRFField}

// loginView is what the login page shows besides the form: the error of
// the last attempt, its Retry-After, and the username to prefill.
type loginView struct {
	status   int
	errKind  loginpage.ErrorKind
	wait     int // seconds, for TooManyAttempts and Busy
	username string
}

// formsKey makes the CSRF tokens of the forms, under a key the store
// keeps (store.Secret "login-forms"), so that every instance of a fleet
// checks the forms of every other, across restarts. It is read at the
// first form and kept.
type formsKey struct {
	mu   sync.Mutex
	csrf *loginpage.CSRF
}

// csrf returns the forms' CSRF, reading its key at the first call.
func (s *Server) csrf(ctx context.Context) (*loginpage.CSRF, error) {
	s.forms.mu.Lock()
	defer s.forms.mu.Unlock()
	if s.forms.csrf != nil {
		return s.forms.csrf, nil
	}
	var fresh [32]byte
	_, _ = rand.Read(fresh[:])
	key, err := s.store.Secret(ctx, "login-forms", fresh[:])
	if err != nil {
		return nil, fmt.Errorf("read the forms' key: %w", err)
	}
	c, err := loginpage.NewCSRF(key, &loginpage.CSRFOptions{Insecure: !s.secureCookies(), Now: s.now})
	if err != nil {
		return nil, fmt.Errorf("forms' key: %w", err)
	}
	s.forms.csrf = c
	return c, nil
}

// formToken returns the CSRF token of a form for purpose, for the
// browser of r (setting its cookie on w if it has none).
func (s *Server) formToken(w http.ResponseWriter, r *http.Request, purpose string) (string, error) {
	c, err := s.csrf(r.Context())
	if err != nil {
		return "", err
	}
	return c.Token(w, r, purpose), nil
}

// hiddenFields returns the authorization request's parameters as hidden
// fields, in a stable order, and the form's CSRF token last.
func hiddenFields(params url.Values, csrf string) []loginpage.Field {
	keys := make([]string, 0, len(params))
	for k := range params {
		if !slices.Contains(formFields, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []loginpage.Field
	for _, k := range keys {
		for _, v := range params[k] {
			out = append(out, loginpage.Field{Name: k, Value: v})
		}
	}
	return append(out, loginpage.Field{Name: loginpage.CSRFField, Value: csrf})
}

// showLogin renders the login page for a.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, a *authorizeRequest, v loginView) {
	tok, err := s.formToken(w, r, purposeLogin)
	if err != nil {
		s.authorizeFailed(w, r, nil, err)
		return
	}
	form := loginpage.Form{
		Action: s.cfg.Issuer + loginPath, Hidden: hiddenFields(a.params, tok),
		Error: v.errKind, FormTargets: []string{a.redirectURI},
	}
	if v.wait > 0 {
		form.RetryAfter = time.Duration(v.wait) * time.Second
		w.Header().Set("Retry-After", strconv.Itoa(v.wait))
	}
	status := v.status
	if status == 0 {
		status = http.StatusOK
	}
	if err := s.pages.Login(w, status, loginpage.LoginData{Form: form, Username: v.username, Client: a.client.ID}); err != nil {
		s.pageFailed(w, r, err)
	}
}

// showConsent renders the consent page for a and the session's user.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, a *authorizeRequest, sess *store.Session) {
	tok, err := s.formToken(w, r, purposeConsent)
	if err != nil {
		s.authorizeFailed(w, r, nil, err)
		return
	}
	form := loginpage.Form{
		Action: s.cfg.Issuer + consentPath, Hidden: hiddenFields(a.params, tok),
		FormTargets: []string{a.redirectURI},
	}
	d := loginpage.ConsentData{Form: form, Client: a.client.ID, User: sess.Subject, Scopes: strings.Fields(a.scope)}
	if err := s.pages.Consent(w, http.StatusOK, d); err != nil {
		s.pageFailed(w, r, err)
	}
}

// showError renders tokend's error page: the request cannot be answered
// at the client.
func (s *Server) showError(w http.ResponseWriter, r *http.Request, e *pageError) {
	if e.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, POST")
	}
	if err := s.pages.Error(w, e.status, loginpage.ErrorData{Title: "The request cannot be completed", Message: e.title}); err != nil {
		s.pageFailed(w, r, err)
	}
}

// pageFailed logs a page that could not be rendered (an operator's
// template that fails on this data) and answers 500 in plain text.
func (s *Server) pageFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// formRequest reads a POST of one of tokend's forms and the
// authorization request it carries. It answers the browser itself, and
// returns nil, when there is nothing more to do.
func (s *Server) formRequest(w http.ResponseWriter, r *http.Request) *authorizeRequest {
	if r.Method != http.MethodPost {
		s.showError(w, r, &pageError{http.StatusMethodNotAllowed, "The form must be posted."})
		return nil
	}
	if err := r.ParseForm(); err != nil {
		s.showError(w, r, &pageError{http.StatusBadRequest, "The form is malformed."})
		return nil
	}
	params := url.Values{}
	for k, vs := range r.PostForm {
		if !slices.Contains(formFields, k) {
			params[k] = vs
		}
	}
	a, err := s.readAuthorizeRequest(r.Context(), params)
	if err != nil {
		s.authorizeFailed(w, r, a, err)
		return nil
	}
	return a
}

// handleLogin checks the login form: its CSRF token, then the username
// and password as the password grant does (checkCredentials: the
// throttle, the hashing gate). On success it starts a browser session
// and sends the browser back to the authorization endpoint, without
// prompt=login, which the form has just satisfied. Every failure shows
// the form again with a message that says nothing of which part was
// wrong.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	a := s.formRequest(w, r)
	if a == nil {
		return
	}
	ctx := r.Context()
	user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	if kind := s.checkForm(r, purposeLogin); kind != loginpage.NoError {
		s.showLogin(w, r, a, loginView{status: http.StatusForbidden, errKind: kind, username: user})
		return
	}
	if user == "" || pass == "" || store.CheckID(user) != nil {
		s.showLogin(w, r, a, loginView{status: http.StatusBadRequest, errKind: loginpage.BadCredentials, username: user})
		return
	}
	sub, _, err := s.checkCredentials(ctx, s.sourceAddr(r), user, pass)
	if err != nil {
		s.loginRefused(w, r, a, user, err)
		return
	}
	if old, err := s.currentSession(ctx, r); err == nil && old != nil {
		// A new login replaces the browser's session: the old one ends.
		if err := s.store.EndSession(ctx, old.ID, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.WarnContext(ctx, "end the session a new login replaces", "err", err)
		}
	}
	if _, err := s.startSession(ctx, w, sub); err != nil {
		s.authorizeFailed(w, r, a, err)
		return
	}
	s.backToAuthorize(w, a, "login")
}

// loginRefused shows the login form again after checkCredentials refused
// the user: bad credentials, the throttle, the hashing gate.
func (s *Server) loginRefused(w http.ResponseWriter, r *http.Request, a *authorizeRequest, user string, err error) {
	var e *Error
	switch {
	case errors.Is(err, errBadPassword):
		s.showLogin(w, r, a, loginView{status: http.StatusBadRequest, errKind: loginpage.BadCredentials, username: user})
	case errors.As(err, &e) && e.Status == http.StatusTooManyRequests:
		s.showLogin(w, r, a, loginView{status: e.Status, errKind: loginpage.TooManyAttempts, wait: e.RetryAfter, username: user})
	case errors.As(err, &e) && e.Status == http.StatusServiceUnavailable:
		s.showLogin(w, r, a, loginView{status: e.Status, errKind: loginpage.Busy, wait: e.RetryAfter, username: user})
	case r.Context().Err() != nil:
		// The browser went away; nothing to answer.
	default:
		s.authorizeFailed(w, r, a, err)
	}
}

// checkForm checks the CSRF token of a form for purpose: NoError, or what
// to tell the user (FormExpired for a genuine form too old, BadForm for
// anything else, such as a form posted from another site).
func (s *Server) checkForm(r *http.Request, purpose string) loginpage.ErrorKind {
	return s.checkFormValue(r, purpose, r.PostForm.Get(loginpage.CSRFField))
}

// checkFormValue is checkForm for the token value.
func (s *Server) checkFormValue(r *http.Request, purpose, value string) loginpage.ErrorKind {
	c, err := s.csrf(r.Context())
	if err != nil {
		return loginpage.BadForm
	}
	switch err := c.Check(r, purpose, value); {
	case err == nil:
		return loginpage.NoError
	case errors.Is(err, loginpage.ErrFormExpired):
		return loginpage.FormExpired
	}
	return loginpage.BadForm
}

// handleConsent records the user's answer on the consent page: allow
// stores the consent and sends the browser back to the authorization
// endpoint (without prompt=consent); deny answers the client
// access_denied (RFC 6749 §4.1.2.1). Without a session, the browser goes
// back to log in.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	a := s.formRequest(w, r)
	if a == nil {
		return
	}
	ctx := r.Context()
	sess, err := s.currentSession(ctx, r)
	if err != nil || sess == nil {
		if err == nil {
			s.backToAuthorize(w, a, "")
			return
		}
		s.authorizeFailed(w, r, a, err)
		return
	}
	if kind := s.checkForm(r, purposeConsent); kind != loginpage.NoError {
		s.showError(w, r, &pageError{http.StatusForbidden, "The form has expired or was not sent from this page. Go back to the application and try again."})
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		s.authorizeFailed(w, r, a, &Error{Code: oauth.AccessDenied, Description: "the user denied the request"})
		return
	}
	c := store.Consent{Subject: sess.Subject, ClientID: a.client.ID, Scopes: strings.Fields(a.scope), GrantedAt: s.now()}
	if err := s.store.PutConsent(ctx, c); err != nil {
		s.authorizeFailed(w, r, a, err)
		return
	}
	s.backToAuthorize(w, a, "consent")
}

// backToAuthorize sends the browser to the authorization endpoint with
// a's parameters, dropping drop from its prompt ("" for none): the form
// just answered it, and asking again would loop. After the login form,
// max_age goes too: the user has just authenticated, which any max_age
// asks for (max_age=0 is prompt=login, OpenID Connect Core §3.1.2.1).
func (s *Server) backToAuthorize(w http.ResponseWriter, a *authorizeRequest, drop string) {
	params := url.Values{}
	for k, vs := range a.params {
		params[k] = vs
	}
	if drop == "login" {
		params.Del("max_age")
	}
	if drop != "" && params.Has("prompt") {
		kept := slices.DeleteFunc(strings.Fields(params.Get("prompt")), func(p string) bool { return p == drop })
		if len(kept) == 0 {
			params.Del("prompt")
		} else {
			params.Set("prompt", strings.Join(kept, " "))
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", s.cfg.Issuer+authorizePath+"?"+params.Encode())
	w.WriteHeader(http.StatusSeeOther)
}
