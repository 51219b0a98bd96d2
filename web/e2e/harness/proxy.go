package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// authEntry is one request the auth proxy saw. It holds no token: only
// which parameters were present.
type authEntry struct {
	Seq          int    `json:"seq"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	Origin       string `json:"origin"`
	XTokend      string `json:"x_tokend"`
	Cookie       bool   `json:"cookie"`        // the request carried __Host-tokend-rt
	GrantType    string `json:"grant_type"`    // form field, token endpoint
	ClientID     string `json:"client_id"`     // form field
	RefreshParam bool   `json:"refresh_param"` // a refresh_token form field was present
	TokenParam   bool   `json:"token_param"`   // a token form field was present (revoke)
	Status       int    `json:"status"`        // 0 while pending or if the client went away first
	SetCookie    string `json:"set_cookie"`    // the Set-Cookie attributes, value replaced by "…"
	Done         bool   `json:"done"`
	Canceled     bool   `json:"canceled"` // the browser dropped the request before the answer
	StartedMs    int64  `json:"started_ms"`
	DurationMs   int64  `json:"duration_ms"`
}

// authProxy forwards the auth origin to tokend untouched (Origin,
// Cookie and Set-Cookie included), logs what it forwards, and can delay
// the token endpoint.
type authProxy struct {
	logger   *slog.Logger
	upstream atomic.Pointer[url.URL]
	rp       *httputil.ReverseProxy

	mu      sync.Mutex
	entries []*authEntry
	// settled is closed, and replaced, each time a request finishes, so
	// that GET /auth-log?settled=1 can wait for those in flight.
	settled chan struct{}
	slowMs  int
	slowWhn string // "before": delay forwarding; "after": forward, delay the answer
}

func newAuthProxy(logger *slog.Logger) *authProxy {
	p := &authProxy{logger: logger, settled: make(chan struct{})}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.upstream.Load())
		},
		Transport:     &slowTransport{p: p, base: http.DefaultTransport},
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		FlushInterval: -1,
	}
	return p
}

func (p *authProxy) setUpstream(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("upstream must be an http URL, not %q", raw)
	}
	p.upstream.Store(u)
	return nil
}

func (p *authProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries = nil
	p.slowMs, p.slowWhn = 0, ""
}

func (p *authProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_harness/cookie-set":
		// A probe that Chromium keeps a Secure __Host- cookie from
		// http://localhost, as tokend's cookie mode needs.
		http.SetCookie(w, &http.Cookie{Name: "__Host-harness-probe", Value: "1", Path: "/", MaxAge: 60, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.WriteHeader(http.StatusNoContent)
		return
	case "/_harness/cookie-get":
		_, err := r.Cookie("__Host-harness-probe")
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		writeJSON(w, map[string]bool{"cookie": err == nil})
		return
	}
	if p.upstream.Load() == nil {
		http.Error(w, "harness: no upstream yet (POST /upstream on the control port)", http.StatusServiceUnavailable)
		return
	}
	e := &authEntry{Method: r.Method, Path: r.URL.Path, Origin: r.Header.Get("Origin"), XTokend: r.Header.Get("X-Tokend"), StartedMs: time.Now().UnixMilli()}
	if _, err := r.Cookie("__Host-tokend-rt"); err == nil {
		e.Cookie = true
	}
	if r.Method == http.MethodPost && (r.URL.Path == "/oauth/token" || r.URL.Path == "/oauth/revoke") {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err == nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil {
				e.GrantType, e.ClientID = form.Get("grant_type"), form.Get("client_id")
				e.RefreshParam, e.TokenParam = form.Has("refresh_token"), form.Has("token")
			}
		}
	}
	p.mu.Lock()
	e.Seq = len(p.entries) + 1
	p.entries = append(p.entries, e)
	p.mu.Unlock()

	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	p.rp.ServeHTTP(rec, r)

	p.mu.Lock()
	e.Status, e.Done, e.DurationMs = rec.status, true, time.Since(start).Milliseconds()
	e.Canceled = r.Context().Err() != nil
	close(p.settled)
	p.settled = make(chan struct{})
	if c := rec.Header().Get("Set-Cookie"); c != "" {
		if i := bytes.IndexByte([]byte(c), ';'); i >= 0 {
			name, _, _ := bytes.Cut([]byte(c[:i]), []byte("="))
			e.SetCookie = string(name) + "=…" + c[i:]
		} else {
			e.SetCookie = "(no attributes)"
		}
	}
	p.mu.Unlock()
}

func (p *authProxy) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /upstream", func(w http.ResponseWriter, r *http.Request) {
		if err := p.setUpstream(r.URL.Query().Get("url")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		when := r.URL.Query().Get("when")
		if when == "" {
			when = "after"
		}
		if err != nil || ms < 0 || (when != "before" && when != "after") {
			http.Error(w, "want ms=N (0 ends it) and when=before|after", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.slowMs, p.slowWhn = ms, when
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	// With settled=1 the log is answered once no request is in flight
	// (a browser may see an answer before the proxy has finished it), or
	// when the caller gives up.
	mux.HandleFunc("GET /auth-log", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		for r.URL.Query().Get("settled") == "1" && slices.ContainsFunc(p.entries, func(e *authEntry) bool { return !e.Done }) {
			wait := p.settled
			p.mu.Unlock()
			select {
			case <-wait:
			case <-r.Context().Done():
				return
			}
			p.mu.Lock()
		}
		out := make([]authEntry, len(p.entries))
		for i, e := range p.entries {
			out[i] = *e
		}
		p.mu.Unlock()
		writeJSON(w, out)
	})
}

// slowTransport delays token-endpoint requests, before forwarding them or
// after tokend answered, as the control endpoint says. A request whose
// client goes away while it waits ends with its context's error.
type slowTransport struct {
	p    *authProxy
	base http.RoundTripper
}

func (t *slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.p.mu.Lock()
	ms, when := t.p.slowMs, t.p.slowWhn
	t.p.mu.Unlock()
	if ms == 0 || r.URL.Path != "/oauth/token" {
		return t.base.RoundTrip(r)
	}
	wait := func() error {
		tm := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer tm.Stop()
		select {
		case <-tm.C:
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	if when == "before" {
		if err := wait(); err != nil {
			return nil, err
		}
		return t.base.RoundTrip(r)
	}
	// Forward at once, without the browser's cancellation: tokend rotates
	// whatever happens to the tab; only the answer is held back.
	resp, err := t.base.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
	if err != nil {
		return nil, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := wait(); err != nil {
		return nil, errors.Join(errors.New("harness: browser left while the answer was held"), err)
	}
	return resp, nil
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
