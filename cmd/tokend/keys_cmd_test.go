package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// `tokend keys rotate --use id` rotates the ID-token key and leaves the
// access-token key alone, and the reverse; `keys list` shows each key's
// use; a use or algorithm a key may not have is a usage error.
func TestKeysUse(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	runOK := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCmd(t, "", append(args, "--store", storeURL)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	// rows returns `keys list` as the fields of each line after the header.
	rows := func() [][]string {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(runOK("keys", "list")), "\n")
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != "KID ALG USE CREATED RETIRED REVOKED" {
			t.Fatalf("keys list header %q", lines[0])
		}
		var out [][]string
		for _, l := range lines[1:] {
			out = append(out, strings.Fields(l))
		}
		return out
	}

	runOK("keys", "rotate", "--init")
	if out := runOK("keys", "rotate", "--use", "id"); !strings.Contains(out, "(RS256, id)") {
		t.Fatalf("keys rotate --use id: %q", out)
	}
	r := rows()
	if len(r) != 2 || r[0][1] != "EdDSA" || r[0][2] != "access" || r[1][1] != "RS256" || r[1][2] != "id" || r[0][4] != "-" || r[1][4] != "-" {
		t.Fatalf("keys list: %q; want an active access key and an active ID key", r)
	}
	idKid := r[1][0]

	// Rotating the access key retires the old access key only.
	if out := runOK("keys", "rotate"); !strings.Contains(out, "(EdDSA, access)") {
		t.Fatalf("keys rotate: %q", out)
	}
	r = rows()
	if len(r) != 3 || r[0][4] == "-" || r[1][0] != idKid || r[1][4] != "-" || r[2][2] != "access" {
		t.Fatalf("keys list after rotating the access key: %q; want the old access key retired, the ID key not", r)
	}

	// Revoking the ID key rotates the ID key first, to another RS256 key.
	if out := runOK("keys", "revoke", idKid); !strings.Contains(out, "revoked key "+idKid) || !strings.Contains(out, "(RS256, id): signs now") {
		t.Fatalf("keys revoke of the ID key: %q", out)
	}
	r = rows()
	if len(r) != 4 || r[1][5] == "-" || r[2][4] != "-" || r[3][2] != "id" || r[3][4] != "-" {
		t.Fatalf("keys list after revoking the ID key: %q", r)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "rotate", "--use", "id", "--alg", "EdDSA"}, "RS256 for an ID-token key"},
		{[]string{"keys", "rotate", "--alg", "RS256"}, "EdDSA or ES256 for an access-token key"},
		{[]string{"keys", "rotate", "--use", "refresh"}, "--use must be access or id"},
	} {
		code, _, errOut := runCmd(t, "", append(tc.args, "--store", storeURL)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if r := rows(); len(r) != 4 {
		t.Fatalf("refused rotations stored keys: %q", r)
	}
}
