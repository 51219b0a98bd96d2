package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
)

// secretName names the server secret that derives refresh-token successors.
const secretName = "refresh-successor"

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := loadSettings(fs, args, os.Getenv)
	if err != nil {
		return usageError{err}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return usageError{fmt.Errorf("log-level: %w", err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	proxies, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return usageError{err}
	}

	ring, err := loadKeyring(cfg.EncryptionKeyFile, cfg.EncryptionOldKeyFile, os.Getenv)
	if err != nil {
		return err
	}
	logKeyring(log, ring)
	st, err := openSealedStore(ctx, cfg.Store, ring)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	// A retired key stays published while tokens it signed may live: the
	// access TTL, or up to a day for minted tokens.
	ks, err := keys.Load(ctx, st, cfg.KeyAlg, max(cfg.AccessTTL, 24*time.Hour)+time.Minute, now)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	secret, err := st.Secret(ctx, secretName, fresh)
	if err != nil {
		return fmt.Errorf("load server secret: %w", err)
	}
	scfg := server.Config{
		Store: st, Signer: ks, Secret: secret, Issuer: cfg.Issuer,
		AccessTTL: cfg.AccessTTL, RefreshIdle: cfg.RefreshIdle, RefreshAbsolute: cfg.RefreshAbsolute, Grace: cfg.Grace,
		Logger: log,
		Throttle: server.Throttle{PerSource: cfg.ThrottleSource, PerPair: cfg.ThrottlePair, PerAccount: cfg.ThrottleAccount,
			Window: cfg.ThrottleWindow, MaxDelay: cfg.ThrottleMaxDelay},
		TrustedProxies: proxies,
		JWKSMaxAge:     cfg.JWKSMaxAge, AccessLog: cfg.AccessLog, NoMetricsRoute: cfg.MetricsAddr != "",
	}
	if err := cfg.applyHashing(&scfg); err != nil {
		return usageError{err}
	}
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := newHTTPServer(srv, log)

	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go background(bg, log, cfg, ks, st)

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.Metrics())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		defer ms.Close()
		go func() {
			if err := ms.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		fmt.Fprintf(stdout, "tokend: metrics on http://%s/metrics\n", mln.Addr())
	}
	log.Info("tokend serving", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "store", cfg.Store, "kid", ks.ActiveKeyID())
	fmt.Fprintf(stdout, "tokend: listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHTTPServer returns the http.Server that serves h, with serve's
// timeouts (the load generator uses them too).
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// background reloads the signing keys (so `tokend keys rotate` takes effect
// while the server runs) and deletes ended families.
func background(ctx context.Context, log *slog.Logger, cfg settings, ks *keys.Set, st interface {
	DeleteExpired(context.Context, time.Time) (int, error)
}) {
	reload := time.NewTicker(cfg.KeyReload)
	defer reload.Stop()
	gc := time.NewTicker(cfg.GCInterval)
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload.C:
			if err := ks.Reload(ctx, time.Now()); err != nil {
				log.Warn("reload signing keys", "err", err)
			}
		case <-gc.C:
			// Revoked families are kept for a day for the sessions listing.
			n, err := st.DeleteExpired(ctx, time.Now().Add(-24*time.Hour))
			if err != nil {
				log.Warn("delete ended families", "err", err)
			} else if n > 0 {
				log.Info("deleted ended families", "count", n)
			}
		}
	}
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
