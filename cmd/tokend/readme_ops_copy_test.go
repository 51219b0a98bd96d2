package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store/postgres/pgtest"
)

// moveBlock returns the bash block of the README's section "### Move to
// another store".
func moveBlock(t *testing.T) string {
	t.Helper()
	blocks := bashBlocks(readmeSection(t, "### Move to another store"))
	if len(blocks) != 1 {
		t.Fatalf("the README's section \"Move to another store\" has %d bash blocks, want 1", len(blocks))
	}
	return blocks[0]
}

// The documented move runs as written, its OLD line pointed at an SQLite
// store with a login and its NEW line at a PostgreSQL schema of the
// test's own: the login's refresh token rotates on the new store.
func TestDocsMoveStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend")
	}
	block := moveBlock(t)
	oldLine := regexp.MustCompile(`(?m)^OLD='[^']*'.*$`)
	newLine := regexp.MustCompile(`(?m)^NEW='[^']*'.*$`)
	if !oldLine.MatchString(block) || !newLine.MatchString(block) {
		t.Fatalf("the block sets no OLD='…' and NEW='…':\n%s", block)
	}
	dir := t.TempDir()
	oldURL := "sqlite://" + filepath.Join(dir, "tokend.db")
	newURL := pgtest.ServerURL + pgtest.Schema(t)
	code, out, errOut := runCmd(t, "", "client", "create", "--init", "--store", oldURL, "--id", "app", "--grant", "password,refresh_token", "--quiet")
	if code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	secret := strings.TrimSpace(out)
	if code, _, errOut := runCmd(t, "wonderland\n", "user", "create", "alice", "--password-stdin", "--store", oldURL); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	srv := startServeIn(t, oldURL)
	rt := srv.login(t, secret)
	srv.stop(t)

	script := oldLine.ReplaceAllLiteralString(block, "OLD='"+oldURL+"'")
	script = newLine.ReplaceAllLiteralString(script, "NEW='"+newURL+"'")
	bin := tokendBin.get(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := runBlocks(ctx, dir, env, []string{script})
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	if !strings.Contains(out, "copied ") || !strings.Contains(out, "the target holds every live record of the source") {
		t.Fatalf("the block's output lacks the copy and the check:\n%s", out)
	}

	srv = startServeIn(t, newURL)
	if code, next := srv.refresh(t, secret, rt); code != 200 || next == "" {
		t.Fatalf("the refresh token issued on the old store, on the new one: %d", code)
	}
	srv.stop(t)
}
