// Command harness is the test API and static server of the browser
// end-to-end tests (web/e2e/*.test.mjs). It starts nothing but itself: the
// tests build and run tokend and point the harness at it.
//
// It listens on six loopback ports and prints them as one JSON line on
// standard output:
//
//		{"app":"http://localhost:P1","other":"http://localhost:P2","auth":"http://localhost:P3","ws":"ws://localhost:P1/ws","control":"http://127.0.0.1:P4","wsRelay":"ws://localhost:P5/ws","app2":"http://localhost:P6"}
//
//	  - app: the test pages (-pages) at /, the built package (-dist) at
//	    /lib/, GET /api/echo guarded by verify, /ws a wsconn.Handler echoing
//	    every message, GET /api/log and GET /api/ws-log, and GET
//	    /session/tokens, the app's backend, which mints a new family for alice
//	    at tokend on every call (backend.go).
//	  - other: the same pages and package, from an origin no client allows.
//	  - auth: a reverse proxy to tokend (set through the control port), which
//	    logs the requests it forwards and can delay the token endpoint.
//	  - control: POST /upstream?url=, POST /backend?id=&secret= (the
//	    client the backend mints as), POST /slow?ms=&when=before|after,
//	    POST /ws-close?code=&reason=, POST /reset, GET /auth-log, GET /api-log,
//	    GET /ws-log, GET /backend-log, POST /ws-stall. Only the tests use it; pages never do.
//	  - wsRelay: a TCP relay to the app origin for WebSockets (relay.go);
//	    POST /ws-stall makes its open connections stop forwarding without
//	    closing.
//	  - app2: the same pages and package as other, a second app's origin
//	    (the login tests register a client for it: single sign-on across
//	    two apps).
//
// The issuer (-issuer, default the auth origin) is what the API's verifier
// expects in iss and in aud (tokend's default audience) and where it
// fetches the keys: tokend must be started with --issuer set to the auth
// origin and no other --audience.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

// flags are the harness's command-line flags.
type flags struct {
	issuer, upstream, pages, dist string
	leeway                        time.Duration
}

// parseFlags parses the command line.
func parseFlags() flags {
	var f flags
	flag.StringVar(&f.issuer, "issuer", os.Getenv("HARNESS_ISSUER"), "issuer URL the API expects in tokens (default: the auth origin; env HARNESS_ISSUER)")
	flag.StringVar(&f.upstream, "upstream", os.Getenv("HARNESS_UPSTREAM"), "tokend's URL, proxied at the auth origin (may be set later with POST /upstream on the control port; env HARNESS_UPSTREAM)")
	flag.StringVar(&f.pages, "pages", "web/e2e/pages", "directory of test pages, served at /")
	flag.StringVar(&f.dist, "dist", "web/dist", "directory of the built package, served at /lib/")
	flag.DurationVar(&f.leeway, "leeway", time.Second, "clock-skew leeway of the API's verifier (verify's default is 30s, which would hide an expired token)")
	flag.Parse()
	return f
}

// run listens on the six ports, prints their origins, and serves them
// until SIGINT or SIGTERM, or until one fails.
func run() error {
	f := parseFlags()
	lns, err := listen(6)
	if err != nil {
		return err
	}
	defer closeListeners(lns)
	origins := originsOf(lns)
	if f.issuer == "" {
		f.issuer = origins["auth"]
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	proxy := newAuthProxy(logger)
	if f.upstream != "" {
		if err := proxy.setUpstream(f.upstream); err != nil {
			return err
		}
	}
	api := newAPI(f.issuer, f.leeway, fmt.Sprintf("localhost:%d", port(lns[0])), logger)
	be := &backend{logger: logger, upstream: proxy.upstream.Load}
	app := static(f.pages, f.dist)
	api.routes(app)
	be.routes(app)
	rl := newRelay(lns[0].Addr().String(), logger)

	servers := []*http.Server{
		{Handler: app}, {Handler: static(f.pages, f.dist)}, {Handler: proxy}, {Handler: controlMux(proxy, api, be, rl)},
		{Handler: static(f.pages, f.dist)},
	}
	// The listener of each server; lns[4] is the relay's.
	served := []net.Listener{lns[0], lns[1], lns[2], lns[3], lns[5]}
	errc := make(chan error, len(servers)+1)
	go func() { errc <- rl.serve(lns[4]) }()
	for i, s := range servers {
		s.ReadHeaderTimeout = 10 * time.Second
		go func() { errc <- s.Serve(served[i]) }()
	}
	line, _ := json.Marshal(origins)
	fmt.Println(string(line))
	return serveUntilSignal(errc, api, servers)
}

// listen opens n listeners on loopback ports the system picks.
func listen(n int) ([]net.Listener, error) {
	lns := make([]net.Listener, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeListeners(lns)
			return nil, fmt.Errorf("listen: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// closeListeners closes lns, last first.
func closeListeners(lns []net.Listener) {
	for i := len(lns) - 1; i >= 0; i-- {
		_ = lns[i].Close()
	}
}

// port returns the TCP port ln listens on.
func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// originsOf names the origins served on lns, in the order app, other,
// auth, control, wsRelay, app2; ws is the WebSocket endpoint of app.
func originsOf(lns []net.Listener) map[string]string {
	return map[string]string{
		"app":     fmt.Sprintf("http://localhost:%d", port(lns[0])),
		"other":   fmt.Sprintf("http://localhost:%d", port(lns[1])),
		"auth":    fmt.Sprintf("http://localhost:%d", port(lns[2])),
		"ws":      fmt.Sprintf("ws://localhost:%d/ws", port(lns[0])),
		"control": fmt.Sprintf("http://127.0.0.1:%d", port(lns[3])),
		"wsRelay": fmt.Sprintf("ws://localhost:%d/ws", port(lns[4])),
		"app2":    fmt.Sprintf("http://localhost:%d", port(lns[5])),
	}
}

// static returns a mux serving the test pages at / and the built package
// at /lib/, neither cached.
func static(pages, dist string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/lib/", http.StripPrefix("/lib/", noStore(http.FileServer(http.Dir(dist)))))
	mux.Handle("/", noStore(http.FileServer(http.Dir(pages))))
	return mux
}

// controlMux returns the control port's routes: those of each part of the
// harness, and POST /reset, which resets them all.
func controlMux(proxy *authProxy, api *api, be *backend, rl *relay) *http.ServeMux {
	control := http.NewServeMux()
	proxy.controlRoutes(control)
	api.controlRoutes(control)
	be.controlRoutes(control)
	rl.controlRoutes(control)
	control.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		proxy.reset()
		api.reset()
		be.reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return control
}

// serveUntilSignal waits for a server to fail (its error on errc) or for
// SIGINT or SIGTERM, then closes the API's WebSockets and shuts servers
// down, allowing them two seconds.
func serveUntilSignal(errc <-chan error, api *api, servers []*http.Server) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	api.closeSockets()
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shut)
	}
	return nil
}

// noStore keeps the browser from caching test pages and the package
// between runs.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// writeJSON answers v as JSON with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
