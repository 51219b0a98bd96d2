package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/fleettest"
)

// handles opens two Stores on a fresh schema and an Age that moves the
// shared state's times back.
func handles[T any](t *testing.T, as func(s store.Store) T) fleettest.Handles[T] {
	u := newSchema(t)
	a, b := open(t, u), open(t, u)
	return fleettest.Handles[T]{A: as(a), B: as(b), Age: func(t *testing.T, d time.Duration) {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		us := d.Microseconds()
		for _, q := range []string{
			"UPDATE failure_counts SET tat = tat - $1 * interval '1 microsecond'",
			"UPDATE leases SET expires_at = expires_at - $1 * interval '1 microsecond'",
			"UPDATE familiar_sources SET expires_at = expires_at - $1 * interval '1 microsecond'",
		} {
			if _, err := conn.Exec(t.Context(), q, us); err != nil {
				t.Fatal(err)
			}
		}
	}}
}

func TestFailureCounter(t *testing.T) {
	fleettest.RunFailureCounter(t, func(t *testing.T) fleettest.Handles[store.FailureCounter] {
		return handles(t, func(s store.Store) store.FailureCounter { return s.(store.FailureCounter) })
	})
}

func TestFamiliarSources(t *testing.T) {
	fleettest.RunFamiliarSources(t, func(t *testing.T) fleettest.Handles[store.FamiliarSources] {
		return handles(t, func(s store.Store) store.FamiliarSources { return s.(store.FamiliarSources) })
	})
}

func TestLeaser(t *testing.T) {
	fleettest.RunLeaser(t, func(t *testing.T) fleettest.Handles[store.Leaser] {
		return handles(t, func(s store.Store) store.Leaser { return s.(store.Leaser) })
	})
}

// Counting deletes the rows whose counts have ended, so the table needs
// no sweeper.
func TestFailureCountsSwept(t *testing.T) {
	u := newSchema(t)
	s := open(t, u)
	fs := []store.Failure{{Key: "a", Forget: time.Minute}, {Key: "b", Forget: time.Minute}, {Key: "c", Forget: time.Minute}}
	if _, err := s.CountFailures(t.Context(), fs); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if _, err := conn.Exec(t.Context(), "UPDATE failure_counts SET tat = now() - interval '1 second' WHERE key <> 'c'"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CountFailures(t.Context(), fs[2:]); err != nil || got[0] != 2 {
		t.Fatalf("count of c: %v, %v; want 2", got, err)
	}
	var keys []string
	rows, _ := conn.Query(t.Context(), "SELECT convert_from(key, 'UTF8') FROM failure_counts ORDER BY key")
	keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(keys) != 1 || keys[0] != "c" {
		t.Fatalf("rows left: %q, %v; want [c]", keys, err)
	}
}
