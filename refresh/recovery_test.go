package refresh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/internal/oauth"
)

// refusedError returns the error the operating system gives for a
// connection to a closed listener: a real "connection refused".
func refusedError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_ = c.Close()
		t.Fatalf("dial %s after closing its listener succeeded", addr)
	}
	return err
}

// outageEndpoint is a token endpoint in memory, reached through x/oauth2's
// clientcredentials, whose first fails
// requests get down's answer: a response, or a transport error, which the
// http.Client wraps in a *url.Error as it does a failed dial. Later
// requests get tokens that live an hour. It records when each request
// came.
type outageEndpoint struct {
	down  func() (*http.Response, error)
	fails int

	mu    sync.Mutex
	times []time.Time
}

func (e *outageEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	e.mu.Lock()
	e.times = append(e.times, time.Now())
	n := len(e.times)
	e.mu.Unlock()
	if n <= e.fails {
		return e.down()
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(rec, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n)
	return rec.Result(), nil
}

func (e *outageEndpoint) source(t *testing.T, o Options) *Source {
	t.Helper()
	o.HTTPClient = &http.Client{Transport: e}
	s := FromClientCredentials(&clientcredentials.Config{ClientID: "client", ClientSecret: "secret",
		TokenURL: "https://auth.example/token", AuthStyle: oauth2.AuthStyleInHeader}, &o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (e *outageEndpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.times)
}

// answer returns a down func that answers status with body (content type
// ct) and the headers h.
func answer(status int, ct, body string, h map[string]string) func() (*http.Response, error) {
	return func() (*http.Response, error) {
		rec := httptest.NewRecorder()
		if ct != "" {
			rec.Header().Set("Content-Type", ct)
		}
		for k, v := range h {
			rec.Header().Set(k, v)
		}
		rec.WriteHeader(status)
		_, _ = rec.WriteString(body)
		return rec.Result(), nil
	}
}

// tokendBusy is tokend's own 503 during a store outage: an OAuth error
// body, with or without Retry-After.
func tokendBusy(retryAfter string) func() (*http.Response, error) {
	return func() (*http.Response, error) {
		rec := httptest.NewRecorder()
		if retryAfter != "" {
			rec.Header().Set("Retry-After", retryAfter)
		}
		oauth.WriteError(rec, oauth.Answer{Status: http.StatusServiceUnavailable}, oauth.TemporarilyUnavailable, "store unavailable")
		return rec.Result(), nil
	}
}

// unansweredWait is the wait after failure n when nobody answered, with
// the largest draw (top): the ceiling 1s·2^(n-1), capped at 5s, less 1ns.
func unansweredWait(n int) time.Duration {
	return min(time.Second<<min(n-1, 10), 5*time.Second) - 1
}

// answeredWait is the wait after failure n of an answer the server gave,
// with the largest draw: the ceiling 1s·2^(n-1) capped at 1m, less 1ns,
// and at least retryAfter.
func answeredWait(retryAfter time.Duration) func(n int) time.Duration {
	return func(n int) time.Duration {
		return max(min(time.Second<<min(n-1, 10), time.Minute)-1, retryAfter)
	}
}

// A token endpoint that is down, then back. While nobody answers (the
// listener is closed: connection refused; a gateway's 502, 503 or 504
// without an OAuth error body or Retry-After) a Source retries at most
// MaxUnreachableBackoff (5s) after each failure, so it recovers within 5s
// of the server's return whatever the number of failures before (with
// MaxBackoff alone, 1m: 55s was seen). Failures the server answered (its
// own 503 with an OAuth error, with or without Retry-After: 5; a
// gateway's 502 with Retry-After, a 500) keep the exponential backoff up to
// MaxBackoff, and the Retry-After as a floor. Every wait is asserted
// exactly, with the largest draw of the full jitter; on demand (no token
// yet) and in the background (a valid token is served meanwhile); after
// 1, 2 and 12 failures.
func TestRecoveryAfterOutage(t *testing.T) {
	refused := refusedError(t)
	cases := []struct {
		name       string
		down       func() (*http.Response, error)
		unanswered bool
		wait       func(n int) time.Duration
	}{
		{"connection refused", func() (*http.Response, error) { return nil, refused }, true, unansweredWait},
		{"502 without body", answer(502, "", "", nil), true, unansweredWait},
		{"504 gateway page", answer(504, "text/html", "<html>Gateway Timeout</html>", nil), true, unansweredWait},
		{"503 gateway text", answer(503, "text/plain", "no healthy upstream", nil), true, unansweredWait},
		{"tokend 503 Retry-After 5", tokendBusy("5"), false, answeredWait(5 * time.Second)},
		{"tokend 503 without Retry-After", tokendBusy(""), false, answeredWait(0)},
		// Answered (a Retry-After), though only 429 and 503 make it a floor.
		{"502 with Retry-After", answer(502, "", "", map[string]string{"Retry-After": "5"}), false, answeredWait(0)},
		{"500 without body", answer(500, "", "", nil), false, answeredWait(0)},
	}
	for _, tc := range cases {
		for _, fails := range []int{1, 2, 12} {
			for _, mode := range []string{"on demand", "background"} {
				t.Run(fmt.Sprintf("%s/%d failures/%s", tc.name, fails, mode), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						e := &outageEndpoint{down: tc.down, fails: fails}
						var mu sync.Mutex
						var infos []FetchInfo
						o := Options{Jitter: -1, jitter: top,
							OnFetch: func(i FetchInfo) { mu.Lock(); infos = append(infos, i); mu.Unlock() }}
						if mode == "background" {
							o.Initial = &oauth2.Token{AccessToken: "stored", Expiry: time.Now().Add(time.Hour)}
						}
						s := e.source(t, o)
						if mode == "background" {
							time.Sleep(48 * time.Minute) // the refresh is due
						} else if _, err := s.Token(); err == nil {
							t.Fatal("Token during the outage succeeded")
						}
						synctest.Wait()
						if e.count() != 1 {
							t.Fatalf("%d requests, want 1", e.count())
						}
						var returned time.Time // when the server is back: its last failed answer
						for n := 1; n <= fails; n++ {
							returned = time.Now()
							want := tc.wait(n)
							if tc.unanswered && want >= 5*time.Second {
								t.Fatalf("expected wait %v after failure %d is not under 5s", want, n)
							}
							time.Sleep(want - 1)
							synctest.Wait()
							if e.count() != n {
								t.Fatalf("after failure %d: %d requests before %v, want %d", n, e.count(), want, n)
							}
							if mode == "background" {
								if tok := mustToken(t, s); tok.AccessToken != "stored" {
									t.Fatalf("during the outage got %q, want the stored token", tok.AccessToken)
								}
							}
							time.Sleep(time.Nanosecond)
							synctest.Wait()
							if e.count() != n+1 {
								t.Fatalf("after failure %d: %d requests at %v, want %d", n, e.count(), want, n+1)
							}
						}
						if recovery := time.Since(returned); tc.unanswered && recovery >= 5*time.Second {
							t.Errorf("recovered %v after the server's return, want under 5s", recovery)
						}
						if tok := mustToken(t, s); tok.AccessToken != fmt.Sprintf("at-%d", fails+1) {
							t.Fatalf("after the outage got %q, want at-%d", tok.AccessToken, fails+1)
						}
						mu.Lock()
						defer mu.Unlock()
						if len(infos) != fails+1 {
							t.Fatalf("%d FetchInfos, want %d", len(infos), fails+1)
						}
						for i, info := range infos[:fails] {
							if info.Err == nil || info.Unanswered != tc.unanswered || info.RetryIn != tc.wait(i+1) {
								t.Errorf("FetchInfo %d: %+v; want an error, Unanswered %v, RetryIn %v", i+1, info, tc.unanswered, tc.wait(i+1))
							}
						}
						if last := infos[fails]; last.Err != nil || last.Unanswered || last.Failures != 0 {
							t.Errorf("FetchInfo after recovery: %+v", last)
						}
					})
				})
			}
		}
	}
}

// An outage of both kinds: the count of failures, and so the exponential
// ceiling, carries across them, and only the cap depends on who answered.
// Refused connections (waits under 1s, 2s, 4s, 5s, 5s), then tokend's own
// 503s (the ceiling is 32s by then, then 1m), then refused again (5s).
func TestUnansweredCapPerFailure(t *testing.T) {
	refused := refusedError(t)
	synctest.Test(t, func(t *testing.T) {
		var n int
		e := &outageEndpoint{fails: 9, down: func() (*http.Response, error) {
			n++
			if n > 5 && n <= 7 {
				return tokendBusy("")()
			}
			return nil, refused
		}}
		times := newFetchTimes()
		s := e.source(t, Options{jitter: top, OnFetch: times.onFetch})
		if _, err := s.Token(); err == nil {
			t.Fatal("Token during the outage succeeded")
		}
		s5 := 5*time.Second - 1
		want := []time.Duration{time.Second - 1, 2*time.Second - 1, 4*time.Second - 1, s5, s5, 32*time.Second - 1, time.Minute - 1, s5, s5}
		at := time.Duration(0)
		for i, w := range want {
			at += w
			time.Sleep(w)
			synctest.Wait()
			if e.count() != i+2 {
				t.Fatalf("request %d not at %v: times %v", i+2, at, times)
			}
		}
		if tok := mustToken(t, s); tok.AccessToken != "at-10" {
			t.Fatalf("got %q, want at-10", tok.AccessToken)
		}
	})
}

// Adopting a newer token cancels the pending retry and clears the failure
// state. The Source's paths to a newer token are a fetch (the retry
// itself: its success resets the count) and Reset: after a failure whose
// retry is 1 minute away, Reset with a new token serves it at once, no
// error is left for callers, the pending retry never fires, and the next
// failure starts the backoff from MinBackoff again. Invalidate withdraws a
// token; it adopts none.
func TestAdoptionCancelsRetry(t *testing.T) {
	for _, mode := range []string{"on demand", "background"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := &outageEndpoint{fails: 1, down: tokendBusy("60")}
				var mu sync.Mutex
				var infos []FetchInfo
				o := Options{Jitter: -1, jitter: top,
					OnFetch: func(i FetchInfo) { mu.Lock(); infos = append(infos, i); mu.Unlock() }}
				if mode == "background" {
					o.Initial = &oauth2.Token{AccessToken: "stored", Expiry: time.Now().Add(time.Hour)}
				}
				s := e.source(t, o)
				if mode == "background" {
					time.Sleep(48 * time.Minute)
				} else if _, err := s.Token(); err == nil {
					t.Fatal("Token during the outage succeeded")
				}
				synctest.Wait()
				mu.Lock()
				if len(infos) != 1 || infos[0].RetryIn != time.Minute {
					t.Fatalf("FetchInfos %+v, want one failure with RetryIn 1m", infos)
				}
				mu.Unlock()
				time.Sleep(10 * time.Second)
				s.Reset(&oauth2.Token{AccessToken: "login-2", Expiry: time.Now().Add(time.Hour)})
				synctest.Wait()
				tok, err := s.Token()
				if err != nil || tok.AccessToken != "login-2" {
					t.Fatalf("after Reset: %v, %v; want login-2 at once", tok, err)
				}
				time.Sleep(5 * time.Minute) // well past the retry's time
				synctest.Wait()
				if e.count() != 1 {
					t.Fatalf("%d requests, want 1: the pending retry fired after Reset", e.count())
				}
				// The next failure backs off from the start: under 1s, not 2s.
				e.mu.Lock()
				e.fails, e.down = 2, tokendBusy("")
				e.mu.Unlock()
				s.Invalidate(tok)
				synctest.Wait()
				if e.count() != 2 {
					t.Fatalf("%d requests after Invalidate, want 2", e.count())
				}
				time.Sleep(time.Second - 2)
				synctest.Wait()
				if e.count() != 2 {
					t.Fatalf("retry before 1s: %d requests", e.count())
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				if e.count() != 3 {
					t.Fatalf("no retry at 1s-1ns after the first failure since Reset: %d requests", e.count())
				}
				if tok := mustToken(t, s); tok.AccessToken != "at-3" {
					t.Fatalf("got %q, want at-3", tok.AccessToken)
				}
			})
		})
	}
}

// The classification itself, including failures that reach it without an
// HTTP answer: the fetch's own timeout and a fetch function's error.
func TestUnansweredClassification(t *testing.T) {
	cases := []struct {
		name string
		err  error
		oe   *OAuthError
		want bool
	}{
		{"net.Error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, nil, true},
		{"fetch timeout", fmt.Errorf("fetch: %w", context.DeadlineExceeded), nil, true},
		{"malformed token", ErrMalformedToken, nil, false},
		{"other error", errors.New("boom"), nil, false},
		{"502 bare", nil, &OAuthError{Status: 502}, true},
		{"503 bare", nil, &OAuthError{Status: 503}, true},
		{"504 bare", nil, &OAuthError{Status: 504}, true},
		{"503 with code", nil, &OAuthError{Status: 503, Code: "temporarily_unavailable"}, false},
		{"503 with Retry-After", nil, &OAuthError{Status: 503, RetryAfter: time.Second}, false},
		{"500 bare", nil, &OAuthError{Status: 500}, false},
		{"429 bare", nil, &OAuthError{Status: 429}, false},
		{"408 bare", nil, &OAuthError{Status: 408}, false},
	}
	for _, tc := range cases {
		err := tc.err
		if tc.oe != nil {
			err = tc.oe
		}
		if got := unanswered(err, tc.oe); got != tc.want {
			t.Errorf("%s: unanswered = %v, want %v", tc.name, got, tc.want)
		}
	}
}
