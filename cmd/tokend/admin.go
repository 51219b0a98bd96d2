package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// storeFlags are the flags every admin command takes: the store, whether
// it may be created, and the operator keys it is sealed with
// (encryption.go).
type storeFlags struct {
	fs         *pflag.FlagSet
	url        string
	timeout    time.Duration
	timeoutErr error // a malformed TOKEND_STORE_TIMEOUT
	init       bool
	migrate    bool // `tokend migrate`: the schema is created and migrated
	keys       *keyFiles
}

// envDuration is the duration in the environment variable name, or def if
// it is unset; an error if it is set to something else than a duration.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("%s: want a duration such as %s, not %q", name, fmtDuration(def), v)
	}
	return d, nil
}

// checkIDArg refuses an identifier an operator typed that no store may
// hold (store.CheckID; store.CheckClientID for a new client's ID), naming
// the argument (what) and the rule. It never echoes the value: it may hold
// control characters that would rewrite the terminal.
func checkIDArg(what, id string, newClient bool) error {
	check, rule := store.CheckID, store.IDRule
	if newClient {
		check, rule = store.CheckClientID, store.ClientIDRule
	}
	if check(id) != nil {
		return usageError{err: fmt.Errorf("%s must be %s", what, rule), brief: true}
	}
	return nil
}

// addStoreFlags registers --store, --store-timeout, --init and the
// key-file flags (named with keyPrefix) on fs.
func addStoreFlags(fs *pflag.FlagSet, keyPrefix string) *storeFlags {
	sf := addStoreURLFlag(fs)
	var timeoutDef time.Duration
	timeoutDef, sf.timeoutErr = envDuration("TOKEND_STORE_TIMEOUT", store.DefaultTimeout)
	fs.DurationVar(&sf.timeout, "store-timeout", timeoutDef, storeTimeoutUsage+" (env TOKEND_STORE_TIMEOUT)")
	fs.BoolVar(&sf.init, "init", false, "create the store and its schema if they do not exist, and migrate an older schema (otherwise only serve and tokend migrate do)")
	sf.keys = keyFlags(fs, keyPrefix, os.Getenv)
	return sf
}

// addStoreURLFlag registers --store alone on fs: for the commands that
// copy the store's file (backup, restore) and so need neither its keys
// nor a timeout.
func addStoreURLFlag(fs *pflag.FlagSet) *storeFlags {
	def := os.Getenv("TOKEND_STORE")
	if def == "" {
		def = defaultStore
	}
	sf := &storeFlags{fs: fs}
	fs.StringVar(&sf.url, "store", def, "store URL: sqlite:///abs/path.db, sqlite://relative.db, postgres://HOST/DB or redis://HOST:6379/0[?prefix=KEYPREFIX] (env TOKEND_STORE)")
	fs.Lookup("store").DefValue = redacted(def) // shown by -h
	return sf
}

// from says where the store URL came from.
func (sf *storeFlags) from() string {
	switch {
	case sf.fs.Changed("store"):
		return "--store"
	case os.Getenv("TOKEND_STORE") != "":
		return "TOKEND_STORE"
	}
	return "the default"
}

// openRaw opens the store unwrapped (for the encryption commands), after
// saying on stderr which one.
func (sf *storeFlags) openRaw(ctx context.Context, stderr io.Writer) (store.Store, error) {
	if sf.timeoutErr != nil && !sf.fs.Changed("store-timeout") {
		return nil, usageError{err: sf.timeoutErr, brief: true}
	}
	st, err := openAdminStoreAs(ctx, sf.url, sf.from(), sf.init, sf.migrate, sf.timeout)
	if err != nil {
		return nil, err
	}
	u, _ := parseStoreURL(sf.url)
	fmt.Fprintf(stderr, "tokend: store %s\n", u)
	return st, nil
}

// open opens the store behind its operator keys.
func (sf *storeFlags) open(ctx context.Context, stderr io.Writer) (store.Store, error) {
	ring, err := loadKeyring(sf.keys.current, sf.keys.old, os.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := sf.openRaw(ctx, stderr)
	if err != nil {
		return nil, err
	}
	return wrapSealed(st, ring), nil
}

func (sf *storeFlags) with(ctx context.Context, stderr io.Writer, f func(store.Store) error) error {
	st, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}

// newUserCmd is `tokend user`: create, passwd, list and delete built-in
// users.
func newUserCmd(cio *cmdIO) *cobra.Command {
	u := &cobra.Command{Use: "user", Short: "manage built-in users (password grant)", Args: cobra.ArbitraryArgs,
		RunE: groupRun("create, passwd, list or delete")}
	u.AddCommand(newUserCreateCmd(cio), newUserPasswdCmd(cio), newUserListCmd(cio), newUserDeleteCmd(cio))
	return u
}

// newUserCreateCmd is `tokend user create`: store a user and the hash of its password, read from standard input.
func newUserCreateCmd(cio *cmdIO) *cobra.Command {
	create := &cobra.Command{Use: "create NAME --password-stdin", Short: "create a user, reading the password from standard input",
		Example: `  echo 'correct horse' | tokend user create alice --password-stdin`, Args: exactArgs(1, "one user name")}
	fs := create.Flags()
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
	params := fs.String("argon2-params", argon2ParamsDefault(), "argon2id parameters of the hash: m=KiB,t=passes,p=lanes (env "+envName("argon2-params")+")")
	csf := addStoreFlags(fs, "encryption-")
	create.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := checkIDArg("the user name", args[0], false); err != nil {
			return err
		}
		hash, err := hashStdinPassword(cio.stdin, *fromStdin, *params)
		if err != nil {
			return err
		}
		return csf.with(ctx, cio.stderr, func(st store.Store) error {
			err := st.CreateUser(ctx, store.User{Name: args[0], PasswordHash: hash, CreatedAt: time.Now()})
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("user %s already exists (tokend user delete %s removes it)", args[0], args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "created user %s\n", args[0])
			return nil
		})
	}
	return create
}

// hashStdinPassword reads a password, one line, from stdin (given
// --password-stdin: fromStdin) and returns its argon2id hash under params
// (--argon2-params). The password never comes from a flag, which would
// land in the shell history.
func hashStdinPassword(stdin io.Reader, fromStdin bool, params string) (string, error) {
	if !fromStdin {
		return "", usageErrorf("--password-stdin is required: pipe the password in, so that it stays out of the shell history")
	}
	p, err := password.ParseParams(params)
	if err != nil {
		return "", usageErrorf("--argon2-params: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageErrorf("empty password on standard input")
	}
	return p.Hash(pw)
}

// argon2ParamsDefault is the default of --argon2-params: the environment's
// setting, or password.DefaultParams.
func argon2ParamsDefault() string {
	if v := os.Getenv(envName("argon2-params")); v != "" {
		return v
	}
	return password.DefaultParams().String()
}

// newUserListCmd is `tokend user list`.
func newUserListCmd(cio *cmdIO) *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list the users", Args: noArgs}
	lsf := addStoreFlags(list.Flags(), "encryption-")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		return lsf.with(ctx, cio.stderr, func(st store.Store) error {
			us, err := st.ListUsers(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tHASH")
			for _, u := range us {
				params := "?"
				if p, err := password.ParamsOf(u.PasswordHash); err == nil {
					params = "argon2id " + p.String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.CreatedAt.UTC().Format(time.RFC3339), params)
			}
			return tw.Flush()
		})
	}
	return list
}

// newUserDeleteCmd is `tokend user delete`.
func newUserDeleteCmd(cio *cmdIO) *cobra.Command {
	del := &cobra.Command{Use: "delete NAME", Short: "delete a user and end all their families", Args: exactArgs(1, "one user name")}
	dsf := addStoreFlags(del.Flags(), "encryption-")
	del.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := checkIDArg("the user name", args[0], false); err != nil {
			return err
		}
		return dsf.with(ctx, cio.stderr, func(st store.Store) error {
			n, err := st.DeleteUser(ctx, args[0], time.Now())
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %s (tokend user list shows them)", args[0])
			}
			if err != nil {
				return err
			}
			// "sessions" is the word scripts and tests read: n families.
			fmt.Fprintf(cio.stdout, "deleted user %s; %d sessions revoked\n", args[0], n)
			return nil
		})
	}
	return del
}

// newKeysCmd is `tokend keys`: list, rotate and revoke signing keys.
func newKeysCmd(cio *cmdIO) *cobra.Command {
	k := &cobra.Command{Use: "keys", Short: "manage signing keys", Args: cobra.ArbitraryArgs,
		RunE: groupRun("list, rotate or revoke")}
	k.AddCommand(newKeysListCmd(cio), newKeysRotateCmd(cio), newKeysRevokeCmd(cio))
	return k
}

// newKeysListCmd is `tokend keys list`.
func newKeysListCmd(cio *cmdIO) *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list the signing keys", Args: noArgs}
	lsf := addStoreFlags(list.Flags(), "encryption-")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		return lsf.with(ctx, cio.stderr, func(st store.Store) error {
			ks, err := st.ListKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tUSE\tCREATED\tRETIRED\tREVOKED")
			stamp := func(t time.Time) string {
				if t.IsZero() {
					return "-"
				}
				return t.UTC().Format(time.RFC3339)
			}
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, useName(k.Use), stamp(k.CreatedAt), stamp(k.RetiredAt), stamp(k.RevokedAt))
			}
			return tw.Flush()
		})
	}
	return list
}

// newKeysRotateCmd is `tokend keys rotate`: a new signing key, which signs after a lead.
func newKeysRotateCmd(cio *cmdIO) *cobra.Command {
	rotate := &cobra.Command{Use: "rotate", Short: "make a new signing key; the old one stays published while its tokens may live", Args: noArgs}
	alg := rotate.Flags().String("alg", "EdDSA", "algorithm of the new key: EdDSA or ES256 for access tokens (RS256, the only one, for ID tokens)")
	use := rotate.Flags().String("use", useAccess, "which key to rotate: "+useAccess+" (signs access tokens) or "+useID+" (signs OpenID Connect ID tokens); the other is left alone")
	def := defaultSettings()
	reloadDef, reloadErr := envDuration("TOKEND_KEY_RELOAD", def.KeyReload)
	maxAgeDef, maxAgeErr := envDuration("TOKEND_JWKS_MAX_AGE", def.JWKSMaxAge)
	reloadEvery := rotate.Flags().Duration("key-reload", reloadDef,
		"the servers' --key-reload (env TOKEND_KEY_RELOAD): the new key signs from --key-reload + --jwks-max-age after now")
	maxAge := rotate.Flags().Duration("jwks-max-age", maxAgeDef,
		"the servers' --jwks-max-age (env TOKEND_JWKS_MAX_AGE)")
	rsf := addStoreFlags(rotate.Flags(), "encryption-")
	rotate.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		// Checked before they are added: the sum must not overflow
		// (bounds.go).
		for _, d := range []struct {
			name     string
			envErr   error
			got, def time.Duration
		}{{"key-reload", reloadErr, *reloadEvery, def.KeyReload}, {"jwks-max-age", maxAgeErr, *maxAge, def.JWKSMaxAge}} {
			if d.envErr != nil && !cmd.Flags().Changed(d.name) {
				return usageError{err: d.envErr, brief: true}
			}
			if err := checkDuration(d.name, d.got, d.def); err != nil {
				return usageError{err: fmt.Errorf("--%w", err), brief: true}
			}
		}
		rotateUse, err := rotateFunc(*use, *alg, cmd.Flags().Changed("alg"))
		if err != nil {
			return usageError{err: err, brief: true}
		}
		lead := *reloadEvery + *maxAge
		return rsf.with(ctx, cio.stderr, func(st store.Store) error {
			k, err := rotateUse(ctx, st, time.Now(), lead)
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "new signing key %s (%s, %s): published now, signs from %s (in %s, --key-reload + --jwks-max-age), when the old %s key retires\n",
				k.ID, k.Algorithm, useName(k.Use), k.NotBefore.UTC().Format(time.RFC3339), lead, useName(k.Use))
			return nil
		})
	}
	return rotate
}

// The names `tokend keys` gives key uses (store.Key.Use).
const (
	useAccess = "access" // store.UseAccess
	useID     = "id"     // store.UseID
)

// useName returns the name of the key use u in `tokend keys` output.
func useName(u string) string {
	if u == store.UseAccess {
		return useAccess
	}
	return u
}

// rotateFunc returns the rotation `tokend keys rotate --use use --alg alg`
// asks for (algSet: --alg was given), or an error for a use or an
// algorithm it may not have: an access key is EdDSA or ES256, as
// `tokend serve --key-alg` allows, and an ID key RS256.
func rotateFunc(use, alg string, algSet bool) (func(context.Context, store.Store, time.Time, time.Duration) (store.Key, error), error) {
	switch use {
	case useAccess:
		if alg != keys.EdDSA && alg != keys.ES256 {
			return nil, fmt.Errorf("--alg must be EdDSA or ES256 for an access-token key, not %q", alg)
		}
		return func(ctx context.Context, st store.Store, now time.Time, lead time.Duration) (store.Key, error) {
			return keys.Rotate(ctx, st, alg, now, lead)
		}, nil
	case useID:
		if algSet && alg != keys.RS256 {
			return nil, fmt.Errorf("--alg must be RS256 for an ID-token key, not %q", alg)
		}
		return keys.RotateID, nil
	}
	return nil, fmt.Errorf("--use must be %s or %s, not %q", useAccess, useID, use)
}

// newKeysRevokeCmd is `tokend keys revoke`: withdraw a signing key, rotating first if it signs.
func newKeysRevokeCmd(cio *cmdIO) *cobra.Command {
	revoke := &cobra.Command{Use: "revoke KID", Short: "withdraw a signing key at once (rotating first if it signs)", Args: exactArgs(1, "one KID (tokend keys list shows them)")}
	ralg := revoke.Flags().String("alg", "", "algorithm of the new signing key if KID signs (default: KID's)")
	vsf := addStoreFlags(revoke.Flags(), "encryption-")
	revoke.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		return vsf.with(ctx, cio.stderr, func(st store.Store) error {
			next, err := keys.Revoke(ctx, st, args[0], *ralg, time.Now())
			if errors.Is(err, keys.ErrUnknownKey) {
				return usageError{err: fmt.Errorf("no key %q (tokend keys list shows them)", args[0]), brief: true}
			}
			if err != nil {
				return err
			}
			// Servers read their keys at most server.DefaultKeyStaleness
			// apart: once that has passed, none signs with the key.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(server.DefaultKeyStaleness):
			}
			fmt.Fprintf(cio.stdout, "revoked key %s: introspection refuses its tokens, no server signs with it or publishes it in its JWKS\n", args[0])
			if next.ID != "" {
				fmt.Fprintf(cio.stdout, "new signing key %s (%s, %s): signs now, on every server\n", next.ID, next.Algorithm, useName(next.Use))
			}
			return nil
		})
	}
	return revoke
}

// familyWords are the words a families command speaks: its name, which is
// also what it calls many families, and what it calls one. `tokend
// families` says "family"; `tokend sessions`, its earlier name, kept
// hidden so that scripts written for it still run, says "session" as it
// always has (in its usage, its messages and its output).
type familyWords struct {
	name string // families or sessions
	one  string // family or session
}

// wordsOf returns the words of the families command called name:
// "families", or "sessions", its earlier name.
func wordsOf(name string) familyWords {
	if name == "sessions" {
		return familyWords{name: "sessions", one: "session"}
	}
	return familyWords{name: "families", one: "family"}
}

// newFamiliesCmd is `tokend families` (name "families") or its hidden
// earlier name `tokend sessions` (name "sessions"): list and end
// families, the chains of refresh tokens that each descend from one
// login or mint.
func newFamiliesCmd(cio *cmdIO, name string) *cobra.Command {
	w := wordsOf(name)
	s := &cobra.Command{Use: w.name, Short: "list and end refresh-token families (the chain of tokens from one login or mint)", Args: cobra.ArbitraryArgs,
		RunE: groupRun("list or revoke")}
	if w.name != "families" {
		s.Short, s.Hidden = "the earlier name of tokend families", true
	}
	s.AddCommand(newFamiliesListCmd(cio, w), newFamiliesRevokeCmd(cio, w))
	return s
}

// listedFamily is a family as `tokend families list --json` prints it:
// the fields of the /v1 API's listing (GET /v1/subjects/{sub}/sessions),
// and how often it rotated and whether and why it ended. It never holds a
// token or a hash.
type listedFamily struct {
	ID           string     `json:"id"`
	ClientID     string     `json:"client_id"`
	Subject      string     `json:"subject"`
	Scope        string     `json:"scope,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   time.Time  `json:"last_used_at"`
	Rotations    int        `json:"rotations"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
}

// printFamiliesJSON prints fams as one JSON array (empty: []).
func printFamiliesJSON(w io.Writer, fams []store.Family) error {
	out := make([]listedFamily, 0, len(fams))
	for _, f := range fams {
		l := listedFamily{ID: f.ID, ClientID: f.ClientID, Subject: f.Subject, Scope: f.Scope,
			CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC(), Rotations: int(f.Generation)}
		if !f.RevokedAt.IsZero() {
			at := f.RevokedAt.UTC()
			l.RevokedAt, l.RevokeReason = &at, f.RevokeReason
		}
		out = append(out, l)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// newFamiliesListCmd is `tokend families list`.
func newFamiliesListCmd(cio *cmdIO, w familyWords) *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list " + w.name, Args: noArgs}
	lsubject := list.Flags().String("subject", "", "only this subject's "+w.name)
	lclient := list.Flags().String("client", "", "only this client's "+w.name)
	all := list.Flags().Bool("all", false, "include ended "+w.name)
	asJSON := list.Flags().Bool("json", false, "print a JSON array, one object per family, with the /v1 API's field names")
	lsf := addStoreFlags(list.Flags(), "encryption-")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := checkFilterArgs(*lsubject, *lclient); err != nil {
			return err
		}
		return lsf.with(ctx, cio.stderr, func(st store.Store) error {
			filter := store.FamilyFilter{ClientID: *lclient, Subject: *lsubject}
			if !*all {
				filter.ActiveAt = time.Now()
			}
			fams, err := st.ListFamilies(ctx, filter)
			if err != nil {
				return err
			}
			if *asJSON {
				return printFamiliesJSON(cio.stdout, fams)
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCLIENT\tSUBJECT\tSCOPE\tCREATED\tLAST USED\tROTATIONS\tREVOKED")
			for _, f := range fams {
				revoked := "-"
				if !f.RevokedAt.IsZero() {
					revoked = f.RevokeReason
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", f.ID, f.ClientID, f.Subject, f.Scope,
					f.CreatedAt.UTC().Format(time.RFC3339), f.LastUsedAt.UTC().Format(time.RFC3339), f.Generation, revoked)
			}
			return tw.Flush()
		})
	}
	return list
}

// newFamiliesRevokeCmd is `tokend families revoke`: end one family, or all of a subject's or a client's.
func newFamiliesRevokeCmd(cio *cmdIO, w familyWords) *cobra.Command {
	revoke := &cobra.Command{Use: "revoke [" + strings.ToUpper(w.one) + "_ID | --subject SUB | --client CLIENT_ID]",
		Short: "end one " + w.one + ", or all of a subject's or a client's", Args: cobra.ArbitraryArgs}
	rsubject := revoke.Flags().String("subject", "", "end this subject's "+w.name)
	rclient := revoke.Flags().String("client", "", "end this client's "+w.name)
	rsf := addStoreFlags(revoke.Flags(), "encryption-")
	revoke.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		byFilter := *rsubject != "" || *rclient != ""
		if len(args) > 1 || len(args) == 1 == byFilter {
			return usageErrorf("want a %s ID, or --subject and/or --client", w.one)
		}
		if len(args) == 1 {
			if err := checkIDArg("the "+w.one+" ID", args[0], false); err != nil {
				return err
			}
		}
		if err := checkFilterArgs(*rsubject, *rclient); err != nil {
			return err
		}
		return rsf.with(ctx, cio.stderr, func(st store.Store) error {
			now := time.Now()
			if len(args) == 1 {
				err := st.RevokeFamily(ctx, args[0], now, "admin")
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no %s %s (tokend %s list shows them)", w.one, args[0], w.name)
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(cio.stdout, "revoked 1 "+w.one)
				return nil
			}
			n, err := st.RevokeFamilies(ctx, store.FamilyFilter{ClientID: *rclient, Subject: *rsubject}, now, "admin")
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "revoked %d %s\n", n, w.name)
			return nil
		})
	}
	return revoke
}

// checkFilterArgs checks the --subject and --client of the families
// commands, if given.
func checkFilterArgs(subject, client string) error {
	if subject != "" {
		if err := checkIDArg("--subject", subject, false); err != nil {
			return err
		}
	}
	if client != "" {
		return checkIDArg("--client", client, false)
	}
	return nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// randomSecret returns 256 random bits, base64url.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
