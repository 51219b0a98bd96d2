package wsconn_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/wsconn"
)

// dialAs dials url with the subprotocols and headers a browser page would
// send (origin "" for none).
func dialAs(t *testing.T, url, origin string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(t.Context(), url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: protocols})
	if c != nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// sameOrigin is the Origin of a page served by the env's own server.
func (e *env) sameOrigin() string { return "http://" + strings.TrimPrefix(e.url, "ws://") }

// A browser's token comes as a subprotocol; the server selects "tokend"
// and never echoes the token.
func TestSubprotocolToken(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "alice", time.Minute)
	for _, origin := range []string{"", e.sameOrigin()} {
		c, resp, err := dialAs(t, e.url, origin, "tokend", "tokend.bearer."+tok)
		if err != nil {
			t.Fatalf("origin %q: %v", origin, err)
		}
		if c.Subprotocol() != "tokend" || resp.Header.Get("Sec-WebSocket-Protocol") != "tokend" || resp.Header.Get(wsconn.RenewalHeader) != wsconn.RenewalInBand {
			t.Errorf("origin %q: subprotocol %q, header %q", origin, c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Protocol"))
		}
		if got := roundTrip(t, c, "hi"); got != "alice:hi" {
			t.Errorf("echo %q", got)
		}
	}
	// The Authorization header wins over a subprotocol token.
	c, _, err := websocket.Dial(t.Context(), e.url, &websocket.DialOptions{HTTPHeader: bearerHeader(e.token(t, "bob", time.Minute)),
		Subprotocols: []string{"tokend", "tokend.bearer." + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := roundTrip(t, c, "yo"); got != "bob:yo" {
		t.Errorf("echo %q", got)
	}
	// Without Origin, a bad subprotocol token is refused with 401 as any.
	for _, tc := range []struct {
		protocols []string
		challenge string
	}{
		{[]string{"tokend", "tokend.bearer." + e.token(t, "alice", -time.Hour)}, `error="invalid_token"`},
		{[]string{"tokend", "tokend.bearer.a", "tokend.bearer.b"}, `error_description="malformed token subprotocol"`},
		{[]string{"tokend", "tokend.bearer."}, `error_description="malformed token subprotocol"`},
		{[]string{"tokend"}, `Bearer realm="tokend"`},
	} {
		_, resp, err := dialAs(t, e.url, "", tc.protocols...)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%q without Origin: %v %v; want 401 with %s", tc.protocols, err, resp, tc.challenge)
		}
	}
}

// A browser whose token is missing, malformed or expired is accepted and
// closed at once with 4001 invalid_token: it cannot read a 401.
func TestBrowserRefusalCloses4001(t *testing.T) {
	e := newEnv(t)
	served := make(chan struct{}, 10)
	h := e.handler(func(ctx context.Context, c *wsconn.ServerConn) { served <- struct{}{} })
	url := "ws://" + newLoopback(t, h)
	origin := "http://" + strings.TrimPrefix(url, "ws://")
	for _, tc := range []struct {
		name      string
		protocols []string
		query     string
	}{
		{"no token", []string{"tokend"}, ""},
		{"expired token", []string{"tokend", "tokend.bearer." + e.token(t, "alice", -time.Hour)}, ""},
		{"forged token", []string{"tokend", "tokend.bearer." + e.token(t, "alice", time.Hour) + "x"}, ""},
		{"two tokens", []string{"tokend", "tokend.bearer.a", "tokend.bearer.b"}, ""},
		{"expired token in the query", nil, "?access_token=" + e.token(t, "alice", -time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := dialAs(t, url+tc.query, origin, tc.protocols...)
			if err != nil {
				t.Fatalf("dial: %v (%v); want an accepted upgrade", err, resp)
			}
			if len(tc.protocols) > 0 && c.Subprotocol() != "tokend" {
				t.Errorf("subprotocol %q; want tokend, or the browser fails the handshake", c.Subprotocol())
			}
			_, _, err = c.Read(t.Context())
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != wsconn.CloseTokenExpired || ce.Reason != "invalid_token" {
				t.Fatalf("read: %v; want close 4001 invalid_token", err)
			}
		})
	}
	if len(served) != 0 {
		t.Errorf("Serve ran %d times for refused connections", len(served))
	}
}

// A page of another origin needs Accept.OriginPatterns: without it the
// upgrade is refused (403) before the token is looked at.
func TestBrowserCrossOrigin(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "alice", time.Minute)
	echo := func(ctx context.Context, c *wsconn.ServerConn) {
		typ, data, err := c.Read(ctx)
		if err == nil {
			_ = c.Write(ctx, typ, append([]byte(c.Claims().Subject+":"), data...))
		}
		_, _, _ = c.Read(ctx)
	}
	strict := "ws://" + newLoopback(t, e.handler(echo))
	if _, resp, err := dialAs(t, strict, "http://localhost:5173", "tokend", "tokend.bearer."+tok); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin without OriginPatterns: %v %v; want 403", err, resp)
	}
	h := e.handler(echo)
	h.Accept = &websocket.AcceptOptions{OriginPatterns: []string{"localhost:5173"}}
	open := "ws://" + newLoopback(t, h)
	c, _, err := dialAs(t, open, "http://localhost:5173", "tokend", "tokend.bearer."+tok)
	if err != nil {
		t.Fatalf("cross-origin with OriginPatterns: %v", err)
	}
	if got := roundTrip(t, c, "hi"); got != "alice:hi" || c.Subprotocol() != "tokend" {
		t.Errorf("echo %q, subprotocol %q", got, c.Subprotocol())
	}
	if _, resp, err := dialAs(t, open, "https://evil.example", "tokend", "tokend.bearer."+tok); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("an origin not in OriginPatterns: %v %v; want 403", err, resp)
	}
}
