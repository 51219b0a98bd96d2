package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storecopy"
)

// newCopyCmd is `tokend copy`: move every record of one store to
// another (storecopy), or compare them (--check).
func newCopyCmd(cio *cmdIO) *cobra.Command {
	c := &cobra.Command{
		Use:   "copy --from URL --to URL [--check] [--init]",
		Short: "copy every record of one store into another (SQLite, PostgreSQL, Redis), or compare them (--check)",
		Long: `copy moves everything a store holds to another: clients, users, signing
keys and server secrets (as stored: sealed ones stay sealed and need the
same operator key after), live logins (refresh-token families with their
current and previous token hashes, generation and expiries), browser
sessions, consents and the deny-list of revoked access tokens. A refresh
token issued on the old store rotates on the new one, and nobody is
logged out. What has ended is not copied: revoked or expired logins,
ended sessions, expired deny-list entries (DeleteExpired would delete
them), authorization codes, which live a minute, and refresh tokens
issued before schema version 3 (rt_…) whose login has not refreshed
since: copy says how many such logins end.

copy only adds: a record the target has already, identical, is left as
it is, so running it again copies nothing; if a record of the target has
the key of one of the source but other content, or the target holds live
records of its own (a server ran on it), copy writes nothing at all, says
how many of each kind differ, and exits 1. The target must
exist (tokend migrate --store URL --init creates it), or give --init.

Stop the servers on the old store first: a login that rotates on the old
store after it was copied is ended on the new one (its token no longer
matches). --check compares the two stores record by record without
writing, and exits 1 if they differ, saying which kinds and how many
records, never a value.`,
		Example: `  tokend copy --from sqlite:///var/lib/tokend/tokend.db --to "$NEW" --init
  tokend copy --from sqlite:///var/lib/tokend/tokend.db --to "$NEW" --check`,
		Args: noArgs,
	}
	fs := c.Flags()
	from := fs.String("from", "", "URL of the store to copy from (required)")
	to := fs.String("to", "", "URL of the store to copy into (required)")
	check := fs.Bool("check", false, "compare the two stores without writing; exit 1 if they differ")
	init := fs.Bool("init", false, "create the target store, or bring its schema up to date, if needed")
	timeout := fs.Duration("store-timeout", store.DefaultTimeout, "longest a store call may take while the stores are opened")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *from == "" || *to == "" {
			return usageErrorf("--from and --to are required")
		}
		if *check && *init {
			return usageErrorf("--check writes nothing: leave out --init")
		}
		if fu, err := parseStoreURL(*from); err == nil {
			if tu, err := parseStoreURL(*to); err == nil && fu.String() == tu.String() {
				return usageErrorf("--from and --to name the same store, %s", fu)
			}
		}
		src, err := openAdminStore(ctx, *from, "--from", false, *timeout)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		defer src.Close()
		dst, err := openAdminStore(ctx, *to, "--to", *init && !*check, *timeout)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		defer dst.Close()
		fu, _ := parseStoreURL(*from)
		tu, _ := parseStoreURL(*to)
		fmt.Fprintf(cio.stderr, "tokend: from %s\ntokend: to %s\n", fu, tu)
		return copyStores(ctx, src, dst, *check, cio.stdout)
	}
	return c
}

// copyStores copies src into dst (or compares them, with check), prints
// the counts per kind to stdout, and returns an error if a record
// conflicts (or, with check, if the stores differ).
func copyStores(ctx context.Context, src, dst store.Store, check bool, stdout io.Writer) error {
	run, verb := storecopy.Copy, "copied"
	if check {
		run, verb = storecopy.Check, "to copy"
	}
	legacy := 0
	if lc, ok := store.Capability[store.LegacyTokenCounter](src); ok {
		n, err := lc.CountLegacyTokens(ctx, time.Now())
		if err != nil {
			return fmt.Errorf("count the source's legacy refresh tokens: %w", err)
		}
		legacy = n
	}
	counts, err := run(ctx, src, dst, nil)
	if legacy > 0 {
		fmt.Fprintf(stdout, "%d logins of the source have not refreshed since its upgrade to schema version 3: their refresh tokens (rt_…) name no login, are not copied, and end on the target (their users log in again)\n", legacy)
	}
	if counts != nil {
		if perr := printCounts(stdout, counts, verb); perr != nil && err == nil {
			err = perr
		}
	}
	switch {
	case errors.Is(err, storecopy.ErrConflict) && check:
		return err // it says that the stores differ, and how
	case errors.Is(err, storecopy.ErrConflict):
		return fmt.Errorf("%w; copy into an empty store (tokend migrate --init creates one)", err)
	case err != nil:
		return err
	}
	total := 0
	for _, c := range counts {
		total += c.Copied
	}
	if check {
		fmt.Fprintln(stdout, "the target holds every live record of the source, and nothing else")
	} else {
		fmt.Fprintf(stdout, "copied %s\n", plural(total, "record"))
	}
	return nil
}

// printCounts prints one line per kind.
func printCounts(w io.Writer, counts []storecopy.Count, verb string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "KIND\t%s\tALREADY PRESENT\tCONFLICTING\tONLY IN TARGET\tENDED (NOT COPIED)\n", strings.ToUpper(verb))
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", c.Kind, c.Copied, c.Present, c.Conflicting, c.Extra, c.Skipped)
	}
	return tw.Flush()
}

// plural is n and noun, with an s unless n is 1: "1 record", "2 records".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
