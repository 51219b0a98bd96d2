package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/sealed"
)

// newServeCmd is `tokend serve`: its settings come from flags, TOKEND_*
// variables and a YAML file (config.go).
func newServeCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "run the token server",
		Long: `Run the token server.

Each setting comes, in rising precedence, from its default, the YAML file
named by --config (keys are the flags' names: access-ttl: 15m), its
TOKEND_* variable (TOKEND_ACCESS_TTL=15m) and its flag (--access-ttl 15m).
tokend.example.yaml in the repository lists them all.

SIGTERM, SIGINT and SIGHUP shut it down gracefully: it stops accepting
connections, lets the requests in flight finish (up to 10 seconds), logs
"shutting down" and exits 0. SIGHUP reloads nothing: signing keys, server
secrets, clients and users are read from the store as they change (keys
and secrets every --key-reload), and settings take a restart.`,
		Example: `  tokend serve
  tokend serve --addr 0.0.0.0:8080 --issuer https://auth.example.com --store sqlite:///var/lib/tokend/tokend.db
  TOKEND_CONFIG=/etc/tokend.yaml tokend serve`,
		Args: noArgs,
	}
	flagged, config := registerSettings(cmd.Flags(), os.Getenv)
	printConfig := cmd.Flags().Bool("print-config", false, "print the effective settings (defaults, config file, TOKEND_* variables and flags; secrets redacted) as YAML, and exit")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := resolveSettings(cmd.Flags(), flagged, *config, os.Getenv)
		if err != nil {
			return usageError{err: err, brief: true}
		}
		if *printConfig {
			return printSettings(cio.stdout, cfg, cmd.Flags(), *config, os.Getenv)
		}
		return serve(cmd.Context(), cfg, cio.stdout, cio.stderr)
	}
	return cmd
}

// serve runs the server with the settings cfg (checked) until ctx ends.
func serve(ctx context.Context, cfg settings, stdout, stderr io.Writer) error {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // checked
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ring, err := loadKeyring(cfg.EncryptionKeyFile, cfg.EncryptionOldKeyFile, os.Getenv)
	if err != nil {
		return err
	}
	logKeyring(log, ring)
	ss, err := openServeStore(ctx, cfg, ring, log)
	if err != nil {
		return err
	}
	st := ss.st
	defer st.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	defer ln.Close()
	if cfg.Issuer == "" { // a port of 0: the one the listener got
		cfg.Issuer = "http://" + ln.Addr().String()
	}
	// A retired key stays published while tokens it signed may live: the
	// access TTL, or up to a day for minted tokens.
	ks, err := keys.Load(ctx, st, cfg.KeyAlg, max(cfg.AccessTTL, 24*time.Hour)+time.Minute, time.Now())
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	secretRing, err := secrets.Load(ctx, st)
	if err != nil {
		return fmt.Errorf("load server secrets: %w", err)
	}
	srv, err := newServer(cfg, ss, ks, secretRing, log)
	if err != nil {
		return err
	}
	hs := newHTTPServer(srv, log)

	bg, stopBG := context.WithCancel(ctx)
	gcDone := make(chan struct{})
	defer func() { stopBG(); <-gcDone }() // the gc lease is released before the store closes
	go background(bg, log, cfg, ks, &secretReload{st: st, srv: srv, was: secretRing})
	go func() { defer close(gcDone); runGC(bg, log, cfg.GCInterval, st, ss.leaser, gcHolder()) }()

	errc := make(chan error, 3)
	go func() { errc <- hs.Serve(ln) }()
	servers := []*http.Server{hs}
	for _, l := range cfg.listeners(srv) {
		as, err := serveAux(l, errc, log, stdout)
		if err != nil {
			_ = hs.Close()
			return err
		}
		defer as.Close()
		servers = append(servers, as)
	}
	if cfg.AdminAddr == "" {
		log.Info("the admin plane, /v1 (mint, sessions), is served on the public address; --admin-addr moves it to a listener of its own", "addr", ln.Addr().String())
	}
	log.Info("tokend serving", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "store", redacted(cfg.Store), "kid", ks.ActiveKeyID())
	fmt.Fprintf(stdout, "tokend: listening on http://%s\n", ln.Addr())
	return waitShutdown(ctx, log, servers, errc)
}

// serveStore is the store serve uses and the Leaser found through it.
type serveStore struct {
	st     store.Store  // sealed if there is an encryption key
	leaser store.Leaser // for the garbage collector's lease; nil without one
}

// openServeStore opens the store of cfg, sealed with ring, and finds the
// capabilities of its backend. It warns on log if the store is a Redis
// whose persistence can lose rotations.
func openServeStore(ctx context.Context, cfg settings, ring sealed.Keyring, log *slog.Logger) (serveStore, error) {
	// Every call of st has the deadline cfg.StoreTimeout; so have the
	// FailureCounter and the Leaser found through it (store.Capability)
	// if the backend has them.
	st, err := openStore(ctx, cfg.Store, cfg.StoreTimeout)
	if err != nil {
		return serveStore{}, err
	}
	st = wrapSealed(st, ring)
	if rs, ok := store.Capability[*redis.Store](st); ok {
		if w := rs.Durability().Warning(); w != "" {
			log.Warn("redis persistence can lose rotations on a crash", "store", redacted(cfg.Store), "detail", w)
		}
	}
	leaser, _ := store.Capability[store.Leaser](st)
	return serveStore{st: st, leaser: leaser}, nil
}

// newServer returns the token server of the settings cfg on the store
// ss, signing with ks and tagging with secretRing.
func newServer(cfg settings, ss serveStore, ks *keys.Set, secretRing secrets.Ring, log *slog.Logger) (*server.Server, error) {
	proxies, _ := parseTrustedProxies(cfg.TrustedProxies) // checked
	scfg := server.Config{
		Store: ss.st, Signer: ks, Secrets: secretRing, Issuer: cfg.Issuer, Audience: cfg.Audience,
		AccessTTL: cfg.AccessTTL, RefreshIdle: cfg.RefreshIdle, RefreshAbsolute: cfg.RefreshAbsolute, Grace: cfg.Grace,
		Logger:       log,
		StoreTimeout: -1, // st is bounded already
		Throttle: server.Throttle{PerSource: cfg.ThrottleSource, PerPair: cfg.ThrottlePair, PerAccount: cfg.ThrottleAccount,
			Window: cfg.ThrottleWindow, MaxDelay: cfg.ThrottleMaxDelay},
		TrustedProxies: proxies,
		JWKSMaxAge:     cfg.JWKSMaxAge, AccessLog: cfg.AccessLog,
		NoMetricsRoute: cfg.MetricsAddr != "", NoAdminRoutes: cfg.AdminAddr != "",
		SessionTTL: cfg.SessionTTL, Templates: cfg.Templates,
	}
	if err := cfg.applyHashing(&scfg); err != nil {
		return nil, usageError{err: err, brief: true}
	}
	if cfg.Grace == 0 {
		scfg.Grace = -1 // none: server.Config takes 0 as its default
	}
	return server.New(scfg)
}

// auxListener is a listener beside the public one: its setting's name,
// address, handler, what it serves (for the log) and the line on stdout
// that names its URL (a format of the address).
type auxListener struct {
	name, addr, paths, line string
	h                       http.Handler
}

// listeners are the listeners of admin-addr and metrics-addr that s
// sets: /metrics goes to metrics-addr if set, else with /v1 to admin-addr.
func (s settings) listeners(srv *server.Server) []auxListener {
	var ls []auxListener
	if s.AdminAddr != "" {
		paths := "/v1, /metrics"
		if s.MetricsAddr != "" {
			paths = "/v1"
		}
		ls = append(ls, auxListener{"admin-addr", s.AdminAddr, paths, "admin on http://%s", srv.Admin()})
	}
	if s.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.Metrics())
		ls = append(ls, auxListener{"metrics-addr", s.MetricsAddr, "/metrics", "metrics on http://%s/metrics", mux})
	}
	return ls
}

// serveAux serves l, reports a failure of its listener on errc and its
// address on stdout, and returns its server, for the caller to shut down.
func serveAux(l auxListener, errc chan<- error, log *slog.Logger, stdout io.Writer) (*http.Server, error) {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	as := newHTTPServer(l.h, log)
	go func() {
		if err := as.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s listener: %w", l.name, err)
		}
	}()
	log.Info("serving "+l.paths, l.name, ln.Addr().String())
	fmt.Fprintf(stdout, "tokend: "+l.line+"\n", ln.Addr())
	return as, nil
}

// waitShutdown waits until a server fails (an error on errc) or ctx ends,
// and then shuts every server down, giving requests in flight 10 seconds
// to end; the first of servers is the public one, whose Serve sends on
// errc when it returns.
func waitShutdown(ctx context.Context, log *slog.Logger, servers []*http.Server, errc <-chan error) error {
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "cause", context.Cause(ctx))
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(shutdown); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// newHTTPServer returns the http.Server that serves h, with serve's
// timeouts (the load generator uses them too).
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// background reloads the signing keys and the server secrets (each
// instance its own: they are its memory); runGC deletes ended families. A
// key made by `tokend keys rotate` is published from the first reload
// after, and signs from its NotBefore, which rotate sets --key-reload +
// --jwks-max-age ahead: by then every instance has reloaded it and every
// verifier's cached JWKS holds it. A secret made by `tokend secrets
// rotate` verifies from the first reload after, and tags from 2 ×
// --key-reload + --clock-skew on.
func background(ctx context.Context, log *slog.Logger, cfg settings, ks *keys.Set, sr *secretReload) {
	reload := time.NewTicker(cfg.KeyReload)
	defer reload.Stop()
	// Requests reload the keys too (every KeyStaleness), so the change
	// is logged against the key seen at the last tick, whoever reloaded.
	was := ks.ActiveKeyID()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload.C:
			if err := ks.Reload(ctx, time.Now()); err != nil {
				log.Warn("reload signing keys", "err", err)
			} else if kid := ks.ActiveKeyID(); kid != was {
				log.Info("signing key changed", "kid", kid, "was", was)
				was = kid
			}
			sr.reload(ctx, log)
		}
	}
}

// secretReload hands the server secrets, read again from the store, to a
// running server.
type secretReload struct {
	st  store.Store
	srv *server.Server
	was secrets.Ring
}

// reload reads the ring again and gives it to the server, and logs a
// change (never a secret: their numbers).
func (r *secretReload) reload(ctx context.Context, log *slog.Logger) {
	ring, err := secrets.Load(ctx, r.st)
	if err == nil {
		err = r.srv.SetSecrets(ring)
	}
	if err != nil {
		log.Warn("reload server secrets", "err", err)
		return
	}
	if seqs(ring) != seqs(r.was) {
		log.Info("server secrets changed", "secrets", seqs(ring), "was", seqs(r.was), "tags", ring.Current(time.Now()).Seq)
	}
	r.was = ring
}

// seqs lists the numbers of a ring's secrets: "1,2".
func seqs(r secrets.Ring) string {
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = strconv.Itoa(x.Seq)
	}
	return strings.Join(s, ",")
}

// parseTrustedProxies parses --trusted-proxies: comma-separated addresses
// (taken as /32 or /128) and CIDR prefixes.
func parseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted-proxies: %w", err)
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted-proxies: %q is neither an address nor a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
