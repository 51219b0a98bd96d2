package main

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis/redistest"
)

// adminReads are admin commands that find a store without a schema: each
// must refuse it, create nothing and say to run tokend migrate.
var adminReads = [][]string{
	{"client", "list"}, {"user", "list"}, {"keys", "list"}, {"secrets", "list"},
	{"families", "list", "--subject", "alice"}, {"sessions", "list", "--json"}, {"client", "delete", "app"}, {"encryption", "status"},
	{"keys", "rotate"}, {"client", "create", "--id", "app", "--quiet"},
}

// refusesNoSchema runs every command of adminReads on storeURL and checks
// each one fails, saying that the store has no schema and how to make one.
func refusesNoSchema(t *testing.T, storeURL string) {
	t.Helper()
	for _, args := range adminReads {
		code, out, errOut := runCmd(t, "", append(args, "--store", storeURL)...)
		if code != 1 || out != "" || !strings.Contains(errOut, "no tokend schema in ") || !strings.Contains(errOut, "run `tokend migrate --store ") {
			t.Errorf("%v on a store without a schema: exit %d\nstdout %s\nstderr %s", args, code, out, errOut)
		}
	}
}

// On an empty PostgreSQL schema, the admin commands create nothing; tokend
// migrate creates the tables, and then they work.
func TestAdminNoSchemaPostgres(t *testing.T) {
	u := pgtest.ServerURL + pgtest.Schema(t)
	schema, _ := url.QueryUnescape(u[strings.Index(u, "search_path=")+len("search_path="):])
	refusesNoSchema(t, u)
	if n := pgTables(t, schema); n != 0 {
		t.Fatalf("the admin commands created %d tables in %s", n, schema)
	}
	if code, _, errOut := runCmd(t, "", "migrate", "--store", u); code != 0 {
		t.Fatalf("migrate: %s", errOut)
	}
	if n := pgTables(t, schema); n == 0 {
		t.Fatal("migrate created no table")
	}
	if code, _, errOut := runCmd(t, "", "client", "list", "--store", u); code != 0 {
		t.Fatalf("client list after migrate: %s", errOut)
	}
}

// A schema named by search_path that does not exist is not created by the
// admin commands, and is by tokend migrate.
func TestAdminNoSchemaPostgresSearchPath(t *testing.T) {
	schema := newSchemaName(t)
	u := pgtest.ServerURL + "&search_path=" + schema
	refusesNoSchema(t, u)
	if pgSchemaExists(t, schema) {
		t.Fatalf("the admin commands created schema %s", schema)
	}
	if code, _, errOut := runCmd(t, "", "migrate", "--store", u); code != 0 {
		t.Fatalf("migrate: %s", errOut)
	}
	if n := pgTables(t, schema); n == 0 {
		t.Fatalf("migrate created no table in %s", schema)
	}
	if code, out, errOut := runCmd(t, "", "families", "list", "--json", "--store", u); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("client list after migrate: %d %s %s", code, out, errOut)
	}
}

func pgConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgtest.ServerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func pgTables(t *testing.T, schema string) int {
	t.Helper()
	var n int
	if err := pgConn(t).QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgSchemaExists(t *testing.T, schema string) bool {
	t.Helper()
	var ok bool
	if err := pgConn(t).QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A missing SQLite file is not created; an empty one is not given a
// schema; one of an older schema is not migrated: tokend migrate is.
func TestAdminNoSchemaSQLite(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "sub", "missing.db")
	for _, args := range adminReads {
		code, _, errOut := runCmd(t, "", append(args, "--store", "sqlite://"+missing)...)
		if code != 1 || !strings.Contains(errOut, "no store at ") {
			t.Errorf("%v on a missing file: exit %d %s", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Fatalf("the admin commands created %s: %v", filepath.Dir(missing), err)
	}

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	refusesNoSchema(t, "sqlite://"+empty)
	db, err := sql.Open("sqlite", "file:"+empty+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the admin commands created %d tables in an empty file: %v", tables, err)
	}
	db.Close()

	// An older schema: the version says so.
	old := filepath.Join(dir, "old.db")
	if code, _, errOut := runCmd(t, "", "migrate", "--init", "--store", "sqlite://"+old); code != 0 {
		t.Fatalf("migrate --init: %s", errOut)
	}
	db, err = sql.Open("sqlite", "file:"+old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 2"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errOut := runCmd(t, "", "client", "list", "--store", "sqlite://"+old)
	if code != 1 || !strings.Contains(errOut, "is older than this tokend's: run `tokend migrate --store sqlite://"+old+"`") {
		t.Errorf("client list on an older schema: exit %d %s", code, errOut)
	}
}

// A Redis prefix without the schema key stays empty; tokend migrate writes
// the key, and then the commands work.
func TestAdminNoSchemaRedis(t *testing.T) {
	prefix := redistest.Prefix(t)
	u := redistest.ServerURL + "?prefix=" + url.QueryEscape(prefix)
	refusesNoSchema(t, u)
	opts, _ := goredis.ParseURL(redistest.ServerURL)
	c := goredis.NewClient(opts)
	defer c.Close()
	keys, err := c.Keys(t.Context(), prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("the admin commands wrote %v (%v)", keys, err)
	}
	if code, _, errOut := runCmd(t, "", "migrate", "--store", u); code != 0 {
		t.Fatalf("migrate: %s", errOut)
	}
	if code, out, errOut := runCmd(t, "", "families", "list", "--json", "--store", u); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("client list after migrate: %d %s %s", code, out, errOut)
	}
}

// A file that is no tokend store (another program's SQLite database, a
// corrupt one, text) is refused by every admin command, which says so and
// neither offers tokend migrate nor speaks of migrating; the file is left
// byte for byte as it was, and no lock file is made beside it.
func TestAdminNotStoreSQLite(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "f.db")
	db, err := sql.Open("sqlite", "file:"+foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	good := filepath.Join(dir, "good.db")
	if code, _, errOut := runCmd(t, "", "migrate", "--init", "--store", "sqlite://"+good); code != 0 {
		t.Fatalf("migrate --init: %s", errOut)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := 100; i < len(b); i++ { // all but the file header
		b[i] ^= 0x5a
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(text, []byte("these are not the bytes of a database"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, f := range []string{foreign, corrupt, text} {
		was, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range adminReads {
			code, out, errOut := runCmd(t, "", append(args, "--store", "sqlite://"+f)...)
			if code != 1 || out != "" || !strings.Contains(errOut, "not a tokend store") || strings.Contains(errOut, "migrate") {
				t.Errorf("%v on %s: exit %d\nstdout %s\nstderr %s", args, filepath.Base(f), code, out, errOut)
			}
		}
		if got, err := os.ReadFile(f); err != nil || string(got) != string(was) {
			t.Errorf("the refused commands changed %s: %v", filepath.Base(f), err)
		}
		for _, suffix := range []string{".lock", "-wal", "-shm", "-journal"} {
			if _, err := os.Stat(f + suffix); !os.IsNotExist(err) {
				t.Errorf("the refused commands made %s%s: %v", filepath.Base(f), suffix, err)
			}
		}
	}
}
