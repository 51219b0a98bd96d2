package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend/internal/bearer"
	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/store"
)

// IDSigner is a Signer that also signs OpenID Connect ID tokens (a
// *keys.Set: RS256, which OpenID Connect Core §15.1 requires every
// provider to support). Without one, the server answers the openid scope
// with invalid_scope.
type IDSigner interface {
	// SignID returns claims as a signed JWS compact JWT (typ JWT).
	SignID(claims any) (string, error)
	// IDAlgorithm is the JWS alg of the ID tokens it signs.
	IDAlgorithm() string
}

// openIDScope reports whether scope holds openid (OpenID Connect Core
// §3.1.2.1): the tokens come with an ID token.
func openIDScope(scope string) bool { return slices.Contains(strings.Fields(scope), "openid") }

// idToken signs the ID token of a redeemed authorization code (OpenID
// Connect Core §2, §3.1.3.6): for its client (aud and azp), with the
// time the user authenticated, the request's nonce, the session's sid
// and at_hash, the left half of the access token's SHA-256 in base64url
// (the hash of RS256).
func (s *Server) idToken(ctx context.Context, c store.Client, rec store.AuthorizationCode, accessToken string, now time.Time) (string, error) {
	signer, ok := s.cfg.Signer.(IDSigner)
	if !ok {
		return "", errors.New("the signer cannot sign ID tokens")
	}
	sum := sha256.Sum256([]byte(accessToken))
	claims := map[string]any{
		"iss": s.cfg.Issuer, "sub": rec.Subject, "aud": c.ID, "azp": c.ID,
		"iat": now.Unix(), "exp": now.Add(s.cfg.AccessTTL).Unix(),
		"auth_time": rec.AuthTime.Unix(),
		"at_hash":   base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]),
	}
	if rec.Nonce != "" {
		claims["nonce"] = rec.Nonce
	}
	if rec.SessionID != "" {
		claims["sid"] = rec.SessionID
	}
	if err := s.keysFresh(ctx); err != nil {
		return "", fmt.Errorf("reload signing keys: %w", err)
	}
	return signer.SignID(claims)
}

// handleUserInfo is the UserInfo endpoint (OpenID Connect Core §5.3):
// for an access token of the openid scope, presented as a Bearer token
// (RFC 6750 §2.1), the user's claims. tokend knows its users by name
// only: sub, and with the profile scope preferred_username.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.writeError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: oauth.InvalidRequest, Description: "method must be GET or POST", Allow: "GET, POST"})
		return
	}
	tok, err := bearer.FromHeader(r.Header)
	if err != nil {
		s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: oauth.InvalidToken, Description: "a Bearer access token is required", Challenge: oauth.BearerChallenge("tokend", "", "", "")})
		return
	}
	c, ok, err := s.verifyAccess(r.Context(), tok)
	if err == nil && ok {
		ok, err = s.accessActive(r.Context(), c, s.now())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: oauth.InvalidToken, Description: "the access token is not active", Challenge: oauth.BearerChallenge("tokend", oauth.InvalidToken, "", "")})
		return
	}
	if c.sid == "" {
		// A token of no family is a client's own (client_credentials):
		// it stands for no user, whatever its scope.
		s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: oauth.InvalidToken, Description: "the access token is not a user's", Challenge: oauth.BearerChallenge("tokend", oauth.InvalidToken, "", "")})
		return
	}
	if !openIDScope(c.scope) {
		s.writeError(w, r, &Error{Status: http.StatusForbidden, Code: oauth.InsufficientScope, Description: "the access token lacks the openid scope", Challenge: oauth.BearerChallenge("tokend", oauth.InsufficientScope, "", "openid")})
		return
	}
	info := map[string]any{"sub": c.subject}
	if slices.Contains(strings.Fields(c.scope), "profile") {
		info["preferred_username"] = c.subject
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, info)
}
