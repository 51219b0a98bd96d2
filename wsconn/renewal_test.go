package wsconn_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// withoutInBand hides the server's announcement of in-band renewal, as a
// server that does not support it would.
type withoutInBand struct{ http.ResponseWriter }

func (w withoutInBand) WriteHeader(code int) {
	w.Header().Del(wsconn.RenewalHeader)
	w.ResponseWriter.WriteHeader(code)
}

func (w withoutInBand) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// waitCloses waits until the server has seen n connections end.
func (s *server) waitCloses(n int) []websocket.StatusCode {
	for {
		s.mu.Lock()
		got := append([]websocket.StatusCode(nil), s.closes...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.got:
		case <-s.t.Context().Done():
			s.t.Fatalf("server saw %d of %d connections end", len(got), n)
		}
	}
}

// Make before break across 10 token lifetimes: each renewal opens a new
// connection with the new token, then closes the old one normally, before
// its token expires. Messages written all along arrive once, in order, and
// the application never sees a disconnect.
func TestMakeBeforeBreak(t *testing.T) {
	for _, tc := range []struct {
		name    string
		renewal wsconn.Renewal
		inBand  bool // the server announces in-band renewal
	}{
		{"chosen", wsconn.RenewMakeBeforeBreak, true},
		{"auto, the server cannot renew in band", wsconn.RenewAuto, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			if !tc.inBand {
				h := s.h
				s.wrap = func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(withoutInBand{w}, r) }
			}
			src, fetches := s.source(t)
			renewals := newWaits()
			var renewed, disconnects, connects atomic.Int64
			o := &wsconn.Options{
				Renewal:      tc.renewal,
				OnRenewed:    func() { renewed.Add(1) },
				OnDisconnect: func(error) { disconnects.Add(1) },
				OnConnect: func(context.Context, func(context.Context, websocket.MessageType, []byte) error) error {
					connects.Add(1)
					return nil
				},
			}
			wsconn.SetRenewHook(o, renewals.after)
			c := dial(t, s, src, o)
			go func() { // drain acks
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			sent := 0
			send := func(n int) {
				for range n {
					if err := c.Write(t.Context(), websocket.MessageText, []byte(strconv.Itoa(sent))); err != nil {
						t.Fatal(err)
					}
					sent++
				}
			}
			for i := range 10 {
				send(50)
				<-renewals.seen
				renewals.release <- time.Now()
				send(50) // while the replacement is dialled and the old one closed
				s.waitCloses(i + 1)
			}
			send(50)
			got := s.waitReceived(sent)
			for i, m := range got {
				if m != strconv.Itoa(i) {
					t.Fatalf("message %d is %q: lost, duplicated or reordered", i, m)
				}
			}
			s.mu.Lock()
			conns, closes := len(s.tokens), s.closes
			s.mu.Unlock()
			for i, code := range closes {
				if code != websocket.StatusNormalClosure {
					t.Fatalf("old connection %d ended with %d, want a normal close", i, code)
				}
			}
			if conns != 11 || connects.Load() != 11 || fetches.Load() != 11 || renewed.Load() != 10 || disconnects.Load() != 0 {
				t.Fatalf("%d connections, %d OnConnect, %d fetches, %d renewals, %d disconnects; want 11, 11, 11, 10, 0",
					conns, connects.Load(), fetches.Load(), renewed.Load(), disconnects.Load())
			}
		})
	}
}

// A terminal refresh failure ends the connection with that error, both at
// Dial and after an expiry.
func TestReauthRequiredEnds(t *testing.T) {
	s := newServer(t)
	s.h.CloseGrace = time.Hour
	var fetches atomic.Int64
	src := refresh.New(func(context.Context) (*oauth2.Token, error) {
		if fetches.Add(1) > 1 {
			return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"}
		}
		return &oauth2.Token{AccessToken: s.e.token(t, "alice", 10*time.Minute)}, nil
	}, nil)
	t.Cleanup(func() { _ = src.Close() })
	c := dial(t, s, src, &wsconn.Options{Renewal: wsconn.RenewOff})
	echo(t, c, "hi")
	s.e.timers.fire() // the token expires; the refresh is refused for good
	if _, _, err := c.Read(t.Context()); !errors.Is(err, refresh.ErrReauthRequired) {
		t.Fatalf("Read after the refused refresh: %v, want ErrReauthRequired", err)
	}
	if err := c.Write(t.Context(), websocket.MessageText, []byte("late")); !errors.Is(err, refresh.ErrReauthRequired) {
		t.Fatalf("Write: %v, want ErrReauthRequired", err)
	}
	if _, err := wsconn.Dial(t.Context(), s.url(), src, nil); !errors.Is(err, refresh.ErrReauthRequired) {
		t.Fatalf("Dial: %v, want ErrReauthRequired", err)
	}
}

// The token can travel in a query parameter; when a dial fails, the error
// does not show it.
func TestQueryTokenNeverInErrors(t *testing.T) {
	s := newServer(t)
	src, _ := s.source(t)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	w := newWaits()
	o := &wsconn.Options{Authorize: wsconn.QueryToken("access_token"), OnDisconnect: func(err error) { errs = append(errs, err) }}
	wsconn.SetTestHooks(o, w.after, top)
	c := dial(t, s, src, o)
	echo(t, c, "via the query")
	s.stop()
	<-w.seen
	s.stop() // the listener was closed: the next dial fails
	w.release <- time.Now()
	<-w.seen
	if len(errs) != 2 {
		t.Fatalf("%d disconnects, want 2 (the drop, the failed dial)", len(errs))
	}
	if !strings.Contains(errs[1].Error(), "dial") {
		t.Fatalf("second error is not the dial's: %v", errs[1])
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), tok.AccessToken) {
			t.Fatalf("an error shows the token: %v", err)
		}
	}
}

// With OnMessage, messages go to the callback, and Read says so.
func TestOnMessage(t *testing.T) {
	s := newServer(t)
	src, _ := s.source(t)
	got := make(chan string, 1)
	c := dial(t, s, src, &wsconn.Options{OnMessage: func(_ websocket.MessageType, data []byte) { got <- string(data) }})
	if err := c.Write(t.Context(), websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "ack:hi" {
		t.Fatalf("OnMessage got %q", m)
	}
	if _, _, err := c.Read(t.Context()); !errors.Is(err, wsconn.ErrOnMessage) {
		t.Fatalf("Read: %v, want ErrOnMessage", err)
	}
}

// A Write with a context that has already ended fails without touching
// the connection.
func TestWriteWithEndedContext(t *testing.T) {
	s := newServer(t)
	src, _ := s.source(t)
	c := dial(t, s, src, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("never")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v, want context.Canceled", err)
	}
	echo(t, c, "still connected")
	if d := s.dials.Load(); d != 1 {
		t.Fatalf("%d dials, want 1", d)
	}
}

// A close for the token (1008, 4001) reconnects at once with a fresh
// token; any other close code backs off and reconnects with the token it
// has.
func TestCloseCodes(t *testing.T) {
	for _, tc := range []struct {
		code        int
		forTheToken bool // a close for the token
		wantFetches int64
	}{
		{1008, true, 2},
		{4001, true, 2},
		{1011, false, 1},
		{1001, false, 1},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			s := newServer(t)
			src, fetches := s.source(t)
			w := newWaits()
			o := &wsconn.Options{Renewal: wsconn.RenewOff}
			wsconn.SetTestHooks(o, w.after, top)
			c := dial(t, s, src, o)
			if err := c.Write(t.Context(), websocket.MessageText, []byte("close with "+strconv.Itoa(tc.code))); err != nil {
				t.Fatal(err)
			}
			if !tc.forTheToken {
				<-w.seen // backs off
				w.release <- time.Now()
			}
			s.waitConns(2)
			echo(t, c, "after the close")
			if f := fetches.Load(); f != tc.wantFetches {
				t.Fatalf("%d fetches, want %d", f, tc.wantFetches)
			}
			if tc.forTheToken && len(w.waited) != 0 {
				t.Fatalf("waited %v before reconnecting, want no wait", w.waited)
			}
		})
	}
}
