package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultTimeout is the deadline of every store call when WithTimeout is
// given zero: a few seconds, so that a database that stops answering (a
// network partition that holds packets rather than resetting connections)
// costs a request a prompt 503 rather than a hang until some other
// timeout drops its answer.
const DefaultTimeout = 5 * time.Second

// WithTimeout returns st with a deadline on every call: each method of
// Store (but Close), and of the optional interfaces FailureCounter, Leaser
// and LegacyTokens that st has, runs under a context that ends d after the
// call began, or earlier if the caller's does. d zero means
// DefaultTimeout; d negative returns st itself.
//
// A call the deadline ends (its context's or the caller's, whichever comes
// first) returns an error wrapping ErrUnavailable and
// context.DeadlineExceeded, so that the server answers it with 503
// temporarily_unavailable and Retry-After. Such a call, like any that met
// ErrUnavailable, may have taken effect (a commit whose answer was lost).
// An answer that is the store's own (an error wrapping ErrNotFound,
// ErrExists, ErrRevoked, ErrExpired, ErrConflict, ErrUnavailable or
// ErrRedeemed or ErrSessionEnded)
// is returned as it is. A call whose caller's context was cancelled
// returns an error wrapping context.Canceled, whatever the backend made of
// it.
//
// The deadline ends the caller's wait only if the backend honours its
// context; those of this module do (PostgreSQL and Redis on pooled and new
// connections, SQLite while it waits for a lock held by another process).
//
// The result has only the methods of Store, Unwrap (which returns st)
// and As: through Capability it provides the FailureCounter, Leaser and
// LegacyTokens that st has, each under the deadline, and no capability
// that st lacks; FamiliarSources and Scrubber are found under it, as st
// has them. Wrapping a store WithTimeout returned wraps the store under
// it with the new d: deadlines never nest.
func WithTimeout(st Store, d time.Duration) Store {
	if d < 0 {
		return st
	}
	if d == 0 {
		d = DefaultTimeout
	}
	if w, ok := st.(interface{ timeoutInner() Store }); ok {
		st = w.timeoutInner()
	}
	t := &timeoutStore{st: st, d: d}
	if fc, ok := Capability[FailureCounter](st); ok {
		t.fc = failures{t, fc}
	}
	if le, ok := Capability[Leaser](st); ok {
		t.le = leases{t, le}
	}
	if lt, ok := Capability[LegacyTokens](st); ok {
		t.lt = legacy{t, lt}
	}
	return t
}

// timeoutStore is WithTimeout's Store.
type timeoutStore struct {
	st Store
	d  time.Duration
	// The capabilities of st under the deadline; nil where st has none.
	fc FailureCounter
	le Leaser
	lt LegacyTokens
}

// failures, leases and legacy are st's capabilities under t's deadline.
type failures struct {
	t  *timeoutStore
	fc FailureCounter
}

type leases struct {
	t  *timeoutStore
	le Leaser
}

type legacy struct {
	t  *timeoutStore
	lt LegacyTokens
}

// call runs f under the deadline and classifies its error (timeoutStore.err).
func call[R any](t *timeoutStore, ctx context.Context, op string, f func(context.Context) (R, error)) (R, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	r, err := f(ctx)
	return r, t.err(ctx, op, err)
}

// call0 is call for a method that returns only an error.
func call0(t *timeoutStore, ctx context.Context, op string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.err(ctx, op, f(ctx))
}

// sentinels are the store's own answers, which err never reclassifies.
var sentinels = []error{ErrNotFound, ErrExists, ErrRevoked, ErrExpired, ErrConflict, ErrUnavailable, ErrRedeemed, ErrSessionEnded}

// err classifies the error of a call made under ctx, the call's context:
// see WithTimeout.
func (t *timeoutStore) err(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	cause := ctx.Err()
	if errors.Is(cause, context.Canceled) {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("store: %s: %w: %w", op, cause, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return err
		}
	}
	if cause == nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("store: %s: no answer within %v: %w: %w", op, t.d, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: no answer within %v: %w: %w: %w", op, t.d, ErrUnavailable, cause, err)
}

func (t *timeoutStore) timeoutInner() Store { return t.st }

// Unwrap returns the store under the deadline.
func (t *timeoutStore) Unwrap() Store { return t.st }

// As provides, for Capability, the FailureCounter, Leaser and
// LegacyTokens of the store under the deadline, each with the deadline;
// it reports false for those that store lacks, and for any other target.
func (t *timeoutStore) As(target any) bool {
	switch p := target.(type) {
	case *FailureCounter:
		*p = t.fc
		return t.fc != nil
	case *Leaser:
		*p = t.le
		return t.le != nil
	case *LegacyTokens:
		*p = t.lt
		return t.lt != nil
	}
	return false
}

// CreateClient implements Store.
func (t *timeoutStore) CreateClient(ctx context.Context, c Client) error {
	return call0(t, ctx, "create client", func(ctx context.Context) error { return t.st.CreateClient(ctx, c) })
}

// GetClient implements Store.
func (t *timeoutStore) GetClient(ctx context.Context, id string) (Client, error) {
	return call(t, ctx, "get client", func(ctx context.Context) (Client, error) { return t.st.GetClient(ctx, id) })
}

// ListClients implements Store.
func (t *timeoutStore) ListClients(ctx context.Context) ([]Client, error) {
	return call(t, ctx, "list clients", t.st.ListClients)
}

// DeleteClient implements Store.
func (t *timeoutStore) DeleteClient(ctx context.Context, id string, at time.Time) (int, error) {
	return call(t, ctx, "delete client", func(ctx context.Context) (int, error) { return t.st.DeleteClient(ctx, id, at) })
}

// UpdateClient implements Store.
func (t *timeoutStore) UpdateClient(ctx context.Context, prev, next Client) error {
	return call0(t, ctx, "update client", func(ctx context.Context) error { return t.st.UpdateClient(ctx, prev, next) })
}

// CreateUser implements Store.
func (t *timeoutStore) CreateUser(ctx context.Context, u User) error {
	return call0(t, ctx, "create user", func(ctx context.Context) error { return t.st.CreateUser(ctx, u) })
}

// GetUser implements Store.
func (t *timeoutStore) GetUser(ctx context.Context, name string) (User, error) {
	return call(t, ctx, "get user", func(ctx context.Context) (User, error) { return t.st.GetUser(ctx, name) })
}

// ListUsers implements Store.
func (t *timeoutStore) ListUsers(ctx context.Context) ([]User, error) {
	return call(t, ctx, "list users", t.st.ListUsers)
}

// UpdatePasswordHash implements Store.
func (t *timeoutStore) UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error {
	return call0(t, ctx, "update password hash", func(ctx context.Context) error {
		return t.st.UpdatePasswordHash(ctx, name, oldHash, newHash)
	})
}

// DeleteUser implements Store.
func (t *timeoutStore) DeleteUser(ctx context.Context, name string, at time.Time) (int, error) {
	return call(t, ctx, "delete user", func(ctx context.Context) (int, error) { return t.st.DeleteUser(ctx, name, at) })
}

// CreateKey implements Store.
func (t *timeoutStore) CreateKey(ctx context.Context, k Key) error {
	return call0(t, ctx, "create key", func(ctx context.Context) error { return t.st.CreateKey(ctx, k) })
}

// CreateKeyIfNone implements Store.
func (t *timeoutStore) CreateKeyIfNone(ctx context.Context, k Key) (Key, error) {
	return call(t, ctx, "create key", func(ctx context.Context) (Key, error) { return t.st.CreateKeyIfNone(ctx, k) })
}

// RotateKey implements Store.
func (t *timeoutStore) RotateKey(ctx context.Context, k Key, prev string) error {
	return call0(t, ctx, "rotate key", func(ctx context.Context) error { return t.st.RotateKey(ctx, k, prev) })
}

// ListKeys implements Store.
func (t *timeoutStore) ListKeys(ctx context.Context) ([]Key, error) {
	return call(t, ctx, "list keys", t.st.ListKeys)
}

// RetireKey implements Store.
func (t *timeoutStore) RetireKey(ctx context.Context, id string, at time.Time) error {
	return call0(t, ctx, "retire key", func(ctx context.Context) error { return t.st.RetireKey(ctx, id, at) })
}

// RevokeKey implements Store.
func (t *timeoutStore) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return call0(t, ctx, "revoke key", func(ctx context.Context) error { return t.st.RevokeKey(ctx, id, at) })
}

// CreateFamily implements Store.
func (t *timeoutStore) CreateFamily(ctx context.Context, f Family) error {
	return call0(t, ctx, "create family", func(ctx context.Context) error { return t.st.CreateFamily(ctx, f) })
}

// GetFamily implements Store.
func (t *timeoutStore) GetFamily(ctx context.Context, id string) (Family, error) {
	return call(t, ctx, "get family", func(ctx context.Context) (Family, error) { return t.st.GetFamily(ctx, id) })
}

// ListFamilies implements Store.
func (t *timeoutStore) ListFamilies(ctx context.Context, filter FamilyFilter) ([]Family, error) {
	return call(t, ctx, "list families", func(ctx context.Context) ([]Family, error) { return t.st.ListFamilies(ctx, filter) })
}

// RevokeFamily implements Store.
func (t *timeoutStore) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error {
	return call0(t, ctx, "revoke family", func(ctx context.Context) error { return t.st.RevokeFamily(ctx, id, at, reason) })
}

// RevokeFamilies implements Store.
func (t *timeoutStore) RevokeFamilies(ctx context.Context, filter FamilyFilter, at time.Time, reason string) (int, error) {
	return call(t, ctx, "revoke families", func(ctx context.Context) (int, error) {
		return t.st.RevokeFamilies(ctx, filter, at, reason)
	})
}

// Rotate implements Store.
func (t *timeoutStore) Rotate(ctx context.Context, req RotateRequest) (RotateResult, error) {
	return call(t, ctx, "rotate", func(ctx context.Context) (RotateResult, error) { return t.st.Rotate(ctx, req) })
}

// RevokeAccessToken implements Store.
func (t *timeoutStore) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return call0(t, ctx, "revoke access token", func(ctx context.Context) error {
		return t.st.RevokeAccessToken(ctx, jti, expiresAt)
	})
}

// AccessTokenRevoked implements Store.
func (t *timeoutStore) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	return call(t, ctx, "access token revoked", func(ctx context.Context) (bool, error) {
		return t.st.AccessTokenRevoked(ctx, jti)
	})
}

// DeleteExpired implements Store.
func (t *timeoutStore) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	return call(t, ctx, "delete expired", func(ctx context.Context) (int, error) { return t.st.DeleteExpired(ctx, before) })
}

// CreateAuthorizationCode implements Store.
func (t *timeoutStore) CreateAuthorizationCode(ctx context.Context, c AuthorizationCode) error {
	return call0(t, ctx, "create authorization code", func(ctx context.Context) error { return t.st.CreateAuthorizationCode(ctx, c) })
}

// GetAuthorizationCode implements Store.
func (t *timeoutStore) GetAuthorizationCode(ctx context.Context, hash []byte) (AuthorizationCode, error) {
	return call(t, ctx, "get authorization code", func(ctx context.Context) (AuthorizationCode, error) {
		return t.st.GetAuthorizationCode(ctx, hash)
	})
}

// RedeemAuthorizationCode implements Store. A redemption the deadline
// ends may have taken effect, as any write; the error wraps ErrUnavailable.
func (t *timeoutStore) RedeemAuthorizationCode(ctx context.Context, hash []byte, f Family) (AuthorizationCode, error) {
	return call(t, ctx, "redeem authorization code", func(ctx context.Context) (AuthorizationCode, error) {
		return t.st.RedeemAuthorizationCode(ctx, hash, f)
	})
}

// CreateSession implements Store.
func (t *timeoutStore) CreateSession(ctx context.Context, s Session) error {
	return call0(t, ctx, "create session", func(ctx context.Context) error { return t.st.CreateSession(ctx, s) })
}

// GetSession implements Store.
func (t *timeoutStore) GetSession(ctx context.Context, id string) (Session, error) {
	return call(t, ctx, "get session", func(ctx context.Context) (Session, error) { return t.st.GetSession(ctx, id) })
}

// EndSession implements Store.
func (t *timeoutStore) EndSession(ctx context.Context, id string, at time.Time) error {
	return call0(t, ctx, "end session", func(ctx context.Context) error { return t.st.EndSession(ctx, id, at) })
}

// PutConsent implements Store.
func (t *timeoutStore) PutConsent(ctx context.Context, c Consent) error {
	return call0(t, ctx, "put consent", func(ctx context.Context) error { return t.st.PutConsent(ctx, c) })
}

// GetConsent implements Store.
func (t *timeoutStore) GetConsent(ctx context.Context, subject, clientID string) (Consent, error) {
	return call(t, ctx, "get consent", func(ctx context.Context) (Consent, error) { return t.st.GetConsent(ctx, subject, clientID) })
}

// Secret implements Store.
func (t *timeoutStore) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	return call(t, ctx, "secret", func(ctx context.Context) ([]byte, error) { return t.st.Secret(ctx, name, value) })
}

// RewriteSecrets implements Store.
func (t *timeoutStore) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	return call0(t, ctx, "rewrite secrets", func(ctx context.Context) error { return t.st.RewriteSecrets(ctx, fn) })
}

// Ping implements Store.
func (t *timeoutStore) Ping(ctx context.Context) error {
	return call0(t, ctx, "ping", t.st.Ping)
}

// Close implements Store: it closes the wrapped store, with no deadline
// (it waits for the calls in progress).
func (t *timeoutStore) Close() error { return t.st.Close() }

// CountFailures implements FailureCounter.
func (f failures) CountFailures(ctx context.Context, fs []Failure) ([]int64, error) {
	return call(f.t, ctx, "count failures", func(ctx context.Context) ([]int64, error) { return f.fc.CountFailures(ctx, fs) })
}

// Lease implements Leaser.
func (l leases) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return call(l.t, ctx, "lease", func(ctx context.Context) (bool, error) { return l.le.Lease(ctx, name, holder, ttl) })
}

// Release implements Leaser.
func (l leases) Release(ctx context.Context, name, holder string) error {
	return call0(l.t, ctx, "release lease", func(ctx context.Context) error { return l.le.Release(ctx, name, holder) })
}

// LegacyToken implements LegacyTokens.
func (g legacy) LegacyToken(ctx context.Context, hash []byte) (string, int64, error) {
	type answer struct {
		family string
		gen    int64
	}
	a, err := call(g.t, ctx, "legacy token", func(ctx context.Context) (answer, error) {
		f, n, err := g.lt.LegacyToken(ctx, hash)
		return answer{f, n}, err
	})
	return a.family, a.gen, err
}
