package refresh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// resource is an in-memory resource server used as a Transport's Base. It
// accepts the access tokens tok-N with N ≥ minValid.
type resource struct {
	minValid  atomic.Int64
	status    int    // answer to a rejected token; default 401
	challenge string // WWW-Authenticate of a rejection
	requests  atomic.Int64

	mu     sync.Mutex
	bodies []string // request bodies seen
	auth   []string // Authorization headers seen
	urls   []string
	open   []*trackedBody // response bodies handed out
}

type trackedBody struct {
	io.Reader
	closed atomic.Bool
	read   atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		b.read.Store(true)
	}
	return n, err
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func (r *resource) RoundTrip(req *http.Request) (*http.Response, error) {
	r.requests.Add(1)
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	auth := req.Header.Get("Authorization")
	status := http.StatusOK
	n, err := strconv.Atoi(strings.TrimPrefix(auth, "Bearer tok-"))
	if q := req.URL.Query().Get("access_token"); q != "" {
		n, err = strconv.Atoi(strings.TrimPrefix(q, "tok-"))
	}
	if err != nil || int64(n) < r.minValid.Load() {
		status = r.status
		if status == 0 {
			status = http.StatusUnauthorized
		}
	}
	tb := &trackedBody{Reader: strings.NewReader(http.StatusText(status))}
	r.mu.Lock()
	r.bodies = append(r.bodies, string(body))
	r.auth = append(r.auth, auth)
	r.urls = append(r.urls, req.URL.String())
	r.open = append(r.open, tb)
	r.mu.Unlock()
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: tb, Request: req}
	if status != http.StatusOK && r.challenge != "" {
		resp.Header.Set("WWW-Authenticate", r.challenge)
	}
	return resp, nil
}

func newTransport(t *testing.T, u *upstream, res *resource) (*Transport, *Source) {
	t.Helper()
	s := newTestSource(t, u, Options{TokenURL: "https://auth.example/token"})
	return &Transport{Source: s, Base: res}, s
}

func get(t *testing.T, tr http.RoundTripper, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	return resp
}

// 1,000 concurrent requests that all get 401 for the same token cause
// exactly one refresh, and all succeed on replay.
func TestTransport401Stampede(t *testing.T) {
	u := &upstream{life: time.Hour}
	res := &resource{}
	tr, s := newTransport(t, u, res)
	mustToken(t, s)       // tok-1 is cached...
	res.minValid.Store(2) // ...and the server has revoked it
	const n = 1000
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "https://api.example/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if got := u.calls.Load(); got != 2 {
		t.Errorf("%d fetches, want 2 (the first and exactly one refresh)", got)
	}
	if ok.Load() != n {
		t.Errorf("%d of %d requests succeeded", ok.Load(), n)
	}
	if got := res.requests.Load(); got > 2*n {
		t.Errorf("%d requests reached the server, want at most %d (one replay each)", got, 2*n)
	}
}

func TestTransportReplay(t *testing.T) {
	u := &upstream{life: time.Hour}
	res := &resource{}
	tr, s := newTransport(t, u, res)
	mustToken(t, s)
	res.minValid.Store(2)

	req, _ := http.NewRequest(http.MethodPost, "https://api.example/items", strings.NewReader("payload"))
	req.Header.Set("X-Keep", "1")
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("got %v, %v", resp, err)
	}
	if strings.Join(res.bodies, ",") != "payload,payload" {
		t.Errorf("bodies sent: %q, want the body twice", res.bodies)
	}
	if strings.Join(res.auth, ",") != "Bearer tok-1,Bearer tok-2" {
		t.Errorf("Authorization sent: %q", res.auth)
	}
	if len(req.Header) != 1 || req.Header.Get("Authorization") != "" {
		t.Errorf("the caller's request was modified: %v", req.Header)
	}
	first := res.open[0]
	if !first.closed.Load() || !first.read.Load() {
		t.Errorf("the replaced 401 body was not drained and closed")
	}
}

// A server that rejects every token gets each request twice at most, and
// no token is ever sent again once rejected: the one the replay carried is
// invalidated too.
func TestTransportNeverLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		res := &resource{}
		res.minValid.Store(1 << 40) // rejects every token
		tr, _ := newTransport(t, u, res)
		for range 2 {
			resp := get(t, tr, "https://api.example/")
			drain(resp)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		}
		synctest.Wait()
		if got, want := strings.Join(res.auth, ","), "Bearer tok-1,Bearer tok-2,Bearer tok-3,Bearer tok-4"; got != want {
			t.Errorf("Authorization sent: %s, want %s (each token once)", got, want)
		}
		if res.requests.Load() != 4 || u.calls.Load() != 5 {
			t.Errorf("%d requests and %d fetches, want 4 and 5 (the last rejected token is replaced at once)", res.requests.Load(), u.calls.Load())
		}
	})
}

// Token revoked at the server, then three POSTs whose bodies cannot be
// replayed: the first 401 comes back as it is, but the token it carried is
// dropped, so the next requests go out with a new one.
func TestTransportUnreplayableBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		res := &resource{}
		tr, s := newTransport(t, u, res)
		mustToken(t, s)       // tok-1 is cached...
		res.minValid.Store(2) // ...and the server has revoked it
		var statuses []int
		for range 3 {
			body := &trackedBody{Reader: strings.NewReader("once")}
			req, _ := http.NewRequest(http.MethodPost, "https://api.example/", body)
			if req.GetBody != nil {
				t.Fatal("the body can be replayed")
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			drain(resp)
			statuses = append(statuses, resp.StatusCode)
		}
		if got := fmt.Sprint(statuses); got != "[401 200 200]" {
			t.Errorf("statuses %s, want [401 200 200]", got)
		}
		if got := strings.Join(res.auth, ","); got != "Bearer tok-1,Bearer tok-2,Bearer tok-2" {
			t.Errorf("Authorization sent: %s", got)
		}
		if got := strings.Join(res.bodies, ","); got != "once,once,once" {
			t.Errorf("bodies sent: %q, want each once, no replay", res.bodies)
		}
		if u.calls.Load() != 2 {
			t.Errorf("%d fetches, want 2 (one refresh)", u.calls.Load())
		}
	})
}

// Every path on which the server rejects a token invalidates that token,
// and only those: a 403 that is not a rejection (RetryForbidden off, or
// insufficient_scope) keeps it.
func TestTransportInvalidatesRejectedTokens(t *testing.T) {
	const scope = `Bearer realm="api", error="insufficient_scope", scope="write"`
	cases := []struct {
		name           string
		minValid       int64 // the server accepts tok-N with N ≥ minValid
		status         int   // its answer to the others
		challenge      string
		retryForbidden bool
		replayable     bool   // the first request's body can be replayed
		want           string // the first request's status, then the second's
		wantAuth       string // the tokens the server saw, tok-N as N
	}{
		{"401, body not replayable", 2, 401, "", false, false, "401 200", "1,2"},
		{"403 retried, body not replayable", 2, 403, `Bearer error="invalid_token"`, true, false, "403 200", "1,2"},
		{"401, the replay rejected too", 3, 401, "", false, true, "401 200", "1,2,3"},
		{"403 retried, the replay rejected too", 3, 403, "", true, true, "403 200", "1,2,3"},
		{"403 not retried keeps the token", 2, 403, `Bearer error="invalid_token"`, false, false, "403 403", "1,1"},
		{"insufficient_scope keeps the token", 2, 403, scope, true, true, "403 403", "1,1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := &upstream{life: time.Hour}
				res := &resource{status: tc.status, challenge: tc.challenge}
				tr, s := newTransport(t, u, res)
				tr.RetryForbidden = tc.retryForbidden
				mustToken(t, s)
				res.minValid.Store(tc.minValid)
				var body io.Reader = &trackedBody{Reader: strings.NewReader("x")}
				if tc.replayable {
					body = strings.NewReader("x") // http.NewRequest sets GetBody
				}
				post, _ := http.NewRequest(http.MethodPost, "https://api.example/", body)
				if (post.GetBody != nil) != tc.replayable {
					t.Fatalf("GetBody set: %v", post.GetBody != nil)
				}
				var got []string
				for _, req := range []*http.Request{post, mustRequest(t, http.MethodGet)} {
					resp, err := tr.RoundTrip(req)
					if err != nil {
						t.Fatal(err)
					}
					drain(resp)
					got = append(got, strconv.Itoa(resp.StatusCode))
				}
				if strings.Join(got, " ") != tc.want {
					t.Errorf("statuses %v, want %s", got, tc.want)
				}
				var auth []string
				for _, a := range res.auth {
					auth = append(auth, strings.TrimPrefix(a, "Bearer tok-"))
				}
				if strings.Join(auth, ",") != tc.wantAuth {
					t.Errorf("tokens sent %v, want %s", auth, tc.wantAuth)
				}
			})
		})
	}
}

func mustRequest(t *testing.T, method string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "https://api.example/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTransportForbidden(t *testing.T) {
	cases := []struct {
		name      string
		retry     bool
		challenge string
		want      int
	}{
		{"403 not retried by default", false, `Bearer error="invalid_token"`, http.StatusForbidden},
		{"403 retried when configured", true, `Bearer error="invalid_token"`, http.StatusOK},
		{"403 without challenge retried", true, "", http.StatusOK},
		{"insufficient_scope never retried", true, `Bearer realm="api", error="insufficient_scope", scope="write"`, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &upstream{life: time.Hour}
			res := &resource{status: http.StatusForbidden, challenge: tc.challenge}
			tr, s := newTransport(t, u, res)
			tr.RetryForbidden = tc.retry
			mustToken(t, s)
			res.minValid.Store(2)
			resp := get(t, tr, "https://api.example/")
			drain(resp)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestTransportPlacement(t *testing.T) {
	u := &upstream{life: time.Hour}
	res := &resource{}
	tr, _ := newTransport(t, u, res)
	tr.Query = "access_token"
	drain(get(t, tr, "https://api.example/x?a=1"))
	if res.urls[0] != "https://api.example/x?a=1&access_token=tok-1" || res.auth[0] != "" {
		t.Errorf("query placement sent %q with Authorization %q", res.urls[0], res.auth[0])
	}

	var seen http.Header
	tr = &Transport{Source: tr.Source, Header: "X-Api-Token", Scheme: "Token", Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r.Header
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}
	drain(get(t, tr, "https://api.example/"))
	if seen.Get("X-Api-Token") != "Token tok-1" {
		t.Errorf("custom header sent %v", seen)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Requests to the token endpoint, and requests made by a fetch through the
// same client, pass through untouched instead of waiting for themselves.
func TestTransportBypass(t *testing.T) {
	var client *http.Client
	var sawAuth []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	s := New(func(ctx context.Context) (*oauth2.Token, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://idp.example/other-token-path", nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		drain(resp)
		return &oauth2.Token{AccessToken: "fetched", ExpiresIn: 3600}, nil
	}, &Options{TokenURL: "https://idp.example/token"})
	defer s.Close()
	client = &http.Client{Transport: &Transport{Source: s, Base: base}}

	resp, err := client.Post("https://idp.example/token", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	if s.Stats().Fetches != 0 {
		t.Errorf("a request to the token endpoint fetched a token")
	}
	resp, err = client.Get("https://api.example/")
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	if strings.Join(sawAuth, ",") != ",,Bearer fetched" {
		t.Errorf("Authorization headers sent: %q", sawAuth)
	}
}

// The request body is closed on every path, including failures before
// anything is sent.
func TestTransportClosesBodyOnError(t *testing.T) {
	s := New(func(context.Context) (*oauth2.Token, error) {
		return nil, errors.Join(ErrReauthRequired, errUpstream)
	}, nil)
	defer s.Close()
	tr := &Transport{Source: s, Base: &resource{}}
	body := &trackedBody{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, "https://api.example/", body)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, ErrReauthRequired) {
		t.Errorf("err = %v, want ErrReauthRequired", err)
	}
	if !body.closed.Load() {
		t.Error("request body left open")
	}
	body = &trackedBody{Reader: strings.NewReader("x")}
	req, _ = http.NewRequest(http.MethodPost, "https://api.example/", body)
	if _, err := (&Transport{}).RoundTrip(req); err == nil || !body.closed.Load() {
		t.Errorf("Transport without Source: err %v, body closed %v", err, body.closed.Load())
	}
}

// When the refresh after a 401 fails terminally, the caller sees
// ErrReauthRequired instead of the 401.
func TestTransportRefreshFailsAfter401(t *testing.T) {
	u := &upstream{life: time.Hour}
	res := &resource{}
	tr, s := newTransport(t, u, res)
	mustToken(t, s)
	res.minValid.Store(2)
	u.setErr(&oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"})
	req, _ := http.NewRequest(http.MethodGet, "https://api.example/", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("err = %v, want ErrReauthRequired", err)
	}
	if !res.open[0].closed.Load() {
		t.Error("the 401 body was not closed")
	}
}
