package verify_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
)

// BenchmarkVerify compares Verifier.Verify of an EdDSA token whose key is
// cached with ed25519.Verify alone over the same signing input: the
// difference is what Verify adds (parsing, checks, the claims). The RS256
// pair does the same for an RS256 token (2048-bit key).
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
	rsTok := sign(hdr("RS256", "rs"), f.claims(), rsSign(rsKey))
	if _, err := f.v.Verify(b.Context(), rsTok); err != nil {
		b.Fatal(err)
	}
	rsDot := strings.LastIndexByte(rsTok, '.')
	rsInput, rsSig := []byte(rsTok[:rsDot]), must(enc.DecodeString(rsTok[rsDot+1:]))
	b.Run("verify.Verifier RS256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.v.Verify(b.Context(), rsTok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rsa.VerifyPKCS1v15", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := sha256.Sum256(rsInput)
			if err := rsa.VerifyPKCS1v15(&rsKey.PublicKey, crypto.SHA256, d[:], rsSig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
