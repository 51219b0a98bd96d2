package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
)

const codeCols = "hash, client_id, redirect_uri, code_challenge, subject, scope, nonce, resources, session_id, auth_time, created_at, expires_at, redeemed_at, family_id"

// The writes of the code flow, one of each per login, prepared at Open
// with hotWrites (codeWrites).
const (
	qInsertCode = "INSERT INTO authorization_codes (" + codeCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	qGetCode    = "SELECT " + codeCols + " FROM authorization_codes WHERE hash = ?"
	qRedeemCode = "UPDATE authorization_codes SET redeemed_at = ?, family_id = ? WHERE hash = ?"
	// qReadRedeem reads a code and whether its session is live (stored
	// and not ended) in one statement of the redemption's write.
	qReadRedeem = "SELECT " + codeCols + ", EXISTS (SELECT 1 FROM sessions WHERE sessions.id = authorization_codes.session_id AND ended_at IS NULL)" +
		" FROM authorization_codes WHERE hash = ?"
)

// codeWrites are the code flow's statements the writer runs.
var codeWrites = []string{qInsertCode, qReadRedeem, qRedeemCode}

// scanAlso scans a row of a query that selects more columns after
// another's: scanCode scans the first, the rest go to also.
type scanAlso struct {
	row  interface{ Scan(...any) error }
	also []any
}

func (s scanAlso) Scan(dest ...any) error { return s.row.Scan(append(dest, s.also...)...) }

func scanCode(row interface{ Scan(...any) error }) (store.AuthorizationCode, error) {
	var c store.AuthorizationCode
	var resources string
	var auth, created, expires, redeemed sql.NullInt64
	if err := row.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.Subject, &c.Scope, &c.Nonce, &resources, &c.SessionID,
		&auth, &created, &expires, &redeemed, &c.FamilyID); err != nil {
		return c, err
	}
	c.Resources = strings.Fields(resources)
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.RedeemedAt = tout(auth), tout(created), tout(expires), tout(redeemed)
	return c, nil
}

// CreateAuthorizationCode implements store.Store.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error {
	if err := store.CheckAuthorizationCode(c); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.exec(ctx, "authorization code", false,
		qInsertCode,
		c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Subject, c.Scope, c.Nonce, strings.Join(c.Resources, " "), c.SessionID,
		tin(c.AuthTime), tin(c.CreatedAt), tin(c.ExpiresAt), tin(c.RedeemedAt), c.FamilyID)
}

// GetAuthorizationCode implements store.Store.
func (s *Store) GetAuthorizationCode(ctx context.Context, hash []byte) (store.AuthorizationCode, error) {
	c, err := scanCode(s.readRow(ctx, qGetCode, hash))
	if err != nil {
		return store.AuthorizationCode{}, s.notFound(err, "authorization code")
	}
	return c, nil
}

// RedeemAuthorizationCode implements store.Store: the code is read,
// with whether its session is live, decided by
// store.AuthorizationCode.Redeem on the caller's clock (f.CreatedAt), and
// written with the family (or the replay's revocation)
// in the writer's transaction, so no other write comes between.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, hash []byte, f store.Family) (store.AuthorizationCode, error) {
	if err := store.CheckFamily(f); err != nil {
		return store.AuthorizationCode{}, fmt.Errorf("sqlite: %w", err)
	}
	var out store.AuthorizationCode
	var decided error // ErrRedeemed or ErrExpired: an answer, not a failure of the write
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var live bool
		c, err := scanCode(scanAlso{s.txQueryRow(ctx, tx, qReadRedeem, hash), []any{&live}})
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: authorization code: %w", store.ErrNotFound)
		}
		if err != nil {
			return dbErr("redeem authorization code", err)
		}
		out, decided = c.Redeem(f, f.CreatedAt, live)
		switch {
		case decided == nil:
			if err := s.insertFamily(ctx, tx, f); err != nil {
				return err
			}
			_, err = s.txExec(ctx, tx, qRedeemCode, tin(out.RedeemedAt), out.FamilyID, hash)
		case errors.Is(decided, store.ErrRedeemed):
			_, err = s.txExec(ctx, tx, "UPDATE families SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL",
				tin(f.CreatedAt), store.ReasonCodeReplay, c.FamilyID)
		}
		if err != nil {
			return dbErr("redeem authorization code", err)
		}
		return nil
	})
	if err != nil {
		return store.AuthorizationCode{}, err
	}
	return out, decided
}

const sessionCols = "id, hash, subject, auth_time, created_at, expires_at, ended_at"

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if err := store.CheckSession(sess); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.exec(ctx, "session "+sess.ID, false, "INSERT INTO sessions ("+sessionCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		sess.ID, sess.Hash, sess.Subject, tin(sess.AuthTime), tin(sess.CreatedAt), tin(sess.ExpiresAt), tin(sess.EndedAt))
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var sess store.Session
	var auth, created, expires, ended sql.NullInt64
	err := s.readRow(ctx, "SELECT "+sessionCols+" FROM sessions WHERE id = ?", id).
		Scan(&sess.ID, &sess.Hash, &sess.Subject, &auth, &created, &expires, &ended)
	if err != nil {
		return store.Session{}, s.notFound(err, "session "+id)
	}
	sess.AuthTime, sess.CreatedAt, sess.ExpiresAt, sess.EndedAt = tout(auth), tout(created), tout(expires), tout(ended)
	return sess, nil
}

// EndSession implements store.Store.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time) error {
	return s.exec(ctx, "session "+id, true, "UPDATE sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?", tin(at), id)
}

// PutConsent implements store.Store.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	if err := store.CheckConsent(c); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.exec(ctx, "consent", false,
		"INSERT INTO consents (subject, client_id, scopes, granted_at) VALUES (?, ?, ?, ?) "+
			"ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
		c.Subject, c.ClientID, strings.Join(c.Scopes, " "), tin(c.GrantedAt))
}

// GetConsent implements store.Store.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (store.Consent, error) {
	c := store.Consent{Subject: subject, ClientID: clientID}
	var scopes string
	var granted sql.NullInt64
	err := s.readRow(ctx, "SELECT scopes, granted_at FROM consents WHERE subject = ? AND client_id = ?", subject, clientID).Scan(&scopes, &granted)
	if err != nil {
		return store.Consent{}, s.notFound(err, "consent")
	}
	c.Scopes, c.GrantedAt = strings.Fields(scopes), tout(granted)
	return c, nil
}
