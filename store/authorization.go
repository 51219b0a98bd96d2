package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The records of the authorization code flow (RFC 6749 §4.1, OpenID
// Connect Core §3.1): the codes the authorization endpoint issues, the
// browser sessions of the login page (single sign-on), and users'
// consents to third-party clients. Codes and sessions are known to a
// store only by the hash of their secret, as refresh tokens are: the code
// and the cookie's secret never reach it.

// AuthorizationCode is an issued authorization code (RFC 6749 §4.1.2),
// known by its hash, with what it was issued for.
type AuthorizationCode struct {
	Hash          []byte // SHA-256 of the code; the record's key
	ClientID      string // the client it was issued to (an identifier)
	RedirectURI   string // as the authorize request gave it ("" if it gave none)
	CodeChallenge string // PKCE S256 challenge (RFC 7636 §4.2)
	Subject       string // the user who authorized it (an identifier)
	Scope         string // space-separated, as granted
	Nonce         string // OpenID Connect nonce, "" if none
	// Resources are the resource indicators of the authorize request
	// (RFC 8707), which the code's tokens are for.
	Resources []string
	SessionID string    // the browser session that issued it; "" for none
	AuthTime  time.Time // when the user authenticated (OIDC auth_time); stored as given
	CreatedAt time.Time
	ExpiresAt time.Time // at most 60 s after CreatedAt; the code is refused from ExpiresAt on
	// RedeemedAt is zero until the code is redeemed, then when it was.
	RedeemedAt time.Time
	// FamilyID is the family its redemption started; "" until then.
	FamilyID string
}

// Session is a user's browser session at the authorization server: the
// login page sets it in a cookie, and a later authorization request that
// carries it logs the user in without the form (single sign-on).
type Session struct {
	ID        string // public id (an identifier), the OIDC sid claim of ID tokens
	Hash      []byte // SHA-256 of the cookie's secret part
	Subject   string // the user (an identifier)
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	EndedAt   time.Time // zero until logout (EndSession) or DeleteUser
}

// Consent is a user's consent to a third-party client (Client.ThirdParty)
// for some scopes. Subject and ClientID are identifiers; the pair is the
// record's key.
type Consent struct {
	Subject   string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// AuthorizationStore is the part of Store for the authorization code
// flow. Store embeds it; every backend implements it.
type AuthorizationStore interface {
	// CreateAuthorizationCode stores c. A store with its own clock moves
	// CreatedAt to its now and ExpiresAt by the same amount (see
	// AuthorizationCode.Rebase). Returns ErrExists if c.Hash is taken, and
	// ErrInvalid if an identifier breaks IDRule or Hash is empty.
	CreateAuthorizationCode(ctx context.Context, c AuthorizationCode) error
	// GetAuthorizationCode returns the code with this hash, redeemed or
	// not. Returns ErrNotFound for an unknown hash.
	GetAuthorizationCode(ctx context.Context, hash []byte) (AuthorizationCode, error)
	// RedeemAuthorizationCode redeems the code with this hash by starting
	// family f, as one atomic step decided by AuthorizationCode.Redeem:
	//   - an unredeemed code, before its ExpiresAt: it becomes redeemed
	//     (RedeemedAt, FamilyID f.ID) and f is created as CreateFamily
	//     would; the code is returned. ErrExists if f.ID is taken, and
	//     ErrInvalid if an identifier of f breaks IDRule: nothing changes.
	//   - a code already redeemed: the family its redemption started is
	//     revoked with ReasonCodeReplay (unless revoked already), f is not
	//     created, and the code is returned with ErrRedeemed (RFC 6749
	//     §4.1.2). A replay is judged so even past the code's expiry, for
	//     as long as the store keeps the code.
	//   - an unredeemed code from its ExpiresAt on: ErrExpired, with the
	//     code; nothing changes.
	//   - an unredeemed code whose session (SessionID, if set) has ended
	//     or is gone: ErrSessionEnded, with the code; nothing changes. The
	//     session is read in the same atomic step, so a DeleteUser or
	//     EndSession either comes first (the code is refused) or after (it
	//     finds the family: DeleteUser revokes it).
	//   - an unknown hash: ErrNotFound.
	// The time it is judged at is f.CreatedAt, or, for a store with its
	// own clock (as for Rotate), that clock's now, onto which f is then
	// rebased (Family.Rebase). Of any number of concurrent redemptions of
	// one code, from any number of handles, exactly one succeeds.
	RedeemAuthorizationCode(ctx context.Context, hash []byte, f Family) (AuthorizationCode, error)

	// CreateSession stores s, with its times as given. Returns ErrExists
	// if s.ID is taken, and ErrInvalid if s.ID or s.Subject breaks IDRule.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session, ended or not, until DeleteExpired
	// deletes it. Returns ErrNotFound for an unknown id.
	GetSession(ctx context.Context, id string) (Session, error)
	// EndSession sets the session's EndedAt to at, unless it has ended
	// already (the first EndedAt stays). Returns ErrNotFound for an
	// unknown id.
	EndSession(ctx context.Context, id string, at time.Time) error

	// PutConsent stores c, replacing the consent of the same Subject and
	// ClientID. Returns ErrInvalid if either breaks IDRule.
	PutConsent(ctx context.Context, c Consent) error
	// GetConsent returns the consent of subject to clientID. Returns
	// ErrNotFound if there is none.
	GetConsent(ctx context.Context, subject, clientID string) (Consent, error)
}

// Active reports whether the session can log its user in at now: not
// ended, and now before ExpiresAt.
func (s Session) Active(now time.Time) bool {
	return s.EndedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Ended reports whether DeleteExpired(before) deletes the session: it
// ended before before, or expires by then.
func (s Session) Ended(before time.Time) bool {
	return (!s.EndedAt.IsZero() && s.EndedAt.Before(before)) || !s.ExpiresAt.After(before)
}

// Redeem is the rule of Store.RedeemAuthorizationCode, written once for
// every backend: what redeeming c to start family f does at now (the
// store's clock: f.CreatedAt, or its own), sessionLive reporting whether
// c's session is stored and not ended (true for a code without
// SessionID). It returns the code as the redemption leaves it (RedeemedAt
// now, FamilyID f.ID) and nil; or c and ErrRedeemed, for a code redeemed
// before, whose family c.FamilyID the backend then revokes with
// ReasonCodeReplay in the same atomic step; or c and ErrExpired from
// c.ExpiresAt on; or c and ErrSessionEnded when the session is not live.
// A replay is ErrRedeemed whether or not the code has expired or its
// session ended since: its first tokens are revoked all the same.
func (c AuthorizationCode) Redeem(f Family, now time.Time, sessionLive bool) (AuthorizationCode, error) {
	switch {
	case !c.RedeemedAt.IsZero():
		return c, fmt.Errorf("store: authorization code: %w", ErrRedeemed)
	case !now.Before(c.ExpiresAt):
		return c, fmt.Errorf("store: authorization code: %w", ErrExpired)
	case !sessionLive && c.SessionID != "":
		return c, fmt.Errorf("store: authorization code: %w", ErrSessionEnded)
	}
	c.RedeemedAt, c.FamilyID = now, f.ID
	return c, nil
}

// Rebase returns c with CreatedAt moved to now and ExpiresAt (and
// RedeemedAt, if set) moved by the same amount: how a store with its own
// clock stores a code whose times the caller computed on another clock.
// AuthTime, a fact the server reports rather than a deadline the store
// judges, is kept as given.
func (c AuthorizationCode) Rebase(now time.Time) AuthorizationCode {
	d := now.Sub(c.CreatedAt)
	c.CreatedAt = now
	c.ExpiresAt = c.ExpiresAt.Add(d)
	if !c.RedeemedAt.IsZero() {
		c.RedeemedAt = c.RedeemedAt.Add(d)
	}
	return c
}

// Clone returns a copy of c that shares no memory with it.
func (c AuthorizationCode) Clone() AuthorizationCode {
	c.Hash = bytes.Clone(c.Hash)
	c.Resources = slices.Clone(c.Resources)
	return c
}

// errEmptyHash refuses a code without a hash.
var errEmptyHash = fmt.Errorf("%w: authorization code: empty hash", ErrInvalid)

// CheckAuthorizationCode checks a code about to be created: a non-empty
// Hash, and its ClientID, Subject and, if set, SessionID (CheckID).
// Backends call it in CreateAuthorizationCode.
func CheckAuthorizationCode(c AuthorizationCode) error {
	if len(c.Hash) == 0 {
		return errEmptyHash
	}
	return checkIDs("authorization code", []string{"ClientID", c.ClientID, "Subject", c.Subject}, "SessionID", c.SessionID)
}

// CheckSession checks the identifiers of a session about to be created:
// its ID and Subject (CheckID). Backends call it in CreateSession.
func CheckSession(s Session) error {
	return checkIDs("session", []string{"ID", s.ID, "Subject", s.Subject}, "", "")
}

// CheckConsent checks the identifiers of a consent about to be stored:
// its Subject and ClientID (CheckID). Backends call it in PutConsent.
func CheckConsent(c Consent) error {
	return checkIDs("consent", []string{"Subject", c.Subject, "ClientID", c.ClientID}, "", "")
}

// checkIDs checks the required identifiers (name, value pairs) and an
// optional one, which may be empty.
func checkIDs(record string, required []string, optName, optional string) error {
	for i := 0; i+1 < len(required); i += 2 {
		if err := CheckID(required[i+1]); err != nil {
			return fmt.Errorf("%s %s: %w", record, required[i], err)
		}
	}
	if optional != "" {
		if err := CheckID(optional); err != nil {
			return fmt.Errorf("%s %s: %w", record, optName, err)
		}
	}
	return nil
}

// redeemAttempts bounds CompareAndRedeem's rounds: a write fails only
// because another redemption redeemed the code since the read, after
// which the code never changes again, so two rounds always decide.
const redeemAttempts = 4

// CompareAndRedeem is Store.RedeemAuthorizationCode for a backend that
// cannot hold the code from its read to its write: it reads the code,
// decides by AuthorizationCode.Redeem, and writes, with read and write the
// backend's:
//   - read returns the code and the time to judge it at (the store's
//     clock, or f.CreatedAt); ErrNotFound (or an error wrapping it) for
//     none.
//   - write stores next, c redeemed, and creates f (rebased by the
//     backend if it has its own clock), only if c is still unredeemed,
//     and only if c's session is live (else it returns an error wrapping
//     ErrSessionEnded, having written nothing); or, for a replay
//     (redeemed false), revokes c.FamilyID with ReasonCodeReplay at now.
//     It reports whether it wrote.
//
// When write did not, CompareAndRedeem reads and decides again; after
// redeemAttempts rounds it fails with an error wrapping ErrConflict and
// ErrUnavailable, having changed nothing.
func CompareAndRedeem(ctx context.Context, f Family,
	read func(ctx context.Context) (AuthorizationCode, time.Time, error),
	write func(ctx context.Context, c, next AuthorizationCode, redeemed bool, now time.Time) (bool, error)) (AuthorizationCode, error) {
	for range redeemAttempts {
		c, now, err := read(ctx)
		if err != nil {
			return AuthorizationCode{}, err
		}
		next, decided := c.Redeem(f, now, true) // write judges the session
		if decided != nil && !errors.Is(decided, ErrRedeemed) {
			return c, decided
		}
		ok, err := write(ctx, c, next, decided == nil, now)
		if errors.Is(err, ErrSessionEnded) {
			return c, err
		}
		if err != nil {
			return AuthorizationCode{}, err
		}
		if ok {
			return next, decided
		}
	}
	return AuthorizationCode{}, fmt.Errorf("store: redeem authorization code: changed concurrently %d times: %w: %w", redeemAttempts, ErrConflict, ErrUnavailable)
}
