// Package storecopy moves every record of one store to another, as it is
// stored, and compares two stores record by record: what `tokend copy`
// does to move between SQLite, PostgreSQL and Redis without logging anyone
// out.
//
// It works on the backends themselves, never through the sealed wrapper:
// signing keys and server secrets are copied as the bytes the source
// holds, sealed or not, and are never unsealed. A family keeps its
// generation, current and previous token hashes and every time, so that a
// refresh token issued on the source rotates on the target, and an older
// generation presented again is still detected as reuse (store.Decide).
//
// Copy never overwrites: a record of the target with the key of a source
// record but other content is a conflict, and a live record the source
// lacks makes the target another store's (a server ran on it, it holds
// its own keys or logins); either way Copy writes nothing at all. Records
// already present and identical are left as they are, so running Copy
// again changes nothing.
package storecopy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/store"
)

// ErrConflict reports records of the target that have the key of a source
// record but other content (Copy), or records that differ between the two
// stores (Check).
var ErrConflict = errors.New("storecopy: the stores differ")

// ErrNoImporter reports a store without store.Importer.
var ErrNoImporter = errors.New("storecopy: the store cannot list or import every record (no store.Importer)")

// The kinds of record, in the order Copy writes them.
const (
	KindSecrets  = "secrets"
	KindKeys     = "keys"
	KindClients  = "clients"
	KindUsers    = "users"
	KindSessions = "sessions"
	KindConsents = "consents"
	KindFamilies = "families"
	KindDenied   = "revoked access tokens"
)

// Count is what Copy or Check found of one kind of record. Records that
// DeleteExpired at the time of the run would delete (ended or revoked
// families, ended sessions, expired deny-list entries) are neither copied
// nor compared: they count in Skipped (source) only.
type Count struct {
	Kind string
	// Copied: absent from the target, written (Copy) or to be written
	// (Check, which writes nothing).
	Copied int
	// Present: in both stores, identical.
	Present int
	// Conflicting: in both stores, with other content.
	Conflicting int
	// Extra: live in the target only.
	Extra int
	// Skipped: ended in the source, not copied.
	Skipped int
}

// Differs reports whether c shows a difference between the stores: a
// record to copy, a conflict, or one in the target only.
func (c Count) Differs() bool { return c.Copied+c.Conflicting+c.Extra > 0 }

// Options tunes Copy and Check. The zero value is ready to use.
type Options struct {
	// Now is the clock that decides which records have ended; nil:
	// time.Now.
	Now func() time.Time
}

// Copy writes every live record of from that to lacks into to, and
// returns a Count per kind, in the order of the Kind constants. It first
// compares the two stores; if any record conflicts, or the target holds a
// live record the source lacks, it writes nothing and returns the counts
// with an error wrapping ErrConflict. Each store may be
// a wrapper (store.WithTimeout, sealed.Wrap): Copy reads and writes the
// backend under it, the first store of the chain (store.Unwrap) that is
// itself a store.Importer, so that sealed values are copied as they are
// stored and never opened, and ctx alone bounds the calls. Without such a
// backend it returns an error wrapping ErrNoImporter. A failed write
// leaves what was written before it, which the counts returned with the
// error say: run Copy again, which copies the rest.
func Copy(ctx context.Context, from, to store.Store, opts *Options) ([]Count, error) {
	return run(ctx, from, to, opts, true)
}

// Check compares from and to record by record without writing, and
// returns a Count per kind; the error wraps ErrConflict if any count
// Differs.
func Check(ctx context.Context, from, to store.Store, opts *Options) ([]Count, error) {
	return run(ctx, from, to, opts, false)
}

func run(ctx context.Context, from, to store.Store, opts *Options, write bool) ([]Count, error) {
	now := time.Now
	if opts != nil && opts.Now != nil {
		now = opts.Now
	}
	from, src, ok := backend(from)
	if !ok {
		return nil, fmt.Errorf("source: %w", ErrNoImporter)
	}
	to, dst, ok := backend(to)
	if !ok {
		return nil, fmt.Errorf("target: %w", ErrNoImporter)
	}
	at := now()
	kinds := kinds(from, to, src, dst, at)
	counts := make([]Count, len(kinds))
	writes := make([]func(context.Context) (int, error), len(kinds))
	for i, k := range kinds {
		c, w, err := k(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Kind, err)
		}
		counts[i], writes[i] = c, w
	}
	conflicts, extra := 0, 0
	for _, c := range counts {
		conflicts, extra = conflicts+c.Conflicting, extra+c.Extra
	}
	if !write {
		for _, c := range counts {
			if c.Differs() {
				return counts, fmt.Errorf("%w: %s", ErrConflict, summary(counts))
			}
		}
		return counts, nil
	}
	if conflicts+extra > 0 {
		differ := summary(counts)
		for i := range counts {
			counts[i].Copied = 0 // nothing was written
		}
		return counts, fmt.Errorf("%w: %d records of the target conflict with the source's and %d live ones are the target's own (%s); nothing was copied",
			ErrConflict, conflicts, extra, differ)
	}
	for i, w := range writes {
		n, err := w(ctx)
		if err != nil {
			counts[i].Copied = n // and nothing of the kinds after it
			for j := i + 1; j < len(counts); j++ {
				counts[j].Copied = 0
			}
			return counts, fmt.Errorf("copy %s: %w", counts[i].Kind, err)
		}
	}
	return counts, nil
}

// backend returns the first store of st's chain (st, store.Unwrap(st),
// …) that is a store.Importer: the backend itself, under any wrapper.
func backend(st store.Store) (store.Store, store.Importer, bool) {
	for ; st != nil; st = store.Unwrap(st) {
		if imp, ok := st.(store.Importer); ok {
			return st, imp, true
		}
	}
	return nil, nil, false
}

// summary names the kinds that differ and how.
func summary(counts []Count) string {
	s := ""
	for _, c := range counts {
		if !c.Differs() {
			continue
		}
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("%s: %d missing from the target, %d differing, %d only in the target", c.Kind, c.Copied, c.Conflicting, c.Extra)
	}
	return s
}

// kindFunc compares one kind of record and returns its count and the
// write that copies what the target lacks, which returns how many it
// wrote.
type kindFunc func(ctx context.Context) (Count, func(context.Context) (int, error), error)

// kind builds the kindFunc of records of type T: list reads a store's
// (from its store.Store and store.Importer), key names a record, live
// reports whether it is still live at the time of the run, and put writes
// one into the target.
func kind[T any](name string, from, to store.Store, src, dst store.Importer,
	list func(context.Context, store.Store, store.Importer) ([]T, error),
	key func(T) string, live func(T) bool,
	put func(context.Context, T) error) kindFunc {
	return func(ctx context.Context) (Count, func(context.Context) (int, error), error) {
		c := Count{Kind: name}
		have, err := list(ctx, from, src)
		if err != nil {
			return c, nil, fmt.Errorf("read the source: %w", err)
		}
		theirs, err := list(ctx, to, dst)
		if err != nil {
			return c, nil, fmt.Errorf("read the target: %w", err)
		}
		// Every record of the target counts against the source's: a
		// live login of the source that the target holds ended is a
		// conflict, not one to copy. Only live ones count as extra.
		target := make(map[string]T, len(theirs))
		for _, r := range theirs {
			target[key(r)] = r
		}
		var missing []T
		for _, r := range have {
			if !live(r) {
				c.Skipped++
				continue
			}
			t, ok := target[key(r)]
			delete(target, key(r))
			switch {
			case !ok:
				missing = append(missing, r)
			case Same(r, t):
				c.Present++
			default:
				c.Conflicting++
			}
		}
		c.Copied = len(missing)
		for _, r := range target {
			if live(r) {
				c.Extra++
			}
		}
		write := func(ctx context.Context) (int, error) {
			for i, r := range missing {
				if err := put(ctx, r); err != nil {
					return i, err
				}
			}
			return len(missing), nil
		}
		return c, write, nil
	}
}

func kinds(from, to store.Store, src, dst store.Importer, at time.Time) []kindFunc {
	return []kindFunc{
		kind(KindSecrets, from, to, src, dst,
			func(ctx context.Context, _ store.Store, i store.Importer) ([]store.StoredSecret, error) {
				return i.ListSecrets(ctx)
			},
			func(s store.StoredSecret) string { return s.Name }, func(store.StoredSecret) bool { return true },
			func(ctx context.Context, s store.StoredSecret) error {
				got, err := to.Secret(ctx, s.Name, s.Value)
				if err == nil && !Same(got, s.Value) {
					err = fmt.Errorf("secret %s: stored meanwhile with another value: %w", s.Name, ErrConflict)
				}
				return err
			}),
		kind(KindKeys, from, to, src, dst,
			func(ctx context.Context, st store.Store, _ store.Importer) ([]store.Key, error) {
				return st.ListKeys(ctx)
			},
			func(k store.Key) string { return k.ID }, func(store.Key) bool { return true },
			to.CreateKey),
		kind(KindClients, from, to, src, dst,
			func(ctx context.Context, st store.Store, _ store.Importer) ([]store.Client, error) {
				return st.ListClients(ctx)
			},
			func(c store.Client) string { return c.ID }, func(store.Client) bool { return true },
			to.CreateClient),
		kind(KindUsers, from, to, src, dst,
			func(ctx context.Context, st store.Store, _ store.Importer) ([]store.User, error) {
				return st.ListUsers(ctx)
			},
			func(u store.User) string { return u.Name }, func(store.User) bool { return true },
			to.CreateUser),
		kind(KindSessions, from, to, src, dst,
			func(ctx context.Context, _ store.Store, i store.Importer) ([]store.Session, error) {
				return i.ListSessions(ctx)
			},
			func(s store.Session) string { return s.ID }, func(s store.Session) bool { return !s.Ended(at) },
			to.CreateSession),
		kind(KindConsents, from, to, src, dst,
			func(ctx context.Context, _ store.Store, i store.Importer) ([]store.Consent, error) {
				return i.ListConsents(ctx)
			},
			func(c store.Consent) string { return c.Subject + "\x00" + c.ClientID }, func(store.Consent) bool { return true },
			to.PutConsent),
		kind(KindFamilies, from, to, src, dst,
			func(ctx context.Context, st store.Store, _ store.Importer) ([]store.Family, error) {
				return st.ListFamilies(ctx, store.FamilyFilter{})
			},
			func(f store.Family) string { return f.ID }, func(f store.Family) bool { return f.Active(at) },
			dst.ImportFamily),
		kind(KindDenied, from, to, src, dst,
			func(ctx context.Context, _ store.Store, i store.Importer) ([]store.RevokedAccessToken, error) {
				return i.ListRevokedAccessTokens(ctx)
			},
			func(r store.RevokedAccessToken) string { return r.JTI }, func(r store.RevokedAccessToken) bool { return r.ExpiresAt.After(at) },
			func(ctx context.Context, r store.RevokedAccessToken) error {
				return to.RevokeAccessToken(ctx, r.JTI, r.ExpiresAt)
			}),
	}
}
