package wsconn

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/internal/bearer"
	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/verify"
)

// Handler is an http.Handler that accepts WebSocket connections bearing a
// valid access token and hands them to Serve. The token comes from the
// Authorization header or, for browsers, which cannot set headers on a
// WebSocket, from a subprotocol or the access_token query parameter.
//
// A browser offers the subprotocols "tokend" and "tokend.bearer." followed
// by the access token (the subprotocol syntax allows every character of a
// JWT):
//
//	new WebSocket(url, ["tokend", "tokend.bearer." + accessToken])
//
// Handler takes the token from the "tokend.bearer." entry and selects the
// subprotocol "tokend", never the entry with the token. Unlike the query
// parameter, the token then stays out of URLs and access logs.
//
// A browser cannot read the status of a refused upgrade, so for an upgrade
// with an Origin header (a browser's) and a missing, malformed or invalid
// token Handler accepts the connection and closes it at once with
// CloseTokenExpired (4001) and the reason "invalid_token": the page then
// refreshes its token and reconnects, as it does when a token expires on
// an open connection. An upgrade without Origin (a Go client, Dial) is
// refused with 401 as before.
//
// Cross-origin pages: coder/websocket accepts an upgrade only from the
// server's own origin (its Host) unless Accept.OriginPatterns lists the
// page's host, e.g.
//
//	Accept: &websocket.AcceptOptions{OriginPatterns: []string{"localhost:5173", "app.example.com"}}
//
// Any other Origin is refused with 403 before the token is looked at. Do
// not set InsecureSkipVerify: it lets any site's page open connections
// with the tokens it holds.
type Handler struct {
	// Verifier checks tokens. Required.
	Verifier *verify.Verifier
	// Serve runs one connection; the connection is closed when it returns.
	// ctx is cancelled when the token expires without renewal or the
	// connection is closed through ServerConn.Close.
	Serve func(ctx context.Context, c *ServerConn)
	// Accept configures the upgrade (OriginPatterns for pages of other
	// origins, and the application's own subprotocols, after which
	// "tokend" is preferred). Optional.
	Accept *websocket.AcceptOptions
	// QueryParam names the query parameter a token may come in. Default
	// "access_token"; "-" accepts the header only.
	QueryParam string
	Logger     *slog.Logger
	// CloseGrace is how long after announcing expiry the server waits for
	// the client to close before closing itself. Default 5s.
	CloseGrace time.Duration
	// Now and AfterFunc schedule the expiry close; tests replace them.
	// Defaults time.Now and time.AfterFunc.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// ServerConn is one accepted connection. Read handles renewal and liveness
// messages itself, so the application must keep reading for renewals to
// work and for browser clients to see the connection as alive.
// Write and Close may be called concurrently with Read.
type ServerConn struct {
	c      *websocket.Conn
	h      *Handler
	opened *verify.Claims // the token the connection was opened with
	claims atomic.Pointer[verify.Claims]

	cancel context.CancelFunc // ends the ctx given to Serve

	mu   sync.Mutex
	stop func() bool // cancels the pending expiry close
}

// Claims returns the claims of the connection's current token: the one
// it was opened with, or the last one an in-band renewal accepted. A
// renewal never changes who the connection is (its iss, aud, sub,
// client_id and sid stay the opening token's) and never widens its scope;
// it may narrow it, and Claims then reports the narrower scope, so an
// application that honours narrowing checks the scope when it acts, not
// only in Serve's first lines. See the package doc.
func (c *ServerConn) Claims() *verify.Claims { return c.claims.Load() }

// Conn returns the underlying connection, for what ServerConn does not
// wrap. Reading from it directly bypasses renewal.
func (c *ServerConn) Conn() *websocket.Conn { return c.c }

// Write sends one message.
func (c *ServerConn) Write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	return c.c.Write(ctx, typ, data)
}

// Close closes the connection with code and reason.
func (c *ServerConn) Close(code websocket.StatusCode, reason string) error {
	c.mu.Lock()
	if c.stop != nil {
		c.stop()
	}
	c.mu.Unlock()
	defer c.cancel()
	return c.c.Close(code, reason)
}

// Read returns the next application message, answering renewal and
// liveness (TypePing) messages on the way.
func (c *ServerConn) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	for {
		typ, data, err := c.c.Read(ctx)
		if err != nil {
			return typ, data, err
		}
		ctl, ok := parseControl(typ, data)
		if !ok {
			return typ, data, nil
		}
		if err := c.control(ctx, ctl); err != nil {
			return 0, nil, err
		}
	}
}

func (c *ServerConn) control(ctx context.Context, ctl Control) error {
	if ctl.Type == TypePing {
		// Read in order: the pong confirms every message before the ping.
		return c.send(ctx, Control{Type: TypePong})
	}
	if ctl.Type != TypeRenew {
		return c.send(ctx, Control{Type: TypeRenewFailed, Error: "unknown control message"})
	}
	claims, err := c.h.Verifier.Verify(ctx, ctl.Token)
	if err != nil {
		return c.send(ctx, Control{Type: TypeRenewFailed, Error: refusedInvalid})
	}
	if reason := renewalRefusal(c.opened, claims); reason != "" {
		return c.send(ctx, Control{Type: TypeRenewFailed, Error: reason})
	}
	c.claims.Store(claims)
	c.schedule(claims.Expiry)
	return c.send(ctx, Control{Type: TypeRenewed, Exp: claims.Expiry.Unix()})
}

func (c *ServerConn) send(ctx context.Context, ctl Control) error {
	b, _ := json.Marshal(ctl)
	return c.c.Write(ctx, websocket.MessageText, b)
}

// schedule closes the connection at exp, replacing the previous schedule.
func (c *ServerConn) schedule(exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		c.stop()
	}
	c.stop = c.h.afterFunc()(exp.Sub(c.h.now()()), c.expire)
}

// expire announces the expiry and closes after the grace period unless the
// client closes first or renews.
func (c *ServerConn) expire() {
	grace := c.h.CloseGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	c.mu.Lock()
	c.stop = c.h.afterFunc()(grace, func() {
		_ = c.c.Close(CloseTokenExpired, "token expired")
		c.cancel()
	})
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = c.send(ctx, Control{Type: TypeExpiring})
}

func (h *Handler) now() func() time.Time {
	if h.Now != nil {
		return h.Now
	}
	return time.Now
}

func (h *Handler) afterFunc() func(time.Duration, func()) func() bool {
	if h.AfterFunc != nil {
		return h.AfterFunc
	}
	return func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
}

// ServeHTTP verifies the token and upgrades the connection. Without a
// valid token it answers 401 with a Bearer challenge (RFC 6750 §3;
// error="invalid_token" for a token that fails) and a JSON error body, or,
// to a browser, accepts and closes with CloseTokenExpired.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var claims *verify.Claims
	code, desc := "", ""
	tok, err := h.token(r)
	switch {
	case errors.Is(err, bearer.ErrNoToken):
		desc = "bearer token required"
	case errors.Is(err, errBadProtocol):
		code, desc = oauth.InvalidRequest, "malformed token subprotocol"
	case err != nil:
		code, desc = oauth.InvalidRequest, "malformed Authorization header"
	default:
		if claims, err = h.Verifier.Verify(r.Context(), tok); err != nil {
			code, desc = oauth.InvalidToken, "the access token is not valid"
		}
	}
	if claims == nil {
		if r.Header.Get("Origin") == "" {
			unauthorized(w, code, desc)
			return
		}
		// A browser: it sees only that the upgrade failed, so it is told
		// in the close instead.
		ws, err := websocket.Accept(w, r, h.acceptOptions())
		if err != nil {
			h.logger().WarnContext(r.Context(), "websocket upgrade failed", "err", err)
			return
		}
		_ = ws.Close(CloseTokenExpired, oauth.InvalidToken)
		return
	}
	w.Header().Set(RenewalHeader, RenewalInBand)
	ws, err := websocket.Accept(w, r, h.acceptOptions())
	if err != nil {
		h.logger().WarnContext(r.Context(), "websocket upgrade failed", "err", err)
		return
	}
	// The request's context carries its values (a trace, say); once the
	// connection is hijacked, nothing but the end of ServeHTTP cancels it.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sc := &ServerConn{c: ws, h: h, opened: claims, cancel: cancel}
	sc.claims.Store(claims)
	sc.schedule(claims.Expiry)
	h.Serve(ctx, sc)
	_ = sc.Close(websocket.StatusNormalClosure, "")
}

// Subprotocol is the WebSocket subprotocol Handler selects when a client
// offers it; SubprotocolBearer, followed by an access token, is how a
// browser offers its token alongside it.
const (
	Subprotocol       = "tokend"
	SubprotocolBearer = "tokend.bearer."
)

// errBadProtocol reports offered subprotocols with more than one token,
// or an empty or malformed one.
var errBadProtocol = errors.New("wsconn: malformed token subprotocol")

// token returns the request's access token: from the Authorization header,
// else from a SubprotocolBearer entry, else from the query parameter.
func (h *Handler) token(r *http.Request) (string, error) {
	tok, err := bearer.FromHeader(r.Header)
	if !errors.Is(err, bearer.ErrNoToken) {
		return tok, err
	}
	found := 0
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(p), SubprotocolBearer); ok {
				tok, found = t, found+1
			}
		}
	}
	if found > 0 {
		if found > 1 {
			return "", errBadProtocol
		}
		if _, err := bearer.Token("Bearer " + tok); err != nil {
			return "", errBadProtocol
		}
		return tok, nil
	}
	if h.QueryParam != "-" {
		param := h.QueryParam
		if param == "" {
			param = "access_token"
		}
		if q := r.URL.Query().Get(param); q != "" {
			return q, nil
		}
	}
	return "", bearer.ErrNoToken
}

// acceptOptions are h.Accept with Subprotocol first among the
// subprotocols, so that a client that offers it gets it.
func (h *Handler) acceptOptions() *websocket.AcceptOptions {
	var o websocket.AcceptOptions
	if h.Accept != nil {
		o = *h.Accept
	}
	o.Subprotocols = append([]string{Subprotocol}, o.Subprotocols...)
	return &o
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// unauthorized refuses the upgrade with 401, a Bearer challenge (RFC 6750
// §3: bare when code is empty, that is when no token came) and a JSON
// error body with code and desc.
func unauthorized(w http.ResponseWriter, code, desc string) {
	a := oauth.Answer{Status: http.StatusUnauthorized, Challenge: oauth.BearerChallenge("tokend", code, desc, "")}
	oauth.WriteError(w, a, code, desc)
}
