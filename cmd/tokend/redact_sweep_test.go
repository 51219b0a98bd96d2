package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis/redistest"
)

// The secrets of the store URLs below: each is looked for in every output.
var storeSecrets = []string{"UserPw1", "QueryPw2", "SslPw3", "KeyPw4", "S3cretX"}

// noSecret fails t if out shows one of storeSecrets.
func noSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range storeSecrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows the secret %s:\n%s", what, s, out)
		}
	}
}

// secretPostgresURL is a URL of a schema of t's own on the test
// PostgreSQL (trust authentication: the passwords are sent, or not, and
// ignored) with a secret in each place a URL may hold one.
func secretPostgresURL(t *testing.T) string {
	return "postgres://postgres:UserPw1@127.0.0.1:5432/test?sslmode=disable&password=QueryPw2&sslpassword=SslPw3&sslkey=KeyPw4" + pgtest.Schema(t)
}

// The start-up line of serve shows its store, redacted, on PostgreSQL
// and on Redis (whose durability warning names it too).
func TestServeStoreLineRedacted(t *testing.T) {
	cases := []struct {
		name  string
		url   func(t *testing.T) string
		shown string
	}{
		{"postgres", secretPostgresURL,
			`store="postgres://postgres:xxxxx@127.0.0.1:5432/test?sslmode=disable&password=xxxxx&sslpassword=xxxxx&sslkey=xxxxx&search_path=`},
		// The default user of the test Redis takes any password.
		{"redis", func(t *testing.T) string {
			return "redis://default:S3cretX@127.0.0.1:6379/0?prefix=" + url.QueryEscape(redistest.Prefix(t))
		}, `store="redis://default:xxxxx@127.0.0.1:6379/0?prefix=`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url(t)
			ctx, cancel := context.WithCancel(t.Context())
			pr, pw := io.Pipe()
			logs := &syncWriter{w: &strings.Builder{}}
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--store", u}, nil, pw, logs)
				pw.Close()
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "tokend: listening on ") {
				t.Fatalf("serve printed %q, %v; log:\n%s", line, err, logs.String())
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("serve exited %d:\n%s", code, logs.String())
			}
			out := logs.String()
			noSecret(t, "serve's log", out)
			if !strings.Contains(out, `msg="tokend serving"`) || !strings.Contains(out, tc.shown) {
				t.Errorf("serve's log lacks its store, redacted (%s):\n%s", tc.shown, out)
			}
		})
	}
}

// adminRun is one run of an admin command.
type adminRun struct {
	path  string // the command, as after "tokend "
	args  []string
	stdin string
}

// adminRuns are the arguments each admin command that opens a store runs
// with in TestAdminStoreLineRedacted, in order; stdin for those that read
// it. K and K2 stand for operator key files.
var adminRuns = []adminRun{
	{"migrate", nil, ""},
	{"client create", []string{"--id", "app", "--secret", "app-secret-0123456789abcdef0123456789", "--grant", "client_credentials"}, ""},
	{"client list", nil, ""},
	{"client update", []string{"app", "--add-scope", "read"}, ""},
	{"client rotate-secret", []string{"app"}, ""},
	{"user create", []string{"alice", "--password-stdin"}, "wonderland\n"},
	{"user passwd", []string{"alice", "--password-stdin"}, "looking-glass\n"},
	{"user list", nil, ""},
	{"keys list", nil, ""},
	{"keys rotate", nil, ""},
	{"keys revoke", []string{"no-such-kid"}, ""},
	{"sessions list", nil, ""},
	{"sessions revoke", []string{"--subject", "alice"}, ""},
	{"families list", nil, ""},
	{"families revoke", []string{"--subject", "alice"}, ""},
	{"encryption status", nil, ""},
	{"encryption seal", []string{"--key-file", "K"}, ""},
	{"encryption rotate", []string{"--key-file", "K2", "--old-key-file", "K"}, ""},
	{"encryption unseal", []string{"--old-key-file", "K2"}, ""},
	{"encryption scrub", nil, ""},
	{"secrets list", nil, ""},
	{"secrets rotate", nil, ""},
	{"secrets retire", nil, ""},
	{"user delete", []string{"alice"}, ""},
	{"client delete", []string{"app"}, ""},
	{"backup", []string{"backup.db"}, ""},
	{"restore", []string{"backup.db"}, ""},
}

// Every admin command that opens a store says which on stderr, redacted,
// and shows no secret of its URL in anything it prints, whether it
// succeeds or fails; so does its -h with the URL in TOKEND_STORE. A new
// command with --store must be added to adminRuns.
func TestAdminStoreLineRedacted(t *testing.T) {
	u := secretPostgresURL(t)
	var paths []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("store") != nil && c.Name() != "serve" && c.Name() != "bench" {
			paths = append(paths, strings.TrimPrefix(c.CommandPath(), "tokend "))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(&cmdIO{}))
	for _, p := range paths {
		if !slices.ContainsFunc(adminRuns, func(r adminRun) bool { return r.path == p }) {
			t.Errorf("tokend %s takes --store but is not in adminRuns", p)
		}
	}

	dir := t.TempDir()
	keyFile, _, _ := newKeyFile(t, dir, "k")
	keyFile2, _, _ := newKeyFile(t, dir, "k2")
	for _, r := range adminRuns {
		args := append(strings.Fields(r.path), r.args...)
		for i, a := range args {
			args[i] = map[string]string{"K": keyFile, "K2": keyFile2}[a]
			if args[i] == "" {
				args[i] = a
			}
		}
		code, out, errOut := runCmd(t, r.stdin, append(args, "--store", u)...)
		noSecret(t, fmt.Sprintf("tokend %s (exit %d)", r.path, code), out+errOut)
		if !strings.Contains(errOut, "tokend: store postgres://postgres:xxxxx@127.0.0.1:5432/test?sslmode=disable&password=xxxxx&sslpassword=xxxxx&sslkey=xxxxx&search_path=") {
			t.Errorf("tokend %s (exit %d) does not say which store, redacted:\n%s%s", r.path, code, out, errOut)
		}
	}

	t.Setenv("TOKEND_STORE", u)
	for _, p := range append(paths, "serve", "bench") {
		_, out, errOut := runCmd(t, "", append(strings.Fields(p), "-h")...)
		noSecret(t, "tokend "+p+" -h with TOKEND_STORE set", out+errOut)
	}
}

// A store URL that cannot be opened (the server refuses, the URL does not
// parse, a parameter is wrong, it is no URL) is reported without its
// secrets by serve, an admin command and the benchmark.
func TestStoreOpenErrorsRedacted(t *testing.T) {
	bad := []string{
		"postgres://u:S3cretX@127.0.0.1:1/db?sslmode=disable&password=S3cretX&connect_timeout=1",
		"postgres://u:S3cretX@127.0.0.1:5432/test?sslmode=bogus&password=S3cretX",
		"postgres://u:ab%zzS3cretX@127.0.0.1:5432/test",
		"postgres://127.0.0.1:5432/test?sslmode=disable&password=ab%zzS3cretX",
		`postgres://u:S3cretX"q@127.0.0.1:5432/test`,
		"postgres://127.0.0.1:5432/test?sslmode=verify-full&sslinline=true&sslkey=S3cretX&sslpassword=S3cretX",
		"redis://default:S3cretX@127.0.0.1:6379/0?password=S3cretX",
		"redis://S3cretX@127.0.0.1:1/0?dial_timeout=1s",
		"rediss://:ab%zzS3cretX@127.0.0.1:6379/0",
		"redis://:S3cretX@127.0.0.1:6379/0?prefix=",
		"host=127.0.0.1 user=postgres password=S3cretX dbname=test",
		"password=S3cretX:x",
		"mysql://root:S3cretX@127.0.0.1/tokend",
	}
	for _, u := range bad {
		for _, args := range [][]string{
			{"serve", "--addr", "127.0.0.1:0", "--store", u},
			{"client", "list", "--store", u},
			{"bench", "--store", u, "--clients", "1", "--duration", "10ms"},
		} {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			var out, errOut strings.Builder
			code := run(ctx, args, strings.NewReader(""), &out, &errOut)
			cancel()
			if code == 0 {
				t.Errorf("tokend %s %s: exit 0; want a failure", args[0], u)
			}
			noSecret(t, fmt.Sprintf("tokend %s with %s", args[0], u), out.String()+errOut.String())
		}
	}
}

// A panic while a store is opened is raised again without the URL's
// secrets.
func TestRedactPanic(t *testing.T) {
	const raw = "postgres://u:S3cretX@h/db?password=S3cretX"
	defer func() {
		r := recover()
		if s := fmt.Sprint(r); r == nil || strings.Contains(s, "S3cretX") || !strings.Contains(s, "driver broke on postgres://u:xxxxx@h/db?password=xxxxx") {
			t.Errorf("the panic raised again: %v", r)
		}
	}()
	func() {
		defer redactPanic(raw)
		panic("driver broke on " + raw)
	}()
}
