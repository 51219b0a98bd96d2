package wsconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// server is a wsconn.Handler on a fixed loopback address that can be
// stopped and started again, and can refuse upgrades.
type server struct {
	t      *testing.T
	e      *env
	addr   string
	h      *wsconn.Handler
	wrap   http.HandlerFunc // serves upgrades instead of h when set
	refuse atomic.Int64     // refuse this many more upgrades with 403; -1 always
	dials  atomic.Int64

	mu       sync.Mutex
	srv      *http.Server
	conns    []net.Conn // hijacked WebSocket connections, closed by stop
	received []string
	got      chan struct{}          // signalled on every message, connection or close
	tokens   []string               // one entry per accepted connection
	closes   []websocket.StatusCode // how each connection ended
}

func newServer(t *testing.T) *server {
	e := newEnv(t) // for the signer, clock, timers and verifier
	s := &server{t: t, e: e, got: make(chan struct{}, 1)}
	s.h = e.handler(func(ctx context.Context, c *wsconn.ServerConn) {
		// Counted here, once the expiry of the connection is scheduled.
		s.mu.Lock()
		s.tokens = append(s.tokens, c.Claims().ID+c.Claims().Expiry.String())
		s.mu.Unlock()
		s.signal()
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				s.mu.Lock()
				s.closes = append(s.closes, websocket.CloseStatus(err))
				s.mu.Unlock()
				s.signal()
				return
			}
			s.mu.Lock()
			s.received = append(s.received, string(data))
			s.mu.Unlock()
			s.signal()
			if code, ok := strings.CutPrefix(string(data), "close with "); ok {
				n, _ := strconv.Atoi(code)
				_ = c.Close(websocket.StatusCode(n), "asked to")
				return
			}
			_ = c.Write(ctx, websocket.MessageText, []byte("ack:"+string(data)))
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

func (s *server) serve(ln net.Listener) {
	srv := &http.Server{ConnState: func(c net.Conn, st http.ConnState) {
		if st == http.StateHijacked {
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.dials.Add(1)
		if n := s.refuse.Load(); n != 0 {
			s.refuse.Add(-1)
			if n < 0 {
				s.refuse.Store(-1)
			}
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if s.wrap != nil {
			s.wrap(w, r)
			return
		}
		s.h.ServeHTTP(w, r)
	})}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (s *server) signal() {
	select {
	case s.got <- struct{}{}:
	default:
	}
}

// stop drops the network: the listener and every connection.
func (s *server) stop() {
	s.mu.Lock()
	srv, conns := s.srv, s.conns
	s.conns = nil
	s.mu.Unlock()
	_ = srv.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}

// waitConns waits until the server has accepted n connections.
func (s *server) waitConns(n int) {
	for {
		s.mu.Lock()
		got := len(s.tokens)
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-s.got:
		case <-s.t.Context().Done():
			s.t.Fatalf("server accepted %d of %d connections", got, n)
		}
	}
}

func (s *server) restart() {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(ln)
}

func (s *server) url() string { return "ws://" + s.addr }

// waitReceived waits until the server has n messages.
func (s *server) waitReceived(n int) []string {
	for {
		s.mu.Lock()
		got := append([]string(nil), s.received...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.got:
		case <-s.t.Context().Done():
			s.t.Fatalf("server received %d of %d messages", len(got), n)
		}
	}
}

// source returns a refresh.Source that signs a new token for alice on
// every fetch, and counts fetches.
func (s *server) source(t *testing.T) (*refresh.Source, *atomic.Int64) {
	var fetches atomic.Int64
	src := refresh.New(func(ctx context.Context) (*oauth2.Token, error) {
		fetches.Add(1)
		return &oauth2.Token{AccessToken: s.e.token(t, "alice", 10*time.Minute)}, nil
	}, neverBackOff())
	t.Cleanup(func() { _ = src.Close() })
	return src, &fetches
}

// neverBackOff returns the options of a refresh.Source that does not back
// off (MinBackoff 1ns): not after a failed fetch, nor after tokens rejected
// soon after they arrived (see refresh.Source.Invalidate), which these
// tests do in quick succession on a clock of their own. wsconn paces its
// reconnects itself; the tests measure that pacing alone.
func neverBackOff() *refresh.Options { return &refresh.Options{MinBackoff: time.Nanosecond} }

// waits records the client's backoff waits and releases each on demand.
type waits struct {
	mu      sync.Mutex
	waited  []time.Duration
	release chan time.Time
	seen    chan time.Duration
}

func newWaits() *waits {
	return &waits{release: make(chan time.Time), seen: make(chan time.Duration, 100)}
}

func (w *waits) after(d time.Duration) <-chan time.Time {
	w.mu.Lock()
	w.waited = append(w.waited, d)
	w.mu.Unlock()
	w.seen <- d
	return w.release
}

func top(n int64) int64 { return n - 1 }

func dial(t *testing.T, s *server, src *refresh.Source, o *wsconn.Options) *wsconn.Conn {
	t.Helper()
	c, err := wsconn.Dial(t.Context(), s.url(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func echo(t *testing.T, c *wsconn.Conn, msg string) {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(t.Context())
	if err != nil || string(data) != "ack:"+msg {
		t.Fatalf("echo %q: %q, %v", msg, data, err)
	}
}

// An upgrade refused with 403 once: the client fetches a new token and the
// second attempt, at once, carries it.
func TestRefusedOnceReconnectsWithFreshToken(t *testing.T) {
	s := newServer(t)
	src, fetches := s.source(t)
	s.refuse.Store(1)
	w := newWaits()
	o := &wsconn.Options{}
	wsconn.SetTestHooks(o, w.after, top)
	c := dial(t, s, src, o)
	echo(t, c, "hi")
	if f, d := fetches.Load(), s.dials.Load(); f != 2 || d != 2 {
		t.Fatalf("%d fetches and %d dials, want 2 and 2 (exactly one refresh)", f, d)
	}
	if len(w.waited) != 0 {
		t.Fatalf("waited %v before the retry, want none", w.waited)
	}
}

// A server that always refuses does not make the client spin: one
// immediate retry with a fresh token, then exponential backoff.
func TestAlwaysRefusedBacksOff(t *testing.T) {
	s := newServer(t)
	src, _ := s.source(t)
	s.refuse.Store(-1)
	w := newWaits()
	o := &wsconn.Options{MinBackoff: time.Second, MaxBackoff: 8 * time.Second}
	wsconn.SetTestHooks(o, w.after, top)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error)
	go func() { _, err := wsconn.Dial(ctx, s.url(), src, o); errc <- err }()
	var got []time.Duration
	for range 6 {
		got = append(got, <-w.seen)
		w.release <- time.Now()
	}
	<-w.seen
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial: %v", err)
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Second-1 {
			t.Fatalf("waits %v, want ceilings %vs", got, want)
		}
	}
	if d := s.dials.Load(); d != 8 {
		t.Fatalf("%d dials for 7 waits, want 8 (one immediate retry)", d)
	}
}

// Network drop: the listener goes away; the client backs off with jitter
// and reconnects when it returns. Messages written meanwhile are queued,
// then arrive in order; a full queue is an error.
func TestDropQueueAndReconnect(t *testing.T) {
	s := newServer(t)
	src, _ := s.source(t)
	w := newWaits()
	var connects atomic.Int64
	o := &wsconn.Options{QueueSize: 10, OnConnect: func(ctx context.Context, send func(context.Context, websocket.MessageType, []byte) error) error {
		connects.Add(1)
		return nil
	}}
	wsconn.SetTestHooks(o, w.after, top)
	c := dial(t, s, src, o)
	echo(t, c, "before")
	s.stop()
	<-w.seen // the client noticed and waits
	for i := range 10 {
		if err := c.Write(t.Context(), websocket.MessageText, []byte("m"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(t.Context(), websocket.MessageText, []byte("overflow")); !errors.Is(err, wsconn.ErrQueueFull) {
		t.Fatalf("11th queued write: %v, want ErrQueueFull", err)
	}
	s.restart()
	w.release <- time.Now()
	got := s.waitReceived(11)
	want := "[before m0 m1 m2 m3 m4 m5 m6 m7 m8 m9]"
	if fmt.Sprint(got) != want {
		t.Fatalf("server got %v, want %s", got, want)
	}
	if connects.Load() != 2 {
		t.Fatalf("%d connects, want 2", connects.Load())
	}
}

// Tokens expire several times while 1,000 messages are sent: each expiry
// is announced, the client hands over and reconnects with a fresh token,
// and the server receives every message once, in order.
func TestExpiryWithoutLoss(t *testing.T) {
	s := newServer(t)
	s.h.CloseGrace = time.Hour // never forced: the client closes itself
	src, fetches := s.source(t)
	connected := make(chan struct{}, 8)
	var waits atomic.Int64
	o := &wsconn.Options{
		OnConnect: func(context.Context, func(context.Context, websocket.MessageType, []byte) error) error {
			connected <- struct{}{}
			return nil
		},
		OnReconnecting: func(int, time.Duration) { waits.Add(1) },
		// Each close handshake confirms what was sent before it.
		OnDisconnect: func(err error) {
			if u := (*wsconn.UndeliveredError)(nil); errors.As(err, &u) {
				t.Errorf("after an expiry: %v", err)
			}
		},
	}
	wsconn.SetClock(o, s.e.Now) // each connection lasts a while on it
	c := dial(t, s, src, o)
	go func() { // drain acks
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	const n = 1000
	for i := range n {
		for {
			err := c.Write(t.Context(), websocket.MessageText, []byte(strconv.Itoa(i)))
			if err == nil {
				break
			}
			if !errors.Is(err, wsconn.ErrQueueFull) {
				t.Fatal(err)
			}
			s.waitReceived(i - 500)
		}
		if i%200 == 100 {
			s.waitConns(i/200 + 1) // the connection of the current token is up
			s.waitReceived(i - 50)
			<-connected                           // the client has its start time
			s.e.Advance(wsconn.HealthyAfter)      // the connection has been up a while...
			s.e.timers.fireShorterThan(time.Hour) // ...when the current token expires
		}
	}
	got := s.waitReceived(n)
	s.waitConns(6)
	for i, m := range got {
		if m != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: lost, duplicated or reordered", i, m)
		}
	}
	if len(got) != n {
		t.Fatalf("server got %d messages, want %d", len(got), n)
	}
	s.mu.Lock()
	conns := len(s.tokens)
	s.mu.Unlock()
	if conns != 6 || fetches.Load() != 6 {
		t.Fatalf("%d connections and %d fetches for 5 expiries, want 6 and 6", conns, fetches.Load())
	}
	if waits.Load() != 0 {
		t.Fatalf("%d backoff waits, want none: each connection lasted its token", waits.Load())
	}
}

// In-band renewal across 10 token lifetimes keeps one connection: before
// each expiry the client sends the Source's next token over the open
// connection and the server accepts it.
func TestInBandRenewalKeepsOneConnection(t *testing.T) {
	s := newServer(t)
	src, fetches := s.source(t)
	renewals := newWaits()
	renewed := make(chan struct{}, 16)
	o := &wsconn.Options{OnRenewed: func() { renewed <- struct{}{} }}
	wsconn.SetRenewHook(o, renewals.after)
	c := dial(t, s, src, o)
	echo(t, c, "first")
	for i := range 10 {
		wait := <-renewals.seen
		if wait < 8*time.Minute || wait > 9*time.Minute {
			t.Fatalf("renewal %d scheduled in %v, want about 90%% of 10m less 1s", i, wait)
		}
		s.e.Advance(9 * time.Minute) // most of the token's life has passed
		renewals.release <- time.Now()
		select {
		case <-renewed:
		case <-t.Context().Done():
			t.Fatalf("renewal %d was not accepted", i)
		}
		echo(t, c, "after renewal "+strconv.Itoa(i))
	}
	s.mu.Lock()
	conns := len(s.tokens)
	s.mu.Unlock()
	if conns != 1 || fetches.Load() != 11 {
		t.Fatalf("%d connections and %d fetches over 10 renewals, want 1 and 11", conns, fetches.Load())
	}
}
