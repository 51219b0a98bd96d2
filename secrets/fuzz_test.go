package secrets_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/tokend/tokend/secrets"
)

// A stored ring comes from a database that someone else may have written:
// whatever it holds, Parse never panics, refuses with ErrFormat, and a
// ring it accepts is stored again as a value that reads back the same.
func FuzzParse(f *testing.F) {
	f.Add(value(7))
	two := secrets.Ring{{Seq: 1, Value: value(7)}, {Seq: 2, Value: value(8), CreatedAt: t0, ActiveFrom: t0.Add(time.Minute)}}
	b, err := two.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("tokend-secrets/1\n{}"))
	f.Add([]byte("tokend-secrets/1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := secrets.Parse(b)
		if err != nil {
			if !errors.Is(err, secrets.ErrFormat) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("a parsed ring does not marshal: %v", err)
		}
		r2, err := secrets.Parse(again)
		if err != nil || !equal(r, r2) {
			t.Fatalf("%q read back as %+v, %v; was %+v", again, r2, err, r)
		}
		if !bytes.HasPrefix(b, []byte("tokend-secrets/1\n")) && !bytes.Equal(again, b) {
			t.Fatalf("a raw secret %x is stored again as %q", b, again)
		}
	})
}
