package wsconn_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/verify"
	"github.com/tokend/tokend/wsconn"
)

const issuer = "https://issuer.example"

// timers is a fake AfterFunc: the test fires the pending timer by hand.
type timers struct {
	mu      sync.Mutex
	pending []*timer
}

type timer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (ts *timers) AfterFunc(d time.Duration, f func()) func() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := &timer{d: d, f: f}
	ts.pending = append(ts.pending, t)
	return func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// fire runs every timer not stopped, each on its own goroutine as
// time.AfterFunc does, as if their time had come.
func (ts *timers) fire() { ts.fireShorterThan(1<<63 - 1) }

// fireShorterThan fires the pending timers set for less than d.
func (ts *timers) fireShorterThan(d time.Duration) {
	ts.mu.Lock()
	var due []*timer
	for _, t := range ts.pending {
		if !t.stopped && t.d < d {
			t.stopped = true
			due = append(due, t)
		}
	}
	ts.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

func (ts *timers) last() time.Duration {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.pending[len(ts.pending)-1].d
}

type env struct {
	url      string
	verifier *verify.Verifier
	signer   *keys.Set
	timers   *timers
	*clocktest.Clock
}

// newEnv serves an echo Handler. Tokens are signed by a key set whose JWKS
// the verifier reads.
func newEnv(t testing.TB) *env {
	t.Helper()
	ks, err := keys.Load(t.Context(), memory.New(), keys.EdDSA, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(ks.JWKS()) }))
	t.Cleanup(jwks.Close)
	e := &env{signer: ks, Clock: clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), timers: &timers{}}
	// wsconn's own rule on aud at renewal is under test (renewrule_test.go), so the verifier lets every aud through.
	e.verifier = verify.New(issuer, &verify.Options{JWKSURL: jwks.URL, Now: e.Now, InsecureSkipAudienceCheck: true})
	h := e.handler(func(ctx context.Context, c *wsconn.ServerConn) {
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			reply := c.Claims().Subject + ":" + string(data)
			if err := c.Write(ctx, typ, []byte(reply)); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return e
}

// newLoopback serves h on loopback and returns its address.
func newLoopback(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// handler returns a Handler on the env's verifier, clock and timers.
func (e *env) handler(serve func(ctx context.Context, c *wsconn.ServerConn)) *wsconn.Handler {
	return &wsconn.Handler{Verifier: e.verifier, Now: e.Now, AfterFunc: e.timers.AfterFunc, Serve: serve}
}

func (e *env) token(t testing.TB, sub string, life time.Duration) string {
	t.Helper()
	now := e.Now()
	tok, err := e.signer.Sign(map[string]any{"iss": issuer, "sub": sub, "exp": now.Add(life).Unix(), "iat": now.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) dial(t *testing.T, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.Dial(t.Context(), e.url, &websocket.DialOptions{HTTPHeader: header})
	if c != nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

func bearerHeader(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func roundTrip(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestUpgradeNeedsAValidToken(t *testing.T) {
	e := newEnv(t)
	_, resp, err := e.dial(t, nil)
	if err == nil || resp.StatusCode != http.StatusUnauthorized || strings.Contains(resp.Header.Get("WWW-Authenticate"), "error=") {
		t.Fatalf("no token: %v %v %q", err, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	_, resp, err = e.dial(t, bearerHeader(e.token(t, "alice", -time.Hour)))
	if err == nil || resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("expired token: %v %v %q", err, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	c, _, err := e.dial(t, bearerHeader(e.token(t, "alice", time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, "hi"); got != "alice:hi" {
		t.Fatalf("echo %q", got)
	}
	// Browsers send the token in the query.
	c2, _, err := websocket.Dial(t.Context(), e.url+"?access_token="+e.token(t, "bob", time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if got := roundTrip(t, c2, "yo"); got != "bob:yo" {
		t.Fatalf("echo %q", got)
	}
}

// A refused upgrade is an RFC 6750 answer: 401, a Bearer challenge (bare
// when no token came) and a JSON error body that is not stored.
func TestRefusalIsAnOAuthError(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name      string
		header    http.Header
		challenge string
		code      string
	}{
		{"no token", nil, `Bearer realm="tokend"`, ""},
		{"malformed header", http.Header{"Authorization": {"Bearer a b"}},
			`Bearer realm="tokend", error="invalid_request", error_description="malformed Authorization header"`, "invalid_request"},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + e.token(t, "alice", time.Hour), "Bearer " + e.token(t, "bob", time.Hour)}},
			`Bearer realm="tokend", error="invalid_request", error_description="malformed Authorization header"`, "invalid_request"},
		{"expired token", bearerHeader(e.token(t, "alice", -time.Hour)),
			`Bearer realm="tokend", error="invalid_token", error_description="the access token is not valid"`, "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := e.dial(t, tc.header)
			if err == nil || resp == nil {
				t.Fatalf("dial: %v, want a refusal", err)
			}
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("%d with challenge %q, want 401 with %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.challenge)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v, want a JSON body, not stored", resp.Header)
			}
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["error"] != tc.code || body["error_description"] == "" {
				t.Errorf("body %v (%v), want error %q with a description", body, err, tc.code)
			}
			if _, ok := body["error"]; ok != (tc.code != "") {
				t.Errorf("body %v: error present %v, want %v", body, ok, tc.code != "")
			}
		})
	}
}

// At expiry the server closes with CloseTokenExpired.
func TestCloseAtExpiry(t *testing.T) {
	e := newEnv(t)
	c, _, err := e.dial(t, bearerHeader(e.token(t, "alice", time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hi")
	if d := e.timers.last(); d != time.Minute {
		t.Fatalf("expiry scheduled in %v, want 1m", d)
	}
	expire(t, e, c)
}

// expire lets the token expire: the server announces it, then, as this raw
// client does not close, closes with CloseTokenExpired after the grace.
func expire(t *testing.T, e *env, c *websocket.Conn) {
	t.Helper()
	e.timers.fire()
	_, data, err := c.Read(t.Context())
	if err != nil || !strings.Contains(string(data), wsconn.TypeExpiring) {
		t.Fatalf("at expiry: %q, %v; want the expiring notice", data, err)
	}
	e.timers.fire()
	if _, _, err := c.Read(t.Context()); websocket.CloseStatus(err) != wsconn.CloseTokenExpired {
		t.Fatalf("after the grace: %v, want close %d", err, wsconn.CloseTokenExpired)
	}
}

func renew(t *testing.T, c *websocket.Conn, tok string) wsconn.Control {
	t.Helper()
	b, _ := json.Marshal(wsconn.Control{Type: wsconn.TypeRenew, Token: tok})
	if err := c.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ctl wsconn.Control
	if err := json.Unmarshal(data, &ctl); err != nil {
		t.Fatalf("answer %q: %v", data, err)
	}
	return ctl
}

// In-band renewal replaces the token: the old expiry no longer closes the
// connection, across ten lifetimes.
func TestInBandRenewal(t *testing.T) {
	e := newEnv(t)
	c, _, err := e.dial(t, bearerHeader(e.token(t, "alice", time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		e.Advance(50 * time.Second)
		ack := renew(t, c, e.token(t, "alice", time.Minute))
		if ack.Type != wsconn.TypeRenewed || ack.Exp != e.Now().Add(time.Minute).Unix() {
			t.Fatalf("renewal %d: %+v", i, ack)
		}
		if d := e.timers.last(); d != time.Minute {
			t.Fatalf("renewal %d: expiry rescheduled in %v", i, d)
		}
		if got := roundTrip(t, c, "still here"); got != "alice:still here" {
			t.Fatalf("after renewal %d: %q", i, got)
		}
	}
	// Another subject's token is refused; the connection keeps its own.
	if ack := renew(t, c, e.token(t, "mallory", time.Hour)); ack.Type != wsconn.TypeRenewFailed {
		t.Fatalf("renewal for another subject: %+v", ack)
	}
	if ack := renew(t, c, "garbage"); ack.Type != wsconn.TypeRenewFailed || strings.Contains(ack.Error, "garbage") {
		t.Fatalf("renewal with garbage: %+v", ack)
	}
	if got := roundTrip(t, c, "x"); got != "alice:x" {
		t.Fatalf("after refused renewals: %q", got)
	}
	expire(t, e, c)
}

// A browser's liveness message is answered with tokend.pong, in order
// after the messages before it, and never reaches Serve.
func TestServerAnswersPing(t *testing.T) {
	e := newEnv(t)
	c, _, err := e.dial(t, bearerHeader(e.token(t, "alice", time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", `{"type":"tokend.ping"}`, "b", ` {"type":"tokend.ping"}`} {
		if err := c.Write(t.Context(), websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"alice:a", `{"type":"tokend.pong"}`, "alice:b", `{"type":"tokend.pong"}`}
	for i, w := range want {
		_, data, err := c.Read(t.Context())
		if err != nil || string(data) != w {
			t.Fatalf("answer %d: %q, %v; want %q", i, data, err, w)
		}
	}
	if got := roundTrip(t, c, "c"); got != "alice:c" {
		t.Fatalf("after the pings: %q", got)
	}
}
