package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/redis"
)

// defaultScrubWait is how long a command waits, by default, for running
// servers' reads before it gives up emptying an SQLite -wal file.
const defaultScrubWait = 30 * time.Second

// waitFlag registers --wait on fs.
func waitFlag(fs *pflag.FlagSet) *time.Duration {
	return fs.Duration("wait", defaultScrubWait,
		"SQLite: how long to wait for running servers' reads to end so that the -wal file can be emptied of old values")
}

// newSecretsCmd is `tokend secrets`: list, rotate and retire the server
// secrets.
func newSecretsCmd(cio *cmdIO) *cobra.Command {
	s := &cobra.Command{Use: "secrets", Short: "rotate the server secrets that tag refresh tokens",
		Long: `The server secrets tag every refresh token (an HMAC over its family and
generation), derive each token's successor, and key the throttle's counts
in a shared store. Whoever holds one (a copy of the database from before
it was sealed, a backup) can forge refresh tokens' tags and compute the
successors of a token they hold. Rotating and then retiring the secret
ends that, without logging anyone out but the families idle since:

  1. tokend secrets rotate: a new secret joins the old one. Every server
     verifies with it from its next reload (--key-reload), and it tags new
     refresh tokens from 2 x --key-reload + --clock-skew (10 s) on. A
     token of the old secret still refreshes, and its successor carries
     the new one.
  2. Wait until most families (refresh-token chains) have refreshed:
     tokend secrets list counts those still on the old secret. With
     15-minute access tokens, every family in use refreshes within 15
     minutes.
  3. tokend secrets retire: ends the families still on the old secret
     (revoked, reason secret_retired; their refresh tokens are answered
     invalid_grant, and the count is printed), and removes the old secret
     from the store and, on SQLite, from its files. Every server drops it
     at its next reload.

Rotate the signing keys too (tokend keys rotate, then tokend keys revoke
OLD once the new key signs): the two are independent. Run every server
on this version or later before the first rotation: an earlier one would
take the stored secrets for a single secret and refuse every refresh
token.`,
		Args: cobra.ArbitraryArgs, RunE: groupRun("list, rotate or retire")}
	s.AddCommand(newSecretsListCmd(cio), newSecretsRotateCmd(cio), newSecretsRetireCmd(cio))
	return s
}

// newSecretsListCmd is `tokend secrets list`: the server secrets and the families on each.
func newSecretsListCmd(cio *cmdIO) *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list the server secrets and the families still on older ones", Args: noArgs}
	lskew := skewFlag(list.Flags())
	lsf := addStoreFlags(list.Flags(), "encryption-")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := checkSkew(*lskew); err != nil {
			return err
		}
		return lsf.with(ctx, cio.stderr, func(st store.Store) error {
			return listSecrets(ctx, st, time.Now(), *lskew, cio.stdout)
		})
	}
	return list
}

// newSecretsRotateCmd is `tokend secrets rotate`: a new server secret, which tags after a lead.
func newSecretsRotateCmd(cio *cmdIO) *cobra.Command {
	rotate := &cobra.Command{Use: "rotate", Short: "add a new server secret, which tags new refresh tokens after a lead", Args: noArgs}
	reloadDef, reloadErr := envDuration("TOKEND_KEY_RELOAD", defaultSettings().KeyReload)
	reloadEvery := rotate.Flags().Duration("key-reload", reloadDef,
		"the servers' --key-reload (env TOKEND_KEY_RELOAD): the new secret tags from 2 x --key-reload + --clock-skew after now")
	rskew := skewFlag(rotate.Flags())
	rsf := addStoreFlags(rotate.Flags(), "encryption-")
	rotate.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if reloadErr != nil && !cmd.Flags().Changed("key-reload") {
			return usageError{err: reloadErr, brief: true}
		}
		// Checked before they are added: the sum must not overflow
		// (bounds.go).
		if err := checkDuration("key-reload", *reloadEvery, defaultSettings().KeyReload); err != nil {
			return usageError{err: fmt.Errorf("--%w", err), brief: true}
		}
		if err := checkSkew(*rskew); err != nil {
			return err
		}
		lead := 2**reloadEvery + *rskew
		return rsf.with(ctx, cio.stderr, func(st store.Store) error {
			s, err := secrets.Rotate(ctx, st, time.Now(), lead)
			if errors.Is(err, secrets.ErrPending) || errors.Is(err, secrets.ErrFull) {
				return usageError{err: err, brief: true}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "new server secret %d: every server verifies with it from its next reload, and it tags new refresh tokens from %s (in %s: 2 x --key-reload + --clock-skew)\n",
				s.Seq, s.ActiveFrom.UTC().Format(time.RFC3339), lead)
			fmt.Fprintf(cio.stdout, "no one is logged out: a refresh token of an older secret refreshes into secret %d; once most families have (tokend secrets list), run tokend secrets retire\n", s.Seq)
			return nil
		})
	}
	return rotate
}

// newSecretsRetireCmd is `tokend secrets retire`: end the families on older server secrets and remove those.
func newSecretsRetireCmd(cio *cmdIO) *cobra.Command {
	retire := &cobra.Command{Use: "retire", Short: "end the families still on older server secrets, and remove those secrets", Args: noArgs}
	wait := waitFlag(retire.Flags())
	tskew := skewFlag(retire.Flags())
	tsf := addStoreFlags(retire.Flags(), "encryption-")
	retire.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := checkSkew(*tskew); err != nil {
			return err
		}
		ring, err := loadKeyring(tsf.keys.current, tsf.keys.old, os.Getenv)
		if err != nil {
			return err
		}
		raw, err := tsf.openRaw(ctx, cio.stderr)
		if err != nil {
			return err
		}
		defer raw.Close()
		ret, err := secrets.Retire(ctx, wrapSealed(raw, ring), time.Now(), *tskew)
		if errors.Is(err, secrets.ErrNothingToRetire) || errors.Is(err, secrets.ErrTooSoon) {
			return usageError{err: err, brief: true}
		}
		if err != nil {
			return fmt.Errorf("%w (%d families ended so far; run it again to end the rest)", err, ret.Ended)
		}
		// "logins" in the two counts below (here and listSecrets) means
		// families; scripts and tests read these lines, so they stay.
		fmt.Fprintf(cio.stdout, "retired server secret %s: ended %d logins last given a refresh token before %s (revoked, reason %s: their refresh tokens are answered invalid_grant)\n",
			seqList(ret.Retired), ret.Ended, ret.Cutoff.UTC().Format(time.RFC3339), secrets.ReasonRetired)
		fmt.Fprintf(cio.stdout, "secret %d alone remains; every server drops the old one at its next reload\n", ret.Current)
		return scrub(ctx, raw, *wait, "the retirement", cio.stdout)
	}
	return retire
}

// skewFlag registers --clock-skew on fs.
// checkSkew checks a --clock-skew (bounds.go).
func checkSkew(d time.Duration) error {
	if err := checkDuration("clock-skew", d, secrets.DefaultSkew); err != nil {
		return usageError{err: fmt.Errorf("--%w", err), brief: true}
	}
	return nil
}

func skewFlag(fs *pflag.FlagSet) *time.Duration {
	return fs.Duration("clock-skew", secrets.DefaultSkew,
		"how far apart the servers' clocks and the store's may be: a new secret tags from 2 x --key-reload + this after rotate, and retire ends the families last refreshed before this after it took over")
}

// listSecrets prints st's ring at now and how many families retiring would
// end.
func listSecrets(ctx context.Context, st store.Store, now time.Time, skew time.Duration, stdout io.Writer) error {
	ring, err := secrets.Load(ctx, st)
	if err != nil {
		return err
	}
	cur := ring.Current(now)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tCREATED\tTAGS FROM\tSTATE")
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, s := range ring {
		state := "verifies (older)"
		switch {
		case s.Seq == cur.Seq:
			state = "tags new refresh tokens"
		case s.Seq > cur.Seq:
			state = "verifies; tags from " + stamp(s.ActiveFrom)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Seq, stamp(s.CreatedAt), stamp(s.ActiveFrom), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n, cutoff, err := secrets.Dependents(ctx, st, ring, now, skew)
	if err != nil {
		return err
	}
	if ring[0].Seq != cur.Seq {
		fmt.Fprintf(stdout, "%d logins were last given a refresh token before %s, under an older secret: tokend secrets retire would end them\n",
			n, cutoff.UTC().Format(time.RFC3339))
	}
	return nil
}

// seqList is "1" or "1, 2".
func seqList(seqs []int) string {
	s := make([]string, len(seqs))
	for i, n := range seqs {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// scrub removes the old copies of overwritten values from the files of
// st (or the backend under its deadline wrapper), once what (a seal, a retirement;
// "" for nothing) is done: SQLite's through store.Scrubber, waiting up to wait for running
// servers' reads. For a store whose files a database server keeps it
// says what is left to the operator.
func scrub(ctx context.Context, st store.Store, wait time.Duration, what string, stdout io.Writer) error {
	if backend := store.Unwrap(st); backend != nil {
		st = backend
	}
	switch s := st.(type) {
	case store.Scrubber:
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := s.Scrub(ctx); err != nil {
			const then = "run tokend encryption scrub again once the servers' reads let it (or with them stopped)"
			if what == "" {
				return fmt.Errorf("%w; %s", err, then)
			}
			return fmt.Errorf("%s is done, but %w; %s", what, err, then)
		}
		fmt.Fprintln(stdout, "the database files hold no old copy: rewritten (VACUUM), and the -wal file emptied")
	case *postgres.Store:
		fmt.Fprintln(stdout, "PostgreSQL may keep old copies in dead row versions until VACUUM FULL, and in its WAL, archives, replicas and backups (tokend encryption help)")
	case *redis.Store:
		fmt.Fprintln(stdout, "Redis may keep old copies in its AOF until it is rewritten, and in RDB snapshots, replicas and backups (tokend encryption help)")
	}
	return nil
}
