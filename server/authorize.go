package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/server/pkce"
	"github.com/tokend/tokend/server/redirecturi"
	"github.com/tokend/tokend/store"
)

// The authorization endpoint (RFC 6749 §3.1, §4.1; OpenID Connect Core
// §3.1.2) is one pipeline too:
//
//  1. readAuthorizeRequest reads the parameters once into an
//     authorizeRequest. Until the client and its redirect URI are known
//     to be registered, a refusal is a page of tokend's (pageError) and
//     never a redirect (RFC 6749 §4.1.2.1); after, it is a redirect to
//     the client with error, state and iss (RFC 9207).
//  2. authorize decides what the browser sees: the login page (no
//     session, prompt=login, max_age passed), the consent page (a
//     third-party client the user has not consented to), or a code.
//  3. The login and consent forms post back to tokend (login.go), which
//     sends the browser to the authorization endpoint again with the
//     same parameters.

// grantAuthorizationCode is the grant type of RFC 6749 §4.1.3.
const grantAuthorizationCode = "authorization_code"

// maxAuthorizeParam bounds each parameter of an authorization request,
// in bytes (state and nonce are the client's; a URL is at most
// redirecturi.MaxLength).
const maxAuthorizeParam = 2048

// authorizeRequest is an authorization request as readAuthorizeRequest
// read and checked it.
type authorizeRequest struct {
	// params are the parameters as received, carried through the login
	// and consent forms.
	params url.Values
	client store.Client
	// redirectURI is where the browser goes back to: the one presented,
	// or the client's only registered one if none was. presented says
	// whether the request named it (the token request must then name
	// the same, RFC 6749 §4.1.3).
	redirectURI string
	presented   bool
	state       string
	nonce       string
	scope       string
	challenge   string
	resources   []string
	prompt      []string // of none, login, consent
	maxAge      int      // seconds; -1 if absent
}

// hasPrompt reports whether the request's prompt names p.
func (a *authorizeRequest) hasPrompt(p string) bool { return slices.Contains(a.prompt, p) }

// openID reports whether the request asks for an ID token (the openid
// scope, OpenID Connect Core §3.1.2.1).
func (a *authorizeRequest) openID() bool { return slices.Contains(strings.Fields(a.scope), "openid") }

// pageError is a refusal shown on tokend's own error page: the request
// cannot be trusted to name where to send the browser.
type pageError struct {
	status int
	title  string
}

func (e *pageError) Error() string { return "authorize: " + e.title }

// readAuthorizeRequest reads the parameters of an authorization request
// (the query of a GET, or the form of a POST: OpenID Connect Core
// §3.1.2.1) and checks them. The error is a *pageError while the client
// or its redirect URI is in doubt, and an *Error to redirect with after.
func (s *Server) readAuthorizeRequest(ctx context.Context, params url.Values) (*authorizeRequest, error) {
	for k, vs := range params {
		if len(vs) > 1 && k != "resource" {
			return nil, &pageError{http.StatusBadRequest, "The request repeats a parameter."}
		}
		for _, v := range vs {
			if len(v) > maxAuthorizeParam {
				return nil, &pageError{http.StatusBadRequest, "A parameter of the request is too long."}
			}
		}
	}
	a := &authorizeRequest{params: params, maxAge: -1}
	c, err := s.authorizeClient(ctx, params.Get("client_id"))
	if err != nil {
		return nil, err
	}
	a.client = c
	if err := a.readRedirectURI(); err != nil {
		return nil, err
	}
	// From here on, the client hears of what is wrong.
	a.state = params.Get("state")
	return a, a.readRest(params)
}

// authorizeClient returns the client an authorization request names,
// or the page that refuses it.
func (s *Server) authorizeClient(ctx context.Context, id string) (store.Client, error) {
	if id == "" {
		return store.Client{}, &pageError{http.StatusBadRequest, "The request does not name a client."}
	}
	if store.CheckID(id) != nil {
		return store.Client{}, &pageError{http.StatusBadRequest, "The request names an unknown client."}
	}
	c, err := s.store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Client{}, &pageError{http.StatusBadRequest, "The request names an unknown client."}
	}
	if err != nil {
		return store.Client{}, fmt.Errorf("get client: %w", err)
	}
	return c, nil
}

// readRedirectURI sets where the browser goes back to: the presented
// redirect_uri if it matches one the client registered
// (redirecturi.Match); the only registered one if none is presented and
// it is not a loopback pattern; otherwise the request is refused with a
// page, never a redirect (RFC 6749 §3.1.2.4, §4.1.2.1).
func (a *authorizeRequest) readRedirectURI() error {
	p := a.params.Get("redirect_uri")
	switch {
	case p != "":
		if _, ok := redirecturi.Match(a.client.RedirectURIs, p); !ok {
			return &pageError{http.StatusBadRequest, "The redirect URI is not registered for this client."}
		}
		a.redirectURI, a.presented = p, true
	case len(a.client.RedirectURIs) == 1 && !loopbackPattern(a.client.RedirectURIs[0]):
		a.redirectURI = a.client.RedirectURIs[0]
	case len(a.client.RedirectURIs) == 0:
		return &pageError{http.StatusBadRequest, "This client has no redirect URI registered."}
	default:
		return &pageError{http.StatusBadRequest, "The request must name its redirect URI."}
	}
	return nil
}

// loopbackPattern reports whether a registered redirect URI stands for
// every port of a loopback IP literal (RFC 8252 §7.3): the port the app
// listens on is known only from the request, so it is never a default.
func loopbackPattern(uri string) bool {
	return strings.HasPrefix(uri, "http://127.0.0.1") || strings.HasPrefix(uri, "http://[::1]")
}

// maxMaxAge caps max_age, in seconds (ten years), so that no value
// overflows a time.Duration.
const maxMaxAge = 10 * 365 * 24 * 3600

// readRest checks the parameters that the client is told about by a
// redirect: response_type, PKCE, scope, resource, prompt, max_age and the
// client's right to the grant.
func (a *authorizeRequest) readRest(params url.Values) error {
	if rt := params.Get("response_type"); rt != "code" {
		if rt == "" {
			return errInvalidRequest(`missing "response_type"`)
		}
		return &Error{Status: http.StatusBadRequest, Code: oauth.UnsupportedResponseType, Description: `"response_type" must be code`}
	}
	if !allowsGrant(a.client, grantAuthorizationCode) {
		return &Error{Status: http.StatusBadRequest, Code: oauth.UnauthorizedClient, Description: "the client may not use the authorization code grant"}
	}
	if err := pkce.CheckChallenge(params.Get("code_challenge"), params.Get("code_challenge_method")); err != nil {
		return errInvalidRequest(err.Error())
	}
	a.challenge = params.Get("code_challenge")
	scope, err := requestedScope(params, a.client)
	if err != nil {
		return err
	}
	a.scope = scope
	a.nonce = params.Get("nonce")
	if a.resources, err = requestedResources(params["resource"], a.client); err != nil {
		return err
	}
	if a.prompt, err = readPrompt(params.Get("prompt")); err != nil {
		return err
	}
	if params.Has("max_age") {
		n, err := strconv.Atoi(params.Get("max_age"))
		if err != nil || n < 0 {
			return errInvalidRequest(`"max_age" must be a number of seconds`)
		}
		a.maxAge = min(n, maxMaxAge)
	}
	if a.openID() && !a.presented {
		// OpenID Connect Core §3.1.2.1: redirect_uri is required.
		return errInvalidRequest(`missing "redirect_uri" (required with the openid scope)`)
	}
	return nil
}

// readPrompt reads OpenID Connect's prompt parameter (Core §3.1.2.1):
// space-separated values among none, login and consent (select_account is
// accepted and means nothing here: there is one account per session);
// none goes with no other value.
func readPrompt(v string) ([]string, error) {
	ps := strings.Fields(v)
	for _, p := range ps {
		switch p {
		case "none", "login", "consent", "select_account":
		default:
			return nil, errInvalidRequest(`"prompt" must be none, login or consent`)
		}
	}
	if slices.Contains(ps, "none") && len(ps) > 1 {
		return nil, errInvalidRequest(`"prompt=none" goes with no other value`)
	}
	return ps, nil
}

// requestedResources checks resource indicators (RFC 8707 §2): each an
// absolute URI without a fragment, and one the client is registered for.
// None requested is none: the tokens are for Config.Audience.
func requestedResources(vs []string, c store.Client) ([]string, error) {
	var out []string
	for _, v := range vs {
		u, err := url.Parse(v)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(v, "#") {
			return nil, errInvalidTarget(`"resource" must be an absolute URI without a fragment`)
		}
		if !slices.Contains(c.Resources, v) {
			return nil, errInvalidTarget("the client may not ask for this resource")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func errInvalidTarget(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: oauth.InvalidTarget, Description: desc}
}

// redirectBack sends the browser to the client's redirect URI with the
// answer's parameters, the request's state, and iss (RFC 9207 §2), kept
// after any query the registered URI has (RFC 6749 §3.1.2).
func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, a *authorizeRequest, answer url.Values) {
	if a.state != "" {
		answer.Set("state", a.state)
	}
	answer.Set("iss", s.cfg.Issuer)
	target := appendQuery(a.redirectURI, answer)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.Header().Set("Location", target)
	w.WriteHeader(status)
}

// authorizeFailed answers a refused authorization request: with tokend's
// error page for a *pageError (or a failure before the request could be
// trusted), else by redirecting the error to the client (RFC 6749
// §4.1.2.1). A store failure is server_error or temporarily_unavailable
// at the client, and logged.
func (s *Server) authorizeFailed(w http.ResponseWriter, r *http.Request, a *authorizeRequest, err error) {
	var pe *pageError
	if errors.As(err, &pe) || a == nil {
		if pe == nil {
			s.logAuthorizeFailure(r, err)
			pe = &pageError{http.StatusInternalServerError, "The server cannot answer now. Try again later."}
			if errors.Is(err, store.ErrUnavailable) {
				pe.status = http.StatusServiceUnavailable
			}
		}
		s.showError(w, r, pe)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		s.logAuthorizeFailure(r, err)
		e = &Error{Code: oauth.ServerError, Description: "internal error"}
		if errors.Is(err, store.ErrUnavailable) {
			e = &Error{Code: oauth.TemporarilyUnavailable, Description: "the store is unavailable; retry later"}
		}
	}
	answer := url.Values{"error": {e.Code}}
	if e.Description != "" {
		answer.Set("error_description", e.Description)
	}
	s.redirectBack(w, r, a, answer)
}

// logAuthorizeFailure logs an internal failure of the authorization
// endpoint (never its parameters: a code challenge or state is the
// client's business).
func (s *Server) logAuthorizeFailure(r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		s.storeFailed(r.Context(), r.URL.Path, err)
		return
	}
	s.log.ErrorContext(r.Context(), "internal error", "path", r.URL.Path, "err", err)
}
