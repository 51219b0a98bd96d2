package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/server/redirecturi"
	"github.com/tokend/tokend/store"
)

// newClientCmd is `tokend client`: create, update, rotate-secret, list
// and delete OAuth clients.
func newClientCmd(cio *cmdIO) *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "manage OAuth clients", Args: cobra.ArbitraryArgs,
		RunE: groupRun("create, update, rotate-secret, list or delete")}
	c.AddCommand(newClientCreateCmd(cio), newClientUpdateCmd(cio), newClientRotateSecretCmd(cio))

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

	del := &cobra.Command{Use: "delete CLIENT_ID", Short: "delete a client and end all its families", Args: exactArgs(1, "one client ID")}
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
			// "sessions" is the word scripts and tests read: n families.
			fmt.Fprintf(cio.stdout, "deleted client %s; %d sessions revoked\n", args[0], n)
			return nil
		})
	}
	c.AddCommand(list, del)
	return c
}

// newClientCreateCmd is `tokend client create`: its flags
// (clientCreateOptions.define), their checks (client) and the action
// (create).
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
("client_id": "APP"), and the family it starts is then APP's.

A browser app lists the origins it runs on (--origin, as the browser
sends them: scheme://host[:port]); the server answers CORS for them and
refuses the client's requests from any other origin. With --cookie, its
refresh token lives in the server's HttpOnly cookie instead of the page.

An app whose users log in through tokend's login page (the authorization
code flow with PKCE; a single-page, mobile, desktop or CLI app, usually
public) registers its redirect URIs (--redirect-uri, matched exactly; a
loopback http://127.0.0.1/PATH matches any port, for native apps) and
gets authorization_code,refresh_token by default. A third-party app
(--third-party) asks its users' consent first. The password grant is
never given by default: prefer the code flow (RFC 9700 §2.4).`,
		Example: `  tokend client create --id demo --grant password,refresh_token
  SECRET=$(tokend client create --id demo --quiet)
  tokend client create --id backend --mint --grant refresh_token
  tokend client create --id spa --public
  tokend client create --id backend --mint --mint-for spa
  tokend client create --id spa --public --origin http://localhost:5173 --cookie
  tokend client create --id spa --public --redirect-uri http://localhost:5173/callback --origin http://localhost:5173
  tokend client create --id cli --public --redirect-uri http://127.0.0.1/callback`,
		Args: noArgs,
	}
	var o clientCreateOptions
	o.define(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := o.client(cmd.Flags())
		if err != nil {
			return err
		}
		return o.sf.with(cmd.Context(), cio.stderr, func(st store.Store) error {
			return o.create(cmd.Context(), st, c, cio.stdout)
		})
	}
	return cmd
}

// clientCreateOptions are the flags of `client create`.
type clientCreateOptions struct {
	id, secret    string
	public        bool
	grants, scope string
	mint          bool
	mintFor       string
	origins       []string
	cookie        bool
	redirects     []string // --redirect-uri
	postLogout    []string // --post-logout-redirect-uri
	thirdParty    bool
	resources     []string
	asJSON, quiet bool
	sf            *storeFlags
}

// define registers the flags of o on fs.
func (o *clientCreateOptions) define(fs *pflag.FlagSet) {
	fs.StringVar(&o.id, "id", "", "client ID (required)")
	fs.StringVar(&o.secret, "secret", "", "client secret, at least 32 characters and random (default: 256 random bits, printed once)")
	fs.BoolVar(&o.public, "public", false, "a public client, with no secret (authorization_code with PKCE, and refresh_token)")
	fs.StringVar(&o.grants, "grant", "client_credentials,refresh_token", "comma-separated grant types: authorization_code, client_credentials, refresh_token, password (with --public: authorization_code, refresh_token; with --redirect-uri the default is authorization_code,refresh_token)")
	fs.StringVar(&o.scope, "scope", "", "space- or comma-separated scopes the client may request (default: any)")
	fs.BoolVar(&o.mint, "mint", false, "may mint tokens for its users (POST /v1/tokens)")
	fs.StringVar(&o.mintFor, "mint-for", "", "comma-separated public clients this client may start families for (with --mint)")
	fs.StringSliceVar(&o.origins, "origin", nil, "browser origin allowed to use the client, scheme://host[:port] (repeatable, or comma-separated)")
	fs.BoolVar(&o.cookie, "cookie", false, "cookie mode: the refresh token travels in the server's HttpOnly cookie (with --origin)")
	fs.StringArrayVar(&o.redirects, "redirect-uri", nil, "redirect URI of the authorization code flow, matched exactly (a loopback http://127.0.0.1 or http://[::1] one on any port); https, http on loopback, or a private-use scheme such as com.example.app:/cb (repeatable)")
	fs.StringArrayVar(&o.postLogout, "post-logout-redirect-uri", nil, "where the end-session endpoint may send the browser after a logout; the same rules (repeatable)")
	fs.BoolVar(&o.thirdParty, "third-party", false, "a third-party client: users consent before it gets a code (first-party clients skip the consent page)")
	fs.StringArrayVar(&o.resources, "resource", nil, "a resource indicator (RFC 8707) the client may ask tokens for, an absolute URI: the tokens' aud (repeatable)")
	fs.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the secret, for SECRET=$(tokend client create ... -q)")
	o.sf = addStoreFlags(fs, "encryption-")
}

// client checks the flags (fs: which were given) and returns the client
// to create. For a confidential client it sets o.secret, to a random one
// if none was given, and stores its hash.
func (o *clientCreateOptions) client(fs *pflag.FlagSet) (store.Client, error) {
	if o.id == "" {
		return store.Client{}, usageErrorf("--id is required")
	}
	if err := checkIDArg("--id", o.id, true); err != nil {
		return store.Client{}, err
	}
	if o.asJSON && o.quiet {
		return store.Client{}, usageErrorf("--json and --quiet: choose one")
	}
	origins, err := parseOrigins(o.origins)
	if err != nil {
		return store.Client{}, err
	}
	if o.cookie && len(origins) == 0 {
		return store.Client{}, usageErrorf("--cookie without --origin: cookie mode is for a browser app, whose origins the server must know to send it the cookie and to refuse other pages")
	}
	c := store.Client{ID: o.id, Grants: splitList(o.grants), Scopes: splitList(o.scope), Mint: o.mint, MintFor: splitList(o.mintFor),
		Origins: origins, Cookie: o.cookie, RedirectURIs: o.redirects, PostLogoutRedirectURIs: o.postLogout,
		ThirdParty: o.thirdParty, Resources: o.resources, CreatedAt: time.Now()}
	if len(c.RedirectURIs) > 0 && !fs.Changed("grant") {
		c.Grants = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range c.Grants {
		if !slices.Contains(knownGrants, g) {
			return store.Client{}, usageErrorf("unknown grant %q: want authorization_code, client_credentials, refresh_token or password", g)
		}
	}
	if len(c.Grants) == 0 {
		return store.Client{}, usageErrorf("--grant names no grant: want authorization_code, client_credentials, refresh_token or password")
	}
	if err := checkRedirects(c); err != nil {
		return store.Client{}, err
	}
	if o.public {
		err = o.checkPublic(fs, &c)
	} else {
		err = o.checkConfidential(fs, &c)
	}
	if err != nil {
		return store.Client{}, err
	}
	// The rules on the record, which `client update` checks too.
	return c, checkClientPolicy(c)
}

// knownGrants are the grant types a client may be given.
var knownGrants = []string{"authorization_code", "client_credentials", "refresh_token", "password"}

// checkRedirects checks c's redirect URIs, post-logout redirect URIs and
// resources, and that the authorization code grant goes with a redirect
// URI.
func checkRedirects(c store.Client) error {
	for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		if err := redirecturi.Validate(u); err != nil {
			return usageError{err: fmt.Errorf("redirect URI %q: %w", u, err), brief: true}
		}
	}
	for _, r := range c.Resources {
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || strings.ContainsAny(r, "# ") {
			return usageErrorf("--resource %q: want an absolute URI without a fragment (RFC 8707 §2)", r)
		}
	}
	if slices.Contains(c.Grants, "authorization_code") && len(c.RedirectURIs) == 0 {
		return usageErrorf("the authorization_code grant needs at least one --redirect-uri")
	}
	return nil
}

// checkPublic checks the flags of a public client c. A public client
// cannot authenticate, and the server accepts it only where no
// authentication is needed: the authorization code grant, whose PKCE
// proves the client, and refreshing a token it was given.
func (o *clientCreateOptions) checkPublic(fs *pflag.FlagSet, c *store.Client) error {
	if !fs.Changed("grant") && len(c.RedirectURIs) == 0 {
		c.Grants = []string{"refresh_token"}
	}
	switch {
	case fs.Changed("secret"):
		return usageErrorf("--public and --secret: a public client has no secret")
	case o.mint:
		return usageErrorf("--public and --mint: minting needs the client's secret; create a confidential backend client with --mint")
	case fs.Changed("mint-for"):
		return usageErrorf("--public and --mint-for: a public client cannot mint; give --mint-for %s to a confidential backend client with --mint", o.mintFor)
	case slices.ContainsFunc(c.Grants, func(g string) bool { return g != "refresh_token" && g != "authorization_code" }):
		return usageErrorf("--public with --grant %s: a public client has no secret, so it can only use refresh_token and authorization_code (with PKCE)", o.grants)
	case o.quiet:
		return usageErrorf("--public and --quiet: a public client has no secret to print")
	}
	return nil
}

// checkConfidential checks the flags of a confidential client c and sets
// its secret (o.secret, or a random one) and its hash.
func (o *clientCreateOptions) checkConfidential(fs *pflag.FlagSet, c *store.Client) error {
	switch {
	case fs.Changed("mint-for") && !o.mint:
		return usageErrorf("--mint-for without --mint: only a client that may mint can start families for %s", o.mintFor)
	case fs.Changed("mint-for") && len(c.MintFor) == 0:
		return usageErrorf("--mint-for names no client: want the IDs of public clients, comma-separated")
	case slices.ContainsFunc(c.MintFor, func(m string) bool { return store.CheckClientID(m) != nil }):
		return usageError{err: fmt.Errorf("each client of --mint-for must be %s", store.ClientIDRule), brief: true}
	case slices.Contains(c.MintFor, c.ID):
		return usageErrorf("--mint-for names %s itself: a client mints for itself without it", c.ID)
	}
	switch n := utf8.RuneCountInString(o.secret); {
	case o.secret == "":
		o.secret = randomSecret()
	case n < minSecretLength:
		return usageErrorf("--secret has %d characters: a client secret needs at least %d, and random ones, since the throttle does not lock a client for failures from everywhere (omit --secret for 256 random bits)", n, minSecretLength)
	}
	c.SecretHash = server.HashClientSecret(o.secret)
	return nil
}

// create stores c in st and prints it, with its secret, to stdout.
func (o *clientCreateOptions) create(ctx context.Context, st store.Store, c store.Client, stdout io.Writer) error {
	if err := st.CreateClient(ctx, c); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("client %s already exists (tokend client update %s changes it in place; tokend client delete %s removes it)", c.ID, c.ID, c.ID)
		}
		return err
	}
	switch {
	case o.asJSON:
		return json.NewEncoder(stdout).Encode(map[string]any{"client_id": c.ID, "client_secret": o.secret, "grants": c.Grants, "scopes": c.Scopes, "mint": c.Mint, "mint_for": c.MintFor,
			"origins": c.Origins, "cookie": c.Cookie, "redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs,
			"third_party": c.ThirdParty, "resources": c.Resources})
	case o.quiet:
		fmt.Fprintln(stdout, o.secret)
		return nil
	}
	fmt.Fprintf(stdout, "client_id:     %s\n", c.ID)
	if o.secret != "" {
		fmt.Fprintf(stdout, "client_secret: %s\n(shown once: only its hash is stored)\n", o.secret)
	}
	return nil
}

// minSecretLength is the shortest client secret `client create` takes
// from an operator: the throttle has no account lock for client secrets
// (server.Throttle), so a secret must be beyond guessing on its own
// (RFC 6749 §10.10).
const minSecretLength = 32
