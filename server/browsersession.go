package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
)

// A browser session is the user's login at tokend itself: the login page
// starts one and sets its cookie, and an authorization request that
// carries the cookie logs the user in without the form (single sign-on,
// OpenID Connect Core §3.1.2.3). The cookie holds "<id>.<secret>": the
// store knows the session by its id and the SHA-256 of the secret only.
// The id is the sid of the ID tokens the session's logins get (OpenID
// Connect Front-Channel Logout §3), and the SessionID of their families.

// DefaultSessionTTL is Config.SessionTTL's default: how long a browser
// session logs its user in without the form.
const DefaultSessionTTL = 12 * time.Hour

// sessionCookie is the browser session cookie's name: with the __Host-
// prefix (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain) when the
// issuer is https, plain for an http issuer (development on loopback).
func (s *Server) sessionCookie() string {
	if s.secureCookies() {
		return "__Host-tokend_session"
	}
	return "tokend_session"
}

// secureCookies reports whether the issuer is https, so that tokend's
// own cookies are Secure.
func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.Issuer, "https://") }

// currentSession returns the active browser session r carries, or nil:
// no cookie, a malformed one, an unknown id, another secret, or a session
// ended or expired. Only a store failure is an error.
func (s *Server) currentSession(ctx context.Context, r *http.Request) (*store.Session, error) {
	ck, err := r.Cookie(s.sessionCookie())
	if err != nil {
		return nil, nil
	}
	id, secret, ok := strings.Cut(ck.Value, ".")
	if !ok || store.CheckID(id) != nil || len(secret) != 43 {
		return nil, nil
	}
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], sess.Hash) != 1 || !sess.Active(s.now()) {
		return nil, nil
	}
	return &sess, nil
}

// startSession starts a browser session for subject, authenticated now,
// and sets its cookie on w. The cookie lasts as long as the session.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, subject string) (store.Session, error) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	now := s.now()
	sess := store.Session{
		ID: newID(), Hash: sum[:], Subject: subject,
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return store.Session{}, fmt.Errorf("create session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.sessionCookie(), Value: sess.ID + "." + secret, Path: "/",
		Expires: sess.ExpiresAt, MaxAge: int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
	return sess, nil
}

// clearSessionCookie tells the browser to drop the session cookie.
func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: s.sessionCookie(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
}
