package sealed_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

// The stored values come from a database that someone else may have
// written: whatever they hold, opening them never panics, fails with one
// of the package's errors (quoting nothing of the value), and succeeds
// only for a value this key sealed. Without a key, a value in clear comes
// back as it is.
func FuzzOpen(f *testing.F) {
	k := keyOf(f, 1)
	genuine := memory.New()
	if err := sealed.Wrap(genuine, sealed.Keyring{Current: k}).CreateKey(f.Context(), store.Key{ID: "k", Private: []byte("\x30private")}); err != nil {
		f.Fatal(err)
	}
	ks, _ := genuine.ListKeys(f.Context())
	f.Add(ks[0].Private)
	f.Add([]byte("\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20"))
	f.Add([]byte("tks1"))
	f.Add(append([]byte("tks1"), make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, stored []byte) {
		inner := memory.New()
		if err := inner.CreateKey(t.Context(), store.Key{ID: "k", Private: stored}); err != nil {
			t.Fatal(err)
		}
		got, err := sealed.Wrap(inner, sealed.Keyring{Current: k}).ListKeys(t.Context())
		switch {
		case err == nil:
			// Only a value sealed by the seed's sealing opens (the worker
			// processes of a fuzzing run seal their own, with another nonce).
			if !sealedUnder(string(stored), k) || string(got[0].Private) != "\x30private" {
				t.Fatalf("%x opened as %q", stored, got[0].Private)
			}
		case !errors.Is(err, sealed.ErrClear) && !errors.Is(err, sealed.ErrUnknownKey) && !errors.Is(err, sealed.ErrTampered):
			t.Fatalf("unexpected error %v", err)
		case len(stored) >= 8 && strings.Contains(err.Error(), string(stored)):
			t.Fatalf("the error %q quotes the value", err)
		}
		got, err = sealed.Wrap(inner, sealed.Keyring{}).ListKeys(t.Context())
		if err == nil && !bytes.Equal(got[0].Private, stored) {
			t.Fatalf("without a key, %x came back as %x", stored, got[0].Private)
		}
		if err != nil && (!errors.Is(err, sealed.ErrUnknownKey) || !strings.HasPrefix(string(stored), "tks1")) {
			t.Fatalf("without a key, %x: %v", stored, err)
		}
	})
}

// Key material comes from files and the environment: ParseKey never
// panics, and refuses with ErrKeySize, quoting nothing.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"))
	f.Add([]byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add([]byte(strings.Repeat("A", 32)))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := sealed.ParseKey(b)
		switch {
		case err == nil:
			if len(k.ID()) != 8 {
				t.Fatalf("ID %q", k.ID())
			}
		case !errors.Is(err, sealed.ErrKeySize):
			t.Fatalf("unexpected error %v", err)
		case len(b) >= 8 && strings.Contains(err.Error(), string(b)):
			t.Fatalf("the error %q quotes the input", err)
		}
	})
}
