package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// FuzzVerify feeds Verify arbitrary tokens, seeded from TestVerify's table
// and from testdata/fuzz/FuzzVerify (the same tokens: the test keys,
// issuer and clock are fixed, so they stay valid). Verify must not panic,
// and it may accept a token only if its header and claims are exactly ones
// the issuer signed (an accepted seed's) and its signature verifies under
// the issuer's key, checked here with the crypto packages directly.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	signed := map[string]bool{} // signing inputs of the accepted seeds
	for _, tc := range cases(fx) {
		f.Add(tc.token)
		if tc.want == nil {
			signed[tc.token[:strings.LastIndexByte(tc.token, '.')]] = true
		}
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := fx.v.Verify(t.Context(), tok)
		if err != nil {
			if c != nil {
				t.Fatalf("claims with an error: %v", err)
			}
			return
		}
		dot := strings.LastIndexByte(tok, '.')
		if !signed[tok[:dot]] {
			t.Fatalf("accepted a token the issuer did not sign: %q", tok)
		}
		sig, err := enc.Strict().DecodeString(tok[dot+1:])
		if err != nil {
			t.Fatalf("accepted a token whose signature does not decode: %q", tok)
		}
		var h struct{ Alg, Kid string }
		_ = json.Unmarshal(must(enc.DecodeString(tok[:strings.IndexByte(tok, '.')])), &h)
		input := []byte(tok[:dot])
		var ok bool
		switch {
		case h.Alg == "EdDSA" && h.Kid == "ed":
			ok = ed25519.Verify(edKey.Public().(ed25519.PublicKey), input, sig)
		case h.Alg == "ES256" && h.Kid == "ec" && len(sig) == 64:
			d := sha256.Sum256(input)
			ok = ecdsa.Verify(&ecKey.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		case h.Alg == "RS256" && h.Kid == "rs":
			d := sha256.Sum256(input)
			ok = rsa.VerifyPKCS1v15(&rsKey.PublicKey, crypto.SHA256, d[:], sig) == nil
		}
		if !ok {
			t.Fatalf("accepted a token without a valid signature: %q", tok)
		}
	})
}
