package keys_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// jwks returns the Set's JWKS without its ID-token keys: the tests that
// use it are of the access-token keys (EdDSA or ES256), and the ID-token
// keys (RS256) that Load creates beside them have tests of their own
// (id_test.go, which reads the whole set with allJWKS).
func jwks(t *testing.T, s *keys.Set) jose.JSONWebKeySet {
	t.Helper()
	set := allJWKS(t, s)
	set.Keys = slices.DeleteFunc(set.Keys, func(k jose.JSONWebKey) bool { return k.Algorithm == keys.RS256 })
	return set
}

// allJWKS returns the Set's whole JWKS.
func allJWKS(t *testing.T, s *keys.Set) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// accessKeys returns the access-token keys st holds, oldest first,
// leaving out the ID-token keys that Load creates beside them.
func accessKeys(t *testing.T, st store.Store) []store.Key {
	t.Helper()
	all, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(k store.Key) bool { return k.Use != store.UseAccess })
}

// verifyWith checks a token against the published JWKS.
func verifyWith(t *testing.T, set jose.JSONWebKeySet, tok string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("typ = %v", h.ExtraHeaders["typ"])
	}
	ks := set.Key(h.KeyID)
	if len(ks) != 1 {
		t.Fatalf("kid %q is not published", h.KeyID)
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	return m
}

func TestSignAndPublish(t *testing.T) {
	for _, alg := range []string{keys.EdDSA, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			st := memory.New()
			s, err := keys.Load(t.Context(), st, alg, time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(map[string]any{"sub": "alice"})
			if err != nil {
				t.Fatal(err)
			}
			set := jwks(t, s)
			if len(set.Keys) != 1 || set.Keys[0].Algorithm != alg || set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
				t.Fatalf("JWKS %s", s.JWKS())
			}
			if m := verifyWith(t, set, tok); m["sub"] != "alice" {
				t.Fatalf("claims %v", m)
			}
			stored := accessKeys(t, st)
			if len(stored) != 1 || bytes.Contains(s.JWKS(), stored[0].Private) || strings.Contains(string(s.JWKS()), `"d"`) {
				t.Fatal("the JWKS holds private key material")
			}
			// A second Load reuses the stored key.
			again, err := keys.Load(t.Context(), st, alg, time.Hour, t0)
			if err != nil || again.ActiveKeyID() != s.ActiveKeyID() {
				t.Fatalf("second Load: %v, kid %s vs %s", err, again.ActiveKeyID(), s.ActiveKeyID())
			}
		})
	}
}

func TestRotateOverlap(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	oldKid := s.ActiveKeyID()
	oldTok, _ := s.Sign(map[string]any{"sub": "a"})
	k, err := keys.Rotate(ctx, st, keys.EdDSA, t0.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if s.ActiveKeyID() != k.ID || k.ID == oldKid {
		t.Fatalf("signing kid %s, want the new %s", s.ActiveKeyID(), k.ID)
	}
	newTok, _ := s.Sign(map[string]any{"sub": "b"})
	set := jwks(t, s)
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys published during the overlap, want 2", len(set.Keys))
	}
	verifyWith(t, set, oldTok)
	verifyWith(t, set, newTok)
	// Once every token of the old key has expired, it is no longer published.
	if err := s.Reload(ctx, t0.Add(time.Minute+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if set := jwks(t, s); len(set.Keys) != 1 || set.Keys[0].KeyID != k.ID {
		t.Fatalf("after the overlap: %s", s.JWKS())
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	if _, err := keys.Generate("HS256", t0); !errors.Is(err, keys.ErrAlgorithm) {
		t.Fatalf("Generate HS256: %v", err)
	}
	if _, err := keys.Load(t.Context(), memory.New(), "none", time.Hour, t0); !errors.Is(err, keys.ErrAlgorithm) {
		t.Fatalf("Load none: %v", err)
	}
}

func BenchmarkSign(b *testing.B) {
	s, err := keys.Load(b.Context(), memory.New(), keys.EdDSA, time.Hour, t0)
	if err != nil {
		b.Fatal(err)
	}
	claims := map[string]any{"iss": "https://issuer.example", "sub": "alice", "aud": "api", "exp": 1893456000, "iat": 1893455100,
		"jti": "Hd2m7Jbq3xZkzQ7c1Cq2Ag", "client_id": "app", "scope": "read write"}
	tok, _ := s.Sign(claims)
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	_, priv, _ := ed25519.GenerateKey(nil)
	b.Run("keys.Set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Sign(claims); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ed25519.Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(priv, input)
		}
	})
	// The ID-token key (RS256, 2048 bits) of the same Set: why access
	// tokens stay EdDSA.
	b.Run("keys.Set SignID RS256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.SignID(claims); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A key ID never begins with "-": `tokend keys revoke KID` would take it
// for a flag (one in 64 did).
func TestKeyIDNotAFlag(t *testing.T) {
	for range 2000 {
		k, err := keys.Generate(keys.EdDSA, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.ID) != 16 || k.ID[0] == '-' {
			t.Fatalf("kid %q", k.ID)
		}
	}
}
