// Package keys manages the token server's signing keys: generating them,
// rotating them, signing access tokens and OpenID Connect ID tokens with
// the active ones, and publishing the public keys as a JSON Web Key Set
// (RFC 7517).
//
// Keys live in the store, so that every instance of the server and the
// admin CLI see the same ones. Each key has a use (store.Key.Use): it
// signs access tokens (store.UseAccess; EdDSA by default, or ES256 or
// RS256) or ID tokens (store.UseID; RS256, which OpenID Connect Core
// §15.1 requires every provider to support). The keys of each use rotate
// apart. Of the keys of a use, the newest that is neither retired nor
// revoked and whose NotBefore has passed signs; a retired key stays in the
// JWKS until every token it signed has expired (Rotate, RotateID); a
// revoked key, one that is compromised, leaves the JWKS at once (Revoke).
// The JWKS publishes the keys of both uses.
//
// # Keys across instances
//
// A rotated key is published at once but signs only from its NotBefore,
// a lead after it was created (Rotate): with a lead of at least one reload
// interval plus the JWKS cache lifetime, every instance and every verifier
// has the new key before any token it signs exists. The old key is retired
// at that same moment, so that exactly one key signs all along. The first
// key of an empty store signs at once (nothing could have cached a JWKS
// yet), and only one instance creates it: Load and Reload create it with
// store.CreateKeyIfNone, a compare-and-set.
//
// # Withdrawing a key
//
// Revoke marks the key revoked in the store. Each server's Set drops it
// from its JWKS and stops signing with it at its next Reload; Check, which
// reads the store, refuses it at once. The server reloads before every
// signature, every JWKS answer and every Check (Reload: concurrent calls
// share one read of the store), so no instance signs with a key the store
// has revoked or publishes it, whichever process revoked it. Resource
// servers that cache the JWKS (package verify) refuse its tokens once
// their copy is refreshed: within the JWKS's Cache-Control max-age, which
// the server sets when it serves JWKS, plus verify's stale period if the
// server cannot be reached meanwhile.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/store"
)

// Supported algorithms.
const (
	EdDSA = "EdDSA" // Ed25519, the default for access tokens
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3) on a
	// 2048-bit key: the algorithm of ID tokens. It may sign access tokens
	// too, at about a millisecond a token, against some tens of
	// microseconds for EdDSA.
	RS256 = "RS256"
)

// rsaBits is the size of the RSA keys Generate makes, and the least that
// a stored RSA key may have (RFC 7518 §3.3 asks for 2048 or more).
const rsaBits = 2048

// Errors returned by this package, wrapped; test them with errors.Is.
var (
	// ErrAlgorithm reports an algorithm other than EdDSA, ES256 and
	// RS256, or other than RS256 for an ID-token key.
	ErrAlgorithm = errors.New("keys: unsupported algorithm")
	// ErrRevoked reports a key that was revoked (see Revoke).
	ErrRevoked = errors.New("keys: key revoked")
	// ErrUnknownKey reports a kid the store does not have, or (from Check)
	// a key retired so long ago that it is no longer published.
	ErrUnknownKey = errors.New("keys: unknown key")
)

// Generate makes a new private key for alg ("" means EdDSA) with a random
// kid, created at now, for access tokens (Use ""; set Use for another).
// An RS256 key is 2048 bits and takes about 100 ms to make.
func Generate(alg string, now time.Time) (store.Key, error) {
	var priv crypto.Signer
	switch alg {
	case "", EdDSA:
		alg = EdDSA
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return store.Key{}, err
		}
		priv = k
	case ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return store.Key{}, err
		}
		priv = k
	case RS256:
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return store.Key{}, err
		}
		priv = k
	default:
		return store.Key{}, fmt.Errorf("%w %q", ErrAlgorithm, alg)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	return store.Key{ID: newKID(), Algorithm: alg, Private: der, CreatedAt: now}, nil
}

// newKID returns a random key ID: 96 bits in base64url, never beginning
// with "-", so that it can be typed after a command (`tokend keys revoke
// KID`) without being taken for a flag.
func newKID() string {
	b := make([]byte, 12)
	for {
		_, _ = rand.Read(b)
		if kid := base64.RawURLEncoding.EncodeToString(b); kid[0] != '-' {
			return kid
		}
	}
}

// Rotate stores a new access-token key with alg that signs from now+lead
// (its NotBefore), and retires the access-token keys that were active
// before it at that same moment, so that one key signs all along; the
// ID-token keys are left alone (RotateID rotates them). The new key is published
// at every server's next Reload, and signs there from the first Reload at
// or after its NotBefore. Pass a lead of at least the servers' reload
// interval plus the JWKS's cache lifetime (Cache-Control max-age), so that
// every verifier has the key before any token it signs exists; a lead of
// zero or less means now, for a key that must take over at once. If no
// access key signs at now (an empty store, or every one retired or
// revoked), the new key signs at once whatever the lead.
//
// The store makes the change as one compare-and-set on the newest active
// key of the use (store.Store.RotateKey): of rotations run at once, by two
// operators or two instances, one stores its key and the others fail with
// an error wrapping ErrConcurrentRotation (and store.ErrConflict), having
// changed nothing.
func Rotate(ctx context.Context, st store.Store, alg string, now time.Time, lead time.Duration) (store.Key, error) {
	return rotate(ctx, st, store.UseAccess, alg, now, lead)
}

// RotateID is Rotate for the keys that sign ID tokens (store.UseID): it
// stores a new RS256 key that signs ID tokens from now+lead and retires
// the ID-token keys active before it at that moment, leaving the
// access-token keys alone. The lead serves the relying parties' JWKS
// caches as Rotate's serves the resource servers'.
func RotateID(ctx context.Context, st store.Store, now time.Time, lead time.Duration) (store.Key, error) {
	return rotate(ctx, st, store.UseID, RS256, now, lead)
}

// rotate is Rotate for the keys of use.
func rotate(ctx context.Context, st store.Store, use, alg string, now time.Time, lead time.Duration) (store.Key, error) {
	if err := checkUse(use, alg); err != nil {
		return store.Key{}, err
	}
	old, err := st.ListKeys(ctx)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: list: %w", err)
	}
	k, err := Generate(alg, now)
	if err != nil {
		return store.Key{}, err
	}
	k.Use = use
	if signing(old, use, now) < 0 {
		lead = 0 // nothing signs now: waiting would leave a gap
	}
	k.NotBefore = now.Add(max(lead, 0))
	prev := ""
	if i := active(old, use); i >= 0 {
		prev = old[i].ID
	}
	err = st.RotateKey(ctx, k, prev)
	if errors.Is(err, store.ErrConflict) {
		return store.Key{}, fmt.Errorf("keys: %w: %w", ErrConcurrentRotation, err)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: store new key: %w", err)
	}
	return k, nil
}

// ErrConcurrentRotation reports a Rotate that lost to another made at the
// same time: the other's key is the new one; list the keys to see it.
var ErrConcurrentRotation = errors.New("keys: another rotation stored its key first")

// checkUse returns an error wrapping ErrAlgorithm if a key of use may not
// have alg: an ID-token key is RS256 ("" included, as the default), and
// an access-token key anything Generate makes.
func checkUse(use, alg string) error {
	switch {
	case use == store.UseID && alg != RS256 && alg != "":
		return fmt.Errorf("%w %q for an ID-token key (RS256 only)", ErrAlgorithm, alg)
	case use == store.UseAccess && alg != "" && alg != EdDSA && alg != ES256 && alg != RS256:
		return fmt.Errorf("%w %q", ErrAlgorithm, alg)
	}
	return nil
}

// Revoke withdraws the key kid at once, for a key that is compromised: it
// marks it revoked in st (store.RevokeKey), so that every Set drops it from
// its JWKS and from signing at its next Reload, whatever its RetiredAt, and
// Check refuses it straight away (see the package doc, "Withdrawing a
// key").
//
// If kid is the key that signs at now, or the one due to sign next (the
// newest key neither retired nor revoked, whose NotBefore may be ahead),
// of its use, Revoke first stores a new key of that use that signs at
// once and retires the old ones of that use, as Rotate (or RotateID) does
// with no lead, so that signing goes on without the compromised key: the
// new key has alg, or the revoked key's algorithm if alg is "" (an
// ID-token key is RS256 whatever alg; another alg is an error wrapping
// ErrAlgorithm). It returns that new key, and a
// zero Key (ID "") when kid was not the signing key. Revoking a revoked key
// changes nothing. An unknown kid is an error wrapping both ErrUnknownKey
// and store.ErrNotFound. If the store fails after the new key was stored,
// kid is at least retired; calling Revoke again finishes the work.
func Revoke(ctx context.Context, st store.Store, kid, alg string, now time.Time) (store.Key, error) {
	all, err := st.ListKeys(ctx)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: list: %w", err)
	}
	i := slices.IndexFunc(all, func(k store.Key) bool { return k.ID == kid })
	if i < 0 {
		return store.Key{}, fmt.Errorf("%w %q: %w", ErrUnknownKey, kid, store.ErrNotFound)
	}
	var next store.Key
	if use := all[i].Use; signing(all, use, now) == i || active(all, use) == i {
		if alg == "" {
			alg = all[i].Algorithm
		}
		if next, err = rotate(ctx, st, use, alg, now, 0); err != nil {
			return store.Key{}, err
		}
	}
	if err := st.RevokeKey(ctx, kid, now); err != nil {
		return next, fmt.Errorf("keys: revoke %s: %w", kid, err)
	}
	return next, nil
}

// signing returns the index in all of the key of use that signs at now,
// the newest that is neither revoked nor retired at now and whose
// NotBefore has passed, or -1 if there is none.
func signing(all []store.Key, use string, now time.Time) int {
	for i := len(all) - 1; i >= 0; i-- {
		k := all[i]
		if k.Use == use && k.RevokedAt.IsZero() && (k.RetiredAt.IsZero() || now.Before(k.RetiredAt)) && !now.Before(k.NotBefore) {
			return i
		}
	}
	return -1
}

// active returns the index in all of the newest key of use that is
// neither retired (at any time) nor revoked, the one
// store.CreateKeyIfNone sees, or -1 if there is none.
func active(all []store.Key, use string) int {
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Use == use && all[i].RetiredAt.IsZero() && all[i].RevokedAt.IsZero() {
			return i
		}
	}
	return -1
}

// published reports whether the JWKS publishes k at now: k is not revoked,
// and not retired publishFor or longer before now. A key whose NotBefore
// is ahead is published.
func published(k store.Key, publishFor time.Duration, now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.RetiredAt.IsZero() || now.Before(k.RetiredAt.Add(publishFor)))
}

// Set is the server's view of its keys: the one that signs access tokens,
// the one that signs ID tokens, and the public keys it publishes. It is
// safe for concurrent use; Reload swaps it atomically.
//
// Sign, SignID, JWKS, ActiveKeyID, IDKeyID and Published answer from the
// last Reload, with no I/O. Where a rotation or a revocation made by
// another process (the tokend CLI, another instance) must take effect at
// once, call Reload first: the server does before a signature or a JWKS
// answer when its last reload is older than its KeyStaleness (250 ms), and
// Check, which introspection and revocation call, reloads every time.
// Concurrent Reloads share one read of the store, so a busy server reads
// the keys about once per store round trip, not once per request.
type Set struct {
	st         store.Store
	alg        string
	publishFor time.Duration

	cur   atomic.Pointer[snapshot]
	reads reads
}

// snapshot is one immutable loaded state.
type snapshot struct {
	access, id signer // the keys that sign access tokens and ID tokens
	jwks       []byte
	published  map[string]bool // the kids in jwks
	keys       []keyState      // every key of the read, oldest first, for Check
	// private are the published keys, parsed: a later build takes a
	// kid's from here rather than parsing it again, so that a server
	// started before its store was sealed (which it cannot open) keeps
	// the keys it has.
	private map[string]crypto.Signer
}

// signer is the key of one use that signs.
type signer struct {
	kid, alg string
	jose     jose.Signer
	// err is why jose is nil: the key that signs is one this process
	// cannot read.
	err error
}

// keyState is what Check needs of a stored key.
type keyState struct {
	id                   string
	retiredAt, revokedAt time.Time
}

// Load reads the keys from st, first creating an alg key for access
// tokens if none is active (a first start, or every such key retired or
// revoked), and an RS256 key for ID tokens likewise (a first start, or a
// store from before ID tokens), as Reload does. alg is EdDSA ("" means
// EdDSA), ES256 or RS256. A retired key stays published for publishFor
// after it was retired: pass the longest access-token (and ID-token)
// lifetime plus a margin. A revoked key is never published.
func Load(ctx context.Context, st store.Store, alg string, publishFor time.Duration, now time.Time) (*Set, error) {
	if alg == "" {
		alg = EdDSA
	}
	if alg != EdDSA && alg != ES256 && alg != RS256 {
		return nil, fmt.Errorf("%w %q", ErrAlgorithm, alg)
	}
	s := &Set{st: st, alg: alg, publishFor: publishFor}
	if err := s.Reload(ctx, now); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the keys from the store, so that a rotation or a
// revocation made by another process takes effect: of each use, the newest
// key that is neither retired nor revoked at now and whose NotBefore has
// passed signs, and the JWKS holds every key that is not revoked and was
// not retired publishFor or longer before now, keys that do not sign yet
// included. On error the Set is unchanged.
//
// Reload returns once a read of the store that began after it was called
// has ended, with that read's error: it sees every change the store
// holds at the moment of the call. Concurrent calls share reads (one at a
// time), and the read uses the now of the call that starts it. A read
// costs one store.Store.ListKeys; it rebuilds the signers and the JWKS
// only when a key that signs or the keys published have changed.
//
// If no key of a use may sign, Reload creates one that signs at once (of
// the Set's algorithm for access tokens, RS256 for ID tokens), through
// store.CreateKeyIfNone, so that of several instances starting together
// on an empty store only one creates it and all sign with it. If the store
// answers with a key that is active but not due yet (its predecessor was
// retired or revoked without Rotate or Revoke), that key signs early
// rather than none.
func (s *Set) Reload(ctx context.Context, now time.Time) error {
	return s.reads.do(ctx, func(ctx context.Context) error { return s.read(ctx, now) })
}

// read is one read of Reload; s.reads runs one at a time.
func (s *Set) read(ctx context.Context, now time.Time) error {
	all, err := s.st.ListKeys(ctx)
	if errors.Is(err, store.ErrUnreadable) && s.cur.Load() != nil {
		// The store was sealed, rotated or unsealed under this process,
		// which cannot open the private keys any more: it reads the keys'
		// states as stored (under the sealed wrapper) and signs on with
		// the private keys it holds, until it restarts with the operator
		// key. A key it has never held cannot sign here (build).
		if inner := store.Unwrap(s.st); inner != nil {
			if all, err = inner.ListKeys(ctx); err == nil {
				for i := range all {
					all[i].Private = nil
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("keys: list: %w", err)
	}
	var use [2]int // the index in all of the key that signs access tokens, and ID tokens
	if all, use[0], err = s.ensure(ctx, all, store.UseAccess, s.alg, now); err != nil {
		return err
	}
	if all, use[1], err = s.ensure(ctx, all, store.UseID, RS256, now); err != nil {
		return err
	}
	old := s.cur.Load()
	if old != nil && old.access.kid == all[use[0]].ID && old.id.kid == all[use[1]].ID && samePublished(old.published, all, s.publishFor, now) {
		if !sameStates(old.keys, all) {
			next := *old
			next.keys = states(all)
			s.cur.Store(&next)
		}
		return nil // the same signers and JWKS
	}
	snap, err := build(all, use, s.publishFor, now, old)
	if snap == nil {
		return err
	}
	// With err (ErrUnreadable) snap is still the truth: it publishes the
	// keys this process can, and cannot sign with a key that is not one
	// of them.
	snap.keys = states(all)
	s.cur.Store(snap)
	return err
}

// ensure returns all and the index in it of the key of use that signs at
// now. If none does, it creates an alg key of use that signs at once with
// store.CreateKeyIfNone, and appends to all the key that call returns
// unless all already holds it.
func (s *Set) ensure(ctx context.Context, all []store.Key, use, alg string, now time.Time) ([]store.Key, int, error) {
	if i := signing(all, use, now); i >= 0 {
		return all, i, nil
	}
	k, err := Generate(alg, now)
	if err != nil {
		return all, -1, err
	}
	k.Use = use
	got, err := s.st.CreateKeyIfNone(ctx, k)
	if err != nil {
		return all, -1, fmt.Errorf("keys: store first key (use %q): %w", use, err)
	}
	i := slices.IndexFunc(all, func(k store.Key) bool { return k.ID == got.ID })
	if i < 0 { // ours, or created by another instance since ListKeys
		all = append(all, got)
		i = len(all) - 1
	}
	return all, i, nil
}

// samePublished reports whether all publishes at now exactly the kids in
// pub.
func samePublished(pub map[string]bool, all []store.Key, publishFor time.Duration, now time.Time) bool {
	n := 0
	for _, k := range all {
		if published(k, publishFor, now) {
			if !pub[k.ID] {
				return false
			}
			n++
		}
	}
	return n == len(pub)
}

func states(all []store.Key) []keyState {
	out := make([]keyState, len(all))
	for i, k := range all {
		out[i] = keyState{id: k.ID, retiredAt: k.RetiredAt, revokedAt: k.RevokedAt}
	}
	return out
}

func sameStates(ks []keyState, all []store.Key) bool {
	if len(ks) != len(all) {
		return false
	}
	for i, k := range all {
		if ks[i].id != k.ID || !ks[i].retiredAt.Equal(k.RetiredAt) || !ks[i].revokedAt.Equal(k.RevokedAt) {
			return false
		}
	}
	return true
}

// build returns the snapshot of all with all[use[0]] signing access
// tokens and all[use[1]] ID tokens; the private keys of prev (nil for
// none) are reused by kid. A key read without its private part (read's
// fallback) that prev did not hold is left out, and if it is one that
// signs, the snapshot cannot sign with it: it is returned with an error
// wrapping store.ErrUnreadable.
func build(all []store.Key, use [2]int, publishFor time.Duration, now time.Time, prev *snapshot) (*snapshot, error) {
	var set jose.JSONWebKeySet
	var unreadable []string
	snap := &snapshot{
		access:    signer{kid: all[use[0]].ID, alg: all[use[0]].Algorithm},
		id:        signer{kid: all[use[1]].ID, alg: all[use[1]].Algorithm},
		published: make(map[string]bool),
		private:   make(map[string]crypto.Signer),
	}
	for i, k := range all {
		if !published(k, publishFor, now) {
			continue // revoked, or every token it signed has expired
		}
		var cs crypto.Signer
		if prev != nil {
			cs = prev.private[k.ID]
		}
		if cs == nil && k.Private == nil {
			unreadable = append(unreadable, k.ID)
			continue
		}
		if cs == nil {
			var err error
			if cs, err = parse(k); err != nil {
				return nil, err
			}
		}
		snap.private[k.ID] = cs
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: cs.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		snap.published[k.ID] = true
		for u, typ := range [2]string{"at+jwt", "JWT"} {
			if i != use[u] {
				continue
			}
			opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), k.ID)
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: cs}, opts)
			if err != nil {
				return nil, fmt.Errorf("keys: signer for %s: %w", k.ID, err)
			}
			sg := [2]*signer{&snap.access, &snap.id}[u]
			sg.jose = js
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWKS: %w", err)
	}
	snap.jwks = jwks
	if len(unreadable) > 0 {
		err := fmt.Errorf("keys: keys %s: %w: this process never held them (restart it with the store's operator key)", strings.Join(unreadable, ", "), store.ErrUnreadable)
		for _, sg := range [2]*signer{&snap.access, &snap.id} {
			if sg.jose == nil {
				sg.err = err
			}
		}
		return snap, err
	}
	return snap, nil
}

// parse returns the private key of k, checked against its algorithm.
func parse(k store.Key) (crypto.Signer, error) {
	priv, err := x509.ParsePKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", k.ID, err)
	}
	cs, ok := priv.(crypto.Signer)
	if !ok || !matches(k.Algorithm, priv) {
		return nil, fmt.Errorf("keys: key %s: %w for its %s key", k.ID, ErrAlgorithm, k.Algorithm)
	}
	return cs, nil
}

func matches(alg string, priv any) bool {
	switch priv := priv.(type) {
	case ed25519.PrivateKey:
		return alg == EdDSA
	case *ecdsa.PrivateKey:
		return alg == ES256 && priv.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		return alg == RS256 && priv.N.BitLen() >= rsaBits
	}
	return false
}

// Sign returns claims, marshalled to JSON, as a JWS compact JWT signed with
// the active access-token key of the last Reload, with the header {"alg",
// "kid", "typ": "at+jwt"} (RFC 9068 §2.1). Call Reload first so as never
// to sign with a key another process has revoked since (the server does).
func (s *Set) Sign(claims any) (string, error) {
	return s.cur.Load().access.sign(claims)
}

// SignID returns claims, marshalled to JSON, as a JWS compact JWT signed
// with the active ID-token key of the last Reload (RS256), with the header
// {"alg", "kid", "typ": "JWT"}: an OpenID Connect ID token (OpenID
// Connect Core §2), whose claims are the caller's to set. Its typ is not
// at+jwt, so a resource server that checks access tokens as RFC 9068 §4
// says (package verify does) refuses it as one. Call Reload first, as for
// Sign.
func (s *Set) SignID(claims any) (string, error) {
	return s.cur.Load().id.sign(claims)
}

// sign is Sign with the key of sg.
func (sg *signer) sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encode claims: %w", err)
	}
	if sg.jose == nil {
		return "", sg.err
	}
	jws, err := sg.jose.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// JWKS returns the JSON Web Key Set document of the last Reload. The
// bytes are shared: do not modify them.
func (s *Set) JWKS() []byte { return s.cur.Load().jwks }

// ActiveKeyID returns the kid of the key that signs access tokens.
func (s *Set) ActiveKeyID() string { return s.cur.Load().access.kid }

// IDKeyID returns the kid of the key that signs ID tokens.
func (s *Set) IDKeyID() string { return s.cur.Load().id.kid }

// IDAlgorithm returns the JWS alg of the key that signs ID tokens: RS256
// (OpenID Connect Core §15.1), for the provider metadata's
// id_token_signing_alg_values_supported.
func (s *Set) IDAlgorithm() string { return s.cur.Load().id.alg }

// Algorithm returns the JWS alg of the key that signs access tokens.
func (s *Set) Algorithm() string { return s.cur.Load().access.alg }

// Published reports whether the JWKS of the last Reload holds kid. It does
// no I/O, so it knows nothing of a key revoked or created by another
// process since: use Check where that matters.
func (s *Set) Published(kid string) bool { return s.cur.Load().published[kid] }

// Check reports whether tokens signed by kid may be accepted at now,
// reading the store rather than trusting the last Reload, so that a key
// revoked by another process (tokend keys revoke) is refused at once. It
// returns nil for a published key; an error wrapping ErrRevoked for a
// revoked key; ErrUnknownKey for a kid the store does not have or no
// longer publishes (retired publishFor or longer ago); or the store's
// error, wrapped, when the answer cannot be known (a server answers that
// with 503, not 401).
//
// Check is a Reload (so the Set's JWKS and signing key follow the store
// too) and a look at what that read found: it shares reads with
// concurrent Reloads and Checks.
func (s *Set) Check(ctx context.Context, kid string, now time.Time) error {
	// A reload that could not read a private key still read every key's
	// state, which is all Check needs.
	if err := s.Reload(ctx, now); err != nil && !errors.Is(err, store.ErrUnreadable) {
		return err
	}
	ks := s.cur.Load().keys
	if i := slices.IndexFunc(ks, func(k keyState) bool { return k.id == kid }); i >= 0 {
		switch k := ks[i]; {
		case !k.revokedAt.IsZero():
			return fmt.Errorf("%w: %q at %s", ErrRevoked, kid, k.revokedAt.UTC().Format(time.RFC3339))
		case published(store.Key{RetiredAt: k.retiredAt}, s.publishFor, now):
			return nil
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownKey, kid)
}
