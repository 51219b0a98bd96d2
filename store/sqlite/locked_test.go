package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storetest"
)

// Another process holds the database's write lock (a backup, the sqlite3
// shell, a stuck admin command) for longer than the busy timeout: under a
// store deadline of 200ms every write, the rotation, the revocations and
// Ping fail with store.ErrUnavailable within it, while reads go on (WAL).
// Once the lock is released, the same Store writes again, the writes
// that waited included.
func TestLockedDeadline(t *testing.T) {
	const d = 200 * time.Millisecond
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "t.db")
	raw := open(t, path)
	s := store.WithTimeout(raw, d)
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	must(t, s.CreateClient(ctx, store.Client{ID: "c", CreatedAt: t0}))
	fam := store.Family{ID: "f", ClientID: "c", Subject: "alice", CreatedAt: t0, LastUsedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: []byte("h0")}
	must(t, s.CreateFamily(ctx, fam))

	other, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	defer other.Close()
	lock, err := other.Conn(ctx)
	must(t, err)
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	rotate := store.RotateRequest{FamilyID: "f", Old: []byte("h0"), New: []byte("h1"), Now: t0, Grace: time.Minute, IdleExpiresAt: t0.Add(time.Hour)}
	writes := map[string]func(ctx context.Context) error{
		"CreateUser": func(ctx context.Context) error { return s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "h"}) },
		"CreateFamily": func(ctx context.Context) error {
			g := fam
			g.ID, g.TokenHash = "g", []byte("g0")
			return s.CreateFamily(ctx, g)
		},
		"Rotate": func(ctx context.Context) error { _, err := s.Rotate(ctx, rotate); return err },
		"RevokeFamilies": func(ctx context.Context) error {
			_, err := s.RevokeFamilies(ctx, store.FamilyFilter{Subject: "nobody"}, t0, "admin")
			return err
		},
		"RevokeAccessToken": func(ctx context.Context) error { return s.RevokeAccessToken(ctx, "jti", t0.Add(time.Hour)) },
		"DeleteExpired":     func(ctx context.Context) error { _, err := s.DeleteExpired(ctx, t0); return err },
		"Ping":              s.Ping,
	}
	limit := d + storetest.DeadlineSlack
	for name, write := range writes {
		start := time.Now()
		err := write(ctx)
		if took := time.Since(start); !errors.Is(err, store.ErrUnavailable) || took > limit {
			t.Errorf("%s while another process holds the lock: %v after %v; want store.ErrUnavailable within %v", name, err, took, limit)
		}
	}
	if _, err := s.GetFamily(ctx, "f"); err != nil {
		t.Errorf("a read while another process holds the write lock: %v", err)
	}

	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	for name, write := range writes {
		if name == "Rotate" {
			continue // it may have gone through late; checked below
		}
		if err := write(ctx); err != nil && !errors.Is(err, store.ErrExists) {
			t.Errorf("%s after the lock is released: %v", name, err)
		}
	}
	res, err := s.Rotate(ctx, rotate)
	if err != nil || (res.Outcome != store.Rotated && res.Outcome != store.Repeated) || res.Family.Generation != 1 {
		t.Errorf("the rotation retried after the lock is released: %v generation %d %v; want generation 1", res.Outcome, res.Family.Generation, err)
	}
}
