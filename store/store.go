// Package store defines the storage contract of the token server: the
// records it keeps (clients, users, signing keys, refresh-token families),
// the sentinel errors, the rule of rotation (Decide) and the Store
// interface every backend implements. Backends live in subpackages
// (memory, sqlite, postgres, redis, and sealed around any of them);
// storetest is the conformance suite they all pass. WithTimeout puts a
// deadline on every call of a store, so that a database that stops
// answering costs its callers an error wrapping ErrUnavailable, not a
// hang. A backend's optional interfaces (FailureCounter, Leaser,
// LegacyTokens, FamiliarSources, Scrubber) are found with Capability,
// through any wrappers (capability.go).
//
// Values go in and come out; no backend shares memory with its callers. A
// refresh token is known to a store only by its hash: the token itself never
// reaches it.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound reports a record that does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists reports a create whose ID is taken.
	ErrExists = errors.New("store: already exists")
	// ErrRevoked reports a refresh token whose family has been revoked.
	ErrRevoked = errors.New("store: family revoked")
	// ErrExpired reports a refresh token whose family has passed its idle or
	// absolute lifetime.
	ErrExpired = errors.New("store: family expired")
	// ErrUnavailable reports a store that cannot serve the request now but
	// may later: a full disk, an I/O error, a database that is down or
	// busy, or that did not answer within the call's deadline
	// (WithTimeout). Nothing was changed, unless the answer to a write was
	// what got lost (a commit whose acknowledgement did not arrive in
	// time); the caller may retry. The server answers it with 503
	// temporarily_unavailable.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrUnreadable reports a stored value this process cannot read: a
	// private key or secret sealed under an operator key it does not
	// hold, or in clear where it expects a sealed one (package sealed),
	// as when the store was sealed, rotated or unsealed while it ran.
	ErrUnreadable = errors.New("store: a stored value cannot be read by this process")
	// ErrConflict reports a compare-and-set that found another value than
	// the one it expected: someone else changed the record first.
	ErrConflict = errors.New("store: changed concurrently")
	// ErrRedeemed reports an authorization code presented again after it
	// was redeemed. RFC 6749 §4.1.2: "If an authorization code is used
	// more than once, the authorization server MUST deny the request and
	// SHOULD revoke (when possible) all tokens previously issued based on
	// that authorization code": RedeemAuthorizationCode has revoked the
	// family the first redemption started (ReasonCodeReplay) when it
	// returns ErrRedeemed.
	ErrRedeemed = errors.New("store: authorization code already redeemed")
	// ErrSessionEnded reports an authorization code whose browser session
	// (AuthorizationCode.SessionID) has ended, by logout or DeleteUser, or
	// is gone: RedeemAuthorizationCode refuses it and changes nothing, so
	// nothing the session authorized starts a family after it ended.
	ErrSessionEnded = errors.New("store: the browser session of the authorization code has ended")
)

// Revocation reasons the store itself records (Family.RevokeReason).
const (
	ReasonReuse         = "reuse"          // a rotated refresh token was presented again
	ReasonUserDeleted   = "user_deleted"   // DeleteUser
	ReasonClientDeleted = "client_deleted" // DeleteClient
	// ReasonCodeReplay: the authorization code that started the family
	// was presented again (RedeemAuthorizationCode, RFC 6749 §4.1.2).
	ReasonCodeReplay = "code_replay"
)

// The kinds of value RewriteSecrets passes to its function.
const (
	KindKey    = "key"    // a signing key's Private
	KindSecret = "secret" // a server secret's value
)

// Client is an OAuth 2.0 client registered with the server.
type Client struct {
	ID string
	// SecretHash is the hash of the client secret; empty for a public
	// client, which may use only the refresh_token grant.
	SecretHash []byte
	Grants     []string // grant types allowed: client_credentials, refresh_token, password
	Scopes     []string // scopes the client may request; empty means any
	Mint       bool     // may mint tokens for its users through /v1/tokens
	// MintFor lists the public clients this client may start families for:
	// with Mint set, a mint naming one of them (POST /v1/tokens with
	// "client_id") starts a family that belongs to that public client,
	// which then refreshes it without a secret. Empty: none.
	MintFor []string
	// Origins are the browser origins (scheme://host[:port], exact, no
	// path and no wildcard, e.g. "http://localhost:5173") from which a
	// browser app may use this client: the server answers CORS for them
	// and refuses this client's requests that carry another Origin header.
	// Empty: no browser origin (requests without an Origin are unaffected).
	Origins []string
	// Cookie puts the client in cookie mode: its refresh token travels in
	// the server's HttpOnly cookie, never in a token response's body. Only
	// for a browser app, so it goes with Origins.
	Cookie bool
	// RedirectURIs are the redirect URIs registered for the authorization
	// code flow (RFC 6749 §3.1.2): absolute, https (http only for a
	// loopback host), or a private-use scheme for a native app (RFC 8252
	// §7.1); no fragment. The server matches a presented redirect_uri
	// against them (exactly, but for the port of a loopback URI, RFC 8252
	// §7.3). Empty: the client cannot use the authorization endpoint.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the URIs the end-session endpoint may
	// send the browser back to (OpenID Connect RP-Initiated Logout 1.0
	// §3), under the rules of RedirectURIs.
	PostLogoutRedirectURIs []string
	// ThirdParty marks a client the user must consent to (Consent)
	// before the server issues it an authorization code; a first-party
	// client (false) skips the consent screen.
	ThirdParty bool
	// Resources are the resource indicators (RFC 8707: absolute URIs) the
	// client may request; a token's aud is the requested resources.
	// Empty: only the server's default audience.
	Resources []string
	// PreviousSecretHash is the hash of the secret a rotation replaced
	// (`tokend client rotate-secret`): it still authenticates the client
	// before PreviousSecretExpiresAt, so that the client's deployments can
	// move to the new secret without an outage. Nil: no previous secret.
	PreviousSecretHash []byte
	// PreviousSecretExpiresAt is when PreviousSecretHash stops
	// authenticating the client; zero with no previous secret.
	PreviousSecretExpiresAt time.Time
	// CreatedAt is when the client was created. No update changes it:
	// another CreatedAt under the same ID is another client (deleted and
	// created again), whose predecessor's logins have ended.
	CreatedAt time.Time
}

// Equal reports whether c and o hold the same values: every field, a nil
// list or hash equal to an empty one, times equal as instants. It is the
// comparison of UpdateClient's compare-and-set.
func (c Client) Equal(o Client) bool {
	return c.ID == o.ID && bytes.Equal(c.SecretHash, o.SecretHash) &&
		slices.Equal(c.Grants, o.Grants) && slices.Equal(c.Scopes, o.Scopes) &&
		c.Mint == o.Mint && slices.Equal(c.MintFor, o.MintFor) &&
		slices.Equal(c.Origins, o.Origins) && c.Cookie == o.Cookie &&
		slices.Equal(c.RedirectURIs, o.RedirectURIs) && slices.Equal(c.PostLogoutRedirectURIs, o.PostLogoutRedirectURIs) &&
		c.ThirdParty == o.ThirdParty && slices.Equal(c.Resources, o.Resources) &&
		bytes.Equal(c.PreviousSecretHash, o.PreviousSecretHash) &&
		c.PreviousSecretExpiresAt.Equal(o.PreviousSecretExpiresAt) && c.CreatedAt.Equal(o.CreatedAt)
}

// WithSecret returns c with the secret whose hash is secretHash, the one
// it had until now kept as its previous secret until now+overlap: both
// authenticate the client during the overlap, then only the new one. An
// overlap of zero or less keeps no previous secret: the old one stops at
// once. A previous secret of an earlier rotation is replaced, so it stops
// at once too.
func (c Client) WithSecret(secretHash []byte, now time.Time, overlap time.Duration) Client {
	c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, time.Time{}
	if overlap > 0 && len(c.SecretHash) > 0 {
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, now.Add(overlap)
	}
	c.SecretHash = slices.Clone(secretHash)
	return c
}

// CheckUpdate checks an UpdateClient of prev to next before it reaches
// the store: next has prev's ID (an identifier, CheckID: a client
// created before ClientIDRule can still be updated) and CreatedAt, which
// no update changes, and each of its MintFor is a client ID
// (CheckClientID). It returns nil or an error wrapping ErrInvalid.
func CheckUpdate(prev, next Client) error {
	switch {
	case next.ID != prev.ID:
		return fmt.Errorf("%w: an update cannot change a client's ID", ErrInvalid)
	case !next.CreatedAt.Equal(prev.CreatedAt):
		return fmt.Errorf("%w: an update cannot change a client's CreatedAt", ErrInvalid)
	}
	if err := CheckID(next.ID); err != nil {
		return fmt.Errorf("client ID: %w", err)
	}
	for i, id := range next.MintFor {
		if err := CheckClientID(id); err != nil {
			return fmt.Errorf("client MintFor[%d]: %w", i, err)
		}
	}
	return nil
}

// User is a built-in user for the password grant.
type User struct {
	Name         string
	PasswordHash string // PHC string, e.g. "$argon2id$v=19$m=...,t=...,p=...$salt$hash"
	CreatedAt    time.Time
}

// Key is a signing key. Keys are kept apart by Use: of the keys of one
// Use, the newest that is not retired and whose NotBefore has passed
// signs; retired keys stay published in the JWKS until every token they
// signed has expired.
type Key struct {
	ID        string // the kid
	Algorithm string // JWS alg: "EdDSA", "ES256" or "RS256"
	Private   []byte // PKCS #8 DER
	// Use is what the key signs: UseAccess ("", every key stored before
	// uses existed) or UseID. Keys of one Use rotate, retire and are
	// active apart from those of the other.
	Use       string
	CreatedAt time.Time
	// NotBefore is when the key starts signing; zero for at once. The key
	// is published at once but signs only from NotBefore: at least one
	// key-reload interval plus the JWKS cache lifetime after it was
	// created, so every instance and every verifier knows it before any
	// token it signs exists.
	NotBefore time.Time
	// RetiredAt is zero while the key may sign; from RetiredAt on (it may
	// be set ahead, to the NotBefore of its successor) it no longer signs.
	RetiredAt time.Time
	// RevokedAt is zero unless the key was withdrawn (compromised): a
	// revoked key neither signs nor is published, and tokens it signed are
	// refused at once.
	RevokedAt time.Time
}

// Key uses (Key.Use).
const (
	// UseAccess marks a key that signs access tokens (RFC 9068).
	UseAccess = ""
	// UseID marks a key that signs OpenID Connect ID tokens (OpenID
	// Connect Core §2); RS256, which every provider must support (§15.1).
	UseID = "id"
)

// Family is the chain of refresh tokens that descend from one first issue
// (a password-grant login or a mint). Revoking a family ends every token
// in it. Family is the project's one word for this record: the /v1 API's
// paths and session_id, and the sid claim of an access token, name a
// family too.
type Family struct {
	ID       string
	ClientID string
	Subject  string
	Scope    string // space-separated, as granted
	Claims   []byte // custom claims for access tokens, a JSON object; may be nil
	// AccessTTL, if positive, overrides the server's access-token lifetime
	// for this family (per-token TTL of minted tokens).
	AccessTTL time.Duration

	CreatedAt     time.Time
	LastUsedAt    time.Time
	IdleExpiresAt time.Time // moved forward by every rotation
	ExpiresAt     time.Time // absolute end, never moved
	Generation    int64     // rotations so far; the first token is generation 0

	// TokenHash is the hash of the family's current refresh token, the
	// one of generation Generation. A family is one record however often
	// it rotates: older tokens are not stored, and are recognised by the
	// family and generation they carry (see Decide).
	TokenHash []byte
	// PreviousHash is the hash of the token of generation Generation-1,
	// which TokenHash replaced at RotatedAt: the one token a retry within
	// the grace window may present. Nil at generation 0.
	PreviousHash []byte
	RotatedAt    time.Time // when TokenHash became current; zero at generation 0

	RevokedAt    time.Time // zero unless revoked
	RevokeReason string    // e.g. "logout", "reuse", "admin"

	// SessionID is the ID of the browser session (Session) whose login
	// started the family through an authorization code; empty for a
	// family started otherwise.
	SessionID string

	// Audience is the resource indicators (RFC 8707, absolute URIs) the
	// family's access tokens are for, their aud claim; empty: the server's
	// default audience. Set when the family starts (an authorization code
	// for resources), it stays for every rotation; a refresh may narrow the
	// aud of one token to some of these (RFC 8707 §2.2), never widen it.
	Audience []string
}

// AllowsScope reports whether client c may be granted the scope token
// scope (one token, RFC 6749 §3.3): any, when c.Scopes is empty, else one
// of c.Scopes.
func (c Client) AllowsScope(scope string) bool {
	return len(c.Scopes) == 0 || slices.Contains(c.Scopes, scope)
}

// The rules of a family, written once: when it ends, whether it can be
// used, which token is its current one, whose it is. The server, every
// backend and Decide use these; none repeats them.

// End returns when the family ends unless it is used or revoked first: the
// earlier of its idle expiry and its absolute expiry.
func (f Family) End() time.Time {
	if f.ExpiresAt.Before(f.IdleExpiresAt) {
		return f.ExpiresAt
	}
	return f.IdleExpiresAt
}

// Active reports whether the family can still be used at now: not revoked,
// and now before its End.
func (f Family) Active(now time.Time) bool {
	return f.RevokedAt.IsZero() && now.Before(f.End())
}

// IdleUntil returns f with its idle expiry at t, but never after its
// absolute expiry: a use never extends a family past ExpiresAt.
func (f Family) IdleUntil(t time.Time) Family {
	f.IdleExpiresAt = t
	if t.After(f.ExpiresAt) {
		f.IdleExpiresAt = f.ExpiresAt
	}
	return f
}

// Current reports whether the token of generation generation whose hash is
// hash is f's current token: the one refresh token of f that can be
// redeemed without being a retry or a reuse (see Decide).
func (f Family) Current(generation int64, hash []byte) bool {
	return generation == f.Generation && bytes.Equal(hash, f.TokenHash)
}

// OwnedBy reports whether f is a family of client clientID: only its own
// client may refresh, introspect or revoke it (RFC 6749 §6, RFC 7009 §2.1,
// RFC 7662 §2.1).
func (f Family) OwnedBy(clientID string) bool {
	return f.ClientID == clientID
}

// RotateRequest asks to replace a presented refresh token by its successor.
// The server reads FamilyID and Generation from the presented token, whose
// MAC it has checked, so the store never needs to have kept that token.
type RotateRequest struct {
	FamilyID   string // the family the presented token names
	Generation int64  // the generation the presented token names
	Old        []byte // hash of the presented token
	New        []byte // hash of its successor
	// Alternates are hashes of other successors of the same token that
	// the caller would hand out as readily as New: the server derives a
	// successor under its current secret, and these under the other
	// secrets of its ring, so that a retry after the current secret
	// changed (or on an instance whose clock put it on another one)
	// still finds the successor it was first given. A retry within Grace
	// finding one of them current is Repeated, as one finding New is.
	// Never stored.
	Alternates [][]byte
	// ClientID, if set, is the client presenting the token: a token of
	// another client's family is answered ErrNotFound and nothing changes.
	ClientID string
	// Now is the caller's clock. A store shared by several hosts judges
	// the grace window and the family's expiry on its own clock instead
	// (now() in PostgreSQL, TIME in Redis), so that the answer does not
	// depend on which instance asked; memory and SQLite, on one host, use
	// Now.
	Now time.Time
	// Grace is how long after a rotation the same Old may be presented
	// again and be answered with the same New (a retry, or a second tab).
	Grace time.Duration
	// IdleExpiresAt is the family's new idle expiry if the rotation
	// happens: a store with its own clock moves it by the same amount as
	// Now, and every store caps it at the family's ExpiresAt.
	IdleExpiresAt time.Time
}

// Outcome says what a Rotate did.
type Outcome int

// The outcomes of Rotate.
const (
	// Rotated: Old was the current token; New now is, and the family's
	// Generation went up by one.
	Rotated Outcome = iota + 1
	// Repeated: Old had been rotated to this same New within Grace, and New
	// is still current. Nothing changed: the caller answers with New again.
	Repeated
	// ReuseDetected: Old had been rotated before (outside Grace, to another
	// successor, or New has itself been rotated since). The family is now
	// revoked with reason "reuse".
	ReuseDetected
)

func (o Outcome) String() string {
	switch o {
	case Rotated:
		return "rotated"
	case Repeated:
		return "repeated"
	case ReuseDetected:
		return "reuse_detected"
	}
	return "unknown"
}

// RotateResult is the outcome of a Rotate and the family after it.
type RotateResult struct {
	Outcome Outcome
	Family  Family
}

// FamilyFilter selects families. Empty fields match everything.
type FamilyFilter struct {
	ClientID string
	Subject  string
	// SessionID keeps only the families the browser session started
	// (Family.SessionID).
	SessionID string
	// ActiveAt, if set, keeps only families active at that time.
	ActiveAt time.Time
}

// Store is the server's storage. All methods are safe for concurrent use
// and take the context first. A method either does all it says or nothing.
// An identifier that breaks IDRule is refused (ErrInvalid) by a method
// that would store it and unknown to one that looks it up (ids.go).
type Store interface {
	// CreateClient stores c. Returns ErrExists if c.ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns ErrNotFound for an unknown id.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns every client, ordered by ID.
	ListClients(ctx context.Context) ([]Client, error)
	// DeleteClient deletes the client and, in the same atomic step,
	// revokes every unrevoked family of it at at with reason
	// ReasonClientDeleted; it returns how many it revoked. Returns
	// ErrNotFound for an unknown id. In the same step it deletes the
	// client's consents and its unredeemed authorization codes.
	DeleteClient(ctx context.Context, id string, at time.Time) (revoked int, err error)
	// UpdateClient replaces the client prev.ID by next as one atomic
	// compare-and-set: only if the stored client still Equals prev, so
	// that of two concurrent updates read from the same client one
	// succeeds and the other, having changed nothing, can read again and
	// retry. It changes no family, consent or code. Returns an error
	// wrapping ErrInvalid if CheckUpdate refuses next, ErrNotFound for an
	// unknown client and ErrConflict if the client is no longer prev.
	UpdateClient(ctx context.Context, prev, next Client) error

	// CreateUser returns ErrExists if u.Name is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns ErrNotFound for an unknown name.
	GetUser(ctx context.Context, name string) (User, error)
	// ListUsers returns every user, ordered by name.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdatePasswordHash replaces the user's password hash by newHash if it
	// still is oldHash (a compare-and-set, so that two logins upgrading the
	// same hash cannot undo a password change). Returns ErrNotFound for an
	// unknown name and ErrConflict if the hash is no longer oldHash.
	UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error
	// DeleteUser deletes the user and, in the same atomic step, revokes
	// every unrevoked family whose Subject is name (of any client) at at
	// with reason ReasonUserDeleted; it returns how many it revoked. In
	// the same step it ends the user's sessions at at (keeping an earlier
	// EndedAt) and deletes the user's consents. Returns ErrNotFound for an
	// unknown name.
	DeleteUser(ctx context.Context, name string, at time.Time) (revoked int, err error)

	// CreateKey returns ErrExists if k.ID is taken.
	CreateKey(ctx context.Context, k Key) error
	// CreateKeyIfNone stores k only if the store has no key of k.Use
	// that is neither retired (RetiredAt set, whatever its time) nor
	// revoked, as one atomic compare-and-set: of concurrent calls from any
	// number of handles on one store, at most one stores its key. It
	// returns the key of k.Use that is now active: k, or the newest such
	// key another caller created first. Keys of another Use play no part.
	// Returns ErrExists if k.ID is taken and no key of k.Use is active.
	CreateKeyIfNone(ctx context.Context, k Key) (Key, error)
	// RotateKey stores k and retires, at k.NotBefore, every key of k.Use
	// that is neither retired nor revoked, as one atomic compare-and-set:
	// only if the newest such key is prev (its ID; "" for none), so that of
	// concurrent rotations from any number of handles that saw the same
	// key, at most one stores its key. Keys of another Use are neither
	// compared nor retired. Returns ErrConflict, having changed nothing, if
	// another key has become the newest active one of k.Use, and ErrExists
	// if k.ID is taken.
	RotateKey(ctx context.Context, k Key, prev string) error
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]Key, error)
	// RetireKey sets the key's RetiredAt if it is zero. Returns ErrNotFound
	// for an unknown id.
	RetireKey(ctx context.Context, id string, at time.Time) error
	// RevokeKey sets the key's RevokedAt (and its RetiredAt, if zero) if
	// RevokedAt is zero: the key is withdrawn. Returns ErrNotFound for an
	// unknown id.
	RevokeKey(ctx context.Context, id string, at time.Time) error

	// CreateFamily stores f, whose TokenHash is its first refresh token's
	// (generation 0). A store with its own clock moves CreatedAt to its
	// now and the other times by the same amount (see Family.Rebase).
	// Returns ErrExists if f.ID is taken.
	CreateFamily(ctx context.Context, f Family) error
	// GetFamily returns ErrNotFound for an unknown id.
	GetFamily(ctx context.Context, id string) (Family, error)
	// ListFamilies returns the families that match, oldest first.
	ListFamilies(ctx context.Context, filter FamilyFilter) ([]Family, error)
	// RevokeFamily revokes one family; revoking a revoked family keeps its
	// first RevokedAt and reason. Returns ErrNotFound for an unknown id.
	RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error
	// RevokeFamilies revokes every unrevoked family that matches and
	// returns how many it revoked.
	RevokeFamilies(ctx context.Context, filter FamilyFilter, at time.Time, reason string) (int, error)

	// Rotate replaces a family's refresh token by its successor as one
	// atomic compare-and-set on the family's record, deciding by Decide:
	// of any number of concurrent Rotates of the same Old, exactly one
	// returns Rotated. Returns ErrNotFound for an unknown family, another
	// client's, or a token it never held; ErrRevoked or ErrExpired (with
	// the family in the result) when the family has ended; on
	// ReuseDetected the family is revoked in the same atomic step.
	Rotate(ctx context.Context, req RotateRequest) (RotateResult, error)

	// RevokeAccessToken puts the access token with this jti on the
	// deny-list until expiresAt (its exp), for tokens that no family can
	// revoke (client_credentials). Revoking it again keeps the later
	// expiresAt.
	RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error
	// AccessTokenRevoked reports whether the jti is on the deny-list.
	// Entries past their expiresAt may be reported either way: the token
	// has expired anyway.
	AccessTokenRevoked(ctx context.Context, jti string) (bool, error)

	// DeleteExpired deletes the families that ended before the given time
	// (expired, or revoked before it), the deny-list entries that expired
	// before it, the authorization codes expired by then (ExpiresAt not
	// after it, redeemed or not) and the sessions that ended before it
	// (EndedAt before it, or ExpiresAt not after it), and returns how
	// many families it deleted.
	DeleteExpired(ctx context.Context, before time.Time) (int, error)

	AuthorizationStore

	// Secret returns the server secret called name. The first call stores
	// value; every later call, from any instance, returns that stored
	// value.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)

	// RewriteSecrets passes the private part of every signing key (kind
	// KindKey, name its kid) and the value of every server secret (kind
	// KindSecret, name its name) through fn and stores what fn returns, all
	// in one atomic step: if fn or the store fails, nothing changes. It is
	// how secrets are sealed, unsealed or resealed under a new key. fn runs
	// inside that step, so it must not call the store; it may modify value,
	// which is its own copy. The values replaced may linger in the
	// store's files until a Scrubber's Scrub.
	RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error

	// Ping reports whether the store can serve reads and writes now (for
	// /readyz): a store that cannot write returns an error wrapping
	// ErrUnavailable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// LegacyTokens is implemented by a store that holds refresh tokens issued
// before tokens carried their family and generation (an SQLite database
// created before its schema version 3): the server looks such a token up
// by its hash, then rotates it as any other.
type LegacyTokens interface {
	// LegacyToken returns the family and generation of the legacy refresh
	// token with this hash. Returns ErrNotFound for a hash it does not
	// hold.
	LegacyToken(ctx context.Context, hash []byte) (familyID string, generation int64, err error)
}
