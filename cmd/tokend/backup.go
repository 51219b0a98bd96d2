package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/store/sqlite"
)

// newBackupCmd is `tokend backup FILE`: a consistent copy of the SQLite
// store, taken while the server serves it (sqlite.Backup).
func newBackupCmd(cio *cmdIO) *cobra.Command {
	c := &cobra.Command{
		Use:   "backup FILE",
		Short: "copy the SQLite store to FILE (mode 0600), consistent, while the server serves it",
		Long: `Copy the SQLite store to FILE: one consistent snapshot (SQLite's VACUUM
INTO), taken while tokend serve goes on serving, in one file with no -wal
beside it. FILE holds the signing keys and the server secret (sealed if
the store is), so it is mode 0600 from its first byte. An existing FILE
is refused unless --force; a directory, the store itself and its own
-wal, -shm, -journal and .lock files (by any name) always are.

PostgreSQL and Redis stores are backed up with their own tools (pg_dump;
BGSAVE and the RDB file): see the README's "Back up and restore".`,
		Example: `  tokend backup /var/backups/tokend-$(date +%F).db --store sqlite:///var/lib/tokend/tokend.db`,
		Args:    exactArgs(1, "the backup file to write"),
	}
	force := c.Flags().Bool("force", false, "replace FILE if it exists")
	sf := addStoreURLFlag(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		path, err := sqliteStorePath(sf, "backup", cio.stderr)
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w at %s (from %s): nothing to back up; point --store or TOKEND_STORE at the server's file", errNoStore, path, sf.from())
		}
		sum, err := sqlite.Backup(cmd.Context(), path, args[0], *force)
		if errors.Is(err, fs.ErrExist) && !*force {
			return fmt.Errorf("%s exists: name another file, or add --force to replace it", args[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cio.stdout, "backed up %s to %s (mode 0600, %d bytes, schema version %d): %s\n",
			path, sum.Path, sum.Size, sum.SchemaVersion, counts(sum))
		return nil
	}
	return c
}

// newRestoreCmd is `tokend restore FILE`: put a backup in place of the
// SQLite store (sqlite.Restore).
func newRestoreCmd(cio *cmdIO) *cobra.Command {
	c := &cobra.Command{
		Use:   "restore FILE",
		Short: "put the backup FILE in place of the SQLite store (the server must be stopped)",
		Long: `Put the backup FILE (made by tokend backup) in place of the SQLite store.

It checks FILE first (a tokend SQLite database of a schema version this
tokend opens, passing SQLite's integrity check) and refuses while any
tokend process has the store open (tokend serve, an admin command, a
backup): stop the server first. The database it replaces is kept beside
it as NAME.before-restore-TIME (UTC), with its -wal if it had one; the
store's own -wal and -shm are removed, so that no log of the previous
database is replayed over the backup. The restored file is mode 0600.

Logins issued or rotated after the backup was taken are unknown to the
restored store, and revocations made since are undone: see the README's
"Back up and restore".`,
		Example: `  systemctl stop tokend
  tokend restore /var/backups/tokend-2026-12-01.db --store sqlite:///var/lib/tokend/tokend.db
  systemctl start tokend`,
		Args: exactArgs(1, "the backup file to restore"),
	}
	sf := addStoreURLFlag(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		path, err := sqliteStorePath(sf, "restore", cio.stderr)
		if err != nil {
			return err
		}
		r, err := sqlite.Restore(cmd.Context(), args[0], path, time.Now())
		if errors.Is(err, sqlite.ErrInUse) || errors.Is(err, sqlite.ErrInvalidBackup) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		if err != nil {
			return err
		}
		if fi, err := os.Stat(args[0]); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(cio.stderr, "tokend: warning: %s has mode %04o: it holds the signing keys; chmod 600 it\n", args[0], fi.Mode().Perm())
		}
		src, _ := filepath.Abs(args[0])
		fmt.Fprintf(cio.stdout, "restored %s to %s (mode 0600, schema version %d): %s\n", src, r.Path, r.SchemaVersion, counts(r.Summary))
		switch {
		case r.Previous == "":
			fmt.Fprintln(cio.stdout, "there was no database before")
		case r.PreviousWAL:
			fmt.Fprintf(cio.stdout, "the previous database is kept as %s, with its log as %s-wal\n", r.Previous, r.Previous)
		default:
			fmt.Fprintf(cio.stdout, "the previous database is kept as %s\n", r.Previous)
		}
		return nil
	}
	return c
}

// counts says how many clients, users and families a summary counts.
func counts(s sqlite.Summary) string {
	return fmt.Sprintf("clients %d, users %d, families %d", s.Clients, s.Users, s.Families)
}

// sqliteStorePath is the file of the SQLite store sf names, after saying
// on stderr which store it is; for any other store, an error that says
// how that one is backed up (verb: "backup" or "restore").
func sqliteStorePath(sf *storeFlags, verb string, stderr io.Writer) (string, error) {
	u, err := parseStoreURL(sf.url)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "tokend: store %s\n", u)
	switch u.scheme {
	case "memory":
		return "", fmt.Errorf("--store memory: (from %s) lives inside one process: there is no file to %s; point --store or TOKEND_STORE at the server's SQLite file", sf.from(), verb)
	case "postgres":
		return "", fmt.Errorf("tokend %s works on a SQLite store only, and the store (from %s) is PostgreSQL: use its own tools, pg_dump and pg_restore of tokend's schema (see the README's \"Back up and restore\")", verb, sf.from())
	case "redis":
		return "", fmt.Errorf("tokend %s works on a SQLite store only, and the store (from %s) is Redis: use its own persistence, BGSAVE and a copy of the RDB file, or the AOF (see the README's \"Back up and restore\")", verb, sf.from())
	}
	abs, err := filepath.Abs(u.path)
	if err != nil {
		return "", err
	}
	return abs, nil
}
