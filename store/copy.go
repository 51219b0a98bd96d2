package store

import (
	"context"
	"time"
)

// StoredSecret is a server secret as a store holds it: under sealed.Wrap,
// its sealed bytes.
type StoredSecret struct {
	Name  string
	Value []byte
}

// RevokedAccessToken is an entry of the deny-list of access tokens
// (Store.RevokeAccessToken): the jti, until its exp.
type RevokedAccessToken struct {
	JTI       string
	ExpiresAt time.Time
}

// Importer is implemented by every backend (memory, sqlite, postgres,
// redis) so that `tokend copy` can move a store's records to another store
// exactly as they are: it lists the records Store has no list for, and
// writes a family with all its fields. With Store's own ListClients,
// ListUsers, ListKeys and ListFamilies and its creates (CreateClient,
// CreateUser, CreateKey and CreateSession store a record as given,
// RevokeAccessToken and Secret write an absent entry as given), it reads
// and writes every record a move must carry.
//
// Values are read and written as the store holds them: keys and secrets
// under sealed.Wrap stay sealed, since the sealed wrapper intercepts none
// of these methods (Capability finds the backend's own). Times are
// written as given, never rebased onto the store's clock.
type Importer interface {
	// ListSecrets returns every server secret (Store.Secret), ordered by
	// name.
	ListSecrets(ctx context.Context) ([]StoredSecret, error)
	// ListSessions returns every browser session, ended or not, that
	// DeleteExpired has not deleted, ordered by ID.
	ListSessions(ctx context.Context) ([]Session, error)
	// ListConsents returns every consent, ordered by Subject, then
	// ClientID.
	ListConsents(ctx context.Context) ([]Consent, error)
	// ListRevokedAccessTokens returns the deny-list, ordered by JTI. It
	// may leave out entries past their ExpiresAt.
	ListRevokedAccessTokens(ctx context.Context) ([]RevokedAccessToken, error)
	// ImportFamily stores f exactly as given: its generation, current and
	// previous token hashes, every time (none rebased onto the store's
	// clock), revocation, session and audience. Returns ErrExists if f.ID
	// is taken (the stored family is left as it is), and ErrInvalid if an
	// identifier of f breaks IDRule.
	ImportFamily(ctx context.Context, f Family) error
}

// LegacyTokenCounter is implemented by the stores that may hold legacy
// refresh tokens (LegacyTokens: SQLite and PostgreSQL databases created
// before their schema version 3), which Importer does not move: a copy
// says how many logins it would end.
type LegacyTokenCounter interface {
	// CountLegacyTokens returns how many families active at now still
	// have a legacy token as their current one (the login has not
	// refreshed since the upgrade): on a store that does not hold it,
	// that token is unknown, and its login ends.
	CountLegacyTokens(ctx context.Context, now time.Time) (int, error)
}
