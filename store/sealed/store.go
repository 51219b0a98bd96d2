package sealed

import (
	"context"
	"time"

	"github.com/tokend/tokend/store"
)

// Store is a store.Store whose signing keys' private parts and server
// secrets are sealed in the store it wraps. Values go through it in clear:
// CreateKey and Secret seal, ListKeys and Secret open, RewriteSecrets opens
// each value for its function and seals what the function returns. Every
// other method, and every other field, passes straight through.
//
// With a Keyring.Current, values are written sealed under it, and a value
// found in clear is refused with ErrClear. Without one, values are written
// in clear and read as they are; a value found sealed opens if its key is
// in Keyring.Old, and is refused with ErrUnknownKey otherwise (so that a
// server started without the key fails with a clear error rather than
// failing to parse a private key).
//
// A Store has the methods of store.Store and Unwrap, no other: the
// optional capabilities of the wrapped store (store.FailureCounter,
// store.Leaser, store.LegacyTokens, store.FamiliarSources,
// store.Scrubber, store.Importer) are found under it with
// store.Capability, as the wrapped store has them, and a capability it
// lacks is not claimed here. None of them carries a signing key or a
// secret value in clear, so the Store intercepts none (store.Importer
// moves them as stored, sealed, to another store: it must not open
// them); a capability that did would be intercepted here, with a method
// As (store.Capability).
//
// A Store is safe for concurrent use as the store it wraps is.
type Store struct {
	inner store.Store
	ring  Keyring
}

var _ store.Store = (*Store)(nil)

// Wrap returns st behind ring. Wrapping a *Store again wraps the store
// under it, not the wrapper: values are never sealed twice.
func Wrap(st store.Store, ring Keyring) *Store {
	return &Store{inner: unwrap(st), ring: ring}
}

func unwrap(st store.Store) store.Store {
	if s, ok := st.(*Store); ok {
		return s.inner
	}
	return st
}

// Keyring returns the keyring the Store was wrapped with.
func (s *Store) Keyring() Keyring { return s.ring }

// Unwrap returns the store that s seals into (store.Unwrap): its
// records as stored, sealed or not.
func (s *Store) Unwrap() store.Store { return s.inner }

// CreateKey implements store.Store: k.Private is sealed.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	k.Private = s.ring.seal(store.KindKey, k.ID, k.Private)
	return s.inner.CreateKey(ctx, k)
}

// CreateKeyIfNone implements store.Store: k.Private is sealed, and the
// Private of the key returned opened (ErrClear, ErrUnknownKey or
// ErrTampered if it does not open).
func (s *Store) CreateKeyIfNone(ctx context.Context, k store.Key) (store.Key, error) {
	k.Private = s.ring.seal(store.KindKey, k.ID, k.Private)
	got, err := s.inner.CreateKeyIfNone(ctx, k)
	if err != nil {
		return store.Key{}, err
	}
	if got.Private, err = s.ring.open(store.KindKey, got.ID, got.Private); err != nil {
		return store.Key{}, err
	}
	return got, nil
}

// RotateKey implements store.Store: k.Private is sealed.
func (s *Store) RotateKey(ctx context.Context, k store.Key, prev string) error {
	k.Private = s.ring.seal(store.KindKey, k.ID, k.Private)
	return s.inner.RotateKey(ctx, k, prev)
}

// ListKeys implements store.Store: every Private is opened. A value that
// does not open fails the whole list (ErrClear, ErrUnknownKey or
// ErrTampered, naming the kid).
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	ks, err := s.inner.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ks {
		p, err := s.ring.open(store.KindKey, ks[i].ID, ks[i].Private)
		if err != nil {
			return nil, err
		}
		ks[i].Private = p
	}
	return ks, nil
}

// Secret implements store.Store: value is sealed before it is offered to
// the store, and the stored value is opened.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	v, err := s.inner.Secret(ctx, name, s.ring.seal(store.KindSecret, name, value))
	if err != nil {
		return nil, err
	}
	return s.ring.open(store.KindSecret, name, v)
}

// RewriteSecrets implements store.Store: fn sees and returns values in
// clear. A stored value that does not open fails the rewrite, which then
// changes nothing.
func (s *Store) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	return s.inner.RewriteSecrets(ctx, func(kind, name string, v []byte) ([]byte, error) {
		p, err := s.ring.open(kind, name, v)
		if err != nil {
			return nil, err
		}
		p, err = fn(kind, name, p)
		if err != nil {
			return nil, err
		}
		return s.ring.seal(kind, name, p), nil
	})
}

// The methods below pass through. Every method of store.Store is written
// out rather than embedded, so that a method added to the interface (one
// that may carry a secret) fails to compile here until it is decided how
// it is sealed.

// CreateClient implements store.Store.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	return s.inner.CreateClient(ctx, c)
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	return s.inner.GetClient(ctx, id)
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return s.inner.ListClients(ctx)
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) (int, error) {
	return s.inner.DeleteClient(ctx, id, at)
}

// UpdateClient implements store.Store.
func (s *Store) UpdateClient(ctx context.Context, prev, next store.Client) error {
	return s.inner.UpdateClient(ctx, prev, next)
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.inner.CreateUser(ctx, u)
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	return s.inner.GetUser(ctx, name)
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return s.inner.ListUsers(ctx)
}

// UpdatePasswordHash implements store.Store.
func (s *Store) UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error {
	return s.inner.UpdatePasswordHash(ctx, name, oldHash, newHash)
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(ctx context.Context, name string, at time.Time) (int, error) {
	return s.inner.DeleteUser(ctx, name, at)
}

// RetireKey implements store.Store.
func (s *Store) RetireKey(ctx context.Context, id string, at time.Time) error {
	return s.inner.RetireKey(ctx, id, at)
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return s.inner.RevokeKey(ctx, id, at)
}

// CreateFamily implements store.Store.
func (s *Store) CreateFamily(ctx context.Context, f store.Family) error {
	return s.inner.CreateFamily(ctx, f)
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	return s.inner.GetFamily(ctx, id)
}

// ListFamilies implements store.Store.
func (s *Store) ListFamilies(ctx context.Context, filter store.FamilyFilter) ([]store.Family, error) {
	return s.inner.ListFamilies(ctx, filter)
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error {
	return s.inner.RevokeFamily(ctx, id, at, reason)
}

// RevokeFamilies implements store.Store.
func (s *Store) RevokeFamilies(ctx context.Context, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	return s.inner.RevokeFamilies(ctx, filter, at, reason)
}

// Rotate implements store.Store.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	return s.inner.Rotate(ctx, req)
}

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.inner.RevokeAccessToken(ctx, jti, expiresAt)
}

// AccessTokenRevoked implements store.Store.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	return s.inner.AccessTokenRevoked(ctx, jti)
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	return s.inner.DeleteExpired(ctx, before)
}

// CreateAuthorizationCode implements store.Store. A code is known to the
// store only by its hash: nothing in it is sealed.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error {
	return s.inner.CreateAuthorizationCode(ctx, c)
}

// GetAuthorizationCode implements store.Store.
func (s *Store) GetAuthorizationCode(ctx context.Context, hash []byte) (store.AuthorizationCode, error) {
	return s.inner.GetAuthorizationCode(ctx, hash)
}

// RedeemAuthorizationCode implements store.Store.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, hash []byte, f store.Family) (store.AuthorizationCode, error) {
	return s.inner.RedeemAuthorizationCode(ctx, hash, f)
}

// CreateSession implements store.Store. A session's cookie secret is
// known to the store only by its hash: nothing in it is sealed.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	return s.inner.CreateSession(ctx, sess)
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return s.inner.GetSession(ctx, id)
}

// EndSession implements store.Store.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time) error {
	return s.inner.EndSession(ctx, id, at)
}

// PutConsent implements store.Store.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	return s.inner.PutConsent(ctx, c)
}

// GetConsent implements store.Store.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (store.Consent, error) {
	return s.inner.GetConsent(ctx, subject, clientID)
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return s.inner.Ping(ctx) }

// Close implements store.Store: it closes the wrapped store.
func (s *Store) Close() error { return s.inner.Close() }
