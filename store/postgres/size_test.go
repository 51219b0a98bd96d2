package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
)

// A family is one row however often it rotates: the families table
// (heap, indexes, TOAST), compacted by VACUUM FULL, is as large after one
// of its families has rotated 10,000 times as when each had rotated once,
// within a page. It logs the bytes per family.
func TestBytesPerFamilyConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 rotations")
	}
	const families, rotations = 1000, 10_000
	u := newSchema(t)
	ctx := t.Context()
	s := open(t, u)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var heap int64 // the table's own pages, without its indexes
	size := func() int64 {
		t.Helper()
		var n int64
		if _, err := conn.Exec(ctx, "VACUUM FULL families"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT pg_total_relation_size('families'), pg_relation_size('families')").Scan(&n, &heap); err != nil {
			t.Fatal(err)
		}
		return n
	}
	empty := size()
	reqs := make([]store.RotateRequest, families)
	for i := range reqs {
		now := time.Now()
		f := store.Family{ID: fmt.Sprintf("family-%04d", i), ClientID: "client", Subject: "alice", Scope: "read write",
			CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), TokenHash: newHash()}
		if err := s.CreateFamily(ctx, f); err != nil {
			t.Fatal(err)
		}
		reqs[i] = store.RotateRequest{FamilyID: f.ID, Old: f.TokenHash, Grace: 30 * time.Second}
	}
	rotate := func(i int) {
		t.Helper()
		r := &reqs[i]
		r.New, r.Now = newHash(), time.Now()
		r.IdleExpiresAt = r.Now.Add(time.Hour)
		res, err := s.Rotate(ctx, *r)
		if err != nil || res.Outcome != store.Rotated {
			t.Fatalf("rotation of %s at generation %d: %v %v", r.FamilyID, r.Generation, res.Outcome, err)
		}
		r.Generation, r.Old = res.Family.Generation, r.New
	}
	for i := range reqs {
		rotate(i)
	}
	once := size()
	onceHeap := heap
	for range rotations {
		rotate(0)
	}
	many := size()
	t.Logf("families table with %d families: %d B empty, %d B after 1 rotation each (%.1f B per family; heap alone %d B), %d B after %d more rotations of one (%+d B; heap %+d B)",
		families, empty, once, float64(once-empty)/families, onceHeap, many, rotations, many-once, heap-onceHeap)
	if d := many - once; d < -8192 || d > 8192 {
		t.Fatalf("%d rotations of one family changed the table by %d B; want the same within a page (8192 B)", rotations, d)
	}
}
