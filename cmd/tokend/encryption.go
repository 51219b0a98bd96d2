package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sealed"
)

// The variables that hold operator keys themselves, in base64, for
// deployments that pass secrets through the environment rather than files.
// They have no flag and no config-file field: a key on a command line is
// visible to every user of the machine.
const (
	envKey    = "TOKEND_ENCRYPTION_KEY"
	envOldKey = "TOKEND_ENCRYPTION_OLD_KEY"
)

// keyFiles name the operator key files: the current key seals and opens,
// the old one only opens (during a rotation, or while turning encryption
// off).
type keyFiles struct{ current, old string }

// keyFlags registers --PREFIXkey-file and --PREFIXold-key-file on fs, with
// defaults from TOKEND_ENCRYPTION_KEY_FILE and
// TOKEND_ENCRYPTION_OLD_KEY_FILE.
func keyFlags(fs *pflag.FlagSet, prefix string, getenv func(string) string) *keyFiles {
	kf := &keyFiles{}
	fs.StringVar(&kf.current, prefix+"key-file", getenv("TOKEND_ENCRYPTION_KEY_FILE"),
		"operator key file that seals signing keys and secrets (env TOKEND_ENCRYPTION_KEY_FILE, or the key in "+envKey+")")
	fs.StringVar(&kf.old, prefix+"old-key-file", getenv("TOKEND_ENCRYPTION_OLD_KEY_FILE"),
		"previous operator key file, that only opens (env TOKEND_ENCRYPTION_OLD_KEY_FILE, or the key in "+envOldKey+")")
	return kf
}

// loadKeyring reads the operator keys: each from its file or, if no file
// is named, from its variable. Neither set means no key; both set is an
// error. With no key at all the keyring is empty: encryption is off.
func loadKeyring(current, old string, getenv func(string) string) (sealed.Keyring, error) {
	var ring sealed.Keyring
	cur, err := loadKey("encryption-key-file", current, envKey, getenv)
	if err != nil {
		return ring, err
	}
	o, err := loadKey("encryption-old-key-file", old, envOldKey, getenv)
	if err != nil {
		return ring, err
	}
	ring.Current = cur
	if o != nil {
		ring.Old = []*sealed.Key{o}
	}
	return ring, nil
}

func loadKey(setting, file, env string, getenv func(string) string) (*sealed.Key, error) {
	text := getenv(env)
	switch {
	case file != "" && text != "":
		return nil, fmt.Errorf("both %s and %s are set: keep one", setting, env)
	case file != "":
		return sealed.LoadKeyFile(file)
	case text != "":
		k, err := sealed.ParseKey([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		return k, nil
	}
	return nil, nil
}

// wrapSealed wraps st behind ring. An empty ring still wraps it, so that a
// sealed store opened without its key fails with an error naming the key
// it needs.
func wrapSealed(st store.Store, ring sealed.Keyring) store.Store {
	return sealed.Wrap(st, ring)
}

// logKeyring says at start-up which operator keys the server uses.
func logKeyring(log *slog.Logger, ring sealed.Keyring) {
	switch ids := ring.IDs(); {
	case ring.Current != nil:
		log.Info("encryption at rest: on", "seal", ring.Current.ID(), "open", strings.Join(ids, ","))
	case len(ids) > 0:
		log.Info("encryption at rest: being turned off; writing in clear", "open", strings.Join(ids, ","))
	default:
		log.Debug("encryption at rest: off")
	}
}

// newEncryptionCmd is `tokend encryption`: encryption at rest of the
// store's signing keys and server secrets.
func newEncryptionCmd(cio *cmdIO) *cobra.Command {
	e := &cobra.Command{
		Use:   "encryption",
		Short: "encrypt signing keys and secrets at rest",
		Long: `Encryption at rest of the signing keys' private parts and the server
secrets, under a 32-byte operator key (go doc ./store/sealed).

Each command but keygen acts on --store (env TOKEND_STORE, default
sqlite://tokend.db) in one atomic step: a failure changes nothing. Keys
also come from TOKEND_ENCRYPTION_KEY_FILE / TOKEND_ENCRYPTION_OLD_KEY_FILE,
or in base64 from TOKEND_ENCRYPTION_KEY / TOKEND_ENCRYPTION_OLD_KEY.

What is left on disk. An overwritten value lingers in a database's files
until they are rewritten: the values in clear after seal, those sealed
under the old key after rotate or unseal, a retired server secret after
tokend secrets retire.
  SQLite: these commands then rewrite the database (VACUUM) and empty its
    -wal file, so that no file of the store holds an old copy. A running
    server may keep the -wal in use for a moment; the command waits for
    it (--wait, 30 s), and otherwise says so and exits 1: run tokend
    encryption scrub later, or with the servers stopped. VACUUM needs as
    much free space as the database and blocks writes while it runs.
  PostgreSQL: the old row versions stay in the table's files until VACUUM
    reuses their space (VACUUM FULL keys, secrets rewrites the two tables
    at once), and in the WAL, its archives, replicas and base backups.
  Redis: the AOF keeps every write until it is rewritten
    (BGREWRITEAOF), and RDB snapshots, replicas and backups keep theirs.
  Everywhere: filesystem snapshots, backups and freed disk blocks are out
    of reach. So treat any copy made before sealing as holding the values
    in clear, and make those values worthless: rotate the signing keys
    (tokend keys rotate; once the new key signs, tokend keys revoke OLD)
    and the server secret (tokend secrets rotate, later tokend secrets
    retire). Neither logs anyone out.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun("keygen, status, seal, rotate, unseal or scrub"),
	}
	e.AddCommand(newEncryptionKeygenCmd(cio))
	for _, op := range []struct{ use, short string }{
		{"status", "list each value and the key it is sealed under"},
		{"seal --key-file KEY", "seal every value in clear under KEY"},
		{"rotate --key-file NEW --old-key-file OLD", "reseal every value under NEW"},
		{"unseal --old-key-file OLD", "store every value in clear again"},
	} {
		e.AddCommand(newEncryptionOpCmd(cio, op.use, op.short))
	}
	e.AddCommand(newEncryptionScrubCmd(cio))
	return e
}

// newEncryptionKeygenCmd is `tokend encryption keygen`.
func newEncryptionKeygenCmd(cio *cmdIO) *cobra.Command {
	keygenCmd := &cobra.Command{Use: "keygen --out FILE", Short: "write a new random key (mode 0600; - for stdout)", Args: noArgs}
	out := keygenCmd.Flags().String("out", "", "file to write the new key to, which must not exist (- for standard output)")
	keygenCmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *out == "" {
			return usageErrorf("--out is required")
		}
		return keygen(*out, cio.stdout, cio.stderr)
	}
	return keygenCmd
}

// newEncryptionOpCmd is `tokend encryption status`, seal, rotate or
// unseal, as use (the usage line, starting with the name) names it;
// short is its description. All but status scrub the store after.
func newEncryptionOpCmd(cio *cmdIO, use, short string) *cobra.Command {
	name, _, _ := strings.Cut(use, " ")
	c := &cobra.Command{Use: use, Short: short, Args: noArgs}
	var wait *time.Duration
	if name != "status" {
		wait = waitFlag(c.Flags())
	}
	sf := addStoreFlags(c.Flags(), "")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ring, err := loadKeyring(sf.keys.current, sf.keys.old, os.Getenv)
		if err != nil {
			return err
		}
		if err := checkRing(name, ring); err != nil {
			return err
		}
		st, err := sf.openRaw(cmd.Context(), cio.stderr)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := encryption(cmd.Context(), name, st, ring, cio.stdout); err != nil || name == "status" {
			return err
		}
		return scrub(cmd.Context(), st, *wait, "the "+name, cio.stdout)
	}
	return c
}

// newEncryptionScrubCmd is `tokend encryption scrub`.
func newEncryptionScrubCmd(cio *cmdIO) *cobra.Command {
	scrubCmd := &cobra.Command{Use: "scrub", Short: "remove old copies of overwritten values from the store's files (SQLite)", Args: noArgs}
	wait := waitFlag(scrubCmd.Flags())
	ssf := addStoreFlags(scrubCmd.Flags(), "")
	scrubCmd.RunE = func(cmd *cobra.Command, args []string) error {
		st, err := ssf.openRaw(cmd.Context(), cio.stderr)
		if err != nil {
			return err
		}
		defer st.Close()
		return scrub(cmd.Context(), st, *wait, "", cio.stdout)
	}
	return scrubCmd
}

// checkRing tells whether ring has the keys op needs.
func checkRing(op string, ring sealed.Keyring) error {
	switch {
	case op == "seal" && ring.Current == nil:
		return usageErrorf("--key-file (or TOKEND_ENCRYPTION_KEY) is required")
	case op == "rotate" && (ring.Current == nil || len(ring.Old) == 0):
		return usageErrorf("--key-file NEW and --old-key-file OLD are required")
	case op == "rotate" && ring.Current.ID() == ring.Old[0].ID():
		return usageErrorf("the new and the old key are the same key (%s)", ring.Current.ID())
	case op == "unseal" && len(ring.IDs()) == 0:
		return usageErrorf("--old-key-file (the key the store is sealed under) is required")
	}
	return nil
}

// encryption runs op (status, seal, rotate or unseal) on st, the store
// itself (not wrapped).
func encryption(ctx context.Context, op string, st store.Store, ring sealed.Keyring, stdout io.Writer) error {
	var recs []sealed.Record
	var err error
	switch op {
	case "status":
		recs, err = sealed.Inspect(ctx, st)
	case "seal", "rotate":
		recs, err = sealed.Seal(ctx, st, ring)
	case "unseal":
		recs, err = sealed.Unseal(ctx, st, ring)
	}
	if err != nil {
		return fmt.Errorf("encryption %s (nothing was changed): %w", op, err)
	}
	switch op {
	case "status":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNAME\tSTORED")
		for _, r := range recs {
			stored := "in clear"
			if r.KeyID != "" {
				stored = "sealed under " + r.KeyID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Kind, r.Name, stored)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", summary(recs))
	case "seal", "rotate":
		fmt.Fprintf(stdout, "%d values now sealed under operator key %s (were %s)\n", len(recs), ring.Current.ID(), summary(recs))
		if op == "rotate" {
			fmt.Fprintf(stdout, "restart the servers with %s alone, then destroy the old key\n", ring.Current.ID())
		} else {
			fmt.Fprintln(stdout, "(re)start the servers with this key")
		}
		if slices.ContainsFunc(recs, func(r sealed.Record) bool { return r.KeyID == "" }) {
			fmt.Fprintln(stdout, "copies made while values were in clear (backups, snapshots, replicas) still hold them: make them worthless with tokend keys rotate and tokend secrets rotate (tokend encryption help)")
		}
	case "unseal":
		fmt.Fprintf(stdout, "%d values now in clear (were %s)\nrestart the servers without a key\n", len(recs), summary(recs))
	}
	return nil
}

// summary counts records by how they are stored: "2 in clear, 1 sealed
// under 3f9a0c1e".
func summary(recs []sealed.Record) string {
	if len(recs) == 0 {
		return "no values"
	}
	var order []string
	count := map[string]int{}
	for _, r := range recs {
		what := "in clear"
		if r.KeyID != "" {
			what = "sealed under " + r.KeyID
		}
		if count[what] == 0 {
			order = append(order, what)
		}
		count[what]++
	}
	parts := make([]string, len(order))
	for i, what := range order {
		parts[i] = fmt.Sprintf("%d %s", count[what], what)
	}
	return strings.Join(parts, ", ")
}

// keygen writes a new operator key to the file out, or to stdout if out
// is "-".
func keygen(out string, stdout, stderr io.Writer) error {
	if out != "-" {
		k, err := sealed.WriteKeyFile(out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote operator key %s to %s (mode 0600)\n", k.ID(), out)
		return nil
	}
	raw := make([]byte, sealed.KeySize)
	defer clear(raw)
	_, _ = rand.Read(raw) // never fails (crypto/rand)
	k, err := sealed.NewKey(raw)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(raw))
	fmt.Fprintf(stderr, "operator key %s\n", k.ID())
	return nil
}
