package wsconn_test

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// An upgrade answered 429 or 503 with Retry-After makes the next connect
// wait exactly the Retry-After when the backoff is shorter (500ms here:
// MinBackoff 1s, the jitter drawing nothing above half the ceiling), and
// MaxBackoff (20s) when it asks for more: delay-seconds; an HTTP-date
// ahead of the client's clock, or behind it; a server clock an hour off
// either way, measured by its Date header. Without a readable Retry-After,
// or on another status, the backoff alone applies. OnDisconnect gets the
// refusal as a *refresh.OAuthError.
func TestReconnectHonoursRetryAfter(t *testing.T) {
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // the client's
	cases := []struct {
		name             string
		status           int
		retryAfter, date string // "" leaves the header out
		want, parsed     time.Duration
	}{
		{"503 seconds", 503, "5", "", 5 * time.Second, 5 * time.Second},
		{"429 seconds", 429, "5", "", 5 * time.Second, 5 * time.Second},
		{"503 date ahead of the client's clock", 503, httpDate(clock.Add(7 * time.Second)), "", 7 * time.Second, 7 * time.Second},
		{"503 date behind the client's clock", 503, httpDate(clock.Add(-30 * time.Second)), "", 500 * time.Millisecond, 0},
		{"503 server clock 1h ahead, with Date", 503, httpDate(clock.Add(time.Hour + 5*time.Second)), httpDate(clock.Add(time.Hour)), 5 * time.Second, 5 * time.Second},
		{"429 server clock 1h behind, with Date", 429, httpDate(clock.Add(-time.Hour + 5*time.Second)), httpDate(clock.Add(-time.Hour)), 5 * time.Second, 5 * time.Second},
		{"503 without Retry-After", 503, "", "", 500 * time.Millisecond, 0},
		{"503 garbage", 503, "soon", "", 500 * time.Millisecond, 0},
		{"503 above the cap", 503, "3600", "", 20 * time.Second, time.Hour},
		{"500 with Retry-After", 500, "5", "", 500 * time.Millisecond, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			src, _ := s.source(t)
			var upgrades atomic.Int64
			s.wrap = func(w http.ResponseWriter, r *http.Request) {
				if upgrades.Add(1) > 1 {
					s.h.ServeHTTP(w, r)
					return
				}
				h := w.Header()
				h["Date"] = nil // net/http adds none
				if tc.date != "" {
					h.Set("Date", tc.date)
				}
				if tc.retryAfter != "" {
					h.Set("Retry-After", tc.retryAfter)
				}
				oauth.WriteError(w, oauth.Answer{Status: tc.status}, oauth.TemporarilyUnavailable, "too many connections")
			}
			var mu sync.Mutex
			var causes []error
			w := newWaits()
			o := &wsconn.Options{MinBackoff: time.Second, MaxBackoff: 20 * time.Second, OnDisconnect: func(err error) {
				mu.Lock()
				causes = append(causes, err)
				mu.Unlock()
			}}
			wsconn.SetTestHooks(o, w.after, func(int64) int64 { return 0 })
			wsconn.SetClock(o, func() time.Time { return clock })
			type dialed struct {
				c   *wsconn.Conn
				err error
			}
			done := make(chan dialed, 1)
			go func() {
				c, err := wsconn.Dial(t.Context(), s.url(), src, o)
				done <- dialed{c, err}
			}()
			wait := <-w.seen
			w.release <- time.Now()
			d := <-done
			if d.err != nil {
				t.Fatalf("Dial: %v", d.err)
			}
			t.Cleanup(func() { _ = d.c.Close() })
			echo(t, d.c, "hi")
			if wait != tc.want || len(w.waited) != 1 || s.dials.Load() != 2 {
				t.Fatalf("waited %v, %d dials; want %v once, 2 dials", w.waited, s.dials.Load(), tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(causes) != 1 {
				t.Fatalf("OnDisconnect got %v, want the refusal", causes)
			}
			oe, ok := errors.AsType[*refresh.OAuthError](causes[0])
			if !ok || oe.Status != tc.status || oe.Code != oauth.TemporarilyUnavailable ||
				oe.Description != "too many connections" || oe.RetryAfter != tc.parsed {
				t.Fatalf("OnDisconnect got %v, want an OAuthError %d temporarily_unavailable, Retry-After %v", causes[0], tc.status, tc.parsed)
			}
		})
	}
}

// An upgrade refused for the token reaches OnDisconnect as an OAuthError
// with the Handler's status and code (401 invalid_token), and the client
// retries at once with a fresh token.
func TestRefusedUpgradeIsOAuthError(t *testing.T) {
	s := newServer(t)
	src, fetches := s.source(t)
	var upgrades atomic.Int64
	s.wrap = func(w http.ResponseWriter, r *http.Request) {
		if upgrades.Add(1) == 1 {
			r.Header.Set("Authorization", "Bearer not-a-jwt")
		}
		s.h.ServeHTTP(w, r)
	}
	var mu sync.Mutex
	var causes []error
	w := newWaits()
	o := &wsconn.Options{OnDisconnect: func(err error) {
		mu.Lock()
		causes = append(causes, err)
		mu.Unlock()
	}}
	wsconn.SetTestHooks(o, w.after, top)
	c := dial(t, s, src, o)
	echo(t, c, "hi")
	mu.Lock()
	defer mu.Unlock()
	if len(causes) != 1 || len(w.waited) != 0 || fetches.Load() != 2 {
		t.Fatalf("disconnects %v, waits %v, %d fetches; want one, none, 2", causes, w.waited, fetches.Load())
	}
	oe, ok := errors.AsType[*refresh.OAuthError](causes[0])
	if !ok || oe.Status != http.StatusUnauthorized || oe.Code != oauth.InvalidToken {
		t.Fatalf("OnDisconnect got %v, want an OAuthError 401 invalid_token", causes[0])
	}
}
