package postgres

import "testing"

// searchSchema finds the schema Open creates: the first of search_path,
// unquoted (or folded to lower case), "$user" skipped.
func TestSearchSchema(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"tokend":            "tokend",
		" Tokend , public":  "tokend",
		`"$user", app`:      "app",
		`$user,public`:      "public",
		`"My ""Schema""",x`: `My "Schema"`,
		`"tokend_eu"`:       "tokend_eu",
		`  ,  second`:       "second",
	} {
		if got := searchSchema(in); got != want {
			t.Errorf("searchSchema(%q) = %q, want %q", in, got, want)
		}
	}
}
