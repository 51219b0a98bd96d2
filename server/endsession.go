package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-jose/go-jose/v4"
	"github.com/tokend/tokend/server/loginpage"
	"github.com/tokend/tokend/server/redirecturi"
	"github.com/tokend/tokend/store"
)

// The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0):
// an app sends the browser to it to end the user's browser session at
// tokend, and with tokend's end_families=true also that session's
// families of the app (every refresh token they hold), then gets the
// browser back at its post_logout_redirect_uri, registered like a
// redirect URI. Only the browser's own session ends, never one a request
// names without carrying its cookie. An app proves itself with
// id_token_hint, an ID token tokend issued for the session; without one
// (or for another session), the user confirms on a page first, so that
// no other site can log a user out with a link. end_families never ends
// another client's families: each app ends its own, and the ended
// session keeps the others from getting new codes.

const logoutPath = "/oauth/logout"

// logoutRequest is an end-session request as readLogoutRequest read it.
type logoutRequest struct {
	params      url.Values
	client      *store.Client // from client_id or the hint's aud; nil if neither
	redirectURI string        // post_logout_redirect_uri, registered; "" for none
	state       string
	hintSID     string // the sid of a valid id_token_hint; "" if none
	endFamilies bool   // end_families=true: also end the client's families of the session
}

// handleLogout is the end-session endpoint, GET or POST; the
// confirmation page posts back to it with confirm=yes.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	params, err := authorizeParams(r)
	if err != nil {
		s.showError(w, r, err.(*pageError))
		return
	}
	lr, err := s.readLogoutRequest(r.Context(), params)
	if err != nil {
		s.authorizeFailed(w, r, nil, err)
		return
	}
	sess, err := s.currentSession(r.Context(), r)
	if err != nil {
		s.authorizeFailed(w, r, nil, err)
		return
	}
	confirmed := r.Method == http.MethodPost && params.Get("confirm") == "yes" &&
		s.checkFormValue(r, purposeLogout, params.Get(loginpage.CSRFField)) == loginpage.NoError
	if sess != nil && !confirmed && (lr.hintSID == "" || lr.hintSID != sess.ID) {
		s.showLogoutConfirm(w, r, lr, sess)
		return
	}
	if err := s.endSession(r.Context(), w, lr, sess); err != nil {
		s.authorizeFailed(w, r, nil, err)
		return
	}
	if lr.redirectURI == "" {
		if err := s.pages.LoggedOut(w, http.StatusOK, loginpage.LoggedOutData{Client: clientName(lr.client)}); err != nil {
			s.pageFailed(w, r, err)
		}
		return
	}
	target := lr.redirectURI
	if lr.state != "" {
		target = appendQuery(target, url.Values{"state": {lr.state}})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// readLogoutRequest reads and checks an end-session request. Every
// refusal is a page: a post_logout_redirect_uri that is not registered,
// or not for the client named, is never followed.
func (s *Server) readLogoutRequest(ctx context.Context, params url.Values) (*logoutRequest, error) {
	for k, vs := range params {
		if len(vs) > 1 {
			return nil, &pageError{http.StatusBadRequest, "The request repeats a parameter " + quoteParam(k) + "."}
		}
	}
	lr := &logoutRequest{params: params, state: params.Get("state"), endFamilies: params.Get("end_families") == "true"}
	clientID := params.Get("client_id")
	if hint := params.Get("id_token_hint"); hint != "" {
		aud, sid, err := s.readIDTokenHint(hint)
		if err != nil {
			return nil, &pageError{http.StatusBadRequest, "The ID token hint is not one this server issued."}
		}
		if clientID != "" && clientID != aud {
			return nil, &pageError{http.StatusBadRequest, "The ID token hint is for another client."}
		}
		clientID, lr.hintSID = aud, sid
	}
	if clientID != "" {
		c, err := s.authorizeClient(ctx, clientID)
		if err != nil {
			return nil, err
		}
		lr.client = &c
	}
	if p := params.Get("post_logout_redirect_uri"); p != "" {
		if lr.client == nil {
			return nil, &pageError{http.StatusBadRequest, "A post-logout redirect URI needs the client's client_id or id_token_hint."}
		}
		if _, ok := redirecturi.Match(lr.client.PostLogoutRedirectURIs, p); !ok {
			return nil, &pageError{http.StatusBadRequest, "The post-logout redirect URI is not registered for this client."}
		}
		lr.redirectURI = p
	}
	return lr, nil
}

// readIDTokenHint verifies an ID token this server signed, expired or
// not (RP-Initiated Logout §2: the hint may have expired), against the
// keys it publishes, and returns its aud (one client) and sid.
func (s *Server) readIDTokenHint(hint string) (aud, sid string, err error) {
	idAlg := "RS256"
	if is, ok := s.cfg.Signer.(IDSigner); ok {
		idAlg = is.IDAlgorithm()
	}
	jws, err := jose.ParseSignedCompact(hint, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(idAlg)})
	if err != nil || len(jws.Signatures) != 1 {
		return "", "", errors.New("malformed ID token hint")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.cfg.Signer.JWKS(), &set); err != nil {
		return "", "", fmt.Errorf("read JWKS: %w", err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return "", "", errors.New("ID token hint signed by an unknown key")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return "", "", errors.New("ID token hint signature")
	}
	var claims struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
		Sid string          `json:"sid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Iss != s.cfg.Issuer {
		return "", "", errors.New("ID token hint of another issuer")
	}
	var one string
	var many []string
	if json.Unmarshal(claims.Aud, &one) != nil {
		if json.Unmarshal(claims.Aud, &many) != nil || len(many) != 1 {
			return "", "", errors.New("ID token hint without one audience")
		}
		one = many[0]
	}
	return one, claims.Sid, nil
}

// endSession ends the browser's session, sess (nil: none, and nothing
// ends), and with end_families the session's families of the client that
// asks (the hint's aud or client_id; none named: none).
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, lr *logoutRequest, sess *store.Session) error {
	if sess == nil {
		return nil
	}
	s.clearSessionCookie(w)
	now := s.now()
	if err := s.store.EndSession(ctx, sess.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	if !lr.endFamilies || lr.client == nil {
		return nil
	}
	n, err := s.store.RevokeFamilies(ctx, store.FamilyFilter{SessionID: sess.ID, ClientID: lr.client.ID}, now, "logout")
	if err != nil {
		return fmt.Errorf("revoke the session's families: %w", err)
	}
	s.metrics.revoked.WithLabelValues("logout").Add(float64(n))
	return nil
}

// showLogoutConfirm asks the user to confirm the logout.
func (s *Server) showLogoutConfirm(w http.ResponseWriter, r *http.Request, lr *logoutRequest, sess *store.Session) {
	params := url.Values{}
	for k, vs := range lr.params {
		if k != "confirm" {
			params[k] = vs
		}
	}
	params.Set("confirm", "yes")
	tok, err := s.formToken(w, r, purposeLogout)
	if err != nil {
		s.authorizeFailed(w, r, nil, err)
		return
	}
	form := loginpage.Form{Action: s.cfg.Issuer + logoutPath, Hidden: hiddenFields(params, tok)}
	if lr.redirectURI != "" {
		form.FormTargets = []string{lr.redirectURI}
	}
	if err := s.pages.LogoutConfirm(w, http.StatusOK, loginpage.LogoutData{Form: form, Client: clientName(lr.client), User: sess.Subject}); err != nil {
		s.pageFailed(w, r, err)
	}
}

// clientName is a client's name as the pages show it.
func clientName(c *store.Client) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// appendQuery adds v to uri's query, after any query it has.
func appendQuery(uri string, v url.Values) string {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '?' {
			return uri + "&" + v.Encode()
		}
	}
	return uri + "?" + v.Encode()
}
