// Command login-app is a browser app whose user logs in through tokend's
// login page (the authorization code flow with PKCE, @tokend/web/login)
// and then watches the access token refresh. One process serves, on one
// loopback origin, tokend's server (package server, memory store) and the
// app's page. Run it from the repository root:
//
//	make example                  # builds web/ (npm ci, npm run build), then runs this
//	go run ./examples/login-app   # once web/dist is built
//
// It prints the address to open and the user to log in as: alice, with
// the password wonderland. Access tokens live 30 s (-ttl), so the page
// shows a refresh about every 15 s.
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// The app's client and its user.
const (
	clientID = "login-app"
	username = "alice"
	userPass = "wonderland"
)

//go:embed static
var static embed.FS

// ErrNoWebBuild is a web directory without the built browser package.
var ErrNoWebBuild = errors.New("the browser package is not built")

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "where to listen (loopback: the redirect URI is http)")
	web := flag.String("web", filepath.Join("web", "dist"), "the built @tokend/web (npm run build in web/)")
	ttl := flag.Duration("ttl", 30*time.Second, "access-token lifetime")
	flag.Parse()
	if err := checkWeb(*web); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := start(ctx, *addr, os.DirFS(*web), *ttl)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	fmt.Printf("login-app: open %s/ and log in as %s, password %s (access tokens live %s; Ctrl-C stops)\n", a.URL, username, userPass, *ttl)
	<-ctx.Done()
}

// checkWeb returns ErrNoWebBuild, saying how to build it, if dir lacks
// the modules the page imports.
func checkWeb(dir string) error {
	for _, f := range []string{"index.js", "login.js"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%w: %s is missing. From the repository root, run\n  make example\nor build it first:\n  cd web && npm ci && npm run build && cd .. && go run ./examples/login-app", ErrNoWebBuild, filepath.Join(dir, f))
		}
	}
	return nil
}

// app is the running example: tokend and the page on one origin.
type app struct {
	URL string // http://127.0.0.1:port, the issuer and the page's origin
	srv *http.Server
}

// Close stops serving.
func (a *app) Close() error { return a.srv.Close() }

// start listens on addr and serves tokend with the app's client and
// user, and the page, whose /web/ is the built browser package web.
func start(ctx context.Context, addr string, web fs.FS, ttl time.Duration) (*app, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	origin := "http://" + ln.Addr().String()
	tokens, err := newTokend(ctx, origin, ttl)
	if err != nil {
		ln.Close()
		return nil, err
	}
	pages, _ := fs.Sub(static, "static") // static/ is embedded
	mux := http.NewServeMux()
	mux.Handle("/", tokens) // /oauth/authorize, /login, /oauth/token, /.well-known/…
	mux.Handle("GET /{$}", page(pages))
	mux.Handle("GET /callback", page(pages)) // the redirect URI: the same page finishes the login
	mux.Handle("GET /app/", http.StripPrefix("/app/", http.FileServerFS(pages)))
	mux.Handle("GET /web/", http.StripPrefix("/web/", http.FileServerFS(web)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	a := &app{URL: origin, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// newTokend returns tokend's server at issuer, on a memory store with
// the app's client and user.
func newTokend(ctx context.Context, issuer string, ttl time.Duration) (http.Handler, error) {
	st := memory.New()
	signer, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	// A public client (no secret: PKCE protects its codes) for a page on
	// this origin: `tokend client create --id login-app --public
	// --origin ORIGIN --redirect-uri ORIGIN/callback
	// --post-logout-redirect-uri ORIGIN/` on a real server.
	if err := st.CreateClient(ctx, store.Client{ID: clientID, Grants: []string{"authorization_code", "refresh_token"},
		Origins: []string{issuer}, RedirectURIs: []string{issuer + "/callback"}, PostLogoutRedirectURIs: []string{issuer + "/"}, CreatedAt: time.Now()}); err != nil {
		return nil, err
	}
	// A built-in user, as `tokend user create alice` makes one.
	hash, err := password.DefaultParams().Hash(userPass)
	if err != nil {
		return nil, err
	}
	if err := st.CreateUser(ctx, store.User{Name: username, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		return nil, err
	}
	return server.New(server.Config{Store: st, Signer: signer, Secret: secret, Issuer: issuer, AccessTTL: ttl,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// page serves the app's page with a policy that lets it load nothing
// but its own origin's scripts and stylesheet.
func page(pages fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, pages, "index.html")
	})
}
