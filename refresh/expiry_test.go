package refresh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// slowEndpoint answers each fetch after flight, with expires_in life, and
// records when each request was sent. Fetches after the first wait for
// hold to be closed before their flight starts.
type slowEndpoint struct {
	flight time.Duration
	life   int64 // expires_in, seconds
	hold   chan struct{}

	mu   sync.Mutex
	sent []time.Time
}

func (e *slowEndpoint) fetch(ctx context.Context) (*oauth2.Token, error) {
	e.mu.Lock()
	e.sent = append(e.sent, time.Now())
	n := len(e.sent)
	e.mu.Unlock()
	if n > 1 {
		select {
		case <-e.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-time.After(e.flight):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &oauth2.Token{AccessToken: fmt.Sprint("tok-", n), ExpiresIn: e.life}, nil
}

func (e *slowEndpoint) sentAt(i int) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i >= len(e.sent) {
		return time.Time{}
	}
	return e.sent[i]
}

// served returns the token a caller would get now without waiting for a
// fetch, through the cached read (TokenContext, which Token is) and the
// wall-clock read (FreshToken, which a Transport uses); both must agree.
func served(t *testing.T, s *Source) string {
	t.Helper()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	cached, err1 := s.TokenContext(done)
	fresh, err2 := s.FreshToken(done)
	name := func(tok *oauth2.Token, err error) string {
		if err != nil {
			return ""
		}
		return tok.AccessToken
	}
	if a, b := name(cached, err1), name(fresh, err2); a != b {
		t.Fatalf("TokenContext serves %q, FreshToken %q", a, b)
	}
	return name(cached, err1)
}

// The server's expires_in is what was left when it answered, so a token
// whose answer took 700 ms to arrive, with expires_in 5, expires 5 s after
// its request was sent: it is not served from then on (nor from the
// margin before), whatever the margin, and its refresh starts before.
func TestExpiryCountsFromTheRequest(t *testing.T) {
	const flight, life = 700 * time.Millisecond, 5 * time.Second
	cases := []struct {
		name      string
		o         Options
		margin    time.Duration // deadline = sent + life - margin
		refreshAt time.Duration // after the first request was sent
	}{
		{"default", Options{}, life / 10, 4 * time.Second},
		{"margin 1ns", Options{ExpiryMargin: time.Nanosecond}, time.Nanosecond, 4 * time.Second},
		{"margin 1ns, refresh at the deadline", Options{ExpiryMargin: time.Nanosecond, RefreshAt: 1}, time.Nanosecond, life - time.Nanosecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := &slowEndpoint{flight: flight, life: int64(life / time.Second), hold: make(chan struct{})}
				var mu sync.Mutex
				var infos []FetchInfo
				o := tc.o
				o.jitter = noJitter
				o.OnFetch = func(fi FetchInfo) { mu.Lock(); infos = append(infos, fi); mu.Unlock() }
				s := New(e.fetch, &o)
				defer s.Close()

				t0 := time.Now()
				tok, err := s.FreshToken(t.Context())
				if err != nil || tok.AccessToken != "tok-1" {
					t.Fatalf("first token: %v, %v", tok, err)
				}
				if d := time.Since(t0); d != flight {
					t.Fatalf("the answer arrived after %v, want %v", d, flight)
				}
				if want := t0.Add(life); !tok.Expiry.Equal(want) {
					t.Errorf("Expiry = request + %v, want request + %v", tok.Expiry.Sub(t0), life)
				}
				synctest.Wait() // OnFetch runs after the waiters are answered
				mu.Lock()
				if len(infos) != 1 || infos[0].Lifetime != life || infos[0].Latency != flight {
					t.Errorf("FetchInfo = %+v, want Lifetime %v, Latency %v", infos, life, flight)
				}
				mu.Unlock()

				deadline := t0.Add(life - tc.margin)
				at := func(when time.Time, want string) {
					t.Helper()
					time.Sleep(time.Until(when))
					synctest.Wait()
					if got := served(t, s); got != want {
						t.Errorf("at request + %v: served %q, want %q", when.Sub(t0), got, want)
					}
				}
				at(deadline.Add(-time.Nanosecond), "tok-1")
				// The refresh is held: the old token must go at its deadline
				// while the refresh is in flight.
				at(deadline, "")
				if got := e.sentAt(1); !got.Equal(t0.Add(tc.refreshAt)) {
					t.Errorf("refresh sent at request + %v, want + %v", got.Sub(t0), tc.refreshAt)
				}
				at(t0.Add(life), "")
				at(t0.Add(life+time.Second), "")

				close(e.hold)
				time.Sleep(flight)
				synctest.Wait()
				tok2, err := s.FreshToken(t.Context())
				if err != nil || tok2.AccessToken != "tok-2" {
					t.Fatalf("after the refresh: %v, %v; want tok-2", tok2, err)
				}
				if want := e.sentAt(1).Add(life); !tok2.Expiry.Equal(want) {
					t.Errorf("refreshed Expiry = its request + %v, want + %v", tok2.Expiry.Sub(e.sentAt(1)), life)
				}
			})
		})
	}
}

// A token whose answer arrives at or after its deadline, counted from the
// request, is never handed out, not even to the callers that waited for
// it: the fetch fails with ErrMalformedToken and is retried.
func TestExpiredOnArrival(t *testing.T) {
	for _, flight := range []time.Duration{4500 * time.Millisecond, 5 * time.Second, 6 * time.Second} {
		t.Run(flight.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := &slowEndpoint{flight: flight, life: 5}
				s := New(e.fetch, &Options{jitter: noJitter})
				defer s.Close()
				tok, err := s.FreshToken(t.Context())
				if !errors.Is(err, ErrMalformedToken) {
					t.Fatalf("a token arriving %v after its request (expires_in 5, margin 500ms): %v, %v; want ErrMalformedToken", flight, tok, err)
				}
			})
		})
	}
}
