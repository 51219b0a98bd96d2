package store_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tokend/tokend/store"
)

// The rule of identifiers, at each of its edges, and the stricter one of
// a new client's ID.
func TestCheckID(t *testing.T) {
	cases := []struct {
		id             string
		valid, client  bool
		reasonContains string // of CheckID's error
	}{
		{"alice", true, true, ""},
		{"Alice Smith", true, false, ""},
		{"cn=alice,ou=people", true, false, ""},
		{"ſub-K-日本-🙂", true, true, ""},
		{strings.Repeat("a", 256), true, true, ""},
		{strings.Repeat("é", 128), true, true, ""},
		{"a\u00a0b", true, false, ""}, // white space, not a control character
		{"", false, false, "empty"},
		{strings.Repeat("a", 257), false, false, "longer than 256 bytes"},
		{strings.Repeat("é", 128) + "a", false, false, "longer than 256 bytes"},
		{"al\x00ice", false, false, "a control character (U+0000)"},
		{"al\xffice", false, false, "not UTF-8"},
		{"\xed\xa0\x80", false, false, "not UTF-8"},
		{"a\tb", false, false, "a control character (U+0009)"},
		{"a\x1b[31m", false, false, "a control character (U+001B)"},
		{"alice\x7f", false, false, "a control character (U+007F)"},
		{"alice\u0085", false, false, "a control character (U+0085)"},
		{"alice\u009f", false, false, "a control character (U+009F)"},
	}
	for _, tc := range cases {
		err := store.CheckID(tc.id)
		if (err == nil) != tc.valid || err != nil && (!errors.Is(err, store.ErrInvalid) || !strings.HasSuffix(err.Error(), ": "+tc.reasonContains)) {
			t.Errorf("CheckID(%q) = %v; want valid %v (%s)", tc.id, err, tc.valid, tc.reasonContains)
		}
		if err := store.CheckClientID(tc.id); (err == nil) != tc.client || err != nil && !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CheckClientID(%q) = %v; want valid %v", tc.id, err, tc.client)
		}
		if err != nil && tc.id != "" && strings.Contains(err.Error(), tc.id) {
			t.Errorf("CheckID(%q) quotes the identifier: %v", tc.id, err)
		}
	}
	for _, id := range []string{"m app", "a,b", "a\u2028b", "a\u3000b"} {
		if err := store.CheckClientID(id); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "white space or a comma at byte 1") {
			t.Errorf("CheckClientID(%q) = %v", id, err)
		}
	}
}

// FuzzCheckID: what CheckID accepts is exactly IDRule.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"alice", "", "al\x00ice", "\xff", "a\u0085", strings.Repeat("a", 257), "ſub"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		want := id != "" && len(id) <= store.MaxIDLen && utf8.ValidString(id) && !strings.ContainsFunc(id, unicode.IsControl)
		if err := store.CheckID(id); (err == nil) != want {
			t.Fatalf("CheckID(%q) = %v, want valid %v", id, err, want)
		}
		if store.Unknown(id) != (id != "" && !want) {
			t.Fatalf("Unknown(%q) = %v", id, store.Unknown(id))
		}
	})
}
