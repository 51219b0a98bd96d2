package secrets_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/secrets"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func value(b byte) []byte { return bytes.Repeat([]byte{b}, secrets.Size) }

// equal reports whether two rings hold the same secrets and times.
func equal(a, b secrets.Ring) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || !bytes.Equal(a[i].Value, b[i].Value) ||
			!a[i].CreatedAt.Equal(b[i].CreatedAt) || !a[i].ActiveFrom.Equal(b[i].ActiveFrom) {
			return false
		}
	}
	return true
}

// A lone first secret is stored as its raw bytes, as before rings; any
// other ring in the JSON form; both read back as they were.
func TestFormat(t *testing.T) {
	legacy := secrets.New(value(7))
	b, err := legacy.MarshalBinary()
	if err != nil || !bytes.Equal(b, value(7)) {
		t.Fatalf("a lone first secret is stored as %q, %v; want its raw bytes", b, err)
	}
	rotated := secrets.Ring{{Seq: 1, Value: value(7)}, {Seq: 2, Value: value(8), CreatedAt: t0, ActiveFrom: t0.Add(30 * time.Second)}}
	retired := rotated[1:]
	for _, r := range []secrets.Ring{legacy, rotated, retired} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := secrets.Parse(b)
		if err != nil || !equal(got, r) {
			t.Fatalf("%q read back as %+v, %v", b, got, err)
		}
	}
	b, _ = rotated.MarshalBinary()
	want := "tokend-secrets/1\n" + `{"secrets":[{"seq":1,"value":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="},` +
		`{"seq":2,"value":"CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=","created_at":"2030-06-01T12:00:00Z","active_from":"2030-06-01T12:00:30Z"}]}`
	if string(b) != want {
		t.Fatalf("stored as\n%s\nwant\n%s", b, want)
	}
}

// Parse refuses what is not a ring, saying where but never quoting the
// value.
func TestParseRefuses(t *testing.T) {
	ring := func(json string) []byte { return []byte("tokend-secrets/1\n" + json) }
	v := `"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="`
	cases := []struct {
		name string
		b    []byte
	}{
		{"a short raw secret", value(1)[:31]},
		{"empty", nil},
		{"a long raw secret", bytes.Repeat([]byte{1}, secrets.MaxSize+1)},
		{"bad JSON", ring(`{"secrets":[`)},
		{"no secrets", ring(`{"secrets":[]}`)},
		{"unknown field", ring(`{"secrets":[{"seq":1,"value":` + v + `,"hint":"BwcHBwcHBwcHBwcHBwcHBwc"}]}`)},
		{"data after", ring(`{"secrets":[{"seq":1,"value":` + v + `}]} {}`)},
		{"seq 0", ring(`{"secrets":[{"seq":0,"value":` + v + `}]}`)},
		{"short value", ring(`{"secrets":[{"seq":1,"value":"BwcH"}]}`)},
		{"seq not rising", ring(`{"secrets":[{"seq":2,"value":` + v + `},{"seq":2,"value":` + v + `}]}`)},
		{"taking over earlier", ring(`{"secrets":[{"seq":1,"value":` + v + `,"active_from":"2030-06-01T12:00:00Z"},{"seq":2,"value":` + v + `,"active_from":"2030-06-01T11:00:00Z"}]}`)},
		{"at once after a later one", ring(`{"secrets":[{"seq":1,"value":` + v + `,"active_from":"2030-06-01T12:00:00Z"},{"seq":2,"value":` + v + `}]}`)},
		{"too many", ring(`{"secrets":[` + strings.Repeat(`{"seq":1,"value":`+v+`},`, secrets.MaxSecrets) + `{"seq":1,"value":` + v + `}]}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := secrets.Parse(tc.b)
			if !errors.Is(err, secrets.ErrFormat) {
				t.Fatalf("Parse = %+v, %v; want ErrFormat", r, err)
			}
			if strings.Contains(err.Error(), "BwcHBwcH") || strings.Contains(err.Error(), "\x01\x01\x01\x01") {
				t.Fatalf("the error %q quotes a value", err)
			}
		})
	}
}

// The newest secret whose ActiveFrom has passed tags; one not yet active
// is next.
func TestCurrentNext(t *testing.T) {
	r := secrets.Ring{{Seq: 1, Value: value(1)}, {Seq: 3, Value: value(3), ActiveFrom: t0}, {Seq: 4, Value: value(4), ActiveFrom: t0.Add(time.Minute)}}
	cases := []struct {
		now       time.Time
		cur, next int
	}{
		{t0.Add(-time.Nanosecond), 1, 3},
		{t0, 3, 4},
		{t0.Add(time.Minute - time.Nanosecond), 3, 4},
		{t0.Add(time.Minute), 4, 0},
	}
	for _, tc := range cases {
		next, ok := r.Next(tc.now)
		if cur := r.Current(tc.now); cur.Seq != tc.cur || next.Seq != tc.next || ok != (tc.next != 0) {
			t.Errorf("at %v: current %d, next %d (%v); want %d, %d", tc.now, cur.Seq, next.Seq, ok, tc.cur, tc.next)
		}
	}
	pending := secrets.Ring{{Seq: 2, Value: value(2), ActiveFrom: t0}}
	if cur := pending.Current(t0.Add(-time.Second)); cur.Seq != 2 {
		t.Fatalf("a ring of one pending secret: current %d; want it", cur.Seq)
	}
}
