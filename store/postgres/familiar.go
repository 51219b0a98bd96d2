package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
)

var _ store.FamiliarSources = (*Store)(nil)

// markFamiliarSQL upserts the mark, then deletes the account's marks
// beyond the store.FamiliarPerAccount marked last and a few ended marks
// of any account (sweepPerCount, skipping rows another transaction
// holds), so that the table stays bounded without a sweeper. The DELETE
// sees the table as it was before the upsert, hence the source <> $2.
const markFamiliarSQL = `
WITH marked AS (
	INSERT INTO familiar_sources AS f (account, source, expires_at)
	VALUES ($1, $2, now() + $3 * interval '1 microsecond')
	ON CONFLICT (account, source) DO UPDATE SET expires_at = EXCLUDED.expires_at
	RETURNING 1
), beyond AS (
	DELETE FROM familiar_sources WHERE account = $1 AND source <> $2 AND source NOT IN (
		SELECT source FROM familiar_sources WHERE account = $1 AND source <> $2
		ORDER BY expires_at DESC LIMIT $4)
), ended AS (
	DELETE FROM familiar_sources WHERE (account, source) IN (
		SELECT account, source FROM familiar_sources WHERE expires_at <= now()
		ORDER BY expires_at LIMIT $5 FOR UPDATE SKIP LOCKED)
)
SELECT count(*) FROM marked`

// MarkFamiliar implements store.FamiliarSources, in one statement.
func (s *Store) MarkFamiliar(ctx context.Context, account, source string, keep time.Duration) error {
	if err := checkFamiliarKeys(account, source); err != nil {
		return err
	}
	if keep <= 0 {
		return errors.New("postgres: mark familiar: keep not positive")
	}
	_, err := s.pool.Exec(ctx, markFamiliarSQL, []byte(account), []byte(source), max(keep.Microseconds(), 1),
		store.FamiliarPerAccount-1, sweepPerCount)
	return dbErr("mark familiar", err)
}

// Familiar implements store.FamiliarSources.
func (s *Store) Familiar(ctx context.Context, account, source string) (bool, error) {
	if err := checkFamiliarKeys(account, source); err != nil {
		return false, err
	}
	var ok bool
	err := s.pool.QueryRow(ctx, "SELECT true FROM familiar_sources WHERE account = $1 AND source = $2 AND expires_at > now()",
		[]byte(account), []byte(source)).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbErr("familiar", err)
	}
	return ok, nil
}

func checkFamiliarKeys(account, source string) error {
	if account == "" || source == "" || len(account) > 64 || len(source) > 64 {
		return errors.New("postgres: familiar sources: key empty or longer than 64 bytes")
	}
	return nil
}
