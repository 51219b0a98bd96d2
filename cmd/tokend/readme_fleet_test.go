package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store/postgres/pgtest"
)

// fleetBlock returns the README's bash block of the section "Several
// instances": the three-instance setup.
func fleetBlock(t *testing.T, md string) string {
	t.Helper()
	m := regexp.MustCompile("(?ms)^## Several instances.*?^```bash\n(.*?)^```$").FindStringSubmatch(md)
	if m == nil {
		t.Fatal("the README has no bash block under \"## Several instances\"")
	}
	return m[1]
}

// The README's three-instance setup runs as shown, twice on one store, on
// PostgreSQL and on Redis (its STORE line pointed at a schema that does
// not exist yet, which tokend migrate creates, or a key prefix of the
// test's own): three instances become ready, and a refresh through the
// second retried through the third returns the same successor; the second
// run finds the first one's client and user, and the ports free again.
func TestReadmeFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs three instances")
	}
	for _, port := range []string{"8081", "8082", "8083"} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("the README's fleet needs 127.0.0.1:%s: %v", port, err)
		}
		ln.Close()
	}
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := fleetBlock(t, string(md))
	storeLine := regexp.MustCompile(`(?m)^STORE='[^']*'.*$`)
	if !storeLine.MatchString(block) {
		t.Fatalf("the fleet block sets no STORE='…':\n%s", block)
	}
	if !strings.Contains(block, "search_path=") || !strings.Contains(block, `tokend migrate --store "$STORE"`) {
		t.Fatalf("the fleet block uses no schema of its own, made by tokend migrate:\n%s", block)
	}
	bin := tokendBin.get(t)
	stores := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"postgres", func(t *testing.T) string {
			return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=" + newSchemaName(t)
		}},
		{"redis", func(t *testing.T) string { return freshRedisPrefix(t)("127.0.0.1:6379") }},
	}
	for _, fs := range stores { // one after the other: they share the ports
		t.Run(fs.name, func(t *testing.T) {
			storeURL := fs.url(t)
			script := storeLine.ReplaceAllLiteralString(block, "STORE='"+storeURL+"'")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "TOKEND_") && !strings.HasPrefix(kv, "PATH=") {
					env = append(env, kv)
				}
			}
			env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			dir := t.TempDir()
			for run := 1; run <= 2; run++ {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
				out, err := runBlocks(ctx, dir, env, []string{script})
				cancel()
				if err != nil {
					t.Fatalf("run %d: %v; output:\n%s", run, err, out)
				}
				got := regexp.MustCompile(`"refresh_token":"(rt2_[^"]+)"`).FindAllStringSubmatch(out, -1)
				if len(got) != 2 || got[0][1] != got[1][1] {
					t.Fatalf("run %d: the refresh through the second instance and its retry through the third: %d answers with a refresh token, want 2 alike; output:\n%s", run, len(got), out)
				}
			}
		})
	}
}

// newSchemaName returns the name of a PostgreSQL schema that does not
// exist, dropped (if something made it) when t ends. Without a server it
// skips t, or fails it under CI (pgtest.Schema).
func newSchemaName(t *testing.T) string {
	t.Helper()
	pgtest.Schema(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "tokend_test_new_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgtest.ServerURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	return schema
}
