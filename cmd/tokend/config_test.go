package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"time"

	"github.com/spf13/pflag"
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

// The example configuration in the repository loads, sets every setting
// to its default, and mentions every setting, so that it cannot drift.
func TestExampleConfig(t *testing.T) {
	const file = "../../tokend.example.yaml"
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s, err := loadSettings(fs, []string{"--config", file}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	want := defaultSettings()
	want.Issuer = "http://" + want.Addr
	want.Audience = want.Issuer
	if s != want {
		t.Errorf("the example sets\n%+v\nnot the defaults\n%+v", s, want)
	}
	for _, st := range want.table() {
		if !strings.Contains(string(raw), "\n"+st.name+":") && !strings.Contains(string(raw), "\n# "+st.name+":") {
			t.Errorf("the example does not mention %s", st.name)
		}
	}
}

// A config file's errors name the file, the line and the key, and show a
// valid value.
func TestConfigFileErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"access-ttl: 15\n", `line 1: access-ttl: want a duration such as 15m, not "15"`},
		{"addr: 127.0.0.1:1\naccess_ttl: 5m\n", "line 2: access_ttl is spelled access-ttl, as the flag"},
		{"adress: x\n", `line 1: unknown setting "adress" (tokend serve -h lists them)`},
		{"hash-queue: many\n", `hash-queue: want a whole number such as 64, not "many"`},
		{"access-log: maybe\n", `access-log: want true or false, not "maybe"`},
		{"access-ttl:\n", "access-ttl: want a value such as 15m"},
		{"grace: [1m]\n", "grace: want a value such as 5m"},
		{"store: memory:\n", `must be quoted: store: "memory:"`},
		{"grace: 1m\ngrace: 2m\n", "line 2: grace is set twice"},
		{"- addr\n", "want a mapping of settings"},
		{"access-ttl: -5m\n", "access-ttl must be positive, such as 15m, not -5m"},
	}
	for _, tc := range cases {
		file := filepath.Join(t.TempDir(), "tokend.yaml")
		if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		_, err := loadSettings(fs, []string{"--config", file}, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.yaml, err, tc.want)
		}
	}
	// Comments only, and store: memory: quoted, are fine.
	for _, ok := range []string{"# nothing\n", "store: \"memory:\"\n", "store: 'memory:'\n"} {
		file := filepath.Join(t.TempDir(), "tokend.yaml")
		_ = os.WriteFile(file, []byte(ok), 0o600)
		if _, err := loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), []string{"--config", file}, func(string) string { return "" }); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// Every setting is checked at the edge; the message names it and shows a
// valid value.
func TestSettingsChecked(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--access-ttl", "-5m"}, nil, "access-ttl must be positive, such as 15m, not -5m"},
		{[]string{"--access-ttl", "0"}, nil, "access-ttl must be positive, such as 15m, not 0s"},
		{[]string{"--refresh-idle", "0s"}, nil, "refresh-idle must be positive"},
		{[]string{"--grace", "-1s"}, nil, "grace must be 0 (none) or positive"},
		{nil, map[string]string{"TOKEND_ACCESS_TTL": "15"}, `TOKEND_ACCESS_TTL: want a duration such as 15m, not "15"`},
		{[]string{"--addr", ":18081"}, nil, "issuer is required when addr :18081 listens on every interface"},
		{[]string{"--addr", "0.0.0.0:80"}, nil, "issuer is required"},
		{[]string{"--addr", "[::]:80"}, nil, "issuer is required"},
		{[]string{"--addr", "localhost"}, nil, `addr must be HOST:PORT, such as 127.0.0.1:8080, not "localhost"`},
		{[]string{"--addr", "127.0.0.1:99999"}, nil, "addr must be HOST:PORT"},
		{[]string{"--metrics-addr", "9090"}, nil, "metrics-addr must be HOST:PORT"},
		{[]string{"--issuer", "auth.example.com"}, nil, "issuer must be an http(s) URL"},
		{[]string{"--issuer", "https://auth.example.com/?x=1"}, nil, "no query or fragment"},
		{[]string{"--audience", ""}, nil, "audience must not be empty, such as https://api.example.com; leave it out for the issuer"},
		{[]string{"--audience", " "}, nil, `audience must be a name without spaces, such as https://api.example.com, not " "`},
		{nil, map[string]string{"TOKEND_AUDIENCE": "api one"}, `audience must be a name without spaces`},
		{[]string{"--key-alg", "RS256"}, nil, `key-alg must be EdDSA or ES256, not "RS256"`},
		{[]string{"--log-level", "loud"}, nil, `log-level must be debug, info, warn or error, not "loud"`},
		{[]string{"--hash-memory", "0"}, nil, "hash-memory must be positive, such as 128"},
		{[]string{"--throttle-pair", "-1"}, nil, "throttle-pair must be positive, such as 5"},
		{[]string{"--throttle-max-delay", "48h"}, nil, "throttle-max-delay must be at most 24h"},
		// issue 16, item 7: ranges, checked before any arithmetic.
		{[]string{"--access-ttl", "25h"}, nil, "access-ttl must be from 1s to 24h, such as 15m, not 25h"},
		{[]string{"--access-ttl", "500ms"}, nil, "access-ttl must be from 1s to 24h, such as 15m, not 500ms"},
		{[]string{"--refresh-idle", "1ns"}, nil, "refresh-idle must be at least 1s, such as 720h, not 1ns"},
		{[]string{"--refresh-absolute", "2562048h"}, nil, `invalid argument "2562048h" for "--refresh-absolute" flag: want a duration such as 2160h, not "2562048h"`},
		{[]string{"--gc-interval", "1ns"}, nil, "gc-interval must be at least 10ms, such as 1m, not 1ns"},
		{[]string{"--key-reload", "9ms"}, nil, "key-reload must be from 10ms to 24h, such as 10s, not 9ms"},
		{[]string{"--key-reload", "2562047h"}, nil, "key-reload must be from 10ms to 24h, such as 10s, not 2562047h"},
		{nil, map[string]string{"TOKEND_JWKS_MAX_AGE": "100000h"}, "jwks-max-age must be from 1s to 24h, such as 1m, not 100000h"},
		{[]string{"--throttle-window", "168h"}, nil, "throttle-window must be from 1s to 24h, such as 1h, not 168h"},
		{[]string{"--throttle-max-delay", "500ms"}, nil, "throttle-max-delay must be from 1s to 24h, such as 15m, not 500ms"},
		{[]string{"--hash-memory", "9223372036854775807"}, nil, "hash-memory must be from 1 to 1048576, such as 128, not 9223372036854775807"},
		{[]string{"--hash-memory", "9223372036854775808"}, nil, `want a whole number such as 128, not "9223372036854775808"`},
		{[]string{"--hash-queue", "100001"}, nil, "hash-queue must be from any negative (no queue) to 100000, such as 64, not 100001"},
		{[]string{"--throttle-source", "1000001"}, nil, "throttle-source must be from 1 to 1000000, such as 50, not 1000001"},
		{nil, map[string]string{"TOKEND_THROTTLE_ACCOUNT": "4294967297"}, "throttle-account must be from 1 to 1000000, such as 20, not 4294967297"},
		{[]string{"--store", "mysql://x"}, nil, `store: store URL "mysql://x": unknown scheme`},
		{[]string{"--store", "sqlite://"}, nil, "names no file"},
	}
	for _, tc := range cases {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := loadSettings(fs, tc.args, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: %v; want %q", tc.args, tc.env, err, tc.want)
		}
	}
	// The edges of the ranges are fine.
	edges := []string{"--access-ttl", "24h", "--refresh-idle", "1s", "--key-reload", "24h", "--gc-interval", "10ms", "--jwks-max-age", "24h", "--hash-queue", "-1",
		"--hash-memory", "1048576", "--throttle-pair", "1000000", "--throttle-window", "1s", "--throttle-max-delay", "24h", "--refresh-absolute", "2562047h"}
	if _, err := loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), edges, func(string) string { return "" }); err != nil {
		t.Errorf("%q: %v", edges, err)
	}
	// Binding every interface with an issuer is fine; a port of 0 leaves
	// the issuer to serve, which takes the listener's.
	s, err := loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), []string{"--addr", ":18081", "--issuer", "https://auth.example.com"}, func(string) string { return "" })
	if err != nil || s.Issuer != "https://auth.example.com" {
		t.Errorf("--addr :18081 --issuer: %q, %v", s.Issuer, err)
	}
	s, err = loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), []string{"--addr", "127.0.0.1:0"}, func(string) string { return "" })
	if err != nil || s.Issuer != "" || s.Audience != "" {
		t.Errorf("--addr 127.0.0.1:0: issuer %q, audience %q, %v; want both left to serve", s.Issuer, s.Audience, err)
	}
	// The audience defaults to the issuer; set, it is kept.
	s, err = loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), []string{"--issuer", "https://auth.example.com"}, func(string) string { return "" })
	if err != nil || s.Audience != "https://auth.example.com" {
		t.Errorf("audience by default: %q, %v; want the issuer", s.Audience, err)
	}
	s, err = loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), nil, func(k string) string { return map[string]string{"TOKEND_AUDIENCE": "https://api.example.com"}[k] })
	if err != nil || s.Audience != "https://api.example.com" || s.Issuer != "http://127.0.0.1:8080" {
		t.Errorf("TOKEND_AUDIENCE: audience %q, issuer %q, %v", s.Audience, s.Issuer, err)
	}
}

// serve names the path of a SQLite file it cannot open.
func TestServeStorePathInError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "dir", "x.db")
	code, _, errOut := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--store", "sqlite://"+path)
	if code != 1 || !strings.Contains(errOut, path) {
		t.Errorf("exit %d, %q; want 1 and the path %s", code, errOut, path)
	}
}
