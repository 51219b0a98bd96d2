package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
)

// A version-1 database, whose tokens are rows of refresh_tokens, opens
// with the new code: each family keeps its current token's hash and its
// previous one's, with the time of the rotation between them, and
// refresh_tokens is gone.
func TestMigrateFromVersion1(t *testing.T) {
	u := newSchema(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	v1, err := os.ReadFile("migrations/1.sql")
	if err != nil {
		t.Fatal(err)
	}
	h0, h1, h2, g0 := newHash(), newHash(), newHash(), newHash()
	r1, r2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{string(v1), nil},
		{"CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO schema_migrations (version) VALUES (1)", nil},
		// f, rotated twice: generations 0 and 1 are rotated, 2 is current.
		{`INSERT INTO families (id, client_id, subject, scope, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation)
			VALUES ('f', 'c', 'alice', 'read', 0, $1, $2, $3, $4, 2)`, []any{t0, r2, r2.Add(time.Hour), t0.Add(24 * time.Hour)}},
		{`INSERT INTO refresh_tokens (hash, family_id, generation, issued_at, rotated_at, successor) VALUES
			($1, 'f', 0, $4, $5, $2), ($2, 'f', 1, $5, $6, $3), ($3, 'f', 2, $6, NULL, NULL)`, []any{h0, h1, h2, t0, r1, r2}},
		// g, never rotated.
		{`INSERT INTO families (id, client_id, subject, scope, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation)
			VALUES ('g', 'c', 'bob', 'read', 0, $1, $1, $2, $3, 0)`, []any{t0, t0.Add(time.Hour), t0.Add(24 * time.Hour)}},
		{`INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES ($1, 'g', 0, $2)`, []any{g0, t0}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	s := open(t, u)
	f, err := s.GetFamily(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if f.Generation != 2 || !bytes.Equal(f.TokenHash, h2) || !bytes.Equal(f.PreviousHash, h1) || !f.RotatedAt.Equal(r2) ||
		!f.LastUsedAt.Equal(r2) || !f.RevokedAt.IsZero() {
		t.Fatalf("family rotated twice, migrated: %+v; want generation 2, current %x, previous %x, rotated at %v", f, h2, h1, r2)
	}
	g, err := s.GetFamily(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if g.Generation != 0 || !bytes.Equal(g.TokenHash, g0) || g.PreviousHash != nil || !g.RotatedAt.IsZero() {
		t.Fatalf("family never rotated, migrated: %+v; want generation 0, current %x, no previous", g, g0)
	}
	// The records of the authorization code flow work beside the
	// migrated families, which belong to no session.
	if f.SessionID != "" || g.SessionID != "" {
		t.Fatalf("migrated families with a session: %q %q", f.SessionID, g.SessionID)
	}
	code := store.AuthorizationCode{Hash: newHash(), ClientID: "c", Subject: "alice", SessionID: "s", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	if err := s.CreateAuthorizationCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAuthorizationCode(ctx, code.Hash); err != nil || got.SessionID != "s" {
		t.Fatalf("authorization code after the migration: %+v %v", got, err)
	}
	if err := s.CreateSession(ctx, store.Session{ID: "s", Subject: "alice", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var gone bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('refresh_tokens') IS NULL").Scan(&gone); err != nil || !gone {
		t.Fatalf("refresh_tokens dropped: %v %v", gone, err)
	}
	// The current and previous tokens, which name no family, are found by
	// their hash; the older rotated one is forgotten.
	for _, want := range []struct {
		hash []byte
		id   string
		gen  int64
	}{{h2, "f", 2}, {h1, "f", 1}, {g0, "g", 0}} {
		if id, gen, err := s.LegacyToken(ctx, want.hash); err != nil || id != want.id || gen != want.gen {
			t.Fatalf("legacy token %x: %q %d %v; want %q %d", want.hash, id, gen, err, want.id, want.gen)
		}
	}
	if _, _, err := s.LegacyToken(ctx, h0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the rotated token of generation 0: %v; want store.ErrNotFound", err)
	}
	// They go with their family.
	if n, err := s.DeleteExpired(ctx, t0.Add(48*time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	if _, _, err := s.LegacyToken(ctx, h2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a legacy token of a deleted family: %v; want store.ErrNotFound", err)
	}
}

// schemaAt returns the URL of a new schema migrated to version v, and a
// connection to it, closed when t ends.
func schemaAt(t *testing.T, v int) (string, *pgx.Conn) {
	t.Helper()
	u := newSchema(t)
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	migrateTo(t, conn, v)
	return u, conn
}

// migrateTo brings the empty schema of conn to version v, as the tokend
// of that version did.
func migrateTo(t *testing.T, conn *pgx.Conn, v int) {
	t.Helper()
	ctx := t.Context()
	if _, err := conn.Exec(ctx, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= v; i++ {
		q, err := os.ReadFile(fmt.Sprintf("migrations/%d.sql", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(q)); err != nil {
			t.Fatalf("migration %d: %v", i, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
	}
}

// Families stored before families had an audience (schema version 7)
// read with none after the upgrade, rotate keeping none, and a family
// with one is stored beside them.
func TestMigrateFamilyAudience(t *testing.T) {
	ctx := t.Context()
	u, conn := schemaAt(t, 7)
	h0 := newHash()
	if _, err := conn.Exec(ctx, `INSERT INTO families (id, client_id, subject, scope, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation, token_hash, session_id)
		VALUES ('f', 'c', 'alice', 'read', 0, $1, $1, $2, $3, 0, $4, 's')`, t0, t0.Add(time.Hour), t0.Add(24*time.Hour), h0); err != nil {
		t.Fatal(err)
	}

	s := open(t, u)
	if f, err := s.GetFamily(ctx, "f"); err != nil || len(f.Audience) != 0 || f.SessionID != "s" || !bytes.Equal(f.TokenHash, h0) {
		t.Fatalf("family after the upgrade: %+v %v; want no audience", f, err)
	}
	res, err := s.Rotate(ctx, store.RotateRequest{FamilyID: "f", Old: h0, New: newHash(), Now: t0.Add(time.Minute), IdleExpiresAt: t0.Add(2 * time.Hour)})
	if err != nil || res.Outcome != store.Rotated || len(res.Family.Audience) != 0 {
		t.Fatalf("rotation after the upgrade: %v %+v %v", res.Outcome, res.Family, err)
	}
	g := store.Family{ID: "g", ClientID: "c", Subject: "alice", Audience: []string{"https://api.example"}, CreatedAt: t0, LastUsedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: newHash()}
	if err := s.CreateFamily(ctx, g); err != nil {
		t.Fatal(err)
	}
	fams, err := s.ListFamilies(ctx, store.FamilyFilter{ClientID: "c"})
	auds := map[string]string{}
	for _, f := range fams {
		auds[f.ID] = fmt.Sprint(f.Audience)
	}
	if err != nil || len(fams) != 2 || auds["f"] != "[]" || auds["g"] != "[https://api.example]" {
		t.Fatalf("families after the upgrade: %+v %v", fams, err)
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil || v != postgres.SchemaVersion {
		t.Fatalf("schema version %d after the upgrade: %v; want %d", v, err, postgres.SchemaVersion)
	}
}

// Keys stored before keys had a use (schema version 6) read as access
// keys after the upgrade, and an ID key is kept apart from them.
func TestMigrateKeyUse(t *testing.T) {
	ctx := t.Context()
	u, conn := schemaAt(t, 6)
	if _, err := conn.Exec(ctx, "INSERT INTO keys (id, algorithm, private, created_at) VALUES ('k1', 'EdDSA', '\\xaa', $1)", t0); err != nil {
		t.Fatal(err)
	}

	s := open(t, u)
	ks, err := s.ListKeys(ctx)
	if err != nil || len(ks) != 1 || ks[0].ID != "k1" || ks[0].Use != store.UseAccess {
		t.Fatalf("keys after the upgrade: %+v %v; want k1, an access key", ks, err)
	}
	k := store.Key{ID: "i1", Algorithm: "RS256", Private: []byte{0xbb}, Use: store.UseID, CreatedAt: t0}
	if got, err := s.CreateKeyIfNone(ctx, k); err != nil || got.ID != "i1" || got.Use != store.UseID {
		t.Fatalf("first ID key beside an old access key: %+v %v", got, err)
	}
}
