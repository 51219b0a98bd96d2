package refresh

import (
	"context"
	"errors"
	"fmt"
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

// throttledEndpoint is a token endpoint in memory, reached through
// x/oauth2's clientcredentials with it as the HTTP client's transport, so
// its answers are read by x/oauth2 as a real server's. Its first fails
// answers are status with the headers retryAfter and date (each left out
// when ""), then it issues tokens that live an hour. It records when each
// request came, on time.Now (fake in a synctest bubble).
type throttledEndpoint struct {
	status           int
	retryAfter, date func(now time.Time) string
	fails            int

	mu    sync.Mutex
	times []time.Time
}

func (e *throttledEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	now := time.Now()
	e.mu.Lock()
	e.times = append(e.times, now)
	n := len(e.times)
	e.mu.Unlock()
	rec := httptest.NewRecorder()
	if n <= e.fails {
		h := rec.Header()
		h["Date"] = nil
		if e.date != nil {
			h.Set("Date", e.date(now))
		}
		if e.retryAfter != nil {
			h.Set("Retry-After", e.retryAfter(now))
		}
		oauth.WriteError(rec, oauth.Answer{Status: e.status}, oauth.TemporarilyUnavailable, "store unavailable")
		return rec.Result(), nil
	}
	rec.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(rec, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n)
	return rec.Result(), nil
}

// requests returns the times of the requests so far.
func (e *throttledEndpoint) requests() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.times...)
}

func (e *throttledEndpoint) source(t *testing.T, o Options) *Source {
	t.Helper()
	o.HTTPClient = &http.Client{Transport: e}
	if o.jitter == nil {
		o.jitter = half
	}
	s := FromClientCredentials(&clientcredentials.Config{ClientID: "client", ClientSecret: "secret",
		TokenURL: "https://auth.example/token", AuthStyle: oauth2.AuthStyleInHeader}, &o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

func constant(v string) func(time.Time) string { return func(time.Time) string { return v } }

func at(d time.Duration) func(time.Time) string {
	return func(now time.Time) string { return httpDate(now.Add(d)) }
}

// retryAfterCases are the answers of a throttled token endpoint and the
// wait they must cause before the next request, with MinBackoff 1s,
// MaxBackoff 20s and a backoff that draws half its ceiling: 500ms after
// the first failure. Times in a synctest bubble are whole seconds, so
// HTTP-dates are exact.
var retryAfterCases = []struct {
	name             string
	status           int
	retryAfter, date func(time.Time) string
	want             time.Duration
}{
	{"503 seconds", 503, constant("5"), nil, 5 * time.Second},
	{"429 seconds", 429, constant("5"), nil, 5 * time.Second},
	{"503 date ahead of the client's clock", 503, at(7 * time.Second), nil, 7 * time.Second},
	{"503 date behind the client's clock", 503, at(-30 * time.Second), nil, 500 * time.Millisecond},
	{"503 server clock 1h ahead, with Date", 503, at(time.Hour + 5*time.Second), at(time.Hour), 5 * time.Second},
	{"429 server clock 1h behind, with Date", 429, at(-time.Hour + 5*time.Second), at(-time.Hour), 5 * time.Second},
	{"503 without Retry-After", 503, nil, nil, 500 * time.Millisecond},
	{"503 garbage", 503, constant("in a while"), nil, 500 * time.Millisecond},
	{"503 above the cap", 503, constant("3600"), nil, 20 * time.Second},
	{"500 with Retry-After", 500, constant("5"), nil, 500 * time.Millisecond},
}

// After a 429 or 503 with Retry-After, a Source's next fetch waits the
// Retry-After exactly (the backoff being shorter), whether the fetch was
// on demand (Token with no token yet) or a background refresh while a
// valid token is served: delay-seconds; an HTTP-date ahead of the
// client's clock, or behind it; a server clock an hour off either way
// (its Date header measures the date); and MaxBackoff when it asks for
// more. Without a readable Retry-After, or on another status, the backoff
// alone applies. Meanwhile callers without a token get the failure at
// once, as a *OAuthError, and no request is made.
func TestSourceHonoursRetryAfter(t *testing.T) {
	for _, tc := range retryAfterCases {
		for _, mode := range []string{"on demand", "background"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					e := &throttledEndpoint{status: tc.status, retryAfter: tc.retryAfter, date: tc.date, fails: 1}
					var infos []FetchInfo
					var mu sync.Mutex
					o := Options{MinBackoff: time.Second, MaxBackoff: 20 * time.Second, Jitter: -1,
						OnFetch: func(i FetchInfo) { mu.Lock(); infos = append(infos, i); mu.Unlock() }}
					if mode == "background" {
						// Refreshed at 48 minutes, 12 before it expires.
						o.Initial = &oauth2.Token{AccessToken: "stored", Expiry: time.Now().Add(time.Hour)}
					}
					s := e.source(t, o)
					if mode == "background" {
						time.Sleep(48 * time.Minute)
						synctest.Wait()
						if tok := mustToken(t, s); tok.AccessToken != "stored" {
							t.Fatalf("during the failure got %q, want the stored token", tok.AccessToken)
						}
					} else {
						_, err := s.Token()
						oe, ok := errors.AsType[*OAuthError](err)
						if !ok || oe.Status != tc.status || oe.Code != oauth.TemporarilyUnavailable || oe.Description != "store unavailable" {
							t.Fatalf("Token: %v, want the endpoint's OAuthError", err)
						}
						if _, ok := errors.AsType[*oauth2.RetrieveError](err); !ok || errors.Is(err, ErrReauthRequired) {
							t.Fatalf("Token: %v, want a transient error holding x/oauth2's RetrieveError", err)
						}
						time.Sleep(tc.want - time.Nanosecond)
						if _, again := s.Token(); again == nil || len(e.requests()) != 1 {
							t.Fatalf("just before the wait: %v, %d requests; want the failure and 1", again, len(e.requests()))
						}
					}
					first := e.requests()[0]
					deadline := first.Add(tc.want + time.Minute)
					for len(e.requests()) < 2 && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
					times := e.requests()
					if len(times) != 2 || times[1].Sub(times[0]) != tc.want {
						t.Fatalf("requests at %v, want 2, %v apart", times, tc.want)
					}
					// The endpoint has seen the request; let the Source publish its answer.
					synctest.Wait()
					if tok := mustToken(t, s); tok.AccessToken != "at-2" {
						t.Fatalf("after the wait got %q, want at-2", tok.AccessToken)
					}
					synctest.Wait()
					mu.Lock()
					defer mu.Unlock()
					if infos[0].RetryIn != tc.want || infos[0].Err == nil {
						t.Errorf("first FetchInfo %+v, want RetryIn %v", infos[0], tc.want)
					}
				})
			})
		}
	}
}

// A 401-triggered refresh that the token endpoint answers 503 with
// Retry-After: 5 fails the request with the endpoint's OAuthError; the
// next request within the 5s fails at once without a fetch, and the next
// fetch comes exactly 5s after the answer, then requests succeed.
func TestTransportHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &throttledEndpoint{status: 503, retryAfter: constant("5"), fails: 1}
		s := e.source(t, Options{Initial: &oauth2.Token{AccessToken: "tok-1", Expiry: time.Now().Add(time.Hour)},
			TokenURL: "https://auth.example/token"})
		res := &resource{}
		res.minValid.Store(2) // tok-1 was revoked
		tr := &Transport{Source: s, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			// The endpoint's tokens at-N become tok-N for the resource.
			if v := r.Header.Get("Authorization"); len(v) > 10 && v[:10] == "Bearer at-" {
				r.Header.Set("Authorization", "Bearer tok-"+v[10:])
			}
			return res.RoundTrip(r)
		})}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://api.example/", nil)
		_, err := tr.RoundTrip(req)
		oe, ok := errors.AsType[*OAuthError](err)
		if !ok || oe.Status != 503 || oe.RetryAfter != 5*time.Second {
			t.Fatalf("RoundTrip: %v, want the endpoint's 503 with Retry-After 5s", err)
		}
		time.Sleep(5*time.Second - time.Nanosecond)
		if _, err := tr.RoundTrip(req.Clone(t.Context())); !errors.As(err, &oe) || len(e.requests()) != 1 {
			t.Fatalf("within the Retry-After: %v after %d requests; want the failure at once and 1", err, len(e.requests()))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		times := e.requests()
		if len(times) != 2 || times[1].Sub(times[0]) != 5*time.Second {
			t.Fatalf("token requests at %v, want 2, 5s apart", times)
		}
		resp := get(t, tr, "https://api.example/")
		drain(resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after the wait: %d", resp.StatusCode)
		}
	})
}

// Every failure the token endpoint answers reaches the caller as an
// *OAuthError with its error, error_description, error_uri and status,
// and errors.Is still tells a terminal one: invalid_grant from
// invalid_client, as a program needs to tell them apart.
func TestOAuthErrorFields(t *testing.T) {
	cases := []struct {
		status   int
		body     string
		code     string
		terminal bool
	}{
		{400, `{"error":"invalid_grant","error_description":"refresh token reused","error_uri":"https://auth.example/e"}`, "invalid_grant", true},
		{401, `{"error":"invalid_client","error_description":"unknown client"}`, "invalid_client", true},
		{429, `{"error":"temporarily_unavailable","error_description":"slow down"}`, "temporarily_unavailable", false},
		{502, `<html>Bad Gateway</html>`, "", false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status, tc.code), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var reported error
				s := New(func(ctx context.Context) (*oauth2.Token, error) {
					cfg := &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: "https://auth.example/token", AuthStyle: oauth2.AuthStyleInHeader}
					return cfg.Token(ctx)
				}, &Options{jitter: half, OnReauthRequired: func(err error) { mu.Lock(); reported = err; mu.Unlock() },
					HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
						rec := httptest.NewRecorder()
						ct := "application/json"
						if tc.code == "" {
							ct = "text/html"
						}
						rec.Header().Set("Content-Type", ct)
						rec.WriteHeader(tc.status)
						rec.WriteString(tc.body)
						return rec.Result(), nil
					})}})
				defer s.Close()
				_, err := s.Token()
				oe, ok := errors.AsType[*OAuthError](err)
				if !ok || oe.Status != tc.status || oe.Code != tc.code || errors.Is(err, ErrReauthRequired) != tc.terminal {
					t.Fatalf("Token: %v; want an OAuthError %d %q, terminal %v", err, tc.status, tc.code, tc.terminal)
				}
				if tc.code == "invalid_grant" && (oe.Description != "refresh token reused" || oe.URI != "https://auth.example/e") {
					t.Errorf("description %q, URI %q", oe.Description, oe.URI)
				}
				synctest.Wait() // OnReauthRequired runs after the waiters are answered
				mu.Lock()
				defer mu.Unlock()
				if tc.terminal && !errors.As(reported, &oe) {
					t.Errorf("OnReauthRequired got %v, want the OAuthError", reported)
				}
			})
		})
	}
}

// A fetch function may return an *OAuthError itself: its Retry-After and
// code are honoured as a RetrieveError's, and it reaches callers as it is.
func TestFetchReturnsOAuthError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mine := &OAuthError{Status: 429, Code: "slow_down", RetryAfter: 9 * time.Second}
		var mu sync.Mutex
		var times []time.Time
		s := New(func(context.Context) (*oauth2.Token, error) {
			mu.Lock()
			defer mu.Unlock()
			times = append(times, time.Now())
			if len(times) == 1 {
				return nil, mine
			}
			return &oauth2.Token{AccessToken: "ok", ExpiresIn: 3600}, nil
		}, &Options{jitter: half})
		defer s.Close()
		if _, err := s.Token(); !errors.Is(err, mine) {
			t.Fatalf("Token: %v, want the fetch's OAuthError", err)
		}
		time.Sleep(9 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(times) != 2 || times[1].Sub(times[0]) != 9*time.Second {
			t.Fatalf("fetches at %v, want 2, 9s apart", times)
		}
	})
}
