package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend/store"
)

const codeCols = "hash, client_id, redirect_uri, code_challenge, subject, scope, nonce, resources, session_id, auth_time, created_at, expires_at, redeemed_at, family_id"

// The statements of CreateAuthorizationCode: qCreateCode stores the times
// as given; qCreateCodeNow stores the code rebased onto now() (see
// store.AuthorizationCode.Rebase), its expiry and redemption as intervals
// after CreatedAt.
const (
	qCreateCode    = "INSERT INTO authorization_codes (" + codeCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
	qCreateCodeNow = "INSERT INTO authorization_codes (" + codeCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, " +
		"now() + $11::interval, now() + $12::interval, now() + $13::interval, $14)"
	qReadCode = "SELECT " + codeCols + ", now() FROM authorization_codes WHERE hash = $1 FOR UPDATE"
	// qSessionLive reads whether a code's session is live and holds it
	// so until the redemption commits: FOR SHARE makes an EndSession or
	// DeleteUser (whose UPDATE of the session comes before its
	// revocation) wait for the family, or the redemption wait for the
	// end and find no live row.
	qSessionLive = "SELECT true FROM sessions WHERE id = $1 AND ended_at IS NULL FOR SHARE"
)

func scanCode(r row) (store.AuthorizationCode, error) {
	var c store.AuthorizationCode
	var resources string
	var auth, created, expires, redeemed pgtype.Timestamptz
	if err := r.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.Subject, &c.Scope, &c.Nonce, &resources, &c.SessionID,
		&auth, &created, &expires, &redeemed, &c.FamilyID); err != nil {
		return store.AuthorizationCode{}, err
	}
	c.Resources = strings.Fields(resources)
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.RedeemedAt = tout(auth), tout(created), tout(expires), tout(redeemed)
	return c, nil
}

// CreateAuthorizationCode implements store.Store: one INSERT. With the
// database's clock (the default) the code is rebased onto now(), unless
// c.CreatedAt is zero; with WithCallerClock its times are stored as given.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error {
	if err := store.CheckAuthorizationCode(c); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	q, at := qCreateCode, func(t time.Time) any { return tin(t) }
	if !s.callerClock && !c.CreatedAt.IsZero() {
		q, at = qCreateCodeNow, func(t time.Time) any {
			return pgtype.Interval{Microseconds: t.Sub(c.CreatedAt).Microseconds(), Valid: !t.IsZero()}
		}
	}
	return s.exec(ctx, "authorization code", false, q, c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Subject, c.Scope, c.Nonce,
		strings.Join(c.Resources, " "), c.SessionID, tin(c.AuthTime), at(c.CreatedAt), at(c.ExpiresAt), at(c.RedeemedAt), c.FamilyID)
}

// GetAuthorizationCode implements store.Store.
func (s *Store) GetAuthorizationCode(ctx context.Context, hash []byte) (store.AuthorizationCode, error) {
	return readOne(ctx, s, "authorization code", "SELECT "+codeCols+" FROM authorization_codes WHERE hash = $1", scanCode, hash)
}

// RedeemAuthorizationCode implements store.Store in one transaction: it
// locks the code's row (SELECT … FOR UPDATE, which a concurrent
// redemption waits for and then reads as committed), reads the
// database's now() with it and whether the code's session is live (held
// FOR SHARE), decides by store.AuthorizationCode.Redeem, and
// writes the redemption and the family (rebased onto now(), the
// transaction's one time) or the replay's revocation. With
// WithCallerClock it judges and writes at f.CreatedAt.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, hash []byte, f store.Family) (store.AuthorizationCode, error) {
	if err := store.CheckFamily(f); err != nil {
		return store.AuthorizationCode{}, fmt.Errorf("postgres: %w", err)
	}
	var out store.AuthorizationCode
	var decided error // ErrRedeemed or ErrExpired: an answer, which commits what it wrote
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var now time.Time
		c, err := scanCode(scanAlso{tx.QueryRow(ctx, qReadCode, hash), []any{&now}})
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: authorization code: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if s.callerClock {
			now = f.CreatedAt
		} else {
			f = f.Rebase(now)
		}
		live := c.SessionID == ""
		if !live {
			switch err := tx.QueryRow(ctx, qSessionLive, c.SessionID).Scan(&live); {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			}
		}
		out, decided = c.Redeem(f, now, live)
		switch {
		case decided == nil:
			g := stored(f)
			if _, err := tx.Exec(ctx, qCreateFamily, g.ID, g.ClientID, g.Subject, g.Scope, g.Claims, int64(g.AccessTTL),
				tin(g.CreatedAt), tin(g.LastUsedAt), tin(g.IdleExpiresAt), tin(g.ExpiresAt), g.Generation,
				g.TokenHash, g.PreviousHash, tin(g.RotatedAt), tin(g.RevokedAt), g.RevokeReason, g.SessionID, strings.Join(g.Audience, " ")); err != nil {
				return err
			}
			out.RedeemedAt = out.RedeemedAt.Truncate(time.Microsecond)
			_, err = tx.Exec(ctx, "UPDATE authorization_codes SET redeemed_at = $1, family_id = $2 WHERE hash = $3", tin(out.RedeemedAt), out.FamilyID, hash)
		case errors.Is(decided, store.ErrRedeemed):
			_, err = tx.Exec(ctx, qRevoke, c.FamilyID, tin(now), store.ReasonCodeReplay)
		}
		return err
	})
	if err != nil {
		return store.AuthorizationCode{}, dbErr("redeem authorization code", err)
	}
	return out, decided
}

const sessionCols = "id, hash, subject, auth_time, created_at, expires_at, ended_at"

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if err := store.CheckSession(sess); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return s.exec(ctx, "session "+sess.ID, false, "INSERT INTO sessions ("+sessionCols+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
		sess.ID, sess.Hash, sess.Subject, tin(sess.AuthTime), tin(sess.CreatedAt), tin(sess.ExpiresAt), tin(sess.EndedAt))
}

func scanSession(r row) (store.Session, error) {
	var sess store.Session
	var auth, created, expires, ended pgtype.Timestamptz
	err := r.Scan(&sess.ID, &sess.Hash, &sess.Subject, &auth, &created, &expires, &ended)
	sess.AuthTime, sess.CreatedAt, sess.ExpiresAt, sess.EndedAt = tout(auth), tout(created), tout(expires), tout(ended)
	return sess, err
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	if store.Unknown(id) {
		return store.Session{}, unknown("session")
	}
	return readOne(ctx, s, "session "+id, "SELECT "+sessionCols+" FROM sessions WHERE id = $1", scanSession, id)
}

// EndSession implements store.Store.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time) error {
	if store.Unknown(id) {
		return unknown("session")
	}
	return s.exec(ctx, "session "+id, true, "UPDATE sessions SET ended_at = COALESCE(ended_at, $1) WHERE id = $2", tin(at), id)
}

// PutConsent implements store.Store.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	if err := store.CheckConsent(c); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return s.exec(ctx, "consent", false,
		"INSERT INTO consents (subject, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) "+
			"ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
		c.Subject, c.ClientID, strings.Join(c.Scopes, " "), tin(c.GrantedAt))
}

// GetConsent implements store.Store.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (store.Consent, error) {
	if store.Unknown(subject, clientID) || subject == "" || clientID == "" {
		return store.Consent{}, unknown("consent")
	}
	return readOne(ctx, s, "consent", "SELECT subject, client_id, scopes, granted_at FROM consents WHERE subject = $1 AND client_id = $2",
		func(r row) (store.Consent, error) {
			var c store.Consent
			var scopes string
			var granted pgtype.Timestamptz
			err := r.Scan(&c.Subject, &c.ClientID, &scopes, &granted)
			c.Scopes, c.GrantedAt = strings.Fields(scopes), tout(granted)
			return c, err
		}, subject, clientID)
}
