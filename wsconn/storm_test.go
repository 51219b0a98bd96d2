package wsconn_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// stormServer serves WebSocket upgrades over a pipeListener in a synctest
// bubble, each with behave, and records when each upgrade request came.
// Past maxConns it stops answering, so that a client that storms in zero
// fake time lets the clock move and the test fail on the count instead of
// spinning for ever.
type stormServer struct {
	ln    *pipeListener
	srv   *http.Server
	stop  chan struct{}
	start time.Time

	mu    sync.Mutex
	times []time.Duration // since start, one per upgrade request
}

const maxConns = 1000

func newStormServer(t *testing.T, behave func(w http.ResponseWriter, r *http.Request)) *stormServer {
	s := &stormServer{ln: newPipeListener(), stop: make(chan struct{}), start: time.Now()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.times = append(s.times, time.Since(s.start))
		n := len(s.times)
		s.mu.Unlock()
		if n > maxConns {
			<-s.stop
			return
		}
		behave(w, r)
	})}
	go func() { _ = s.srv.Serve(s.ln) }()
	t.Cleanup(func() {
		close(s.stop)
		_ = s.srv.Close()
		s.ln.drop(true)
	})
	return s
}

func (s *stormServer) conns() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.times...)
}

// accept upgrades and then runs then on the connection.
func accept(then func(ws *websocket.Conn)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		then(ws)
	}
}

func closeWith(code websocket.StatusCode) func(http.ResponseWriter, *http.Request) {
	return accept(func(ws *websocket.Conn) { _ = ws.Close(code, "bye") })
}

func refuse(status int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", status) }
}

// Whatever a server does to every connection (accept it and close it at
// once with 1008, 4001 or 1011, or drop it, or announce the token's expiry
// at once, or refuse the upgrade with 401 or 403), the client connects at
// most 5 times in any second and ever more slowly: 10 or 11 connections
// and at most one token fetch per connection in 60s of fake time, with the
// shortest waits jitter allows. Only an auth failure is retried at once,
// and only once.
func TestNoReconnectStorm(t *testing.T) {
	// Connection times and waits with MinBackoff 250ms, MaxBackoff 30s and
	// each wait drawn at its shortest, half its ceiling.
	ms := func(ms ...float64) []time.Duration {
		var d []time.Duration
		for _, m := range ms {
			d = append(d, time.Duration(m*float64(time.Millisecond)))
		}
		return d
	}
	waits := ms(125, 250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000)
	backoffTimes := ms(0, 125, 375, 875, 1875, 3875, 7875, 15875, 30875, 45875)
	authTimes := append(ms(0), backoffTimes...) // one immediate retry, then the same
	cases := []struct {
		name      string
		behave    func(http.ResponseWriter, *http.Request)
		wantTimes []time.Duration
		auth      bool // each failure drops the token, so each costs a fetch
	}{
		{"accept then close 1008", closeWith(websocket.StatusPolicyViolation), authTimes, true},
		{"accept then close 4001", closeWith(wsconn.CloseTokenExpired), authTimes, true},
		{"accept then announce expiry", accept(func(ws *websocket.Conn) {
			_ = ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"tokend.expiring"}`))
			_, _, _ = ws.Read(context.Background()) // until the client closes
		}), authTimes, true},
		{"refuse with 401", refuse(http.StatusUnauthorized), authTimes, true},
		{"refuse with 403", refuse(http.StatusForbidden), authTimes, true},
		{"accept then close 1011", closeWith(websocket.StatusInternalError), backoffTimes, false},
		{"accept then drop", accept(func(*websocket.Conn) {}), backoffTimes, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStormServer(t, tc.behave)
				var fetches atomic.Int64
				src := refresh.New(func(context.Context) (*oauth2.Token, error) {
					return &oauth2.Token{AccessToken: fmt.Sprint("t-", fetches.Add(1))}, nil
				}, neverBackOff())
				defer src.Close()
				var mu sync.Mutex
				var gotWaits []time.Duration
				transport := &http.Transport{DialContext: s.ln.dial}
				defer transport.CloseIdleConnections()
				o := &wsconn.Options{
					Dial: &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}},
					OnReconnecting: func(_ int, d time.Duration) {
						mu.Lock()
						gotWaits = append(gotWaits, d)
						mu.Unlock()
					},
				}
				wsconn.SetTestHooks(o, time.After, func(int64) int64 { return 0 }) // the shortest waits
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					if c, err := wsconn.Dial(ctx, "ws://pipe/", src, o); err == nil {
						<-ctx.Done()
						_ = c.Close()
					}
				}()
				time.Sleep(60 * time.Second)
				synctest.Wait()
				conns := s.conns()
				cancel()
				<-done

				for i := range conns {
					if j := i + 5; j < len(conns) && conns[j]-conns[i] < time.Second {
						t.Errorf("connections %d to %d within %v: more than 5 in a second", i, j, conns[j]-conns[i])
						break
					}
				}
				if fmt.Sprint(conns) != fmt.Sprint(tc.wantTimes) {
					t.Errorf("%d connections at %v, want %d at %v", len(conns), conns, len(tc.wantTimes), tc.wantTimes)
				}
				mu.Lock()
				defer mu.Unlock()
				if fmt.Sprint(gotWaits) != fmt.Sprint(waits) {
					t.Errorf("waits %v, want %v", gotWaits, waits)
				}
				// With an auth failure, every connection's token is dropped
				// and replaced: one fetch for the first connection and one
				// after each.
				wantFetches := int64(1)
				if tc.auth {
					wantFetches = int64(len(conns)) + 1
				}
				if fetches.Load() != wantFetches {
					t.Errorf("%d token fetches for %d connections, want %d", fetches.Load(), len(conns), wantFetches)
				}
			})
		})
	}
}

// A connection that stays open HealthyAfter resets the count: after it the
// next failure is retried after the first wait again, and an auth failure
// at once again.
func TestHealthyConnectionResetsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		s := newStormServer(t, accept(func(ws *websocket.Conn) {
			// Connections 1-3 close at once; 4 stays up long enough; the
			// rest close at once again.
			if n.Add(1) == 4 {
				time.Sleep(wsconn.HealthyAfter)
			}
			_ = ws.Close(websocket.StatusPolicyViolation, "bye")
		}))
		src := refresh.New(func(context.Context) (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: "t"}, nil
		}, neverBackOff())
		defer src.Close()
		transport := &http.Transport{DialContext: s.ln.dial}
		defer transport.CloseIdleConnections()
		var mu sync.Mutex
		var gotWaits []time.Duration
		o := &wsconn.Options{
			Dial: &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}},
			OnReconnecting: func(_ int, d time.Duration) {
				mu.Lock()
				gotWaits = append(gotWaits, d)
				mu.Unlock()
			},
		}
		wsconn.SetTestHooks(o, time.After, func(int64) int64 { return 0 })
		c, err := wsconn.Dial(t.Context(), "ws://pipe/", src, o)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		_ = c.Close()
		// Connections at 0, 0 (the immediate retry), 0.125, 0.375 (up for
		// 5s), 5.375 (at once), 5.5, 5.75, 6.25, 7.25, 9.25.
		want := "[0s 0s 125ms 375ms 5.375s 5.5s 5.75s 6.25s 7.25s 9.25s]"
		if got := fmt.Sprint(s.conns()); got != want {
			t.Errorf("connections at %s, want %s", got, want)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(gotWaits); got != "[125ms 250ms 125ms 250ms 500ms 1s 2s 4s]" {
			t.Errorf("waits %s, want them to start again after the healthy connection", got)
		}
	})
}

// Tokens that live a second: renewal by make before break opens a new
// connection at most once per MinBackoff, never at once after the last.
func TestShortTokensRenewAtMostOncePerMinBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStormServer(t, accept(func(ws *websocket.Conn) {
			_, _, _ = ws.Read(context.Background()) // until the client closes it
		}))
		var fetches atomic.Int64
		src := refresh.New(func(context.Context) (*oauth2.Token, error) {
			time.Sleep(10 * time.Millisecond) // a round trip to the token endpoint
			return &oauth2.Token{AccessToken: fmt.Sprint("t-", fetches.Add(1)), ExpiresIn: 1}, nil
		}, &refresh.Options{Jitter: -1})
		defer src.Close()
		transport := &http.Transport{DialContext: s.ln.dial}
		defer transport.CloseIdleConnections()
		o := &wsconn.Options{
			Dial:    &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}},
			Renewal: wsconn.RenewMakeBeforeBreak,
		}
		c, err := wsconn.Dial(t.Context(), "ws://pipe/", src, o)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Second)
		synctest.Wait()
		_ = c.Close()
		conns := s.conns()
		for i := 1; i < len(conns); i++ {
			if gap := conns[i] - conns[i-1]; gap < 250*time.Millisecond {
				t.Fatalf("connections %d and %d %v apart, want at least MinBackoff", i-1, i, gap)
			}
		}
		if len(conns) < 60 || len(conns) > 241 {
			t.Errorf("%d connections in 60s of 1s tokens, want one renewal per lifetime at least and one per 250ms at most", len(conns))
		}
		if fetches.Load() > int64(len(conns))+1 {
			t.Errorf("%d fetches for %d connections", fetches.Load(), len(conns))
		}
	})
}
