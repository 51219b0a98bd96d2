package sqlite_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// A family takes the same room however often it rotates: 1,000 families
// rotated once each set the bytes per family; then one of them rotates
// 5,000 times more, and the vacuumed file may grow by at most 64 KiB (it
// grew 179 B per rotation, 875 KiB here, when rotated tokens were kept).
func TestStoragePerFamily(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "t.db")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(s string) []byte { b := sha256.Sum256([]byte(s)); return b[:] }
	size := func() int64 {
		t.Helper()
		rawQuery(t, path, "VACUUM")
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size()
	}
	withStore := func(fn func(s *sqlite.Store)) {
		t.Helper()
		s, err := sqlite.OpenWithOptions(ctx, path, sqlite.Options{Synchronous: "NORMAL"})
		must(t, err)
		fn(s)
		must(t, s.Close())
	}
	rotate := func(s *sqlite.Store, id string, gen int64) {
		t.Helper()
		res, err := s.Rotate(ctx, store.RotateRequest{FamilyID: id, Generation: gen, Old: h(fmt.Sprint(id, gen)), New: h(fmt.Sprint(id, gen+1)),
			Now: now, IdleExpiresAt: now.Add(time.Hour)})
		if err != nil || res.Outcome != store.Rotated {
			t.Fatalf("rotation %d of %s: %v %v", gen, id, res.Outcome, err)
		}
	}
	const families, rotations = 1000, 5000
	withStore(func(*sqlite.Store) {})
	empty := size()
	withStore(func(s *sqlite.Store) {
		for i := range families {
			id := fmt.Sprintf("%022d", i) // as long as a real family ID
			must(t, s.CreateFamily(ctx, store.Family{ID: id, ClientID: "app", Subject: "alice", Scope: "read",
				CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), TokenHash: h(id + "0")}))
			rotate(s, id, 0)
		}
	})
	once := size()
	withStore(func(s *sqlite.Store) {
		id := fmt.Sprintf("%022d", 0)
		for gen := int64(1); gen <= rotations; gen++ {
			rotate(s, id, gen)
		}
	})
	after := size()
	t.Logf("%d B per family rotated once; one family rotated %d times more: file %d → %d B (%+d B)",
		(once-empty)/families, rotations, once, after, after-once)
	if after-once > 64<<10 {
		t.Fatalf("the file grew by %d B over %d rotations of one family, want at most 64 KiB", after-once, rotations)
	}
}
