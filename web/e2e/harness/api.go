package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/verify"
	"github.com/tokend/tokend/wsconn"
)

// apiEntry is one request to GET /api/echo: the status the API answered
// and a fingerprint of the bearer token (never the token).
type apiEntry struct {
	Seq     int    `json:"seq"`
	Status  int    `json:"status"`
	TokenFP string `json:"token_fp"` // fingerprint(token), "" without one
	Subject string `json:"subject"`
	AtMs    int64  `json:"at_ms"`
}

// wsConnEntry is one WebSocket connection the echo server accepted.
type wsConnEntry struct {
	ID        int      `json:"id"`
	Subject   string   `json:"subject"`
	Protocol  string   `json:"protocol"` // the subprotocol selected
	Via       string   `json:"via"`      // where the token came: subprotocol, query or header
	OpenedMs  int64    `json:"opened_ms"`
	ClosedMs  int64    `json:"closed_ms"`  // 0 while open
	CloseCode int      `json:"close_code"` // the peer's close code, or the one the server sent, -1 if none
	Closer    string   `json:"closer"`     // "client", "server" or "" while open
	JTIs      []string `json:"jtis"`       // the token IDs seen on this connection, in order (renewals add one)
	Messages  int      `json:"messages"`
}

// viaKey is the context key of where an upgrade carried its token.
type viaKey struct{}

// wsMessage is one application message the echo server received.
type wsMessage struct {
	Conn int    `json:"conn"`
	Data string `json:"data"`
}

// api is the app origin's test API.
type api struct {
	logger *slog.Logger
	v      *verify.Verifier
	ws     *wsconn.Handler
	count  atomic.Int64

	mu       sync.Mutex
	log      []apiEntry
	conns    []*wsConnEntry
	messages []wsMessage
	open     map[int]*wsconn.ServerConn
}

// fingerprint is what the logs keep of a token: the first 16 hex digits
// of its SHA-256 (the tests compute the same in Node).
func fingerprint(tok string) string {
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}

func newAPI(issuer string, leeway time.Duration, appHost string, logger *slog.Logger) *api {
	a := &api{logger: logger, open: map[int]*wsconn.ServerConn{}}
	a.v = verify.New(issuer, &verify.Options{Leeway: leeway, Logger: logger})
	a.ws = &wsconn.Handler{
		Verifier: a.v,
		Serve:    a.serveWS,
		// Cross-origin browser upgrades need their origin here
		// (coder/websocket compares Origin with Host otherwise).
		Accept: &websocket.AcceptOptions{OriginPatterns: []string{appHost}},
		Logger: logger,
	}
	return a
}

func (a *api) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log, a.conns, a.messages = nil, nil, nil
}

func (a *api) routes(mux *http.ServeMux) {
	echo := a.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.FromContext(r.Context())
		writeJSON(w, map[string]any{"subject": c.Subject, "n": a.count.Add(1), "exp": c.Expiry.Unix()})
	}))
	mux.Handle("GET /api/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		rec := &statusRecorder{ResponseWriter: w}
		echo.ServeHTTP(rec, r)
		sub := ""
		if rec.status == http.StatusOK {
			if c, err := a.v.Verify(r.Context(), tok); err == nil {
				sub = c.Subject
			}
		}
		a.mu.Lock()
		a.log = append(a.log, apiEntry{Seq: len(a.log) + 1, Status: rec.status, TokenFP: fingerprint(tok), Subject: sub, AtMs: time.Now().UnixMilli()})
		a.mu.Unlock()
	}))
	mux.Handle("/ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Where the upgrade carried its token, for the tests to check
		// that browsers use the subprotocol (never the URL).
		via := "none"
		switch {
		case strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), "tokend.bearer."):
			via = "subprotocol"
		case r.URL.Query().Has("access_token"):
			via = "query"
		case r.Header.Get("Authorization") != "":
			via = "header"
		}
		a.ws.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viaKey{}, via)))
	}))
	mux.HandleFunc("GET /api/ws-log", a.wsLog)
}

func (a *api) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api-log", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		writeJSON(w, append([]apiEntry{}, a.log...))
	})
	mux.HandleFunc("GET /ws-log", a.wsLog)
	mux.HandleFunc("POST /ws-close", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 1000 || code > 4999 {
			http.Error(w, "want code=1000..4999", http.StatusBadRequest)
			return
		}
		n := a.closeAll(websocket.StatusCode(code), r.URL.Query().Get("reason"))
		writeJSON(w, map[string]int{"closed": n})
	})
}

func (a *api) wsLog(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	conns := make([]wsConnEntry, len(a.conns))
	for i, c := range a.conns {
		conns[i] = *c
	}
	writeJSON(w, map[string]any{"connections": conns, "messages": append([]wsMessage{}, a.messages...)})
}

// closeAll closes every open connection with code and says how many.
func (a *api) closeAll(code websocket.StatusCode, reason string) int {
	a.mu.Lock()
	open := make(map[int]*wsconn.ServerConn, len(a.open))
	for id, c := range a.open {
		open[id] = c
		a.conns[id-1].Closer, a.conns[id-1].CloseCode = "server", int(code)
	}
	a.mu.Unlock()
	for _, c := range open {
		_ = c.Close(code, reason)
	}
	return len(open)
}

func (a *api) closeSockets() { a.closeAll(websocket.StatusGoingAway, "harness stopping") }

// serveWS echoes every application message back, in order, and records
// it. wsconn answers renewals inside Read.
func (a *api) serveWS(ctx context.Context, c *wsconn.ServerConn) {
	cl := c.Claims()
	a.mu.Lock()
	via, _ := ctx.Value(viaKey{}).(string)
	e := &wsConnEntry{ID: len(a.conns) + 1, Subject: cl.Subject, Protocol: c.Conn().Subprotocol(), Via: via, OpenedMs: time.Now().UnixMilli(), CloseCode: -1, JTIs: []string{cl.ID}}
	a.conns = append(a.conns, e)
	a.open[e.ID] = c
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.open, e.ID)
		e.ClosedMs = time.Now().UnixMilli()
		a.mu.Unlock()
	}()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			a.mu.Lock()
			if e.Closer == "" {
				e.Closer, e.CloseCode = "client", int(websocket.CloseStatus(err))
				if errors.Is(err, context.Canceled) {
					e.Closer = "server" // expiry close or ServerConn.Close
				}
			}
			a.mu.Unlock()
			return
		}
		a.mu.Lock()
		if jti := c.Claims().ID; jti != e.JTIs[len(e.JTIs)-1] {
			e.JTIs = append(e.JTIs, jti)
		}
		e.Messages++
		a.messages = append(a.messages, wsMessage{Conn: e.ID, Data: string(data)})
		a.mu.Unlock()
		if err := c.Write(ctx, typ, data); err != nil {
			return
		}
	}
}
