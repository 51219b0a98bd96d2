package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// newClientCmd is `tokend client`: create, list and delete OAuth clients.
func newClientCmd(cio *cmdIO) *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "manage OAuth clients", Args: cobra.ArbitraryArgs,
		RunE: groupRun("create, list or delete")}
	c.AddCommand(newClientCreateCmd(cio))

	list := &cobra.Command{Use: "list", Short: "list the clients", Args: noArgs}
	lsf := addStoreFlags(list.Flags(), "encryption-")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		return lsf.with(ctx, cio.stderr, func(st store.Store) error {
			cs, err := st.ListClients(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tGRANTS\tSCOPES\tMINT\tMINT FOR\tORIGINS\tCOOKIE")
			for _, c := range cs {
				typ := "confidential"
				if len(c.SecretHash) == 0 {
					typ = "public"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%v\n", c.ID, typ, strings.Join(c.Grants, ","), strings.Join(c.Scopes, " "),
					c.Mint, strings.Join(c.MintFor, ","), strings.Join(c.Origins, ","), c.Cookie)
			}
			return tw.Flush()
		})
	}

	del := &cobra.Command{Use: "delete CLIENT_ID", Short: "delete a client and end all its sessions", Args: exactArgs(1, "one client ID")}
	dsf := addStoreFlags(del.Flags(), "encryption-")
	del.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := checkIDArg("the client ID", args[0], false); err != nil {
			return err
		}
		return dsf.with(ctx, cio.stderr, func(st store.Store) error {
			n, err := st.DeleteClient(ctx, args[0], time.Now())
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no client %s (tokend client list shows them)", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "deleted client %s; %d sessions revoked\n", args[0], n)
			return nil
		})
	}
	c.AddCommand(list, del)
	return c
}

func newClientCreateCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create --id CLIENT_ID [flags]",
		Short: "create a client and print its secret, once",
		Long: `Create a client and print its secret, once: only its hash is stored.

A confidential client (the default) authenticates with its secret. A
public client (--public: a browser or mobile app, which cannot keep a
secret) has none, so it can only use refresh_token, starting from tokens
a trusted backend mints for it: a backend created with --mint and
--mint-for APP may name the public client APP in its mint requests
("client_id": "APP"), and the session it starts is then APP's.

A browser app lists the origins it runs on (--origin, as the browser
sends them: scheme://host[:port]); the server answers CORS for them and
refuses the client's requests from any other origin. With --cookie, its
refresh token lives in the server's HttpOnly cookie instead of the page.`,
		Example: `  tokend client create --id demo --grant password,refresh_token
  SECRET=$(tokend client create --id demo --quiet)
  tokend client create --id backend --mint --grant refresh_token
  tokend client create --id spa --public
  tokend client create --id backend --mint --mint-for spa
  tokend client create --id spa --public --origin http://localhost:5173 --cookie`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	id := fs.String("id", "", "client ID (required)")
	secret := fs.String("secret", "", "client secret, at least 32 characters and random (default: 256 random bits, printed once)")
	public := fs.Bool("public", false, "a public client, with no secret (refresh_token grant only)")
	grants := fs.String("grant", "client_credentials,refresh_token", "comma-separated grant types: client_credentials, refresh_token, password (with --public: refresh_token)")
	scope := fs.String("scope", "", "space- or comma-separated scopes the client may request (default: any)")
	mint := fs.Bool("mint", false, "may mint tokens for its users (POST /v1/tokens)")
	mintFor := fs.String("mint-for", "", "comma-separated public clients this client may start logins for (with --mint)")
	originFlag := fs.StringSlice("origin", nil, "browser origin allowed to use the client, scheme://host[:port] (repeatable, or comma-separated)")
	cookie := fs.Bool("cookie", false, "cookie mode: the refresh token travels in the server's HttpOnly cookie (with --origin)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.BoolP("quiet", "q", false, "print only the secret, for SECRET=$(tokend client create ... -q)")
	sf := addStoreFlags(fs, "encryption-")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *id == "" {
			return usageErrorf("--id is required")
		}
		if err := checkIDArg("--id", *id, true); err != nil {
			return err
		}
		if *asJSON && *quiet {
			return usageErrorf("--json and --quiet: choose one")
		}
		origins, err := parseOrigins(*originFlag)
		if err != nil {
			return err
		}
		if *cookie && len(origins) == 0 {
			return usageErrorf("--cookie without --origin: cookie mode is for a browser app, whose origins the server must know to send it the cookie and to refuse other pages")
		}
		c := store.Client{ID: *id, Grants: splitList(*grants), Scopes: splitList(*scope), Mint: *mint, MintFor: splitList(*mintFor),
			Origins: origins, Cookie: *cookie, CreatedAt: time.Now()}
		for _, g := range c.Grants {
			if g != "client_credentials" && g != "refresh_token" && g != "password" {
				return usageErrorf("unknown grant %q: want client_credentials, refresh_token or password", g)
			}
		}
		if len(c.Grants) == 0 {
			return usageErrorf("--grant names no grant: want client_credentials, refresh_token or password")
		}
		if *public {
			// A public client cannot authenticate, and the server accepts
			// it only where no authentication is needed: refreshing a
			// token it was given.
			if !fs.Changed("grant") {
				c.Grants = []string{"refresh_token"}
			}
			switch {
			case fs.Changed("secret"):
				return usageErrorf("--public and --secret: a public client has no secret")
			case *mint:
				return usageErrorf("--public and --mint: minting needs the client's secret; create a confidential backend client with --mint")
			case fs.Changed("mint-for"):
				return usageErrorf("--public and --mint-for: a public client cannot mint; give --mint-for %s to a confidential backend client with --mint", *mintFor)
			case slices.ContainsFunc(c.Grants, func(g string) bool { return g != "refresh_token" }):
				return usageErrorf("--public with --grant %s: a public client has no secret, so it can only use refresh_token", *grants)
			case *quiet:
				return usageErrorf("--public and --quiet: a public client has no secret to print")
			}
		} else {
			switch {
			case fs.Changed("mint-for") && !*mint:
				return usageErrorf("--mint-for without --mint: only a client that may mint can start logins for %s", *mintFor)
			case fs.Changed("mint-for") && len(c.MintFor) == 0:
				return usageErrorf("--mint-for names no client: want the IDs of public clients, comma-separated")
			case slices.ContainsFunc(c.MintFor, func(m string) bool { return store.CheckClientID(m) != nil }):
				return usageError{err: fmt.Errorf("each client of --mint-for must be %s", store.ClientIDRule), brief: true}
			case slices.Contains(c.MintFor, c.ID):
				return usageErrorf("--mint-for names %s itself: a client mints for itself without it", c.ID)
			}
			switch n := utf8.RuneCountInString(*secret); {
			case *secret == "":
				*secret = randomSecret()
			case n < minSecretLength:
				return usageErrorf("--secret has %d characters: a client secret needs at least %d, and random ones, since the throttle does not lock a client for failures from everywhere (omit --secret for 256 random bits)", n, minSecretLength)
			}
			c.SecretHash = server.HashClientSecret(*secret)
		}
		return sf.with(ctx, cio.stderr, func(st store.Store) error {
			if err := st.CreateClient(ctx, c); err != nil {
				if errors.Is(err, store.ErrExists) {
					return fmt.Errorf("client %s already exists (tokend client delete %s removes it)", c.ID, c.ID)
				}
				return err
			}
			switch {
			case *asJSON:
				return json.NewEncoder(cio.stdout).Encode(map[string]any{"client_id": c.ID, "client_secret": *secret, "grants": c.Grants, "scopes": c.Scopes, "mint": c.Mint, "mint_for": c.MintFor,
					"origins": c.Origins, "cookie": c.Cookie})
			case *quiet:
				fmt.Fprintln(cio.stdout, *secret)
				return nil
			}
			fmt.Fprintf(cio.stdout, "client_id:     %s\n", c.ID)
			if *secret != "" {
				fmt.Fprintf(cio.stdout, "client_secret: %s\n(shown once: only its hash is stored)\n", *secret)
			}
			return nil
		})
	}
	return cmd
}

// minSecretLength is the shortest client secret `client create` takes
// from an operator: the throttle has no account lock for client secrets
// (server.Throttle), so a secret must be beyond guessing on its own
// (RFC 6749 §10.10).
const minSecretLength = 32
