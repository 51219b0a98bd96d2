package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// The sh blocks of the operations section "Change clients and users in
// place" of the README run verbatim, in order, against a built
// tokend on a SQLite store holding the quickstart's client demo and user
// alice with one login; they say what they print, and run a second time
// without failing.
func TestOpsUpdateDoc(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs the document's shell blocks")
	}
	blocks := shBlocks(readmeSection(t, "### Change clients and users in place"))
	if len(blocks) != 3 {
		t.Fatalf("the README's section \"Change clients and users in place\" has %d sh blocks; want 3", len(blocks))
	}
	bin := buildTokend(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	const secret = "demo-secret-0123456789abcdef0123456789"
	u := "sqlite://" + path
	for _, args := range [][]string{
		{"client", "create", "--init", "--id", "demo", "--grant", "password,refresh_token", "--secret", secret, "--store", u},
		{"user", "create", "alice", "--password-stdin", "--argon2-params", "m=64,t=1,p=1", "--store", u},
	} {
		if code, out, errOut := runCmd(t, "correct horse\n", args...); code != 0 {
			t.Fatalf("tokend %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	login := store.Family{ID: "login1", ClientID: "demo", Subject: "alice", Scope: "read write", CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: server.HashClientSecret("rt")}
	if err := st.CreateFamily(t.Context(), login); err != nil {
		t.Fatal(err)
	}
	st.Close()

	env := []string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + dir}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := runBlocks(ctx, dir, env, blocks)
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	for _, want := range []string{
		"origins:                    https://staging.example.com",
		"no login ends (demo has 1 active login)",
		"restricts logins: origin https://staging.example.com removed: a browser app on it can no longer use demo",
		"then only the new one; no login ends",
		"password of user alice changed; 1 sessions go on (--end-logins ends them)",
		"password of user alice changed; 1 sessions revoked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the blocks printed no %q; output:\n%s", want, out)
		}
	}
	if _, err := runBlocks(ctx, dir, env, blocks); err != nil {
		t.Fatalf("a second run: %v", err)
	}

	st, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Scopes, " ") != "read write" || len(c.Origins) != 0 || len(c.RedirectURIs) != 0 ||
		len(c.PreviousSecretHash) == 0 || string(c.SecretHash) == string(server.HashClientSecret(secret)) {
		t.Fatalf("demo after the blocks: %+v", c)
	}
	f, err := st.GetFamily(t.Context(), login.ID)
	if err != nil || f.RevokeReason != reasonPasswordChanged {
		t.Fatalf("alice's login after --end-logins: %+v, %v", f, err)
	}
}
