package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/tokend/tokend/store"
)

// wantCode checks that err wraps store.ErrUnavailable and, below it, the
// SQLite error with primary result code code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want one wrapping store.ErrUnavailable", err)
	}
	var e *sqlite3.Error
	if !errors.As(err, &e) || e.Code()&0xff != code {
		t.Fatalf("err = %v, want SQLite's result code %d in its chain", err, code)
	}
}

// bigFamily is a family whose claims need pages of their own.
func bigFamily(id string) store.Family {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return store.Family{ID: id, ClientID: "c", Subject: "s", Claims: bytes.Repeat([]byte("x"), 64<<10),
		CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour),
		TokenHash: bytes.Repeat([]byte{id[0]}, 32)}
}

// Room on the "disk": max_page_count caps the database at its size then.
const (
	full = "max_page_count = 1"
	room = "max_page_count = 1073741823"
)

// A full disk fails a write with store.ErrUnavailable, SQLITE_FULL in its
// chain, and writes nothing of it; once there is room again, the same
// write goes through on the same Store.
func TestDiskFull(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	must(t, s.CreateUser(ctx, store.User{Name: "before", PasswordHash: "h"}))
	must(t, s.WriterPragma(ctx, full))
	f := bigFamily("f")
	wantCode(t, s.CreateFamily(ctx, f), sqlite3lib.SQLITE_FULL)
	if _, err := s.GetFamily(ctx, "f"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the failed write left a family behind: %v", err)
	}

	must(t, s.WriterPragma(ctx, room))
	must(t, s.CreateFamily(ctx, f))
	got, err := s.GetFamily(ctx, "f")
	must(t, err)
	if len(got.Claims) != len(f.Claims) {
		t.Fatalf("claims of %d bytes after recovery, want %d", len(got.Claims), len(f.Claims))
	}
	if _, err := s.GetUser(ctx, "before"); err != nil {
		t.Fatalf("the user written before the disk filled: %v", err)
	}
}

// RewriteSecrets whose results do not fit changes nothing.
func TestRewriteSecretsDiskFull(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	must(t, s.CreateKey(ctx, store.Key{ID: "k", Algorithm: "EdDSA", Private: []byte("private")}))
	_, err := s.Secret(ctx, "s", []byte("secret"))
	must(t, err)
	grow := func(_, _ string, v []byte) ([]byte, error) { return bytes.Repeat(v, 10000), nil }

	must(t, s.WriterPragma(ctx, full))
	wantCode(t, s.RewriteSecrets(ctx, grow), sqlite3lib.SQLITE_FULL)
	ks, err := s.ListKeys(ctx)
	must(t, err)
	v, err := s.Secret(ctx, "s", nil)
	must(t, err)
	if string(ks[0].Private) != "private" || string(v) != "secret" {
		t.Fatalf("a failed rewrite left key %.20q and secret %.20q", ks[0].Private, v)
	}

	must(t, s.WriterPragma(ctx, room))
	must(t, s.RewriteSecrets(ctx, grow))
	ks, err = s.ListKeys(ctx)
	must(t, err)
	if len(ks[0].Private) != 70000 {
		t.Fatalf("key of %d bytes after the rewrite, want 70000", len(ks[0].Private))
	}
}

// When one write of a batch meets a full disk, the whole batch is rolled
// back and every write in it answered store.ErrUnavailable: none was
// committed, including those that ran before it.
func TestBatchAbortedByFullDisk(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	must(t, s.WriterPragma(ctx, full))
	errs := s.CommitBatch(
		"INSERT INTO users (name, password_hash) VALUES ('a', 'h')",
		"INSERT INTO secrets (name, value) VALUES ('big', zeroblob(1000000))",
		"INSERT INTO users (name, password_hash) VALUES ('b', 'h')",
	)
	for i, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("write %d of the batch: %v, want store.ErrUnavailable", i, err)
		}
	}
	wantCode(t, errs[1], sqlite3lib.SQLITE_FULL)
	for _, name := range []string{"a", "b"} {
		if _, err := s.GetUser(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("user %s of the aborted batch: %v", name, err)
		}
	}
	must(t, s.WriterPragma(ctx, room))
	must(t, s.CreateUser(ctx, store.User{Name: "a", PasswordHash: "h"}))
}

// A write's own failure undoes that write only, even its statements that
// had succeeded; the batch commits the others.
func TestBatchOwnFailureUndoesOnlyItself(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	errs := s.CommitBatch(
		"INSERT INTO users (name, password_hash) VALUES ('c', 'h')",
		"INSERT INTO users (name, password_hash) VALUES ('e', 'h'); INSERT INTO users (name, password_hash) VALUES ('c', 'h')",
		"INSERT INTO users (name, password_hash) VALUES ('d', 'h')",
	)
	if errs[0] != nil || errs[1] == nil || errors.Is(errs[1], store.ErrUnavailable) || errs[2] != nil {
		t.Fatalf("batch errors %v; want nil, a constraint error, nil", errs)
	}
	users, err := s.ListUsers(ctx)
	must(t, err)
	if len(users) != 2 || users[0].Name != "c" || users[1].Name != "d" {
		t.Fatalf("users %+v, want c and d", users)
	}
}

// A database that refuses writes (here PRAGMA query_only, which fails them
// with SQLITE_READONLY) fails Ping and writes with store.ErrUnavailable
// while reads go on; both recover when it takes writes again.
func TestReadOnly(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	must(t, s.Ping(ctx))
	must(t, s.CreateUser(ctx, store.User{Name: "a", PasswordHash: "h"}))
	must(t, s.WriterPragma(ctx, "query_only = 1"))
	wantCode(t, s.Ping(ctx), sqlite3lib.SQLITE_READONLY)
	wantCode(t, s.CreateUser(ctx, store.User{Name: "b", PasswordHash: "h"}), sqlite3lib.SQLITE_READONLY)
	_, err := s.DeleteUser(ctx, "a", time.Now())
	wantCode(t, err, sqlite3lib.SQLITE_READONLY)
	if _, err := s.GetUser(ctx, "a"); err != nil {
		t.Fatalf("read of a read-only store: %v", err)
	}
	must(t, s.WriterPragma(ctx, "query_only = 0"))
	must(t, s.Ping(ctx))
	must(t, s.CreateUser(ctx, store.User{Name: "b", PasswordHash: "h"}))
}

// Ping commits one heartbeat: the counter in the heartbeat table goes up
// by one per Ping.
func TestPingWritesHeartbeat(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "t.db")
	s := open(t, path)
	defer s.Close()
	for range 3 {
		must(t, s.Ping(ctx))
	}
	db, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	defer db.Close()
	var beats int
	must(t, db.QueryRowContext(ctx, "SELECT beats FROM heartbeat WHERE id = 1").Scan(&beats))
	if beats != 3 {
		t.Fatalf("heartbeat %d after 3 pings", beats)
	}
}

// A closed store answers every call with store.ErrUnavailable.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	must(t, s.CreateUser(ctx, store.User{Name: "a", PasswordHash: "h"}))
	must(t, s.Close())
	calls := map[string]error{
		"Ping":       s.Ping(ctx),
		"CreateUser": s.CreateUser(ctx, store.User{Name: "b", PasswordHash: "h"}),
	}
	_, calls["GetUser"] = s.GetUser(ctx, "a")
	_, calls["ListUsers"] = s.ListUsers(ctx)
	_, calls["GetFamily"] = s.GetFamily(ctx, "f")
	_, calls["AccessTokenRevoked"] = s.AccessTokenRevoked(ctx, "j")
	_, calls["Rotate"] = s.Rotate(ctx, store.RotateRequest{FamilyID: "f", Old: []byte("h"), New: []byte("i")})
	for name, err := range calls {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close: %v, want store.ErrUnavailable", name, err)
		}
	}
}
