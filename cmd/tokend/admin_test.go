package main

import (
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/server"
)

// client create refuses public clients that could never work, and stores
// only refresh_token for --public.
// An operator's client secret must have at least 32 characters: the
// throttle never locks a client for failures from everywhere.
func TestClientCreateShortSecret(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	for _, secret := range []string{"7q", "app-secret", strings.Repeat("x", 31), strings.Repeat("é", 31)} {
		code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "app", "--secret", secret, "--store", storeURL)
		if code != 2 || out != "" || !strings.Contains(errOut, "needs at least 32") || strings.Contains(errOut, secret) {
			t.Errorf("--secret of %d characters: exit %d, stdout %q, stderr %q; want 2 and a refusal that does not echo it", len([]rune(secret)), code, out, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "", "client", "create", "--init", "--id", "app", "--secret", strings.Repeat("é", 32), "--quiet", "--store", storeURL); code != 0 {
		t.Fatalf("a secret of 32 characters: exit %d, %q", code, errOut)
	}
}

func TestClientCreatePublic(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grant", "password,refresh_token"}, "a public client has no secret, so it can only use refresh_token"},
		{[]string{"--grant", "client_credentials"}, "can only use refresh_token"},
		{[]string{"--mint"}, "minting needs the client's secret"},
		{[]string{"--secret", "s"}, "a public client has no secret"},
		{[]string{"--quiet"}, "no secret to print"},
	} {
		code, out, errOut := runCmd(t, "", append([]string{"client", "create", "--init", "--id", "app", "--public", "--store", storeURL}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("--public %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "app", "--public", "--store", storeURL); code != 0 || strings.Contains(out, "client_secret") {
		t.Fatalf("--public: exit %d, %q, %q", code, out, errOut)
	}
	st, err := openStore(t.Context(), storeURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(t.Context(), "app")
	if err != nil || len(c.SecretHash) != 0 || strings.Join(c.Grants, ",") != "refresh_token" || c.Mint {
		t.Fatalf("stored %+v, %v; want no secret and refresh_token only", c, err)
	}
}

// --quiet prints the secret alone, which then authenticates; the admin
// commands say what they did, and their errors are in plain words.
func TestAdminMessages(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "demo", "--quiet", "--store", storeURL)
	secret := strings.TrimSuffix(out, "\n")
	if code != 0 || strings.ContainsAny(secret, " \n:") || len(secret) != 43 {
		t.Fatalf("--quiet: exit %d, stdout %q, stderr %q; want only the secret", code, out, errOut)
	}
	st, err := openStore(t.Context(), storeURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.GetClient(t.Context(), "demo")
	st.Close()
	if err != nil || string(c.SecretHash) != string(hashOf(secret)) {
		t.Fatalf("the printed secret is not the stored one: %v", err)
	}
	steps := []struct {
		stdin string
		args  []string
		code  int
		out   string // stdout (0) or stderr (1) contains
	}{
		{"", []string{"client", "create", "--id", "demo"}, 1, "tokend client create: client demo already exists"},
		{"pw\n", []string{"user", "create", "alice", "--password-stdin"}, 0, "created user alice\n"},
		{"pw\n", []string{"user", "create", "bob", "--password-stdin", "--argon2-params", "m=64,t=1,p=1"}, 0, "created user bob\n"},
		{"pw\n", []string{"user", "create", "alice", "--password-stdin"}, 1, "user alice already exists"},
		{"", []string{"user", "list"}, 0, "argon2id m=64,t=1,p=1"},
		{"", []string{"user", "delete", "alice"}, 0, "deleted user alice; 0 sessions revoked\n"},
		{"", []string{"user", "delete", "alice"}, 1, "no user alice (tokend user list shows them)"},
		{"", []string{"client", "delete", "demo"}, 0, "deleted client demo; 0 sessions revoked\n"},
		{"", []string{"client", "delete", "demo"}, 1, "no client demo (tokend client list shows them)"},
	}
	for _, s := range steps {
		code, out, errOut := runCmd(t, s.stdin, append(s.args, "--store", storeURL)...)
		got := out
		if s.code != 0 {
			got = errOut
		}
		if code != s.code || !strings.Contains(got, s.out) || strings.Contains(errOut, "store: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and %q", s.args, code, out, errOut, s.code, s.out)
		}
	}
	code, out, _ = runCmd(t, "", "user", "list", "--store", storeURL)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], "bob ") {
		t.Errorf("user list: %q", out)
	}
}

func hashOf(secret string) []byte { return server.HashClientSecret(secret) }

// version shows the module version and, when the build recorded them, the
// VCS revision, its time and whether the tree was modified.
func TestVersion(t *testing.T) {
	cases := []struct {
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{nil, false, "(devel)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, true, "v1.2.0"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "3f9a0c1e5b7d9f00112233445566778899aabbcc"}, {Key: "vcs.time", Value: "2026-11-30T03:14:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			true, "(devel) 3f9a0c1e5b7d 2026-11-30T03:14:00Z modified"},
	}
	for _, tc := range cases {
		if got := version(tc.bi, tc.ok); got != tc.want {
			t.Errorf("version(%+v) = %q, want %q", tc.bi, got, tc.want)
		}
	}
}

// bench --target labels the run with the target alone, needs a client
// secret, and says which client it needs when the target refuses it.
func TestBenchTarget(t *testing.T) {
	params, err := password.ParseParams("m=64,t=1,p=1")
	if err != nil {
		t.Fatal(err)
	}
	stop, groups, err := benchServer(t.Context(), "memory:", params, []string{"on"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	code, _, errOut := runCmd(t, "", "bench", "--target", groups[0][0])
	if code != 2 || !strings.Contains(errOut, "--target needs --client-id and --client-secret") {
		t.Errorf("no secret: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCmd(t, "", "bench", "--target", groups[0][0], "--client-secret", "wrong", "--clients", "1", "--duration", "10ms")
	if code != 1 || !strings.Contains(errOut, "mint answered 401") || !strings.Contains(errOut, "tokend client create --id bench --grant refresh_token,password --mint") {
		t.Errorf("wrong secret: exit %d, %q", code, errOut)
	}
	code, out, errOut := runCmd(t, "", "bench", "--target", groups[0][0], "--client-secret", benchSecret, "--clients", "1", "--duration", "10ms")
	if code != 0 || !strings.Contains(out, "rotations against "+groups[0][0]+", ") || strings.Contains(out, "memory:") {
		t.Errorf("bench --target: exit %d, %q, %q", code, out, errOut)
	}
}

// --mint-for is stored and listed, and refused where it could never work.
func TestClientCreateMintFor(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--public", "--mint-for", "spa"}, "--public and --mint-for: a public client cannot mint"},
		{[]string{"--mint-for", "spa"}, "--mint-for without --mint"},
		{[]string{"--mint", "--mint-for", ","}, "--mint-for names no client"},
		{[]string{"--mint", "--mint-for", "spa,backend"}, "--mint-for names backend itself"},
	} {
		code, out, errOut := runCmd(t, "", append([]string{"client", "create", "--init", "--id", "backend", "--store", storeURL}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "backend", "--mint", "--mint-for", "spa,web", "--store", storeURL); code != 0 {
		t.Fatalf("--mint --mint-for: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut := runCmd(t, "", "client", "list", "--store", storeURL)
	if code != 0 || !strings.Contains(out, "MINT FOR") || !strings.Contains(out, "spa,web") {
		t.Errorf("client list: exit %d, %q, %q; want a MINT FOR column with spa,web", code, out, errOut)
	}
	st, err := openStore(t.Context(), storeURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(t.Context(), "backend")
	if err != nil || !c.Mint || strings.Join(c.MintFor, ",") != "spa,web" {
		t.Fatalf("stored %+v, %v; want Mint and MintFor [spa web]", c, err)
	}
}
