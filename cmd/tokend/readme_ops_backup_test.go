package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis/redistest"
)

// opsBackupSection is the README section on backup and restore, whose
// blocks the tests below run.
const opsBackupSection = "### Back up and restore"

// bashBlocks returns the contents of the ```bash blocks of a Markdown
// text, in order.
func bashBlocks(md string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^```bash\n(.*?)^```$").FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
}

// docEnv is the environment the blocks run in: no TOKEND_* variables, and
// the tokend binary bin first on the PATH.
func docEnv(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The SQLite blocks of the backup section run verbatim, in order, in a
// fresh directory: with a server running on the store, the backup block;
// then (the test's own step) a client made after the backup; then the
// restore block, which stops the server and restores. The restored store
// lists the client made before the backup, not the one made after, no
// -wal is left beside it, and the previous database is kept.
func TestDocsBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs the section's shell blocks")
	}
	blocks := shBlocks(readmeSection(t, opsBackupSection))
	if len(blocks) != 2 {
		t.Fatalf("%s has %d sh blocks, want 2 (backup, restore)", opsBackupSection, len(blocks))
	}
	bin := tokendBin.get(t)
	dir := t.TempDir()
	port := freePort(t)
	setup := fmt.Sprintf(`tokend client create --init --id before --grant client_credentials --quiet >/dev/null
tokend serve --addr 127.0.0.1:%d --log-level error >/dev/null &
curl -sf --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:%d/readyz >/dev/null
`, port, port)
	between := `tokend client create --id after --grant client_credentials --quiet >/dev/null
`
	check := `test ! -e tokend.db-wal && test ! -e tokend.db-shm
ls tokend.db.before-restore-* >/dev/null
test "$(stat -c %a "$BACKUP" tokend.db)" = "$(printf '600\n600')"
`
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := runBlocks(ctx, dir, docEnv(bin), []string{setup, blocks[0], between, blocks[1], check})
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	if !strings.Contains(out, "backed up "+filepath.Join(dir, "tokend.db")) || !strings.Contains(out, "restored ") {
		t.Fatalf("output:\n%s", out)
	}
	list := out[strings.LastIndex(out, "the previous database is kept"):]
	if !regexp.MustCompile(`(?m)^before\s`).MatchString(list) || regexp.MustCompile(`(?m)^after\s`).MatchString(list) {
		t.Fatalf("after the restore the client list is not the backup's (before, not after):\n%s", list)
	}
}

// The PostgreSQL blocks of the backup section run verbatim, their
// database and schema pointed at a schema of the test's own: pg_dump of
// the schema, a client made after it, pg_restore; the store then lists
// the client made before the dump only. The Redis block makes an RDB
// file, private to its owner.
func TestDocsBackupPostgresRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs the section's shell blocks")
	}
	blocks := bashBlocks(readmeSection(t, opsBackupSection))
	if len(blocks) != 3 {
		t.Fatalf("%s has %d bash blocks, want 3 (pg_dump, pg_restore, redis)", opsBackupSection, len(blocks))
	}
	bin := tokendBin.get(t)
	env := docEnv(bin)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	t.Run("postgres", func(t *testing.T) {
		q, _ := url.ParseQuery(strings.TrimPrefix(pgtest.Schema(t), "&"))
		schema := q.Get("search_path")
		db := "postgres://postgres@127.0.0.1:5432/test"
		dump := setLine(t, blocks[0], "PGDB", db)
		dump = setLine(t, dump, "SCHEMA", schema)
		store := db + "?sslmode=disable&search_path=" + schema
		setup := fmt.Sprintf("tokend client create --init --id before --grant client_credentials --quiet --store '%s' >/dev/null\n", store)
		between := fmt.Sprintf("test \"$(stat -c %%a tokend.pgdump)\" = 600\ntokend client create --id after --grant client_credentials --quiet --store '%s' >/dev/null\n", store)
		check := fmt.Sprintf("tokend client list --store '%s'\n", store)
		out, err := runBlocks(ctx, t.TempDir(), env, []string{setup, dump, between, blocks[1], check})
		if err != nil {
			t.Fatalf("%v; output:\n%s", err, out)
		}
		if !regexp.MustCompile(`(?m)^before\s`).MatchString(out) || regexp.MustCompile(`(?m)^after\s`).MatchString(out) {
			t.Fatalf("after pg_restore the client list is not the dump's (before, not after):\n%s", out)
		}
	})
	t.Run("redis", func(t *testing.T) {
		redistest.Reachable(t)
		dir := t.TempDir()
		out, err := runBlocks(ctx, dir, env, []string{setLine(t, blocks[2], "REDIS", "redis://127.0.0.1:6379/0")})
		if err != nil {
			t.Fatalf("%v; output:\n%s", err, out)
		}
		fi, err := os.Stat(filepath.Join(dir, "tokend.rdb"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("tokend.rdb: %v, %v", fi, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "tokend.rdb"))
		if err != nil || !strings.HasPrefix(string(b), "REDIS") {
			t.Fatalf("tokend.rdb is no RDB file (%v)", err)
		}
	})
}

// setLine replaces the value of the line NAME='…' of block, which must
// have one.
func setLine(t *testing.T, block, name, value string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `='[^']*'`)
	if !re.MatchString(block) {
		t.Fatalf("the block sets no %s='…':\n%s", name, block)
	}
	return re.ReplaceAllLiteralString(block, name+"='"+value+"'")
}
