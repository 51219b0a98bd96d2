package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// accessClaims are the parts of a verified access token introspection and
// revocation use.
type accessClaims struct {
	sid, clientID, subject, scope, jti string
	aud                                []string
	exp, iat                           int64
}

// selfVerifier verifies this server's own access tokens against one
// version of the Signer's JWKS, read in memory instead of over HTTP.
type selfVerifier struct {
	jwks []byte
	v    *verify.Verifier
}

// accessVerifier returns the verifier for the Signer's current JWKS,
// building a new one when the JWKS has changed (a rotation, a revocation,
// a reload), so that a key is trusted exactly while the Signer publishes
// it. It checks signature, typ, issuer and times but not aud: the
// server's own tokens are for Config.Audience or for a resource their
// client is registered for (RFC 8707), which ownAudience checks.
func (s *Server) accessVerifier() *verify.Verifier {
	jwks := s.cfg.Signer.JWKS()
	if sv := s.access.Load(); sv != nil && bytes.Equal(sv.jwks, jwks) {
		return sv.v
	}
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(jwks)), Request: r}, nil
	})
	sv := &selfVerifier{jwks: jwks, v: verify.New(s.cfg.Issuer, &verify.Options{
		// aud is checked by ownAudience, against more names than a
		// fixed list can hold.
		InsecureSkipAudienceCheck: true,
		JWKSURL:                   "http://tokend.internal/jwks.json",
		HTTPClient:                &http.Client{Transport: rt},
		// The document never changes: a new one makes a new verifier.
		MaxKeysAge: 24 * time.Hour,
		Now:        s.now,
		Logger:     s.log,
	})}
	s.access.Store(sv)
	return sv.v
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// KeyChecker is what a Signer may also implement (*keys.Set does) so that
// the server follows key changes made by other processes (tokend keys
// revoke, another instance's rotation) at once:
//   - Check reports, from the store, whether tokens signed by kid may be
//     accepted at now: an error wrapping keys.ErrRevoked or
//     keys.ErrUnknownKey when they may not, any other error when the answer
//     cannot be known. Introspection, revocation and the mint cache call
//     it for every access token they accept or hand out again.
//   - Reload brings Sign and JWKS up to date with the store as of the
//     call. The server calls it before a signature or a JWKS answer when
//     its last reload began Config.KeyStaleness or longer before, so that
//     it never signs with, nor publishes, a key the store withdrew longer
//     ago than that; it should share reads among concurrent calls
//     (*keys.Set's does).
type KeyChecker interface {
	Check(ctx context.Context, kid string, now time.Time) error
	Reload(ctx context.Context, now time.Time) error
}

// verifyAccess checks one of the server's own access tokens for
// introspection and revocation. ok is false for a token that is not valid
// (bad, expired, unknown or withdrawn key); err is set only when validity
// cannot be known now (the store is down).
func (s *Server) verifyAccess(ctx context.Context, tok string) (c accessClaims, ok bool, err error) {
	claims, err := s.accessVerifier().Verify(ctx, tok)
	kc, checks := s.cfg.Signer.(KeyChecker)
	if errors.Is(err, verify.ErrUnknownKey) && checks {
		// Signed by a key this instance has not loaded yet (another
		// instance rotated): Check reloads the keys if the store has it.
		if kc.Check(ctx, verify.KeyID(tok), s.now()) == nil {
			claims, err = s.accessVerifier().Verify(ctx, tok)
		}
	}
	if err != nil {
		return accessClaims{}, false, nil
	}
	switch own, err := s.ownAudience(ctx, claims.Audience, claims.ClientID); {
	case err != nil:
		return accessClaims{}, false, err
	case !own:
		return accessClaims{}, false, nil
	}
	if checks {
		switch err := kc.Check(ctx, claims.KeyID, s.now()); {
		case errors.Is(err, keys.ErrRevoked), errors.Is(err, keys.ErrUnknownKey):
			return accessClaims{}, false, nil
		case err != nil:
			return accessClaims{}, false, fmt.Errorf("check signing key: %w", err)
		}
	}
	sid, _ := claims.Extra["sid"].(string)
	return accessClaims{sid: sid, clientID: claims.ClientID, subject: claims.Subject, scope: claims.Scope, jti: claims.ID,
		aud: claims.Audience, exp: claims.Expiry.Unix(), iat: claims.IssuedAt.Unix()}, true, nil
}

// ownAudience reports whether aud, the aud of an access token this server
// signed for client clientID, names an audience of this server's tokens:
// Config.Audience, or one of the resources (RFC 8707) the client is
// registered for, whose tokens carry it as aud. One name suffices, as
// RFC 9068 §4 asks of a resource server. err is set only when the client
// cannot be read now.
func (s *Server) ownAudience(ctx context.Context, aud []string, clientID string) (bool, error) {
	if slices.Contains(aud, s.cfg.Audience) {
		return true, nil
	}
	if len(aud) == 0 || clientID == "" {
		return false, nil
	}
	c, err := s.store.GetClient(ctx, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get client: %w", err)
	}
	return slices.ContainsFunc(aud, func(a string) bool { return a != "" && slices.Contains(c.Resources, a) }), nil
}

// handleIntrospect implements RFC 7662 for the calling client's own tokens;
// any other token, valid or not, is reported only as inactive.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	resp, err := s.introspect(r.Context(), r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

var inactive = map[string]any{"active": false}

func (s *Server) introspect(ctx context.Context, r *http.Request) (map[string]any, error) {
	form, err := readForm(r)
	if err != nil {
		return nil, err
	}
	client, confidential, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return nil, err
	}
	if !confidential {
		return nil, errInvalidClient(false)
	}
	tok := form.Get("token")
	if tok == "" {
		return nil, errInvalidRequest("missing token")
	}
	now := s.now()
	if looksLikeRefreshToken(tok) {
		return s.introspectRefresh(ctx, client, tok, now)
	}
	c, ok, err := s.verifyAccess(ctx, tok)
	if err != nil {
		return nil, err
	}
	if !ok || c.clientID != client.ID {
		return inactive, nil
	}
	if active, err := s.accessActive(ctx, c, now); err != nil || !active {
		return inactive, err
	}
	out := map[string]any{"active": true, "token_type": "access_token", "client_id": c.clientID,
		"sub": c.subject, "exp": c.exp, "iat": c.iat, "jti": c.jti, "iss": s.cfg.Issuer, "aud": c.aud}
	if c.scope != "" {
		out["scope"] = c.scope
	}
	return out, nil
}

// accessActive reports whether a verified access token is still active
// at now: before its exp, judged on this server's clock (the verifier
// allows clock skew; RFC 7662 §2.2), and neither on the deny-list (a
// token of no family) nor of a family that is revoked or gone.
func (s *Server) accessActive(ctx context.Context, c accessClaims, now time.Time) (bool, error) {
	if !now.Before(time.Unix(c.exp, 0)) {
		return false, nil
	}
	if c.sid == "" {
		revoked, err := s.store.AccessTokenRevoked(ctx, c.jti)
		if err != nil {
			return false, fmt.Errorf("access-token deny-list: %w", err)
		}
		return !revoked, nil
	}
	f, err := s.store.GetFamily(ctx, c.sid)
	if errors.Is(err, store.ErrNotFound) || err == nil && !f.RevokedAt.IsZero() {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get family: %w", err)
	}
	return true, nil
}

// introspectRefresh answers for a refresh token: active while it is its
// family's current token and the family is active, and the client's.
func (s *Server) introspectRefresh(ctx context.Context, client store.Client, tok string, now time.Time) (map[string]any, error) {
	ref, err := s.refreshTokenRef(ctx, tok)
	if errors.Is(err, errUnknownToken) {
		return inactive, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := s.store.GetFamily(ctx, ref.family)
	if errors.Is(err, store.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get family: %w", err)
	}
	if !f.OwnedBy(client.ID) || !f.Active(now) || !f.Current(ref.generation, hashToken(tok)) {
		return inactive, nil
	}
	exp := f.End()
	iat := f.RotatedAt
	if f.Generation == 0 {
		iat = f.CreatedAt
	}
	return map[string]any{"active": true, "token_type": "refresh_token", "client_id": f.ClientID,
		"sub": f.Subject, "scope": f.Scope, "iat": iat.Unix(), "exp": exp.Unix(), "iss": s.cfg.Issuer}, nil
}
