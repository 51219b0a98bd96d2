package wsconn

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
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
// WebSocket, from the access_token query parameter.
type Handler struct {
	// Verifier checks tokens. Required.
	Verifier *verify.Verifier
	// Serve runs one connection; the connection is closed when it returns.
	// ctx is cancelled when the token expires without renewal or the
	// connection is closed through ServerConn.Close.
	Serve func(ctx context.Context, c *ServerConn)
	// Accept configures the upgrade. Optional.
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

// ServerConn is one accepted connection. Read handles renewal messages
// itself, so the application must keep reading for renewals to work.
// Write and Close may be called concurrently with Read.
type ServerConn struct {
	c      *websocket.Conn
	h      *Handler
	claims atomic.Pointer[verify.Claims]

	cancel context.CancelFunc // ends the ctx given to Serve

	mu   sync.Mutex
	stop func() bool // cancels the pending expiry close
}

// Claims returns the claims of the connection's current token.
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

// Read returns the next application message, answering renewal messages
// on the way.
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
	if ctl.Type != TypeRenew {
		return c.send(ctx, Control{Type: TypeRenewFailed, Error: "unknown control message"})
	}
	claims, err := c.h.Verifier.Verify(ctx, ctl.Token)
	switch {
	case err != nil:
		return c.send(ctx, Control{Type: TypeRenewFailed, Error: "invalid token"})
	case claims.Subject != c.Claims().Subject:
		return c.send(ctx, Control{Type: TypeRenewFailed, Error: "token is for another subject"})
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
// error="invalid_token" for a token that fails) and a JSON error body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, err := bearer.FromHeader(r.Header)
	if errors.Is(err, bearer.ErrNoToken) && h.QueryParam != "-" {
		param := h.QueryParam
		if param == "" {
			param = "access_token"
		}
		if q := r.URL.Query().Get(param); q != "" {
			tok, err = q, nil
		}
	}
	if errors.Is(err, bearer.ErrNoToken) {
		unauthorized(w, "", "bearer token required")
		return
	}
	if err != nil {
		unauthorized(w, oauth.InvalidRequest, "malformed Authorization header")
		return
	}
	claims, err := h.Verifier.Verify(r.Context(), tok)
	if err != nil {
		unauthorized(w, oauth.InvalidToken, "the access token is not valid")
		return
	}
	w.Header().Set(RenewalHeader, RenewalInBand)
	ws, err := websocket.Accept(w, r, h.Accept)
	if err != nil {
		h.logger().WarnContext(r.Context(), "websocket upgrade failed", "err", err)
		return
	}
	// The request's context carries its values (a trace, say); once the
	// connection is hijacked, nothing but the end of ServeHTTP cancels it.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sc := &ServerConn{c: ws, h: h, cancel: cancel}
	sc.claims.Store(claims)
	sc.schedule(claims.Expiry)
	h.Serve(ctx, sc)
	_ = sc.Close(websocket.StatusNormalClosure, "")
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
