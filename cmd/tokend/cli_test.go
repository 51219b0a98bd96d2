package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// -h and --help at every level of the command tree exit 0 and print that
// level's usage on stdout, nothing on stderr.
func TestHelpEveryLevel(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRoot(&cmdIO{}), nil)
	if len(paths) < 20 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		for _, h := range []string{"-h", "--help"} {
			code, out, errOut := runCmd(t, "", append(p, h)...)
			want := "Usage:\n  " + strings.Join(append([]string{"tokend"}, p...), " ")
			if code != 0 || !strings.Contains(out, want) || errOut != "" {
				t.Errorf("tokend %s %s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(p, " "), h, code, out, errOut, want)
			}
		}
	}
	if code, out, _ := runCmd(t, "", "help", "client", "create"); code != 0 || !strings.Contains(out, "Usage:\n  tokend client create --id CLIENT_ID") {
		t.Errorf("tokend help client create: exit %d, %q", code, out)
	}
}

// A usage error exits 2 with one line saying what was wrong, then the
// usage of the command it was in, never the root's.
func TestUsageErrors(t *testing.T) {
	store := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	cases := []struct {
		args      []string
		line      string // the first line of stderr begins so
		usageLine string
	}{
		{[]string{"client"}, "tokend client: want a command: create, update, rotate-secret, list or delete", "tokend client <command>"},
		{[]string{"client", "bogus"}, `tokend client: unknown command "bogus": want create, update, rotate-secret, list or delete`, "tokend client <command>"},
		{[]string{"client", "create", "--store", store}, "tokend client create: --id is required", "tokend client create --id CLIENT_ID"},
		{[]string{"client", "create", "--id", "x", "--bogus"}, "tokend client create: unknown flag: --bogus", "tokend client create --id CLIENT_ID"},
		{[]string{"client", "delete", "--store", store}, "tokend client delete: want one client ID", "tokend client delete CLIENT_ID"},
		{[]string{"client", "delete", "a", "b"}, `tokend client delete: unexpected argument "b": want only one client ID`, "tokend client delete CLIENT_ID"},
		{[]string{"user", "create", "alice"}, "tokend user create: --password-stdin is required", "tokend user create NAME --password-stdin"},
		{[]string{"keys", "revoke"}, "tokend keys revoke: want one KID", "tokend keys revoke KID"},
		{[]string{"sessions", "revoke", "--store", store}, "tokend sessions revoke: want a session ID, or --subject and/or --client", "tokend sessions revoke [SESSION_ID"},
		{[]string{"families", "revoke", "--store", store}, "tokend families revoke: want a family ID, or --subject and/or --client", "tokend families revoke [FAMILY_ID"},
		{[]string{"serve", "--access-ttl", "soon"}, `tokend serve: invalid argument "soon" for "--access-ttl" flag: want a duration such as 15m, not "soon"`, "tokend serve [flags]"},
		{[]string{"serve", "extra"}, `tokend serve: unexpected argument "extra"`, "tokend serve [flags]"},
		{[]string{"bogus"}, `tokend: unknown command "bogus"`, "tokend <command>"},
	}
	for _, tc := range cases {
		code, out, errOut := runCmd(t, "", tc.args...)
		first, rest, _ := strings.Cut(errOut, "\n")
		if code != 2 || !strings.HasPrefix(first, tc.line) || !strings.Contains(rest, "Usage:\n  "+tc.usageLine) || out != "" {
			t.Errorf("tokend %q: exit %d, stdout %q, stderr %q; want 2, %q and the usage %q", tc.args, code, out, errOut, tc.line, tc.usageLine)
		}
	}
	if _, err := os.Stat(strings.TrimPrefix(store, "sqlite://")); err == nil {
		t.Error("a refused command created the store")
	}
}

// Long flags written with one dash, as Go's flag package took them, still
// work.
func TestSingleDashFlags(t *testing.T) {
	store := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	if code, _, errOut := runCmd(t, "", "client", "create", "-init", "-id", "web", "-store="+store); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, out, _ := runCmd(t, "", "-version"); code != 0 || !strings.HasPrefix(out, "tokend ") {
		t.Errorf("-version: exit %d, %q", code, out)
	}
}

// Admin commands act only on an existing store, say which, and refuse
// memory:; --init creates one.
func TestAdminStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "t.db")
	store := "sqlite://" + path
	code, _, errOut := runCmd(t, "", "client", "list", "--store", store)
	if code != 1 || !strings.Contains(errOut, "no store at "+path) || !strings.Contains(errOut, "--init") || !strings.Contains(errOut, "tokend serve") {
		t.Errorf("a missing store: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Dir(path)); err == nil {
		t.Error("the refused command made the store's directory")
	}
	t.Setenv("TOKEND_STORE", "memory:")
	code, out, errOut := runCmd(t, "", "client", "create", "--id", "x")
	if code != 1 || out != "" || !strings.Contains(errOut, "memory: (from TOKEND_STORE) lives inside one process") {
		t.Errorf("memory: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("TOKEND_STORE", store)
	if code, _, errOut := runCmd(t, "", "client", "create", "--init", "--id", "x"); code != 0 || errOut != "tokend: store "+store+"\n" {
		t.Fatalf("--init: exit %d, stderr %q", code, errOut)
	}
	rel, err := filepath.Rel(mustGetwd(t), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"client", "list"}, {"client", "list", "--store", "sqlite://" + rel}} {
		if code, out, errOut := runCmd(t, "", args...); code != 0 || errOut != "tokend: store "+store+"\n" || !strings.Contains(out, "\nx ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want the absolute path on stderr", args, code, out, errOut)
		}
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
