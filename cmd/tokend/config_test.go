package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"time"
)

// Flags beat TOKEND_* variables, which beat the config file, which beats
// the defaults.
func TestLoadSettingsPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokend.yaml")
	if err := os.WriteFile(file, []byte("addr: 0.0.0.0:9000\nissuer: https://auth.example.com/\naccess-ttl: 5m\ngrace: 10s\nstore: \"memory:\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKEND_CONFIG": file, "TOKEND_GRACE": "20s", "TOKEND_ACCESS_TTL": "7m"}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s, err := loadSettings(fs, []string{"--access-ttl", "9m"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case s.Addr != "0.0.0.0:9000": // file
		t.Errorf("addr %q", s.Addr)
	case s.Grace != 20*time.Second: // env over file
		t.Errorf("grace %v", s.Grace)
	case s.AccessTTL != 9*time.Minute: // flag over env
		t.Errorf("access ttl %v", s.AccessTTL)
	case s.Store != "memory:" || s.RefreshIdle != 30*24*time.Hour: // file, default
		t.Errorf("store %q, idle %v", s.Store, s.RefreshIdle)
	case s.Issuer != "https://auth.example.com": // file, trailing slash dropped
		t.Errorf("issuer %q", s.Issuer)
	}
}

func TestLoadSettingsErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("adress: typo\n"), 0o600)
	cases := []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--access-ttl", "soon"}, nil},
		{nil, map[string]string{"TOKEND_GRACE": "x"}},
		{[]string{"--config", bad}, nil},
		{[]string{"--config", "/nonexistent.yaml"}, nil},
		{[]string{"extra"}, nil},
		{[]string{"--gc-interval", "0s"}, nil}, // a ticker of 0 would panic
		{[]string{"--key-reload", "-1s"}, nil},
		{nil, map[string]string{"TOKEND_JWKS_MAX_AGE": "0s"}},
	}
	for _, tc := range cases {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if _, err := loadSettings(fs, tc.args, func(k string) string { return tc.env[k] }); err == nil {
			t.Errorf("loadSettings(%q, %v) accepted", tc.args, tc.env)
		}
	}
}

func TestAdminCommands(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	runOK := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut stringsBuilder
		if code := run(t.Context(), append(args, "--store", storeURL), newReader(stdin), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	out := runOK("", "client", "create", "--init", "--id", "web", "--grant", "password,refresh_token", "--scope", "read,write")
	if !contains(out, "client_secret:") {
		t.Fatalf("client create printed %q", out)
	}
	runOK("pw\n", "user", "create", "alice", "--password-stdin")
	if out := runOK("", "client", "list"); !contains(out, "password,refresh_token") || !contains(out, "read write") {
		t.Fatalf("client list: %q", out)
	}
	runOK("", "keys", "rotate")
	if out := runOK("", "keys", "list"); countLines(out) != 2 {
		t.Fatalf("keys list after the first rotate: %q", out)
	}
	// Revoking the signing key rotates first; the list shows when.
	list := strings.Split(strings.TrimSpace(runOK("", "keys", "list")), "\n")
	signing := strings.Fields(list[len(list)-1])[0]
	if out := runOK("", "keys", "revoke", signing); !contains(out, "revoked key "+signing) || !contains(out, "new signing key") {
		t.Fatalf("keys revoke: %q", out)
	}
	list = strings.Split(strings.TrimSpace(runOK("", "keys", "list")), "\n")
	if len(list) != 3 || !strings.HasPrefix(list[1], signing) || strings.HasSuffix(list[1], "-") || !strings.HasSuffix(list[2], "-") {
		t.Fatalf("keys list after revoke: %q", list)
	}
	var out3, err3 stringsBuilder
	if code := run(t.Context(), []string{"keys", "revoke", "nosuchkid", "--store", storeURL}, newReader(""), &out3, &err3); code != 2 || !contains(err3.String(), "no key") {
		t.Fatalf("keys revoke of an unknown kid: exit %d: %s", code, err3.String())
	}
	runOK("", "sessions", "list")
	runOK("", "user", "delete", "alice")
	runOK("", "client", "delete", "web")
	var out2, errOut stringsBuilder
	if code := run(t.Context(), []string{"client", "create", "--store", storeURL}, newReader(""), &out2, &errOut); code != 2 {
		t.Fatalf("client create without --id: exit %d", code)
	}
}

type stringsBuilder = strings.Builder

func newReader(s string) io.Reader { return strings.NewReader(s) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func countLines(s string) int { return strings.Count(strings.TrimSpace(s), "\n") + 1 }
