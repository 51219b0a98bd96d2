package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/internal/loadgen"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// newBenchCmd is the load generator: virtual clients, each holding its
// own refresh-token family, rotate it again and again through real HTTP on
// loopback; or, with --grant password, log in again and again with the
// password grant; or, with --grant authorization_code, log in once on
// the login page and then get and exchange codes again and again, beside
// rotations in the same run (loadgen.RunCodes).
func newBenchCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "load-test refresh-token rotation, password logins or code exchanges",
		Long: `Load-test refresh-token rotation (or, with --grant password, logins;
with --grant authorization_code, code exchanges beside rotations)
through real HTTP: against an in-process server on loopback by default,
or a running one with --target.

With --target, the server needs a client that may mint and refresh (and
use the password grant, for --grant password; the code flow with the
redirect URI ` + benchRedirectURI + `, for --grant authorization_code), and its secret:

  tokend client create --id bench --grant refresh_token,password --mint
  tokend bench --target http://127.0.0.1:8080 --client-id bench --client-secret SECRET

and for --grant authorization_code, a user (--username, --password) and

  tokend client create --id bench --grant refresh_token,authorization_code --mint --redirect-uri ` + benchRedirectURI,
		Args: noArgs,
	}
	var o benchOptions
	o.define(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o.storeSet = cmd.Flags().Changed("store")
		return bench(cmd.Context(), cio.stdout, o)
	}
	return cmd
}

// benchOptions are bench's flags.
type benchOptions struct {
	store, target          string
	storeSet               bool // --store was given
	instances              int
	clientID, clientSecret string
	levels                 string
	duration               time.Duration
	grant, scope           string
	username, password     string
	argon2, throttle       string
}

// define registers the flags of o on fs.
func (o *benchOptions) define(fs *pflag.FlagSet) {
	fs.StringVar(&o.store, "store", "memory:", "store of the in-process server: memory: or sqlite:///path.db")
	fs.StringVar(&o.target, "target", "", "base URL of a running server instead of an in-process one; several, comma-separated, take the requests in turn (a round-robin load balancer)")
	fs.IntVar(&o.instances, "instances", 1, "in-process servers, each with its own store handle (connection pool), taking the requests in turn")
	fs.StringVar(&o.clientID, "client-id", "bench", "with --target: a client that may mint and refresh (and log in, for --grant password)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "with --target: its secret (required)")
	fs.StringVar(&o.levels, "clients", "1,4,16,64", "comma-separated numbers of concurrent virtual clients")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each level runs")
	fs.StringVar(&o.grant, "grant", "refresh_token", "what to load: refresh_token (rotations), password (logins) or authorization_code (code exchanges, beside rotations)")
	fs.StringVar(&o.scope, "scope", "", "with --grant authorization_code: the scope of the authorization requests (openid: every exchange also signs an ID token); default: none sent")
	fs.StringVar(&o.username, "username", benchUser, "with --target and --grant password or authorization_code: the user who logs in")
	fs.StringVar(&o.password, "password", benchPassword, "with --target and --grant password or authorization_code: the user's password")
	fs.StringVar(&o.argon2, "argon2-params", defaultSettings().Argon2Params, "argon2id parameters of the in-process server's user; with --target, the server's (for the anchor of --grant password)")
	fs.StringVar(&o.throttle, "throttle", "", "the in-process server's failure throttle: on, off, or a list (off,on) to measure each at every level, every other level in reverse order (default: on for rotations; off for logins, which it would mostly answer 429 from one address before they reach the hashing)")
}

// benchPlan is what benchOptions.check makes of the flags.
type benchPlan struct {
	modes  []string // throttle modes of the in-process servers: "on", "off"
	levels []int
	params password.Params
}

// check checks the flags against each other and parses the lists.
func (o benchOptions) check() (benchPlan, error) {
	var p benchPlan
	if o.target != "" && o.clientSecret == "" {
		return p, usageErrorf("--target needs --client-id and --client-secret of a client that may mint (tokend client create --id bench --grant refresh_token,password --mint)")
	}
	if o.target != "" && o.storeSet {
		return p, usageErrorf("--store is the in-process server's: with --target, the server's own store is used")
	}
	if o.duration <= 0 {
		return p, usageErrorf("--duration must be positive, such as 5s, not %s", o.duration)
	}
	if o.grant != "refresh_token" && o.grant != "password" && o.grant != grantCode {
		return p, usageErrorf("--grant must be refresh_token, password or authorization_code, not %q", o.grant)
	}
	if o.scope != "" && o.grant != grantCode {
		return p, usageErrorf("--scope is for --grant authorization_code")
	}
	modes, err := o.throttleModes()
	if err != nil {
		return p, err
	}
	if o.instances < 1 || o.instances > 16 || o.instances > 1 && (o.target != "" || len(modes) > 1 || o.grant != "refresh_token") {
		return p, usageErrorf("--instances wants 1 to 16 in-process servers, for rotations with one --throttle mode (with --target, list the servers instead)")
	}
	var ns []int
	for _, f := range splitList(o.levels) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 4096 {
			return p, usageErrorf("--clients wants numbers from 1 to 4096, such as 1,4,16,64, not %q", f)
		}
		ns = append(ns, n)
	}
	params, err := password.ParseParams(o.argon2)
	if err != nil {
		return p, usageErrorf("--argon2-params: %w", err)
	}
	return benchPlan{modes: modes, levels: ns, params: params}, nil
}

// throttleModes parses --throttle, whose default depends on --grant and
// --target.
func (o benchOptions) throttleModes() ([]string, error) {
	throttle := o.throttle
	if throttle == "" {
		throttle = "on"
		if o.grant == "password" && o.target == "" {
			throttle = "off"
		}
	}
	var modes []string
	for _, m := range splitList(throttle) {
		if m != "on" && m != "off" {
			return nil, usageErrorf("--throttle wants on, off or a list of them, not %q", m)
		}
		modes = append(modes, m)
	}
	if len(modes) == 0 || o.target != "" && throttle != "on" || o.grant != "refresh_token" && len(modes) > 1 {
		return nil, usageErrorf("--throttle wants on and/or off (one of them for logins), and only for the in-process server")
	}
	return modes, nil
}

// bench runs the load generator (internal/loadgen) as o asks: against
// the servers of --target, or in-process ones it starts on loopback.
func bench(ctx context.Context, stdout io.Writer, o benchOptions) error {
	p, err := o.check()
	if err != nil {
		return err
	}
	// groups[i] are the servers that take the requests of run i in turn.
	groups, id, secret := [][]string{splitList(o.target)}, o.clientID, o.clientSecret
	if o.target == "" {
		stop, urls, err := benchServer(ctx, o.store, p.params, p.modes, o.instances)
		if err != nil {
			return err
		}
		defer stop()
		groups, id, secret = urls, "bench", benchSecret
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	if o.grant == "password" {
		return loadgen.RunLogins(ctx, stdout, loadgen.NewClient(hc, groups[0][:1], id, secret), loadgen.Logins{
			Levels: p.levels, Duration: o.duration, Username: o.username, Password: o.password, Params: p.params, Local: o.target == ""})
	}
	if o.grant == grantCode {
		against := o.target
		if against == "" {
			against = groups[0][0] + " (in-process, store " + redacted(o.store) + ")"
		}
		err := loadgen.RunCodes(ctx, stdout, loadgen.NewClient(hc, groups[0][:1], id, secret), loadgen.Codes{Levels: p.levels, Duration: o.duration,
			Username: o.username, Password: o.password, RedirectURI: benchRedirectURI, Scope: o.scope, Against: against})
		return benchHint(err, o.target, id)
	}
	r := loadgen.Rotations{Levels: p.levels, Duration: o.duration, Against: o.target}
	var all []string
	for i, g := range groups {
		all = append(all, g...)
		r.Groups = append(r.Groups, loadgen.Group{Throttle: p.modes[min(i, len(p.modes)-1)], Client: loadgen.NewClient(hc, g, id, secret)})
	}
	if o.target == "" {
		r.Against = strings.Join(all, " and ") + " (in-process, store " + redacted(o.store) + ")"
	}
	if err := loadgen.RunRotations(ctx, stdout, r); err != nil {
		return benchHint(err, o.target, id)
	}
	return nil
}

// benchHint adds to err, if the target refused the client, what client
// bench needs.
func benchHint(err error, target, id string) error {
	if target != "" && errors.Is(err, loadgen.ErrNoCode) {
		return fmt.Errorf("%w\n--grant authorization_code needs the user of --username and --password, and a client with the code flow and the redirect URI %s:\n  tokend client create --id %s --grant refresh_token,authorization_code --mint --redirect-uri %s", err, benchRedirectURI, id, benchRedirectURI)
	}
	if target != "" && errors.Is(err, loadgen.ErrUnauthorized) {
		return fmt.Errorf("%w\n--target needs a client that may mint and refresh: check --client-id %s and --client-secret, or create one with\n  tokend client create --id %s --grant refresh_token,password --mint", err, id, id)
	}
	if target != "" && errors.Is(err, loadgen.ErrForbidden) {
		return fmt.Errorf("%w\n--target needs a client with --mint and the refresh_token grant:\n  tokend client delete %s && tokend client create --id %s --grant refresh_token,password --mint", err, id, id)
	}
	return err
}

// The in-process server's client and user, and the redirect URI of the
// code flow (never visited: the code is read from the redirect).
const (
	benchSecret      = "bench-secret-for-the-in-process-server"
	benchUser        = "bench"
	benchPassword    = "bench-password"
	benchRedirectURI = "http://127.0.0.1/bench-callback"
	grantCode        = "authorization_code"
)

// benchServer starts in-process servers on loopback on one store: for
// each throttle mode ("on": serve's default configuration; "off": the
// throttle disabled), a group of instances servers, each with its own
// store handle (its own connection pool or file handle; memory: shares
// the one store) and signing-key set, as separate processes would have.
// They have serve's default settings (argon2id parameters: params) and
// HTTP timeouts, a client that may mint, refresh, log in and use the
// code flow (redirect URI benchRedirectURI), and the user benchUser.
func benchServer(ctx context.Context, storeURL string, params password.Params, modes []string, instances int) (stop func(), groups [][]string, err error) {
	st, err := openStore(ctx, storeURL, store.DefaultTimeout)
	if err != nil {
		return nil, nil, err
	}
	var servers []*http.Server
	closers := []func() error{st.Close}
	stop = func() {
		for _, hs := range servers {
			_ = hs.Close()
		}
		for _, c := range closers {
			_ = c()
		}
	}
	fail := func(err error) (func(), [][]string, error) {
		stop()
		return nil, nil, err
	}
	if _, err := keys.Load(ctx, st, "EdDSA", time.Hour, time.Now()); err != nil {
		return fail(err)
	}
	_, _ = st.DeleteClient(ctx, "bench", time.Now())
	if err := st.CreateClient(ctx, store.Client{ID: "bench", SecretHash: server.HashClientSecret(benchSecret),
		Grants: []string{"refresh_token", "password", grantCode}, RedirectURIs: []string{benchRedirectURI}, Mint: true, CreatedAt: time.Now()}); err != nil {
		return fail(err)
	}
	defaults := defaultSettings()
	defaults.Argon2Params = params.String()
	var cfg server.Config
	if err := defaults.applyHashing(&cfg); err != nil {
		return fail(err)
	}
	hash, err := cfg.PasswordParams.Hash(benchPassword)
	if err == nil {
		_, _ = st.DeleteUser(ctx, benchUser, time.Now())
		err = st.CreateUser(ctx, store.User{Name: benchUser, PasswordHash: hash, CreatedAt: time.Now()})
	}
	if err != nil {
		return fail(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	for _, mode := range modes {
		var group []string
		for i := range instances {
			handle := st
			if i > 0 && !strings.HasPrefix(storeURL, "memory:") {
				if handle, err = openStore(ctx, storeURL, store.DefaultTimeout); err != nil {
					return fail(err)
				}
				closers = append(closers, handle.Close)
			}
			ks, err := keys.Load(ctx, handle, "EdDSA", time.Hour, time.Now())
			if err != nil {
				return fail(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fail(err)
			}
			c := cfg
			c.Store, c.Signer, c.Secret, c.Issuer = handle, ks, secret, "http://"+ln.Addr().String()
			c.Throttle = server.Throttle{Disabled: mode == "off"}
			srv, err := server.New(c)
			if err != nil {
				ln.Close()
				return fail(err)
			}
			hs := newHTTPServer(srv, slog.New(slog.DiscardHandler))
			servers = append(servers, hs)
			go func() { _ = hs.Serve(ln) }()
			group = append(group, "http://"+ln.Addr().String())
		}
		groups = append(groups, group)
	}
	return stop, groups, nil
}
