package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// issue 16, items 6 and 7: an identifier or a duration an operator types
// is checked before the store is opened or anything is added up; the
// message names the argument and the rule, and never echoes the value
// (it may hold control characters that rewrite the terminal).
func TestAdminArgumentsChecked(t *testing.T) {
	st := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	if code, _, errOut := runCmd(t, "", "client", "create", "--id", "ok", "--init", "--store", st, "-q"); code != 0 {
		t.Fatalf("client create: %d %s", code, errOut)
	}
	const rule = "1 to 256 bytes of UTF-8 without control characters"
	long := strings.Repeat("a", 257)
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"client", "create", "--id", "my app"}, "", "tokend client create: --id must be " + rule + ", white space or commas"},
		{[]string{"client", "create", "--id", "a,b"}, "", "tokend client create: --id must be " + rule + ", white space or commas"},
		{[]string{"client", "create", "--id", "a\x1b[2Jb"}, "", "tokend client create: --id must be " + rule + ", white space or commas"},
		{[]string{"client", "create", "--id", long}, "", "tokend client create: --id must be " + rule + ", white space or commas"},
		{[]string{"client", "create", "--id", "b", "--mint", "--mint-for", "spa,sp\x00a"}, "", "tokend client create: each client of --mint-for must be " + rule + ", white space or commas"},
		{[]string{"client", "delete", "al\xffice"}, "", "tokend client delete: the client ID must be " + rule},
		{[]string{"user", "create", "al\x00ice", "--password-stdin"}, "pw\n", "tokend user create: the user name must be " + rule},
		{[]string{"user", "delete", long}, "", "tokend user delete: the user name must be " + rule},
		{[]string{"sessions", "revoke", "a\nb"}, "", "tokend sessions revoke: the session ID must be " + rule},
		{[]string{"sessions", "revoke", "--subject", "\x00"}, "", "tokend sessions revoke: --subject must be " + rule},
		{[]string{"sessions", "list", "--client", "\x7f"}, "", "tokend sessions list: --client must be " + rule},
		{[]string{"keys", "rotate", "--key-reload", "2562047h", "--jwks-max-age", "2562047h"}, "", "tokend keys rotate: --key-reload must be from 10ms to 24h, such as 10s, not 2562047h"},
		{[]string{"keys", "rotate", "--jwks-max-age", "-1m"}, "", "tokend keys rotate: --jwks-max-age must be from 1s to 24h, such as 1m, not -1m"},
	}
	for _, tc := range cases {
		code, out, errOut := runCmd(t, tc.stdin, append(tc.args, "--store", st)...)
		if code != 2 || errOut != tc.want+"\n" || out != "" {
			t.Errorf("tokend %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// A bad duration in the environment is an error, not the default.
	t.Setenv("TOKEND_JWKS_MAX_AGE", "soon")
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--store", st); code != 2 || errOut != "tokend keys rotate: TOKEND_JWKS_MAX_AGE: want a duration such as 1m, not \"soon\"\n" {
		t.Errorf("TOKEND_JWKS_MAX_AGE=soon: exit %d, %q", code, errOut)
	}
	// Nothing was stored; names beyond ASCII are identifiers too.
	code, out, _ := runCmd(t, "", "client", "list", "--store", st)
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("client list: %d %q", code, out)
	}
	if code, out, errOut := runCmd(t, "pw\n", "user", "create", "Zoë Ünal", "--password-stdin", "--store", st); code != 0 || out != "created user Zoë Ünal\n" {
		t.Errorf("user create Zoë Ünal: %d %q %q", code, out, errOut)
	}
}
