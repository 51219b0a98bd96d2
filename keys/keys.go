// Package keys manages the token server's signing keys: generating them,
// rotating them, signing access tokens with the active one, and publishing
// the public keys as a JSON Web Key Set (RFC 7517).
//
// Keys live in the store, so that every instance of the server and the
// admin CLI see the same ones. The newest key that is not retired signs;
// a retired key stays in the JWKS until every token it signed has expired.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/tokend/tokend/store"
)

// Supported algorithms.
const (
	EdDSA = "EdDSA" // Ed25519, the default
	ES256 = "ES256" // ECDSA P-256 with SHA-256
)

// ErrAlgorithm reports an algorithm other than EdDSA and ES256.
var ErrAlgorithm = errors.New("keys: unsupported algorithm")

// Generate makes a new private key for alg ("" means EdDSA) with a random
// kid, created at now.
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
	default:
		return store.Key{}, fmt.Errorf("%w %q", ErrAlgorithm, alg)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	kid := make([]byte, 12)
	_, _ = rand.Read(kid)
	return store.Key{ID: base64.RawURLEncoding.EncodeToString(kid), Algorithm: alg, Private: der, CreatedAt: now}, nil
}

// Rotate stores a new active key with alg, then retires the keys that were
// active before it. A server picks the new key up at its next Reload.
func Rotate(ctx context.Context, st store.Store, alg string, now time.Time) (store.Key, error) {
	old, err := st.ListKeys(ctx)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: list: %w", err)
	}
	k, err := Generate(alg, now)
	if err != nil {
		return store.Key{}, err
	}
	if err := st.CreateKey(ctx, k); err != nil {
		return store.Key{}, fmt.Errorf("keys: store new key: %w", err)
	}
	for _, o := range old {
		if o.RetiredAt.IsZero() {
			if err := st.RetireKey(ctx, o.ID, now); err != nil {
				return store.Key{}, fmt.Errorf("keys: retire %s: %w", o.ID, err)
			}
		}
	}
	return k, nil
}

// Set is the server's view of its keys: the one that signs and the public
// keys it publishes. It is safe for concurrent use; Reload swaps it
// atomically.
type Set struct {
	st         store.Store
	alg        string
	publishFor time.Duration

	cur      atomic.Pointer[snapshot]
	reloadMu sync.Mutex
}

// snapshot is one immutable loaded state.
type snapshot struct {
	kid    string
	signer jose.Signer
	jwks   []byte
}

// Load reads the keys from st, first creating an alg key if none is active
// (a first start). A retired key stays published for publishFor after it
// was retired: pass the longest access-token lifetime plus a margin.
func Load(ctx context.Context, st store.Store, alg string, publishFor time.Duration, now time.Time) (*Set, error) {
	if alg == "" {
		alg = EdDSA
	}
	if alg != EdDSA && alg != ES256 {
		return nil, fmt.Errorf("%w %q", ErrAlgorithm, alg)
	}
	s := &Set{st: st, alg: alg, publishFor: publishFor}
	if err := s.Reload(ctx, now); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the keys from the store, so that a rotation made by
// another process takes effect.
func (s *Set) Reload(ctx context.Context, now time.Time) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	all, err := s.st.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list: %w", err)
	}
	active := -1
	for i, k := range all {
		if k.RetiredAt.IsZero() {
			active = i // the newest active key signs
		}
	}
	if active < 0 {
		k, err := Generate(s.alg, now)
		if err != nil {
			return err
		}
		if err := s.st.CreateKey(ctx, k); err != nil {
			return fmt.Errorf("keys: store first key: %w", err)
		}
		all = append(all, k)
		active = len(all) - 1
	}
	snap, err := build(all, active, s.publishFor, now)
	if err != nil {
		return err
	}
	s.cur.Store(snap)
	return nil
}

func build(all []store.Key, active int, publishFor time.Duration, now time.Time) (*snapshot, error) {
	var set jose.JSONWebKeySet
	var signer jose.Signer
	for i, k := range all {
		if !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt.Add(publishFor)) {
			continue // every token it signed has expired
		}
		priv, err := x509.ParsePKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, fmt.Errorf("keys: key %s: %w", k.ID, err)
		}
		cs, ok := priv.(crypto.Signer)
		if !ok || !matches(k.Algorithm, priv) {
			return nil, fmt.Errorf("keys: key %s: %w for its %s key", k.ID, ErrAlgorithm, k.Algorithm)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: cs.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		if i == active {
			opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), k.ID)
			signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: priv}, opts)
			if err != nil {
				return nil, fmt.Errorf("keys: signer for %s: %w", k.ID, err)
			}
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWKS: %w", err)
	}
	return &snapshot{kid: all[active].ID, signer: signer, jwks: jwks}, nil
}

func matches(alg string, priv any) bool {
	switch priv.(type) {
	case ed25519.PrivateKey:
		return alg == EdDSA
	case *ecdsa.PrivateKey:
		return alg == ES256
	}
	return false
}

// Sign returns claims, marshalled to JSON, as a JWS compact JWT signed with
// the active key, with the header {"alg", "kid", "typ": "at+jwt"}.
func (s *Set) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encode claims: %w", err)
	}
	jws, err := s.cur.Load().signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// JWKS returns the JSON Web Key Set document. The bytes are shared: do not
// modify them.
func (s *Set) JWKS() []byte { return s.cur.Load().jwks }

// ActiveKeyID returns the kid of the key that signs.
func (s *Set) ActiveKeyID() string { return s.cur.Load().kid }
