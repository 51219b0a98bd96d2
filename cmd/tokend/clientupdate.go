package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// updateAttempts is how often `client update` and `client rotate-secret`
// read the client again after another change came first (ErrConflict).
const updateAttempts = 10

// listFlag is one list of a client that `client update` changes: --NAME
// replaces the list, --add-NAME adds to it and --remove-NAME removes from
// it (each repeatable, or comma-separated where the values cannot hold a
// comma).
type listFlag struct {
	name             string                              // the flag of `client create`: "origin"
	field            func(c *store.Client) *[]string     // the list in a client
	parse            func(vs []string) ([]string, error) // splits and checks the values of one flag
	set, add, remove []string
}

// updateFlags are the flags of `client update` that change the client.
type updateFlags struct {
	lists                   []*listFlag
	mint, cookie, thirdPart bool
}

func commaList(vs []string) ([]string, error) {
	var out []string
	for _, v := range vs {
		out = append(out, splitList(v)...)
	}
	return out, nil
}

func wholeValues(vs []string) ([]string, error) {
	return slices.DeleteFunc(slices.Clone(vs), func(v string) bool { return v == "" }), nil
}

// define registers the flags on fs.
func (u *updateFlags) define(fs *pflag.FlagSet) {
	u.lists = []*listFlag{
		{name: "origin", field: func(c *store.Client) *[]string { return &c.Origins }, parse: parseOrigins},
		{name: "redirect-uri", field: func(c *store.Client) *[]string { return &c.RedirectURIs }, parse: wholeValues},
		{name: "post-logout-redirect-uri", field: func(c *store.Client) *[]string { return &c.PostLogoutRedirectURIs }, parse: wholeValues},
		{name: "grant", field: func(c *store.Client) *[]string { return &c.Grants }, parse: commaList},
		{name: "scope", field: func(c *store.Client) *[]string { return &c.Scopes }, parse: commaList},
		{name: "mint-for", field: func(c *store.Client) *[]string { return &c.MintFor }, parse: commaList},
		{name: "resource", field: func(c *store.Client) *[]string { return &c.Resources }, parse: wholeValues},
	}
	for _, l := range u.lists {
		fs.StringArrayVar(&l.set, l.name, nil, "replace the client's "+l.name+" list by these (repeatable; \"\" empties it)")
		fs.StringArrayVar(&l.add, "add-"+l.name, nil, "add a "+l.name+" (repeatable)")
		fs.StringArrayVar(&l.remove, "remove-"+l.name, nil, "remove a "+l.name+" (repeatable; it must be there)")
	}
	fs.BoolVar(&u.mint, "mint", false, "may mint tokens for its users (--mint=false takes it away)")
	fs.BoolVar(&u.cookie, "cookie", false, "cookie mode (--cookie=false ends it)")
	fs.BoolVar(&u.thirdPart, "third-party", false, "a third-party client, whose users consent (--third-party=false: first-party)")
}

// changes reports whether fs names any change, and refuses a list both
// replaced and added to or removed from.
func (u *updateFlags) changes(fs *pflag.FlagSet) (bool, error) {
	changed := fs.Changed("mint") || fs.Changed("cookie") || fs.Changed("third-party")
	for _, l := range u.lists {
		set, edit := fs.Changed(l.name), fs.Changed("add-"+l.name) || fs.Changed("remove-"+l.name)
		if set && edit {
			return false, usageErrorf("--%s replaces the list: give it alone, or --add-%s/--remove-%s", l.name, l.name, l.name)
		}
		changed = changed || set || edit
	}
	return changed, nil
}

// apply returns prev changed by the flags fs names. It never shares a
// list with prev.
func (u *updateFlags) apply(fs *pflag.FlagSet, prev store.Client) (store.Client, error) {
	next := prev
	for _, l := range u.lists {
		p := l.field(&next)
		list := slices.Clone(*p)
		if fs.Changed(l.name) {
			vs, err := l.parse(l.set)
			if err != nil {
				return store.Client{}, err
			}
			list = vs
		}
		add, err := l.parse(l.add)
		if err != nil {
			return store.Client{}, err
		}
		for _, v := range add {
			if !slices.Contains(list, v) {
				list = append(list, v)
			}
		}
		remove, err := l.parse(l.remove)
		if err != nil {
			return store.Client{}, err
		}
		for _, v := range remove {
			i := slices.Index(list, v)
			if i < 0 {
				return store.Client{}, usageErrorf("--remove-%s %q: client %s has no such %s (it has: %s)", l.name, v, prev.ID, l.name, orNone(list))
			}
			list = slices.Delete(list, i, i+1)
		}
		if len(list) == 0 {
			list = nil
		}
		*p = list
	}
	if fs.Changed("mint") {
		next.Mint = u.mint
	}
	if fs.Changed("cookie") {
		next.Cookie = u.cookie
	}
	if fs.Changed("third-party") {
		next.ThirdParty = u.thirdPart
	}
	return next, nil
}

// checkClientPolicy checks a client as it would be stored, by `client
// create` or `client update`: the rules of create's flags, on the
// record, so that an update can never store what create refuses.
func checkClientPolicy(c store.Client) error {
	if len(c.Grants) == 0 {
		return usageErrorf("client %s would have no grant: want authorization_code, client_credentials, refresh_token or password", c.ID)
	}
	for _, g := range c.Grants {
		if !slices.Contains(knownGrants, g) {
			return usageErrorf("unknown grant %q: want authorization_code, client_credentials, refresh_token or password", g)
		}
	}
	if _, err := parseOrigins(c.Origins); err != nil {
		return err
	}
	for i, sc := range c.Scopes {
		switch {
		case !oauth.IsScopeToken(sc):
			return usageErrorf("scope %q is not a scope token: printable ASCII other than space, \" and \\ (RFC 6749 §3.3)", sc)
		case slices.Contains(c.Scopes[:i], sc):
			return usageErrorf("scope %q is given twice", sc)
		}
	}
	if c.Cookie && len(c.Origins) == 0 {
		return usageErrorf("cookie mode without an origin: cookie mode is for a browser app, whose origins the server must know to send it the cookie and to refuse other pages")
	}
	if err := checkRedirects(c); err != nil {
		return err
	}
	if len(c.SecretHash) == 0 {
		switch {
		case c.Mint:
			return usageErrorf("client %s is public: minting needs the client's secret", c.ID)
		case len(c.MintFor) > 0:
			return usageErrorf("client %s is public: a public client cannot mint for others", c.ID)
		case slices.ContainsFunc(c.Grants, func(g string) bool { return g != "refresh_token" && g != "authorization_code" }):
			return usageErrorf("client %s is public: it has no secret, so it can only use refresh_token and authorization_code (with PKCE)", c.ID)
		}
		return nil
	}
	switch {
	case len(c.MintFor) > 0 && !c.Mint:
		return usageErrorf("mint-for without mint: only a client that may mint can start families for %s", strings.Join(c.MintFor, ","))
	case slices.ContainsFunc(c.MintFor, func(m string) bool { return store.CheckClientID(m) != nil }):
		return usageError{err: fmt.Errorf("each client of mint-for must be %s", store.ClientIDRule), brief: true}
	case slices.Contains(c.MintFor, c.ID):
		return usageErrorf("mint-for names %s itself: a client mints for itself without it", c.ID)
	}
	return nil
}

// newClientUpdateCmd is `tokend client update`.
func newClientUpdateCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID [flags]",
		Short: "change a client in place; its logins go on",
		Long: `Change a client in place. Each list of the client (origins, redirect URIs,
post-logout redirect URIs, grants, scopes, mint-for, resources) takes
--add-NAME and --remove-NAME, or --NAME to replace it whole (the flag of
tokend client create). The result is checked as client create checks a
new client, then stored as one compare-and-set: a concurrent change is
read again, never overwritten. The client is printed (never a secret),
then what the change does to its logins.

Every instance reads clients from the store on every request, so the
change holds on all of them from the next request on (a browser origin
new to every client is answered by CORS within 5 seconds, when each
instance next reads the list of all origins). No login ends:
families started before go on refreshing. Removing the refresh_token
grant refuses their refreshes (unauthorized_client) until it is given
back; removing a scope or a resource narrows their next access tokens
(a login left with none of its resources must log in again); removing an
origin refuses the browser app on it. To change the secret, use
tokend client rotate-secret.`,
		Example: `  tokend client update spa --add-origin https://staging.example.com
  tokend client update spa --add-redirect-uri https://staging.example.com/callback
  tokend client update backend --remove-grant password --scope read,write
  tokend client update backend --mint=false`,
		Args: exactArgs(1, "one client ID"),
	}
	var u updateFlags
	fs := cmd.Flags()
	u.define(fs)
	asJSON := fs.Bool("json", false, "print the client as JSON")
	sf := addStoreFlags(fs, "encryption-")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, id := cmd.Context(), args[0]
		if err := checkIDArg("the client ID", id, false); err != nil {
			return err
		}
		changed, err := u.changes(fs)
		if err != nil {
			return err
		}
		if !changed {
			return usageErrorf("nothing to change: name a change, e.g. --add-origin URL (tokend client update -h lists them)")
		}
		return sf.with(ctx, cio.stderr, func(st store.Store) error {
			prev, next, err := updateClient(ctx, st, id, func(prev store.Client) (store.Client, error) {
				next, err := u.apply(fs, prev)
				if err != nil {
					return store.Client{}, err
				}
				return next, checkClientPolicy(next)
			})
			if err != nil {
				return err
			}
			if err := printClient(cio.stdout, next, *asJSON); err != nil {
				return err
			}
			notes, err := updateEffects(ctx, st, prev, next, time.Now())
			if err != nil {
				return err
			}
			out := cio.stdout // with --json, stdout is the JSON alone
			if *asJSON {
				out = cio.stderr
			}
			for _, n := range notes {
				fmt.Fprintln(out, n)
			}
			return nil
		})
	}
	return cmd
}

// updateClient reads client id, changes it by change and stores the
// result as a compare-and-set, reading again when another change came
// first. It returns the client before and after; both are the same when
// change changed nothing (then nothing is written).
func updateClient(ctx context.Context, st store.Store, id string, change func(prev store.Client) (store.Client, error)) (store.Client, store.Client, error) {
	for range updateAttempts {
		prev, err := st.GetClient(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return prev, prev, fmt.Errorf("no client %s (tokend client list shows them)", id)
		}
		if err != nil {
			return prev, prev, err
		}
		next, err := change(prev)
		if err != nil {
			return prev, prev, err
		}
		if next.Equal(prev) {
			return prev, prev, nil
		}
		err = st.UpdateClient(ctx, prev, next)
		switch {
		case err == nil:
			return prev, next, nil
		case errors.Is(err, store.ErrNotFound):
			return prev, prev, fmt.Errorf("no client %s: it was deleted meanwhile", id)
		case !errors.Is(err, store.ErrConflict):
			return prev, prev, err
		}
	}
	return store.Client{}, store.Client{}, fmt.Errorf("client %s keeps changing concurrently; nothing changed, try again: %w", id, store.ErrConflict)
}

// printClient prints c without any secret: a table, or JSON.
func printClient(w io.Writer, c store.Client, asJSON bool) error {
	typ := "confidential"
	if len(c.SecretHash) == 0 {
		typ = "public"
	}
	var prevUntil string
	if len(c.PreviousSecretHash) > 0 && time.Now().Before(c.PreviousSecretExpiresAt) {
		prevUntil = c.PreviousSecretExpiresAt.UTC().Format(time.RFC3339)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"client_id": c.ID, "type": typ, "grants": c.Grants, "scopes": c.Scopes, "mint": c.Mint, "mint_for": c.MintFor,
			"origins": c.Origins, "cookie": c.Cookie, "redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs,
			"third_party": c.ThirdParty, "resources": c.Resources, "previous_secret_until": prevUntil})
	}
	scopes := strings.Join(c.Scopes, " ")
	if scopes == "" {
		scopes = "(any)"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"client_id", c.ID}, {"type", typ}, {"grants", orNone(c.Grants)}, {"scopes", scopes},
		{"mint", fmt.Sprint(c.Mint)}, {"mint_for", orNone(c.MintFor)}, {"origins", orNone(c.Origins)}, {"cookie", fmt.Sprint(c.Cookie)},
		{"redirect_uris", orNone(c.RedirectURIs)}, {"post_logout_redirect_uris", orNone(c.PostLogoutRedirectURIs)},
		{"third_party", fmt.Sprint(c.ThirdParty)}, {"resources", orNone(c.Resources)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if prevUntil != "" {
		fmt.Fprintf(tw, "previous_secret:\tworks until %s\n", prevUntil)
	}
	return tw.Flush()
}

// orNone is vs comma-separated, or "(none)".
func orNone(vs []string) string {
	if len(vs) == 0 {
		return "(none)"
	}
	return strings.Join(vs, ",")
}

// removed returns the values of before that after lacks.
func removed(before, after []string) []string {
	var out []string
	for _, v := range before {
		if !slices.Contains(after, v) {
			out = append(out, v)
		}
	}
	return out
}

// updateEffects says what the change from prev to next does to the
// client's logins active at now, one line each; "no login ends" when it
// restricts none.
func updateEffects(ctx context.Context, st store.Store, prev, next store.Client, now time.Time) ([]string, error) {
	if next.Equal(prev) {
		return []string{fmt.Sprintf("client %s unchanged: it already was so", prev.ID)}, nil
	}
	fams, err := st.ListFamilies(ctx, store.FamilyFilter{ClientID: prev.ID, ActiveAt: now})
	if err != nil {
		return nil, err
	}
	holding := func(has func(f store.Family) bool) int {
		n := 0
		for _, f := range fams {
			if has(f) {
				n++
			}
		}
		return n
	}
	var notes []string
	if slices.Contains(removed(prev.Grants, next.Grants), "refresh_token") {
		notes = append(notes, fmt.Sprintf("restricts logins: refresh_token removed: %s's %s cannot refresh (unauthorized_client) until it is added back", prev.ID, activeLogins(len(fams))))
	}
	for _, s := range removed(prev.Scopes, next.Scopes) {
		if len(next.Scopes) == 0 {
			break // any scope now
		}
		n := holding(func(f store.Family) bool { return slices.Contains(strings.Fields(f.Scope), s) })
		notes = append(notes, fmt.Sprintf("restricts logins: scope %s removed: %s hold it and go on without it", s, activeLogins(n)))
	}
	for _, r := range removed(prev.Resources, next.Resources) {
		n := holding(func(f store.Family) bool { return slices.Contains(f.Audience, r) })
		notes = append(notes, fmt.Sprintf("restricts logins: resource %s removed: %s are for it and get tokens without it (one left with no resource must log in again)", r, activeLogins(n)))
	}
	for _, o := range removed(prev.Origins, next.Origins) {
		notes = append(notes, fmt.Sprintf("restricts logins: origin %s removed: a browser app on it can no longer use %s", o, prev.ID))
	}
	if prev.Cookie != next.Cookie {
		notes = append(notes, fmt.Sprintf("restricts logins: cookie mode %s: a browser app's logins kept the other way may have to log in again (%s has %s)", onOff(next.Cookie), prev.ID, activeLogins(len(fams))))
	}
	if len(notes) == 0 {
		notes = append(notes, fmt.Sprintf("no login ends (%s has %s)", prev.ID, activeLogins(len(fams))))
	}
	return notes, nil
}

// activeLogins is "1 active login" or "N active logins".
func activeLogins(n int) string {
	if n == 1 {
		return "1 active login"
	}
	return fmt.Sprintf("%d active logins", n)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// defaultOverlap is how long `client rotate-secret` keeps the previous
// secret working: a day, for every deployment of the client to take the
// new one.
const defaultOverlap = 24 * time.Hour

// newClientRotateSecretCmd is `tokend client rotate-secret`.
func newClientRotateSecretCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-secret CLIENT_ID [--overlap DURATION]",
		Short: "give a client a new secret; the old one works during the overlap",
		Long: `Give a confidential client a new secret (256 random bits, printed once:
only its hash is stored). The previous secret keeps working for
--overlap (default 24h) on every instance, so that the client's
deployments can move to the new one; then only the new one works.
--overlap 0 ends the previous secret at once. A secret kept from an
earlier rotation ends at once. No login ends.`,
		Example: `  tokend client rotate-secret backend
  SECRET=$(tokend client rotate-secret backend --overlap 1h --quiet)
  tokend client rotate-secret backend --overlap 0`,
		Args: exactArgs(1, "one client ID"),
	}
	fs := cmd.Flags()
	overlap := fs.Duration("overlap", defaultOverlap, "how long the previous secret keeps working; 0 ends it at once")
	quiet := fs.BoolP("quiet", "q", false, "print only the new secret, for SECRET=$(tokend client rotate-secret ... -q)")
	sf := addStoreFlags(fs, "encryption-")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, id := cmd.Context(), args[0]
		if err := checkIDArg("the client ID", id, false); err != nil {
			return err
		}
		if *overlap < 0 {
			return usageErrorf("--overlap %v: want 0 (end the previous secret now) or more", *overlap)
		}
		secret := randomSecret()
		now := time.Now()
		return sf.with(ctx, cio.stderr, func(st store.Store) error {
			prev, _, err := updateClient(ctx, st, id, func(prev store.Client) (store.Client, error) {
				if len(prev.SecretHash) == 0 {
					return store.Client{}, fmt.Errorf("client %s is public: it has no secret to rotate", id)
				}
				return prev.WithSecret(server.HashClientSecret(secret), now, *overlap), nil
			})
			if err != nil {
				return err
			}
			out := cio.stdout // with --quiet, stdout is the secret alone
			if *quiet {
				fmt.Fprintln(cio.stdout, secret)
				out = cio.stderr
			} else {
				fmt.Fprintf(cio.stdout, "client_id:     %s\nclient_secret: %s\n(shown once: only its hash is stored)\n", id, secret)
			}
			if len(prev.PreviousSecretHash) > 0 && now.Before(prev.PreviousSecretExpiresAt) {
				fmt.Fprintf(out, "the secret kept from the earlier rotation (until %s) stopped working now\n", prev.PreviousSecretExpiresAt.UTC().Format(time.RFC3339))
			}
			if *overlap == 0 {
				fmt.Fprintln(out, "the previous secret stopped working now (--overlap 0); no login ends")
			} else {
				fmt.Fprintf(out, "the previous secret works until %s (--overlap %v), then only the new one; no login ends\n",
					now.Add(*overlap).UTC().Format(time.RFC3339), *overlap)
			}
			return nil
		})
	}
	return cmd
}
