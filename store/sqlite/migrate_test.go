package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
	"github.com/tokend/tokend/store/storetest"
)

// v1 is a time as schema version 1 stored it: Unix microseconds.
var v1 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// createV1 creates at path a database as tokend with schema version 1 did
// (schema/1.sql, like every migration, is never edited once released),
// runs stmts in
// it, and makes its files private, as Open now asks.
func createV1(t testing.TB, path string, stmts ...string) {
	t.Helper()
	schema, err := os.ReadFile("schema/1.sql")
	must(t, err)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	must(t, err)
	defer db.Close()
	ctx := context.Background()
	for _, q := range append([]string{string(schema), "PRAGMA user_version = 1"}, stmts...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(t, db.Close())
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// rawQuery returns the rows of q in the database at path, one line per
// row, read without the store.
func rawQuery(t *testing.T, path, q string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), q)
	must(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	must(t, err)
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		must(t, rows.Scan(ptrs...))
		fmt.Fprintln(&b, vals...)
	}
	must(t, rows.Err())
	return b.String()
}

// A version 1 database with data in it is upgraded in place: the data
// survives, and what version 2 added works on it.
func TestMigrateV1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tokend.db")
	at := v1.UnixMicro()
	h0, h1 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	createV1(t, path,
		fmt.Sprintf("INSERT INTO clients VALUES ('app', x'0102', 'refresh_token password', 'read', 1, %d)", at),
		fmt.Sprintf("INSERT INTO users VALUES ('alice', '$argon2id$old', %d)", at),
		fmt.Sprintf("INSERT INTO keys (id, algorithm, private, created_at, retired_at) VALUES ('k1', 'EdDSA', x'aa', %d, %d), ('k2', 'EdDSA', x'bb', %d, NULL)", at, at+1, at+2),
		"INSERT INTO secrets VALUES ('cookie', x'cc')",
		fmt.Sprintf("INSERT INTO families VALUES ('f', 'app', 'alice', 'read', NULL, 0, %d, %d, %d, %d, 1, NULL, '')", at, at, at+3600e6, at+86400e6),
		fmt.Sprintf("INSERT INTO refresh_tokens VALUES (x'%x', 'f', 0, %d, %d, x'%x'), (x'%x', 'f', 1, %d, NULL, NULL)", h0, at, at, h1, h1, at),
	)

	s := open(t, path)
	defer s.Close()
	c, err := s.GetClient(ctx, "app")
	must(t, err)
	if !bytes.Equal(c.SecretHash, []byte{1, 2}) || fmt.Sprint(c.Grants) != "[refresh_token password]" || !c.Mint || !c.CreatedAt.Equal(v1) ||
		len(c.Origins) != 0 || c.Cookie {
		t.Fatalf("client after the upgrade: %+v", c)
	}
	u, err := s.GetUser(ctx, "alice")
	must(t, err)
	if u.PasswordHash != "$argon2id$old" {
		t.Fatalf("user after the upgrade: %+v", u)
	}
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 2 || ks[0].ID != "k1" || !ks[0].RetiredAt.Equal(v1.Add(time.Microsecond)) || !ks[0].RevokedAt.IsZero() || !bytes.Equal(ks[1].Private, []byte{0xbb}) {
		t.Fatalf("keys after the upgrade: %+v", ks)
	}
	if v, err := s.Secret(ctx, "cookie", []byte("new")); err != nil || !bytes.Equal(v, []byte{0xcc}) {
		t.Fatalf("secret after the upgrade: %x %v", v, err)
	}
	// Version 3: the family keeps its current and previous token's hashes,
	// and both tokens, which name no family, are found by their hash.
	f, err := s.GetFamily(ctx, "f")
	must(t, err)
	if !bytes.Equal(f.TokenHash, h1) || !bytes.Equal(f.PreviousHash, h0) || !f.RotatedAt.Equal(v1) || f.Generation != 1 || !f.IdleExpiresAt.Equal(v1.Add(time.Hour)) {
		t.Fatalf("family after the upgrade: %+v", f)
	}
	for gen, h := range [][]byte{h0, h1} {
		if id, g, err := s.LegacyToken(ctx, h); err != nil || id != "f" || g != int64(gen) {
			t.Fatalf("legacy token of generation %d: %q %d %v", gen, id, g, err)
		}
	}
	if _, _, err := s.LegacyToken(ctx, []byte("unknown")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown legacy token: %v", err)
	}

	// What version 5 added: the authorization code flow's fields and
	// records, beside the migrated data.
	if len(c.RedirectURIs)+len(c.PostLogoutRedirectURIs)+len(c.Resources) != 0 || c.ThirdParty || f.SessionID != "" {
		t.Fatalf("client and family after the upgrade: %+v %+v; want no code-flow fields", c, f)
	}
	must(t, s.CreateClient(ctx, store.Client{ID: "web", RedirectURIs: []string{"https://web.example/cb"}, ThirdParty: true, CreatedAt: v1}))
	if c, err := s.GetClient(ctx, "web"); err != nil || fmt.Sprint(c.RedirectURIs) != "[https://web.example/cb]" || !c.ThirdParty {
		t.Fatalf("code-flow client after the upgrade: %+v %v", c, err)
	}
	code := store.AuthorizationCode{Hash: []byte("code"), ClientID: "web", Subject: "alice", SessionID: "s", CreatedAt: v1, ExpiresAt: v1.Add(time.Minute)}
	must(t, s.CreateAuthorizationCode(ctx, code))
	must(t, s.CreateSession(ctx, store.Session{ID: "s", Subject: "alice", CreatedAt: v1, ExpiresAt: v1.Add(time.Hour)}))
	fam := store.Family{ID: "g", ClientID: "web", Subject: "alice", SessionID: "s", CreatedAt: v1, LastUsedAt: v1,
		IdleExpiresAt: v1.Add(time.Hour), ExpiresAt: v1.Add(time.Hour), TokenHash: []byte("t")}
	if _, err := s.RedeemAuthorizationCode(ctx, code.Hash, fam); err != nil {
		t.Fatalf("redemption after the upgrade: %v", err)
	}
	if fams, err := s.ListFamilies(ctx, store.FamilyFilter{SessionID: "s"}); err != nil || len(fams) != 1 || fams[0].ID != "g" {
		t.Fatalf("families of the session after the upgrade: %+v %v", fams, err)
	}
	must(t, s.PutConsent(ctx, store.Consent{Subject: "alice", ClientID: "web", Scopes: []string{"read"}, GrantedAt: v1}))

	// What version 6 added: the keys stored before sign access tokens,
	// and a key of another use is kept apart from them.
	if ks[0].Use != store.UseAccess || ks[1].Use != store.UseAccess {
		t.Fatalf("uses of the keys stored before version 6: %q, %q; want access", ks[0].Use, ks[1].Use)
	}
	if k, err := s.CreateKeyIfNone(ctx, store.Key{ID: "i1", Algorithm: "RS256", Private: []byte{0xdd}, Use: store.UseID, CreatedAt: v1}); err != nil || k.ID != "i1" {
		t.Fatalf("first ID key after the upgrade: %+v %v", k, err)
	}
	// What version 4 added.
	must(t, s.CreateClient(ctx, store.Client{ID: "spa", Origins: []string{"http://localhost:5173"}, Cookie: true, CreatedAt: v1}))
	if c, err := s.GetClient(ctx, "spa"); err != nil || fmt.Sprint(c.Origins) != "[http://localhost:5173]" || !c.Cookie {
		t.Fatalf("browser client after the upgrade: %+v %v", c, err)
	}
	// What version 2 added.
	must(t, s.RevokeKey(ctx, "k2", v1.Add(time.Minute)))
	must(t, s.RevokeAccessToken(ctx, "j", v1.Add(time.Hour)))
	if ok, err := s.AccessTokenRevoked(ctx, "j"); err != nil || !ok {
		t.Fatalf("deny-list after the upgrade: %v %v", ok, err)
	}
	must(t, s.UpdatePasswordHash(ctx, "alice", "$argon2id$old", "$argon2id$new"))
	if n, err := s.DeleteUser(ctx, "alice", v1.Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("DeleteUser after the upgrade revoked %d: %v", n, err)
	}
	if res, err := s.Rotate(ctx, store.RotateRequest{FamilyID: "f", Generation: 1, Old: h1, New: []byte("next"), Now: v1.Add(2 * time.Minute)}); !errors.Is(err, store.ErrRevoked) || res.Family.RevokeReason != store.ReasonUserDeleted {
		t.Fatalf("rotation in the deleted user's family: %+v %v", res, err)
	}
	if sess, err := s.GetSession(ctx, "s"); err != nil || !sess.EndedAt.Equal(v1.Add(time.Minute)) {
		t.Fatalf("session of the deleted user: %+v %v; want ended", sess, err)
	}
	if _, err := s.GetConsent(ctx, "alice", "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consent of the deleted user: %v; want store.ErrNotFound", err)
	}
	must(t, s.Ping(ctx))
	must(t, s.Close())
	if v := rawQuery(t, path, "PRAGMA user_version"); v != fmt.Sprintln(sqlite.SchemaVersion) {
		t.Fatalf("user_version %q after the upgrade", v)
	}
	s = open(t, path) // opens again without migrating again
	ks, err = s.ListKeys(ctx)
	must(t, err)
	if !ks[1].RevokedAt.Equal(v1.Add(time.Minute)) {
		t.Fatalf("key after reopening: %+v", ks[1])
	}
}

// Families stored by schema version 6, before families had an audience,
// read with none after the upgrade and rotate keeping none; a family with
// one is stored beside them.
func TestMigrateFamilyAudience(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	var stmts []string
	for v := 2; v <= 6; v++ {
		q, err := os.ReadFile(fmt.Sprintf("schema/%d.sql", v))
		must(t, err)
		stmts = append(stmts, string(q))
	}
	h0 := "x'0a0b'"
	stmts = append(stmts, "PRAGMA user_version = 6",
		`INSERT INTO families (id, client_id, subject, scope, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation, token_hash, session_id)
		VALUES ('f', 'c', 'alice', 'read', 0, `+fmt.Sprint(v1.UnixMicro())+`, `+fmt.Sprint(v1.UnixMicro())+`, `+
			fmt.Sprint(v1.Add(time.Hour).UnixMicro())+`, `+fmt.Sprint(v1.Add(24*time.Hour).UnixMicro())+`, 0, `+h0+`, 's')`)
	createV1(t, path, stmts...)
	s := open(t, path)
	ctx := t.Context()
	f, err := s.GetFamily(ctx, "f")
	if err != nil || len(f.Audience) != 0 || f.SessionID != "s" || !bytes.Equal(f.TokenHash, []byte{0x0a, 0x0b}) {
		t.Fatalf("family after the upgrade: %+v %v; want no audience", f, err)
	}
	res, err := s.Rotate(ctx, store.RotateRequest{FamilyID: "f", Old: f.TokenHash, New: []byte("next"), Now: v1.Add(time.Minute), IdleExpiresAt: v1.Add(2 * time.Hour)})
	if err != nil || res.Outcome != store.Rotated || len(res.Family.Audience) != 0 {
		t.Fatalf("rotation after the upgrade: %v %+v %v", res.Outcome, res.Family, err)
	}
	must(t, s.CreateFamily(ctx, store.Family{ID: "g", ClientID: "c", Subject: "alice", Audience: []string{"https://api.example"}, CreatedAt: v1,
		LastUsedAt: v1, IdleExpiresAt: v1.Add(time.Hour), ExpiresAt: v1.Add(24 * time.Hour), TokenHash: []byte("g")}))
	fams, err := s.ListFamilies(ctx, store.FamilyFilter{ClientID: "c"})
	if err != nil || len(fams) != 2 || len(fams[0].Audience) != 0 || fmt.Sprint(fams[1].Audience) != "[https://api.example]" {
		t.Fatalf("families after the upgrade: %+v %v", fams, err)
	}
	must(t, s.Close())
	if v := rawQuery(t, path, "PRAGMA user_version"); v != fmt.Sprintln(sqlite.SchemaVersion) {
		t.Fatalf("user_version %q after the upgrade", v)
	}
}

// An upgraded database has exactly the schema of a new one.
func TestMigratedSchemaIsFresh(t *testing.T) {
	dir := t.TempDir()
	fresh, old := filepath.Join(dir, "fresh.db"), filepath.Join(dir, "old.db")
	must(t, open(t, fresh).Close())
	createV1(t, old)
	must(t, open(t, old).Close())
	const q = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
	a, b := rawQuery(t, fresh, q), rawQuery(t, old, q)
	if a != b {
		t.Fatalf("schema of a new database:\n%s\nof an upgraded one:\n%s", a, b)
	}
	if !strings.Contains(a, "denied_access_tokens") {
		t.Fatalf("schema without version 2:\n%s", a)
	}
}

// Every backend contract holds on a database created by version 1.
func TestConformanceFromV1(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "t.db")
		createV1(t, path)
		return open(t, path)
	})
}

// A database of a newer schema than this tokend's is refused, untouched.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	newer := sqlite.SchemaVersion + 1
	createV1(t, path, fmt.Sprintf("PRAGMA user_version = %d", newer))
	_, err := sqlite.Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a version %d database: %v", newer, err)
	}
	if v := rawQuery(t, path, "PRAGMA user_version"); v != fmt.Sprintln(newer) {
		t.Fatalf("user_version %q after the refusal", v)
	}
}
