package keys_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
	"github.com/tokend/tokend/verify"
)

// verifyID checks an ID token against the Set's whole JWKS as an OpenID
// relying party does (RS256 only, the kid's published key) and returns its
// header and claims.
func verifyID(t *testing.T, s *keys.Set, tok string) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	set := allJWKS(t, s)
	ks := set.Key(h.KeyID)
	if len(ks) != 1 {
		t.Fatalf("kid %q is not published", h.KeyID)
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return h, m
}

// keysOfUse returns the keys of use st holds, oldest first.
func keysOfUse(t *testing.T, st store.Store, use string) []store.Key {
	t.Helper()
	all, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(k store.Key) bool { return k.Use != use })
}

// A first Load makes both keys: the access-token key of its algorithm and
// an RS256 ID-token key of 2048 bits; the JWKS publishes both, public
// parts only; SignID signs with the ID key, Sign with the access key.
func TestIDKeyBesideAccessKey(t *testing.T) {
	st := memory.New()
	s, err := keys.Load(t.Context(), st, keys.EdDSA, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	ids := keysOfUse(t, st, store.UseID)
	if len(ids) != 1 || ids[0].Algorithm != keys.RS256 || ids[0].ID != s.IDKeyID() || !ids[0].NotBefore.IsZero() || s.IDAlgorithm() != keys.RS256 {
		t.Fatalf("ID keys %+v, IDKeyID %s, IDAlgorithm %s; want one RS256 key that signs at once", ids, s.IDKeyID(), s.IDAlgorithm())
	}
	if s.IDKeyID() == s.ActiveKeyID() || s.Algorithm() != keys.EdDSA {
		t.Fatalf("access key %s (%s), ID key %s", s.ActiveKeyID(), s.Algorithm(), s.IDKeyID())
	}
	set := allJWKS(t, s)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS %s; want the access and the ID key", s.JWKS())
	}
	for _, k := range set.Keys {
		if k.Use != "sig" || !k.IsPublic() || k.KeyID == "" {
			t.Fatalf("JWK %+v", k)
		}
	}
	if id := set.Key(s.IDKeyID()); len(id) != 1 || id[0].Algorithm != keys.RS256 || id[0].Key.(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Fatalf("published ID key %+v", id)
	}
	for _, field := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
		if strings.Contains(string(s.JWKS()), field) {
			t.Fatalf("the JWKS holds private key material (%s): %s", field, s.JWKS())
		}
	}

	tok, err := s.SignID(map[string]any{"sub": "alice", "nonce": "n"})
	if err != nil {
		t.Fatal(err)
	}
	h, m := verifyID(t, s, tok)
	if h.KeyID != s.IDKeyID() || h.Algorithm != keys.RS256 || h.ExtraHeaders["typ"] != "JWT" || m["sub"] != "alice" || m["nonce"] != "n" {
		t.Fatalf("ID token header %+v, claims %v", h, m)
	}
	if kid := signedBy(t, s); kid != s.ActiveKeyID() {
		t.Fatalf("access token signed by %s, want the access key %s", kid, s.ActiveKeyID())
	}

	// A second Load reuses both keys.
	again, err := keys.Load(t.Context(), st, keys.EdDSA, time.Hour, t0)
	if err != nil || again.IDKeyID() != s.IDKeyID() || again.ActiveKeyID() != s.ActiveKeyID() {
		t.Fatalf("second Load: %v", err)
	}
	if all, _ := st.ListKeys(t.Context()); len(all) != 2 {
		t.Fatalf("%d keys stored after two Loads, want 2", len(all))
	}
}

// A store from before ID tokens, holding only access keys, gains an ID
// key at its first Load; its access key goes on signing.
func TestExistingStoreGainsIDKey(t *testing.T) {
	st := memory.New()
	old, err := keys.Generate(keys.ES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	s, err := keys.Load(t.Context(), st, keys.EdDSA, time.Hour, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if s.ActiveKeyID() != old.ID || len(keysOfUse(t, st, store.UseAccess)) != 1 {
		t.Fatalf("access key %s, want the stored %s and no other", s.ActiveKeyID(), old.ID)
	}
	ids := keysOfUse(t, st, store.UseID)
	if len(ids) != 1 || s.IDKeyID() != ids[0].ID || !s.Published(ids[0].ID) {
		t.Fatalf("ID keys %+v, signing %s", ids, s.IDKeyID())
	}
	tok, err := s.SignID(map[string]any{"sub": "a"})
	if err != nil {
		t.Fatal(err)
	}
	verifyID(t, s, tok)
}

// Rotating the access key leaves the ID key signing, and rotating the ID
// key leaves the access key signing; each retired key stays published for
// its tokens, and tokens of every key verify.
func TestRotateOneUseLeavesTheOther(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	access, id := s.ActiveKeyID(), s.IDKeyID()
	oldID, _ := s.SignID(map[string]any{"sub": "a"})

	at := t0.Add(time.Minute)
	a2, err := keys.Rotate(ctx, st, keys.EdDSA, at, 0)
	if err != nil {
		t.Fatal(err)
	}
	reload(t, s, at)
	if s.ActiveKeyID() != a2.ID || s.IDKeyID() != id || !stored(t, st, id).RetiredAt.IsZero() {
		t.Fatalf("after rotating the access key: access %s, ID %s (retired %v); want %s and the same %s", s.ActiveKeyID(), s.IDKeyID(), stored(t, st, id).RetiredAt, a2.ID, id)
	}

	const lead = time.Minute
	i2, err := keys.RotateID(ctx, st, at, lead)
	if err != nil {
		t.Fatal(err)
	}
	if i2.Use != store.UseID || i2.Algorithm != keys.RS256 || !i2.NotBefore.Equal(at.Add(lead)) {
		t.Fatalf("RotateID made %+v", i2)
	}
	reload(t, s, at)
	if s.IDKeyID() != id || !s.Published(i2.ID) {
		t.Fatalf("before its NotBefore: ID key %s, new key published %v; want the old %s signing and the new one published", s.IDKeyID(), s.Published(i2.ID), id)
	}
	reload(t, s, at.Add(lead))
	if s.IDKeyID() != i2.ID || s.ActiveKeyID() != a2.ID || !stored(t, st, a2.ID).RetiredAt.IsZero() {
		t.Fatalf("after rotating the ID key: access %s, ID %s; want %s and %s", s.ActiveKeyID(), s.IDKeyID(), a2.ID, i2.ID)
	}
	if got := stored(t, st, id); !got.RetiredAt.Equal(at.Add(lead)) {
		t.Fatalf("old ID key retired at %v, want %v", got.RetiredAt, at.Add(lead))
	}
	// Everything published: the old and new key of each use.
	if n := len(allJWKS(t, s).Keys); n != 4 || !s.Published(access) || !s.Published(id) {
		t.Fatalf("%d keys published, want 4: %s", n, s.JWKS())
	}
	newID, err := s.SignID(map[string]any{"sub": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := verifyID(t, s, oldID); h.KeyID != id {
		t.Fatalf("old ID token kid %s", h.KeyID)
	}
	if h, _ := verifyID(t, s, newID); h.KeyID != i2.ID {
		t.Fatalf("new ID token kid %s", h.KeyID)
	}
	if kid := signedBy(t, s); kid != a2.ID {
		t.Fatalf("access token signed by %s, want %s", kid, a2.ID)
	}
}

// Revoking the ID key stores a new RS256 ID key first and leaves the
// access key alone; Check refuses the revoked ID key at once, and the Set
// drops it. An ID key may not be replaced by one of another algorithm.
func TestRevokeIDKey(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, keys.ES256, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	access, id := s.ActiveKeyID(), s.IDKeyID()
	if _, err := keys.Revoke(ctx, st, id, keys.EdDSA, t0); !errors.Is(err, keys.ErrAlgorithm) {
		t.Fatalf("Revoke of the ID key with EdDSA: %v, want ErrAlgorithm", err)
	}
	if all, _ := st.ListKeys(ctx); len(all) != 2 || !all[1].RevokedAt.IsZero() {
		t.Fatalf("a refused Revoke changed the store: %+v", all)
	}
	at := t0.Add(time.Minute)
	next, err := keys.Revoke(ctx, st, id, "", at)
	if err != nil {
		t.Fatal(err)
	}
	if next.Use != store.UseID || next.Algorithm != keys.RS256 || !next.NotBefore.Equal(at) {
		t.Fatalf("Revoke made %+v; want an RS256 ID key that signs at once", next)
	}
	if k := stored(t, st, access); !k.RetiredAt.IsZero() || !k.RevokedAt.IsZero() {
		t.Fatalf("the access key after revoking the ID key: %+v", k)
	}
	if err := s.Check(ctx, id, at); !errors.Is(err, keys.ErrRevoked) {
		t.Fatalf("Check of the revoked ID key: %v, want ErrRevoked", err)
	}
	if s.Published(id) || s.IDKeyID() != next.ID || s.ActiveKeyID() != access {
		t.Fatalf("after Check: ID key %s, access %s, revoked published %v", s.IDKeyID(), s.ActiveKeyID(), s.Published(id))
	}
	if err := s.Check(ctx, next.ID, at); err != nil {
		t.Fatalf("Check of the new ID key: %v", err)
	}
	tok, err := s.SignID(map[string]any{"sub": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := verifyID(t, s, tok); h.KeyID != next.ID {
		t.Fatalf("ID token signed by %s, want %s", h.KeyID, next.ID)
	}
	if kid := signedBy(t, s); kid != access {
		t.Fatalf("access token signed by %s, want %s", kid, access)
	}
}

// Package verify, reading the JWKS that holds both keys, accepts the
// access tokens of an RS256 access key as of an EdDSA one, and refuses an
// ID token as an access token (its typ is not at+jwt).
func TestVerifyBothUses(t *testing.T) {
	for _, alg := range []string{keys.EdDSA, keys.RS256} {
		t.Run(alg, func(t *testing.T) {
			ctx := t.Context()
			s, err := keys.Load(ctx, memory.New(), alg, time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(s.JWKS()) }))
			t.Cleanup(srv.Close)
			clock := clocktest.New(t0)
			v := verify.New("https://issuer.example", &verify.Options{JWKSURL: srv.URL, Now: clock.Now, HTTPClient: srv.Client()})
			claims := map[string]any{"iss": "https://issuer.example", "aud": "https://issuer.example", "sub": "alice", "exp": t0.Add(time.Hour).Unix()}
			tok, err := s.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := v.Verify(ctx, tok); err != nil || c.KeyID != s.ActiveKeyID() || c.Subject != "alice" {
				t.Fatalf("access token of an %s key: %+v %v", alg, c, err)
			}
			idTok, err := s.SignID(claims)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, idTok); !errors.Is(err, verify.ErrType) {
				t.Fatalf("an ID token presented as an access token: %v, want verify.ErrType", err)
			}
			verifyID(t, s, idTok)
		})
	}
}

// With an operator key, the RSA private key is stored sealed, like the
// others, and a Set over the sealed store signs ID tokens with it.
func TestSealedIDKey(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	opKey, err := sealed.NewKey(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := sealed.Wrap(inner, sealed.Keyring{Current: opKey})
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	raw := keysOfUse(t, inner, store.UseID)
	clear := keysOfUse(t, st, store.UseID)
	if len(raw) != 1 || len(clear) != 1 || bytes.Equal(raw[0].Private, clear[0].Private) || bytes.Contains(raw[0].Private, clear[0].Private[:64]) {
		t.Fatal("the ID key's private key is stored in clear")
	}
	tok, err := s.SignID(map[string]any{"sub": "a"})
	if err != nil {
		t.Fatal(err)
	}
	verifyID(t, s, tok)
	again, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil || again.IDKeyID() != s.IDKeyID() {
		t.Fatalf("a second Load over the sealed store: %v", err)
	}
}
