package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/store"
)

// codeTTL is how long an authorization code can be redeemed: RFC 6749
// §4.1.2 recommends at most 10 minutes; a browser hands the code to its
// app within seconds.
const codeTTL = 60 * time.Second

// handleAuthorize is the authorization endpoint, GET or POST (OpenID
// Connect Core §3.1.2.1).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	params, err := authorizeParams(r)
	if err != nil {
		s.showError(w, r, err.(*pageError))
		return
	}
	a, err := s.readAuthorizeRequest(r.Context(), params)
	if err == nil {
		err = s.authorize(w, r, a)
	}
	if err != nil {
		s.authorizeFailed(w, r, a, err)
	}
}

// authorizeParams returns an authorization request's parameters: the
// query of a GET, the form of a POST (the query ignored).
func authorizeParams(r *http.Request) (url.Values, error) {
	switch r.Method {
	case http.MethodGet:
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, &pageError{http.StatusBadRequest, "The request is malformed."}
		}
		return v, nil
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			return nil, &pageError{http.StatusBadRequest, "The request is malformed."}
		}
		return r.PostForm, nil
	}
	return nil, &pageError{http.StatusMethodNotAllowed, "The request must be a GET or a POST."}
}

// authorize answers a checked authorization request (step 2 of the
// pipeline): the login page if the browser has no session good enough
// for it, the consent page if a third-party client lacks the user's
// consent, and otherwise a code. With prompt=none, each page is instead
// an error sent to the client (OpenID Connect Core §3.1.2.6).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, a *authorizeRequest) error {
	ctx := r.Context()
	sess, err := s.currentSession(ctx, r)
	if err != nil {
		return err
	}
	if sess == nil || a.hasPrompt("login") || a.maxAge >= 0 && s.now().Sub(sess.AuthTime) > time.Duration(a.maxAge)*time.Second {
		if a.hasPrompt("none") {
			return &Error{Code: oauth.LoginRequired, Description: "the user is not logged in"}
		}
		s.showLogin(w, r, a, loginView{})
		return nil
	}
	consented, err := s.consented(ctx, a, sess.Subject)
	if err != nil {
		return err
	}
	if !consented {
		if a.hasPrompt("none") {
			return &Error{Code: oauth.ConsentRequired, Description: "the user has not consented to this client"}
		}
		s.showConsent(w, r, a, sess)
		return nil
	}
	code, err := s.issueCode(ctx, a, sess)
	if err != nil {
		return err
	}
	s.redirectBack(w, r, a, url.Values{"code": {code}})
	return nil
}

// consented reports whether subject may skip the consent page for a: a
// first-party client always, a third-party one (Client.ThirdParty) once
// the user has consented to every scope a asks for, and not when a says
// prompt=consent.
func (s *Server) consented(ctx context.Context, a *authorizeRequest, subject string) (bool, error) {
	if !a.client.ThirdParty {
		return true, nil
	}
	if a.hasPrompt("consent") {
		return false, nil
	}
	c, err := s.store.GetConsent(ctx, subject, a.client.ID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("get consent: %w", err)
	}
	for _, sc := range strings.Fields(a.scope) {
		if !slices.Contains(c.Scopes, sc) {
			return false, nil
		}
	}
	return true, nil
}

// issueCode stores an authorization code for a and the session's user
// and returns it: 32 random bytes in base64url, stored only as its
// SHA-256, valid for codeTTL (RFC 6749 §4.1.2, §10.10).
func (s *Server) issueCode(ctx context.Context, a *authorizeRequest, sess *store.Session) (string, error) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	code := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	rec := store.AuthorizationCode{
		Hash: hashCode(code), ClientID: a.client.ID, CodeChallenge: a.challenge,
		Subject: sess.Subject, Scope: a.scope, Nonce: a.nonce, Resources: a.resources,
		SessionID: sess.ID, AuthTime: sess.AuthTime, CreatedAt: now, ExpiresAt: now.Add(codeTTL),
	}
	if a.presented {
		rec.RedirectURI = a.redirectURI
	}
	if err := s.store.CreateAuthorizationCode(ctx, rec); err != nil {
		return "", fmt.Errorf("create authorization code: %w", err)
	}
	return code, nil
}

// hashCode is how the store knows an authorization code.
func hashCode(code string) []byte {
	sum := sha256.Sum256([]byte(code))
	return sum[:]
}
