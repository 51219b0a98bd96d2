package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// adminFlags are the flags every admin command takes: the store, and the
// operator keys it is sealed with (encryption.go).
func adminFlags(name string, stderr io.Writer) (*flag.FlagSet, *storeFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("TOKEND_STORE")
	if def == "" {
		def = defaultStore
	}
	sf := &storeFlags{}
	fs.StringVar(&sf.url, "store", def, "store URL (env TOKEND_STORE)")
	sf.keys = keyFlags(fs, "encryption-", os.Getenv)
	return fs, sf
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func withStore(ctx context.Context, sf storeFlags, f func(store.Store) error) error {
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}

func cmdClient(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("client: want create, list or delete")}
	}
	fs, storeURL := adminFlags("client "+args[0], stderr)
	switch args[0] {
	case "create":
		id := fs.String("id", "", "client ID (required)")
		secret := fs.String("secret", "", "client secret (default: 256 random bits, printed once)")
		public := fs.Bool("public", false, "a public client, with no secret (refresh_token grant only)")
		grants := fs.String("grant", "client_credentials,refresh_token", "comma-separated grant types: client_credentials, refresh_token, password")
		scope := fs.String("scope", "", "space- or comma-separated scopes the client may request (default: any)")
		mint := fs.Bool("mint", false, "may mint tokens for its users (POST /v1/tokens)")
		asJSON := fs.Bool("json", false, "print the result as JSON")
		if _, err := parseInterspersed(fs, args[1:]); err != nil {
			return err
		}
		if *id == "" {
			return usageError{errors.New("client create: --id is required")}
		}
		c := store.Client{ID: *id, Grants: splitList(*grants), Scopes: splitList(*scope), Mint: *mint, CreatedAt: time.Now()}
		for _, g := range c.Grants {
			if g != "client_credentials" && g != "refresh_token" && g != "password" {
				return usageError{fmt.Errorf("client create: unknown grant %q", g)}
			}
		}
		if !*public {
			if *secret == "" {
				*secret = randomSecret()
			}
			c.SecretHash = server.HashClientSecret(*secret)
		} else {
			*secret = ""
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			if err := st.CreateClient(ctx, c); err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(stdout).Encode(map[string]any{"client_id": c.ID, "client_secret": *secret, "grants": c.Grants, "scopes": c.Scopes, "mint": c.Mint})
			}
			fmt.Fprintf(stdout, "client_id:     %s\n", c.ID)
			if *secret != "" {
				fmt.Fprintf(stdout, "client_secret: %s\n(shown once: only its hash is stored)\n", *secret)
			}
			return nil
		})
	case "list":
		if _, err := parseInterspersed(fs, args[1:]); err != nil {
			return err
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			cs, err := st.ListClients(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tGRANTS\tSCOPES\tMINT")
			for _, c := range cs {
				typ := "confidential"
				if len(c.SecretHash) == 0 {
					typ = "public"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", c.ID, typ, strings.Join(c.Grants, ","), strings.Join(c.Scopes, " "), c.Mint)
			}
			return tw.Flush()
		})
	case "delete":
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError{errors.New("client delete: want one client ID")}
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			n, err := st.DeleteClient(ctx, pos[0], time.Now())
			if err == nil {
				fmt.Fprintf(stdout, "deleted client %s; %d sessions revoked\n", pos[0], n)
			}
			return err
		})
	}
	return usageError{fmt.Errorf("client: unknown command %q", args[0])}
}

func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("user: want create or delete")}
	}
	fs, storeURL := adminFlags("user "+args[0], stderr)
	switch args[0] {
	case "create":
		fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
		paramsDef := os.Getenv(envName("argon2-params"))
		if paramsDef == "" {
			paramsDef = password.DefaultParams().String()
		}
		params := fs.String("argon2-params", paramsDef, "argon2id parameters of the hash: m=KiB,t=passes,p=lanes (env "+envName("argon2-params")+")")
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 || !*fromStdin {
			return usageError{errors.New("user create: want NAME --password-stdin")}
		}
		p, err := password.ParseParams(*params)
		if err != nil {
			return usageError{fmt.Errorf("user create: --argon2-params: %w", err)}
		}
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return usageError{errors.New("user create: empty password")}
		}
		hash, err := p.Hash(pw)
		if err != nil {
			return err
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			return st.CreateUser(ctx, store.User{Name: pos[0], PasswordHash: hash, CreatedAt: time.Now()})
		})
	case "delete":
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError{errors.New("user delete: want one user name")}
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			n, err := st.DeleteUser(ctx, pos[0], time.Now())
			if err == nil {
				fmt.Fprintf(stdout, "deleted user %s; %d sessions revoked\n", pos[0], n)
			}
			return err
		})
	}
	return usageError{fmt.Errorf("user: unknown command %q", args[0])}
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("keys: want list, rotate or revoke")}
	}
	fs, storeURL := adminFlags("keys "+args[0], stderr)
	switch args[0] {
	case "list":
		if _, err := parseInterspersed(fs, args[1:]); err != nil {
			return err
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			ks, err := st.ListKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tCREATED\tRETIRED\tREVOKED")
			stamp := func(t time.Time) string {
				if t.IsZero() {
					return "-"
				}
				return t.UTC().Format(time.RFC3339)
			}
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, stamp(k.CreatedAt), stamp(k.RetiredAt), stamp(k.RevokedAt))
			}
			return tw.Flush()
		})
	case "rotate":
		alg := fs.String("alg", "EdDSA", "algorithm of the new key: EdDSA or ES256")
		if _, err := parseInterspersed(fs, args[1:]); err != nil {
			return err
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			k, err := keys.Rotate(ctx, st, *alg, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "new signing key %s (%s); running servers switch to it within --key-reload (10s)\n", k.ID, k.Algorithm)
			return nil
		})
	case "revoke":
		alg := fs.String("alg", "", "algorithm of the new signing key if KID signs (default: KID's)")
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError{errors.New("keys revoke: want one KID")}
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			next, err := keys.Revoke(ctx, st, pos[0], *alg, time.Now())
			if errors.Is(err, keys.ErrUnknownKey) {
				return usageError{fmt.Errorf("keys revoke: no key %q (tokend keys list shows them)", pos[0])}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked key %s: it leaves the JWKS, and introspection refuses its tokens now\n", pos[0])
			if next.ID != "" {
				fmt.Fprintf(stdout, "new signing key %s (%s)\n", next.ID, next.Algorithm)
			}
			return nil
		})
	}
	return usageError{fmt.Errorf("keys: unknown command %q", args[0])}
}

func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("sessions: want list or revoke")}
	}
	fs, storeURL := adminFlags("sessions "+args[0], stderr)
	subject := fs.String("subject", "", "only this subject's sessions")
	clientID := fs.String("client", "", "only this client's sessions")
	switch args[0] {
	case "list":
		all := fs.Bool("all", false, "include ended sessions")
		if _, err := parseInterspersed(fs, args[1:]); err != nil {
			return err
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			filter := store.FamilyFilter{ClientID: *clientID, Subject: *subject}
			if !*all {
				filter.ActiveAt = time.Now()
			}
			fams, err := st.ListFamilies(ctx, filter)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
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
	case "revoke":
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		return withStore(ctx, *storeURL, func(st store.Store) error {
			now := time.Now()
			switch {
			case len(pos) == 1:
				if err := st.RevokeFamily(ctx, pos[0], now, "admin"); err != nil {
					return err
				}
				fmt.Fprintln(stdout, "revoked 1 session")
			case len(pos) == 0 && (*subject != "" || *clientID != ""):
				n, err := st.RevokeFamilies(ctx, store.FamilyFilter{ClientID: *clientID, Subject: *subject}, now, "admin")
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "revoked %d sessions\n", n)
			default:
				return usageError{errors.New("sessions revoke: want a session ID, or --subject/--client")}
			}
			return nil
		})
	}
	return usageError{fmt.Errorf("sessions: unknown command %q", args[0])}
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
