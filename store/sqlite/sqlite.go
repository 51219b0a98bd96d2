// Package sqlite is the default store.Store: one SQLite file, through the
// pure-Go modernc.org/sqlite driver (no cgo).
//
// The database runs in WAL mode with synchronous=FULL: a rotation that a
// client has been answered for survives a crash or power loss. Writes go
// through one writer goroutine that commits up to 128 of them in one
// transaction (group commit), each in its own savepoint, so a failing write
// undoes only itself; every caller is answered after the commit. Reads use a
// separate pool of connections. The log is copied into the database file by
// a background checkpoint, never inside a commit.
//
// The database holds the signing keys, so its files are its owner's alone:
// Open creates them with mode 0600 and refuses files that group or others
// may read or write (ErrPermissions).
//
// A write the database cannot take now (a full disk, an I/O error, a lock
// held too long, no memory) fails with an error wrapping
// store.ErrUnavailable, SQLite's error below it, and changes nothing; once
// the cause is gone (room on the disk again), the same Store takes writes
// again. A closed Store answers store.ErrUnavailable too.
//
// Backup copies a database, consistent, while Stores use it; Restore puts
// such a copy in place once no process has the database open, which it
// knows from a lock every Store holds shared (the file path+".lock").
//
// Every call ends when its context does: a read waiting for a lock, and a
// write waiting for the writer (which may wait up to the busy timeout, 10
// seconds, for a lock another process holds), whose caller then gets an
// error wrapping store.ErrUnavailable if the context's deadline passed
// (store.WithTimeout sets one); a write the writer has taken may still
// commit.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend/store"
)

// The schema, one file per version: schema/N.sql takes a database from
// version N-1 to N. A new database runs them all; an existing one runs
// those past its PRAGMA user_version. Published files never change.
//
//go:embed schema/*.sql
var schemaFS embed.FS

// migrations lists the schema files in order; the schema version is its
// length.
var migrations = []string{"schema/1.sql", "schema/2.sql", "schema/3.sql", "schema/4.sql", "schema/5.sql", "schema/6.sql", "schema/7.sql", "schema/8.sql"}

// maxBatch is how many writes one transaction commits at most.
const maxBatch = 128

// Store is a SQLite store.Store. Open it with Open; it is safe for
// concurrent use.
type Store struct {
	w, r   *sql.DB
	ws, rs *stmts // prepared statements of w and r
	ops    chan *op
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	// batch is the group size; 1 commits every write alone (for the
	// benchmark that measures what grouping buys).
	batch int
	// committed wakes the checkpointer (capacity 1), which closes
	// ckptDone when it ends and sends on ckptReq for the writer to finish
	// a checkpoint; checkpointed, nil outside tests, receives each
	// background checkpoint's result.
	committed       chan struct{}
	ckptReq         chan chan checkpointResult
	ckptDone        chan struct{}
	checkpointed    chan<- checkpointResult
	checkpointPause time.Duration
	// lk is the database's lock, held shared until Close (see Restore).
	lk *lockFile
}

var _ store.Store = (*Store)(nil)

// Options tunes Open. The zero value is the documented default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "FULL" (default,
	// durable) or "NORMAL" (a power loss may undo the last commits).
	Synchronous string
	// Batch bounds group commit; 1 disables it. Default 128.
	Batch int
	// RequireSchema makes Open create and migrate nothing: a missing file,
	// or one without the tokend schema, is an error wrapping
	// store.ErrNoSchema, one with an older schema an error wrapping
	// store.ErrSchemaOutdated, any other file (not an SQLite database,
	// corrupt, another program's) an error wrapping ErrNotStore. These
	// are found reading the file only: a refused file is left exactly as
	// it was, with no lock file made beside it. The admin commands open
	// stores so.
	RequireSchema bool

	// checkpointed, for tests, receives each background checkpoint's
	// result, and checkpointPause replaces the pause between two (see
	// checkpointer).
	checkpointed    chan<- checkpointResult
	checkpointPause time.Duration
}

// Open opens, creating it if needed, the SQLite database at path.
//
// A missing database is created with mode 0600, and a missing parent
// directory (the last level only) with mode 0700; SQLite gives the -wal
// and -shm files it creates the database's mode. An existing directory is
// left as it is. If the database, its -wal or its -shm file may be read or
// written by group or others, Open refuses it with an error wrapping
// ErrPermissions that names the files and the fix.
//
// A database of an older schema version is upgraded in place, in one
// transaction; one of a newer version is refused.
//
// The Store holds the database's lock (the file path+".lock", created
// 0600) shared until Close, which is how Restore knows that no process
// has the database open. While a Restore replaces the database, Open
// fails with an error wrapping ErrInUse. A path through symbolic links is
// resolved first: the lock, -wal and -shm are those of the real file,
// whichever name reaches it.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWithOptions(ctx, path, Options{})
}

// OpenWithOptions is Open with Options.
func OpenWithOptions(ctx context.Context, path string, o Options) (*Store, error) {
	sync := strings.ToUpper(o.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" {
		return nil, fmt.Errorf("sqlite: synchronous must be FULL or NORMAL, not %q", o.Synchronous)
	}
	if o.Batch <= 0 {
		o.Batch = maxBatch
	}
	path, err := resolvePath(path)
	if err != nil {
		return nil, err
	}
	if o.RequireSchema {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: %w: %s does not exist", store.ErrNoSchema, path)
		}
		if err := requireSchema(ctx, path); err != nil {
			return nil, err
		}
	}
	if err := prepareFiles(path); err != nil {
		return nil, err
	}
	lk, err := lock(path, false)
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("sqlite: open %s: a restore is replacing it; open it again once the restore is done: %w", path, err)
	}
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, path, sync, o)
	if err != nil {
		_ = lk.unlock()
		return nil, err
	}
	s.lk = lk
	return s, nil
}

// open is OpenWithOptions once the files are prepared and the lock taken.
func open(ctx context.Context, path, sync string, o Options) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(" + sync + ")", "busy_timeout(10000)", "foreign_keys(1)",
		// A log that grew under a burst is cut back when it starts again.
		"journal_size_limit(67108864)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	// The writer never checkpoints: the checkpointer does, beside it.
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	// Keep every reader open: one closed when the pool had more than
	// database/sql's default 2 idle is opened again for the next read,
	// its pragmas applied and its statements prepared again, which cost
	// more than the reads themselves under concurrent logins.
	r.SetMaxIdleConns(8)
	s := &Store{w: w, r: r, ws: &stmts{db: w}, rs: &stmts{db: r, lazy: true}, ops: make(chan *op), quit: make(chan struct{}), done: make(chan struct{}), batch: o.Batch,
		committed: make(chan struct{}, 1), ckptReq: make(chan chan checkpointResult), ckptDone: make(chan struct{}),
		checkpointed: o.checkpointed, checkpointPause: cmp.Or(o.checkpointPause, checkpointPause)}
	if err := s.migrate(ctx, o.RequireSchema); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	if err := s.ws.prepare(ctx, slices.Concat(hotWrites, codeWrites)...); err != nil {
		s.ws.close()
		w.Close()
		r.Close()
		return nil, dbErr("prepare", err)
	}
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// migrate brings the schema to the latest version in one transaction: a
// failing step leaves the database as it was. With check, it only checks
// that the schema is the latest (Options.RequireSchema).
func (s *Store) migrate(ctx context.Context, check bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("migrate", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return dbErr("migrate", err)
	}
	switch {
	case v == len(migrations):
		return nil
	case v > len(migrations):
		return fmt.Errorf("sqlite: database schema version %d is newer than this tokend (%d)", v, len(migrations))
	case check && v == 0:
		return fmt.Errorf("sqlite: %w (schema version 0)", store.ErrNoSchema)
	case check:
		return fmt.Errorf("sqlite: %w: version %d, this build's is %d", store.ErrSchemaOutdated, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		text, err := schemaFS.ReadFile(migrations[i])
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, string(text)); err != nil {
			return dbErr(fmt.Sprintf("migrate to schema version %d", i+1), err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return dbErr("migrate", err)
	}
	if err := tx.Commit(); err != nil {
		return dbErr("migrate", err)
	}
	return nil
}

// qHeartbeat is Ping's write.
const qHeartbeat = "INSERT INTO heartbeat (id, beats) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET beats = beats + 1"

// Ping implements store.Store. It commits one write through the writer,
// as every write does: it adds one to the single counter of the heartbeat
// table (one integer, updated in place), sharing a commit with whatever
// other writes are waiting. Then it checks that a read connection can be
// had. If the write does not commit, or ctx ends first, Ping returns an
// error wrapping store.ErrUnavailable. Since the heartbeat row never grows,
// Ping can pass on a disk too full for a larger write.
func (s *Store) Ping(ctx context.Context) error {
	o, err := s.enqueue(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, qHeartbeat); err != nil {
			return dbErr("ping", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: ping: %w", unavailable(err))
	}
	select {
	case err = <-o.done:
	case <-ctx.Done():
		// The heartbeat may still commit; it does not matter.
		return fmt.Errorf("sqlite: ping: %w", unavailable(ctx.Err()))
	}
	if err != nil {
		return err
	}
	if err := s.r.PingContext(ctx); err != nil {
		return s.readErr("ping", err)
	}
	return nil
}

// Close stops the writer, once the writes it has taken are committed, and
// closes the database. Calls after Close fail with an error wrapping
// store.ErrUnavailable; a second Close returns nil.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		<-s.done
		<-s.ckptDone
		s.ws.close()
		s.rs.close()
		err = errors.Join(s.w.Close(), s.r.Close(), s.lk.unlock())
	})
	return err
}

// Times are stored as Unix microseconds, the zero time as NULL.
func tin(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func tout(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64)
}
