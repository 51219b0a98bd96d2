package verify_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

// BenchmarkVerify compares Verifier.Verify of an EdDSA token whose key is
// cached with ed25519.Verify alone over the same signing input: the
// difference is what Verify adds (parsing, checks, the claims).
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok := sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))
	if _, err := f.v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(tok, '.')
	input, sig := []byte(tok[:dot]), must(enc.DecodeString(tok[dot+1:]))
	pub := edKey.Public().(ed25519.PublicKey)
	b.Run("verify.Verifier", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.v.Verify(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ed25519.Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, input, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}
