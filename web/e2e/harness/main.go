// Command harness is the test API and static server of the browser
// end-to-end tests (web/e2e/*.test.mjs). It starts nothing but itself: the
// tests build and run tokend and point the harness at it.
//
// It listens on five loopback ports and prints them as one JSON line on
// standard output:
//
//		{"app":"http://localhost:P1","other":"http://localhost:P2","auth":"http://localhost:P3","ws":"ws://localhost:P1/ws","control":"http://127.0.0.1:P4","wsRelay":"ws://localhost:P5/ws"}
//
//	  - app: the test pages (-pages) at /, the built package (-dist) at
//	    /lib/, GET /api/echo guarded by verify, /ws a wsconn.Handler echoing
//	    every message, GET /api/log and GET /api/ws-log, and GET
//	    /session/tokens, the app's backend, which mints a login for alice
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

func run() error {
	issuer := flag.String("issuer", os.Getenv("HARNESS_ISSUER"), "issuer URL the API expects in tokens (default: the auth origin; env HARNESS_ISSUER)")
	upstream := flag.String("upstream", os.Getenv("HARNESS_UPSTREAM"), "tokend's URL, proxied at the auth origin (may be set later with POST /upstream on the control port; env HARNESS_UPSTREAM)")
	pages := flag.String("pages", "web/e2e/pages", "directory of test pages, served at /")
	dist := flag.String("dist", "web/dist", "directory of the built package, served at /lib/")
	leeway := flag.Duration("leeway", time.Second, "clock-skew leeway of the API's verifier (verify's default is 30s, which would hide an expired token)")
	flag.Parse()

	lns := make([]net.Listener, 5)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer ln.Close()
		lns[i] = ln
	}
	port := func(i int) int { return lns[i].Addr().(*net.TCPAddr).Port }
	origins := map[string]string{
		"app":     fmt.Sprintf("http://localhost:%d", port(0)),
		"other":   fmt.Sprintf("http://localhost:%d", port(1)),
		"auth":    fmt.Sprintf("http://localhost:%d", port(2)),
		"ws":      fmt.Sprintf("ws://localhost:%d/ws", port(0)),
		"control": fmt.Sprintf("http://127.0.0.1:%d", port(3)),
		"wsRelay": fmt.Sprintf("ws://localhost:%d/ws", port(4)),
	}
	if *issuer == "" {
		*issuer = origins["auth"]
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	proxy := newAuthProxy(logger)
	if *upstream != "" {
		if err := proxy.setUpstream(*upstream); err != nil {
			return err
		}
	}
	api := newAPI(*issuer, *leeway, fmt.Sprintf("localhost:%d", port(0)), logger)
	be := &backend{logger: logger, upstream: proxy.upstream.Load}

	static := func() *http.ServeMux {
		mux := http.NewServeMux()
		mux.Handle("/lib/", http.StripPrefix("/lib/", noStore(http.FileServer(http.Dir(*dist)))))
		mux.Handle("/", noStore(http.FileServer(http.Dir(*pages))))
		return mux
	}
	app := static()
	api.routes(app)
	be.routes(app)
	other := static()

	control := http.NewServeMux()
	proxy.controlRoutes(control)
	api.controlRoutes(control)
	be.controlRoutes(control)
	rl := newRelay(lns[0].Addr().String(), logger)
	rl.controlRoutes(control)
	control.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		proxy.reset()
		api.reset()
		be.reset()
		w.WriteHeader(http.StatusNoContent)
	})

	servers := []*http.Server{
		{Handler: app}, {Handler: other}, {Handler: proxy}, {Handler: control},
	}
	errc := make(chan error, len(servers)+1)
	go func() { errc <- rl.serve(lns[4]) }()
	for i, s := range servers {
		s.ReadHeaderTimeout = 10 * time.Second
		go func() { errc <- s.Serve(lns[i]) }()
	}
	line, _ := json.Marshal(origins)
	fmt.Println(string(line))

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
