package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/server"
)

// The password-hashing settings have server.Config's defaults and come
// from the file, the environment and flags like the others.
func TestHashingSettings(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s, err := loadSettings(fs, nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var c server.Config
	if err := s.applyHashing(&c); err != nil {
		t.Fatal(err)
	}
	if c.PasswordParams != password.DefaultParams() || c.HashMemory != server.DefaultHashMemory || c.HashQueue != server.DefaultHashQueue {
		t.Errorf("defaults: %v, %d bytes, queue %d", c.PasswordParams, c.HashMemory, c.HashQueue)
	}

	file := filepath.Join(t.TempDir(), "tokend.yaml")
	if err := os.WriteFile(file, []byte("hash-queue: 8\nargon2-params: m=12288,t=3,p=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKEND_CONFIG": file, "TOKEND_HASH_MEMORY": "64"}
	fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s, err = loadSettings(fs, []string{"--argon2-params", "m=47104,t=1,p=1"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.applyHashing(&c); err != nil {
		t.Fatal(err)
	}
	want := server.PasswordParams{Memory: 47104, Time: 1, Threads: 1}
	if c.PasswordParams != want || c.HashMemory != 64<<20 || c.HashQueue != 8 {
		t.Errorf("set: %v, %d bytes, queue %d; want %v, 64 MiB, 8", c.PasswordParams, c.HashMemory, c.HashQueue, want)
	}

	for _, bad := range []string{"m=19456,t=2", "m=19456,t=0,p=1", "m=2000000,t=1,p=1"} {
		fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if _, err := loadSettings(fs, []string{"--argon2-params", bad}, func(string) string { return "" }); err == nil {
			t.Errorf("--argon2-params %s accepted", bad)
		}
	}
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"serve", "--store", "memory:", "--argon2-params", "m=1,t=1,p=1"}, nil, &out, &errOut); code != 2 {
		t.Errorf("serve with bad --argon2-params: exit %d, %s", code, errOut.String())
	}
}

// user create hashes with --argon2-params, or TOKEND_ARGON2_PARAMS.
func TestUserCreateParams(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	t.Setenv("TOKEND_ARGON2_PARAMS", "m=128,t=1,p=1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "create", "bob", "--init", "--password-stdin", "--argon2-params", "m=64,t=2,p=1"}, "m=64,t=2,p=1"},
		{[]string{"user", "create", "eve", "--password-stdin"}, "m=128,t=1,p=1"},
	} {
		var out, errOut strings.Builder
		if code := run(t.Context(), append(tc.args, "--store", storeURL), strings.NewReader("pw\n"), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut.String())
		}
		st, err := openStore(t.Context(), storeURL, 0)
		if err != nil {
			t.Fatal(err)
		}
		u, err := st.GetUser(t.Context(), tc.args[2])
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if p, err := password.ParamsOf(u.PasswordHash); err != nil || p.String() != tc.want {
			t.Errorf("%s's hash has %v (%v), want %s", u.Name, p, err, tc.want)
		}
		if err := password.Check(u.PasswordHash, "pw"); err != nil {
			t.Errorf("%s: %v", u.Name, err)
		}
	}
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"user", "create", "x", "--password-stdin", "--argon2-params", "m=64", "--store", storeURL}, strings.NewReader("pw\n"), &out, &errOut); code != 2 {
		t.Errorf("bad --argon2-params: exit %d", code)
	}
}

// bench --grant password against the in-process server: every level
// reports logins, none dropped or unusable, and a peak RSS.
func TestBenchLogins(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"bench", "--grant", "password", "--clients", "2", "--duration", "100ms"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	// clients checks/s logins logins/s p50 p99 max refused dropped unusable other healthz peak RSS
	f := regexp.MustCompile(`\S+( MiB)?`).FindAllString(lines[2], -1)
	if len(f) != 13 || f[0] != "2" || f[8] != "0" || f[9] != "0" || f[10] != "0" || !strings.HasSuffix(f[12], " MiB") {
		t.Fatalf("row %q", lines[2])
	}
	if n, err := strconv.Atoi(f[2]); err != nil || n < 2 {
		t.Fatalf("%s logins in row %q, want at least one per client", f[2], lines[2])
	}
}
