package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
)

// The state the instances of a fleet share (migration 2): the throttle's
// failure counts and the leases. Every time is the database's now().

var (
	_ store.FailureCounter = (*Store)(nil)
	_ store.Leaser         = (*Store)(nil)
)

// sweepPerCount is how many ended failure counts each CountFailures
// deletes besides counting: a table that only counting writes stays
// bounded by the keys that failed within about a window, without a
// sweeper.
const sweepPerCount = 16

// countFailuresSQL upserts every key's leaky bucket in one statement, in
// key order (so that concurrent counts lock rows in one order and never
// deadlock each other), and returns each key's count. It also deletes a
// few ended rows, skipping those another transaction holds.
const countFailuresSQL = `
WITH swept AS (
	DELETE FROM failure_counts WHERE key IN (
		SELECT key FROM failure_counts WHERE tat < now() AND NOT key = ANY($1::bytea[])
		ORDER BY tat LIMIT $3 FOR UPDATE SKIP LOCKED)
), counted AS (
	INSERT INTO failure_counts AS f (key, tat, forget)
	SELECT k, now() + e * interval '1 microsecond', e FROM unnest($1::bytea[], $2::bigint[]) AS u(k, e) ORDER BY k
	ON CONFLICT (key) DO UPDATE
	SET tat = GREATEST(f.tat, now()) + EXCLUDED.forget * interval '1 microsecond', forget = EXCLUDED.forget
	RETURNING f.key, (round(extract(epoch FROM f.tat - now()) * 1000000))::bigint AS ahead, f.forget
)
SELECT key, (ahead + forget - 1) / forget FROM counted`

// CountFailures implements store.FailureCounter, in one statement.
func (s *Store) CountFailures(ctx context.Context, fs []store.Failure) ([]int64, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	keys := make([][]byte, len(fs))
	forget := make([]int64, len(fs))
	at := make(map[string]int, len(fs))
	for i, f := range fs {
		if f.Key == "" || len(f.Key) > 64 || f.Forget <= 0 {
			return nil, errors.New("postgres: count failures: key empty or longer than 64 bytes, or Forget not positive")
		}
		if _, dup := at[f.Key]; dup {
			return nil, errors.New("postgres: count failures: a key appears twice")
		}
		at[f.Key] = i
		keys[i] = []byte(f.Key)
		forget[i] = max(f.Forget.Microseconds(), 1)
	}
	rows, err := s.pool.Query(ctx, countFailuresSQL, keys, forget, sweepPerCount)
	if err != nil {
		return nil, dbErr("count failures", err)
	}
	defer rows.Close()
	out := make([]int64, len(fs))
	n := 0
	for rows.Next() {
		var key []byte
		var count int64
		if err := rows.Scan(&key, &count); err != nil {
			return nil, dbErr("count failures", err)
		}
		i, ok := at[string(key)]
		if !ok {
			return nil, errors.New("postgres: count failures: the database returned a key it was not given")
		}
		out[i] = count
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("count failures", err)
	}
	if n != len(fs) {
		return nil, fmt.Errorf("postgres: count failures: %d counts for %d keys", n, len(fs))
	}
	return out, nil
}

// leaseSQL takes or renews a lease: the row is written only if it is
// new, already the holder's, or expired, and returned only if written.
const leaseSQL = `
INSERT INTO leases AS l (name, holder, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
RETURNING true`

// Lease implements store.Leaser, in one statement.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("postgres: lease: ttl not positive")
	}
	var held bool
	err := s.pool.QueryRow(ctx, leaseSQL, name, holder, max(ttl.Milliseconds(), 1)).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbErr("lease", err)
	}
	return held, nil
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)
	return dbErr("release lease", err)
}
