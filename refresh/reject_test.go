package refresh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// half draws every backoff at half its ceiling: 0.5s, 1s, 2s, ... 30s.
func half(n int64) int64 { return n / 2 }

// top draws every backoff at its ceiling, less a nanosecond.
func top(n int64) int64 { return n - 1 }

// fetchTimes records when each fetch of a Source ran, on the bubble's clock.
type fetchTimes struct {
	start time.Time
	mu    sync.Mutex
	at    []time.Duration
}

func newFetchTimes() *fetchTimes { return &fetchTimes{start: time.Now()} }

func (f *fetchTimes) onFetch(FetchInfo) {
	f.mu.Lock()
	f.at = append(f.at, time.Since(f.start))
	f.mu.Unlock()
}

// String lists the times, the first 20 of them.
func (f *fetchTimes) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.at) > 20 {
		return fmt.Sprintf("%v... (%d in all)", f.at[:20], len(f.at))
	}
	return fmt.Sprint(f.at)
}

// storm sends one GET through tr every 60ms from now until end (on the
// bubble's clock since f.start), letting the Source act on whatever is due
// before each. Every request must be answered at once, with an error
// wrapping ErrTokenRejected (counted in rejected) or with the server's
// response, whose body is still unread; statuses counts those by status.
func storm(t *testing.T, tr *Transport, f *fetchTimes, end time.Duration) (statuses map[int]int, rejected int) {
	t.Helper()
	statuses = map[int]int{}
	for time.Since(f.start) < end {
		synctest.Wait() // a fetch due now has run
		before := time.Now()
		resp, err := tr.RoundTrip(mustRequest(t, http.MethodGet))
		if waited := time.Since(before); waited != 0 {
			t.Fatalf("a request at %v waited %v", before.Sub(f.start), waited)
		}
		switch {
		case errors.Is(err, ErrTokenRejected):
			rejected++
		case err != nil:
			t.Fatalf("request at %v: %v", before.Sub(f.start), err)
		default:
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != http.StatusText(resp.StatusCode) {
				t.Fatalf("request at %v: %d with body %q, read before it was returned", before.Sub(f.start), resp.StatusCode, body)
			}
			statuses[resp.StatusCode]++
		}
		time.Sleep(60 * time.Millisecond)
	}
	return statuses, rejected
}

// A resource server that rejects every token, and 1,000 requests through
// the Transport over 60s. Unbounded, each request would fetch two tokens:
// 2,000 fetches. Bounded, the first rejection refreshes at once and so
// does the replay's; after that each fetch waits 0.5s, 1s, 2s, 4s, 8s,
// 16s (half each ceiling, as the jitter is set here) from the rejection,
// which comes with the first request after the fetch: 8 fetches, each
// token sent once, and no request waits. A request whose token is
// rejected while the Source is backing off gets that 401 as it is.
func TestTransportStormIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		res := &resource{}
		res.minValid.Store(1 << 40) // rejects every token
		f := newFetchTimes()
		s := newTestSource(t, u, Options{TokenURL: "https://auth.example/token", jitter: half, OnFetch: f.onFetch})
		tr := &Transport{Source: s, Base: res}
		statuses, rejected := storm(t, tr, f, 60*time.Second)
		if n := statuses[http.StatusUnauthorized] + rejected; n != 1000 {
			t.Fatalf("%d requests, want 1000 (%v and %d refused)", n, statuses, rejected)
		}
		// Fetches at 0 and 0, then at the first request after each fetch
		// (60ms steps) plus half the ceiling: 0.54+1 = 1.54, 1.56+2 = 3.56,
		// 3.60+4 = 7.60, 7.62+8 = 15.62, 15.66+16 = 31.66; the next, 31.68+30,
		// is past the end.
		if got, want := f.String(), "[0s 0s 500ms 1.54s 3.56s 7.6s 15.62s 31.66s]"; got != want {
			t.Errorf("fetches at %s, want %s", got, want)
		}
		if u.calls.Load() != 8 || statuses[http.StatusUnauthorized] != 7 || rejected != 993 {
			t.Errorf("%d fetches, %v and %d refused at once; want 8 fetches, 7 401s, 993 refused",
				u.calls.Load(), statuses, rejected)
		}
		if got, want := strings.Join(res.auth, ","), "Bearer tok-1,Bearer tok-2,Bearer tok-3,Bearer tok-4,Bearer tok-5,Bearer tok-6,Bearer tok-7,Bearer tok-8"; got != want {
			t.Errorf("%d requests reached the server, want one with each of the 8 tokens", len(res.auth))
		}
		if st := s.Stats(); st.Rejected != 8 {
			t.Errorf("Stats.Rejected = %d, want 8", st.Rejected)
		}
	})
}

// 100 goroutines send 10 requests each, every 60ms, to a server that
// rejects every token: the concurrent rejections of one token count once,
// so the fetches are those of one caller: 2 at once, 1 after the first
// backoff, none more within 0.6s.
func TestTransportStormConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		res := &resource{}
		res.minValid.Store(1 << 40)
		s := newTestSource(t, u, Options{TokenURL: "https://auth.example/token", jitter: half})
		tr := &Transport{Source: s, Base: res}
		var wg sync.WaitGroup
		var answered atomic.Int64
		for range 100 {
			wg.Go(func() {
				for range 10 {
					before := time.Now()
					resp, err := tr.RoundTrip(mustRequest(t, http.MethodGet))
					if time.Since(before) != 0 {
						t.Errorf("a request waited %v", time.Since(before))
					}
					switch {
					case errors.Is(err, ErrTokenRejected):
					case err != nil:
						t.Error(err)
					case resp.StatusCode != http.StatusUnauthorized:
						t.Errorf("status %d", resp.StatusCode)
						drain(resp)
					default:
						drain(resp)
					}
					answered.Add(1)
					time.Sleep(60 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		if answered.Load() != 1000 || u.calls.Load() != 3 {
			t.Errorf("%d answers and %d fetches, want 1000 and 3", answered.Load(), u.calls.Load())
		}
	})
}

// A token rejected once, whether just after it arrived or after serving
// for a while, costs exactly one fetch, and the replay succeeds without
// waiting: the jitter here would make any backoff show.
func TestTransportOneRejectionCostsOneFetch(t *testing.T) {
	cases := []struct {
		name     string
		age      time.Duration // of the token when it is revoked
		rejected int64         // Stats.Rejected afterwards
	}{
		{"revoked as it arrives", 0, 1},
		{"revoked after 30s", 30 * time.Second, 1},
		{"revoked after 30 minutes", 30 * time.Minute, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := &upstream{life: time.Hour}
				res := &resource{}
				s := newTestSource(t, u, Options{TokenURL: "https://auth.example/token", jitter: top})
				tr := &Transport{Source: s, Base: res}
				mustToken(t, s)
				time.Sleep(tc.age)
				res.minValid.Store(2) // tok-1 is revoked
				before := time.Now()
				for i := range 3 {
					resp := get(t, tr, "https://api.example/")
					drain(resp)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("request %d: status %d, want 200", i, resp.StatusCode)
					}
				}
				if time.Since(before) != 0 || u.calls.Load() != 2 {
					t.Errorf("took %v and %d fetches, want no wait and 2", time.Since(before), u.calls.Load())
				}
				if got := strings.Join(res.auth, ","); got != "Bearer tok-1,Bearer tok-2,Bearer tok-2,Bearer tok-2" {
					t.Errorf("tokens sent: %s", got)
				}
				if got := s.Stats().Rejected; got != tc.rejected {
					t.Errorf("Stats.Rejected = %d, want %d", got, tc.rejected)
				}
			})
		})
	}
}

// After the resource server is fixed, the Source fetches at its next
// backoff slot, not sooner, and requests succeed from then on. Once that
// token has served for MaxBackoff the run of strikes is over: a token
// revoked then, and the next one revoked as it arrives, each cost one
// fetch at once and the replays succeed, where an eighth strike in the
// old run would have waited 30s.
func TestTransportRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		res := &resource{}
		res.minValid.Store(1 << 40)
		f := newFetchTimes()
		s := newTestSource(t, u, Options{TokenURL: "https://auth.example/token", jitter: half, OnFetch: f.onFetch})
		tr := &Transport{Source: s, Base: res}

		// As in TestTransportStormIsBounded: the 7th fetch is due at 15.62s.
		storm(t, tr, f, 10*time.Second)
		res.minValid.Store(0)                                         // fixed
		statuses, rejected := storm(t, tr, f, 15620*time.Millisecond) // 10.02s to 15.60s
		if len(statuses) != 0 || rejected != 94 {
			t.Fatalf("while backing off: %v and %d refused, want 94 refused", statuses, rejected)
		}
		if got, want := f.String(), "[0s 0s 500ms 1.54s 3.56s 7.6s 15.62s]"; got != want {
			t.Errorf("fetches at %s, want %s: the last at the slot", got, want)
		}
		statuses, rejected = storm(t, tr, f, 90*time.Second) // 15.66s to 89.94s
		if statuses[http.StatusOK] != 1239 || rejected != 0 || len(statuses) != 1 || u.calls.Load() != 7 {
			t.Errorf("after the slot: %v, %d refused, %d fetches; want 1239 200s from the 7 fetches", statuses, rejected, u.calls.Load())
		}

		// tok-7 has served 74s: revoked now, it is not a strike.
		res.minValid.Store(8)
		if resp := get(t, tr, "https://api.example/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("after revoking tok-7: status %d", resp.StatusCode)
		}
		// tok-8, revoked as it arrives, is the first strike of a new run.
		res.minValid.Store(9)
		if resp := get(t, tr, "https://api.example/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("after revoking tok-8: status %d", resp.StatusCode)
		}
		if u.calls.Load() != 9 || time.Since(f.start) != 90*time.Second {
			t.Errorf("%d fetches at %v, want 9 at 90s", u.calls.Load(), time.Since(f.start))
		}
	})
}

// A caller that invalidates every token it gets, checking every 10ms for
// 60s (6,000 rounds), is bounded the same way: 8 fetches, and Token and
// FreshToken answer at once throughout, with a token or ErrTokenRejected.
func TestInvalidateLoopIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		f := newFetchTimes()
		s := newTestSource(t, u, Options{jitter: half, OnFetch: f.onFetch})
		tokens, refused := 0, 0
		for time.Since(f.start) < time.Minute {
			synctest.Wait()
			before := time.Now()
			tok, err := s.FreshToken(t.Context())
			if _, err2 := s.Token(); (err2 == nil) != (err == nil) || (err2 != nil && !errors.Is(err2, ErrTokenRejected)) {
				t.Fatalf("Token: %v, while FreshToken: %v", err2, err)
			}
			if time.Since(before) != 0 {
				t.Fatalf("waited %v", time.Since(before))
			}
			switch {
			case err == nil:
				tokens++
				s.Invalidate(tok)
			case errors.Is(err, ErrTokenRejected):
				refused++
			default:
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// 0 and 0, then 10ms (the second strike) + 0.5 = 0.51, then each
		// slot plus 1s, 2s, 4s, 8s, 16s (it falls on a 10ms step).
		if got, want := f.String(), "[0s 0s 510ms 1.51s 3.51s 7.51s 15.51s 31.51s]"; got != want {
			t.Errorf("fetches at %s, want %s", got, want)
		}
		if tokens != 8 || refused != 5992 {
			t.Errorf("%d tokens and %d refusals, want 8 and 5992", tokens, refused)
		}
	})
}

// A rejection reported by Invalidate is a strike within MinBackoff of the
// token's arrival, or a tenth of its lifetime if shorter. Two in a row at
// the given age: the second waits the first backoff (the ceiling here)
// if both were strikes, or gets a new token at once if neither was.
func TestInvalidateWindow(t *testing.T) {
	cases := []struct {
		name   string
		life   time.Duration // 0: unknown
		age    time.Duration
		strike bool
	}{
		{"1h token at 999ms", time.Hour, 999 * time.Millisecond, true},
		{"1h token at 1s", time.Hour, time.Second, false},
		{"unknown lifetime at 999ms", 0, 999 * time.Millisecond, true},
		{"unknown lifetime at 1s", 0, time.Second, false},
		{"5s token at 499ms", 5 * time.Second, 499 * time.Millisecond, true},
		{"5s token at 500ms", 5 * time.Second, 500 * time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := &upstream{life: tc.life}
				s := newTestSource(t, u, Options{jitter: top, RefreshAt: 1})
				for range 2 {
					tok := mustToken(t, s)
					time.Sleep(tc.age)
					s.Invalidate(tok)
				}
				_, err := s.FreshToken(t.Context())
				if got := errors.Is(err, ErrTokenRejected); got != tc.strike {
					t.Fatalf("after two rejections: %v; want ErrTokenRejected: %v", err, tc.strike)
				}
				var want int64
				if tc.strike {
					want = 2
					time.Sleep(time.Second - 1) // the first backoff's ceiling, less a nanosecond
					synctest.Wait()             // the fetch due now has run
				}
				if tok := mustToken(t, s); tok.AccessToken != "tok-3" || s.Stats().Rejected != want {
					t.Fatalf("got %q with Stats.Rejected %d, want tok-3 and %d", tok.AccessToken, s.Stats().Rejected, want)
				}
			})
		})
	}
}

// A token refreshed on schedule without being rejected ends a run of
// strikes, and so does Reset: the next rejection refreshes at once.
func TestStrikesEndWithAGoodToken(t *testing.T) {
	for _, end := range []string{"proactive refresh", "Reset"} {
		t.Run(end, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := &upstream{life: 100 * time.Second}
				s := newTestSource(t, u, Options{jitter: top, Jitter: -1}) // refreshed at 80% of its life
				for range 2 {                                              // strikes 1 and 2; the second waits 1s
					s.Invalidate(mustToken(t, s))
				}
				if _, err := s.Token(); !errors.Is(err, ErrTokenRejected) {
					t.Fatalf("after 2 strikes: %v", err)
				}
				time.Sleep(time.Second)
				good := mustToken(t, s) // tok-3
				if end == "Reset" {
					s.Reset(&oauth2.Token{AccessToken: "relogged", ExpiresIn: 100})
				} else {
					time.Sleep(time.Until(good.Expiry.Add(-20 * time.Second)))
				}
				synctest.Wait()
				next := mustToken(t, s) // as it arrives
				if next == good {
					t.Fatal("the token was not replaced")
				}
				before := u.calls.Load()
				s.Invalidate(next) // as it arrives: the first strike of a new run, not the third
				if tok := mustToken(t, s); tok.AccessToken == next.AccessToken || u.calls.Load() != before+1 {
					t.Fatalf("after the rejection: %q, %d fetches; want a new token from one fetch", tok.AccessToken, u.calls.Load()-before)
				}
			})
		})
	}
}

// While the Source backs off, a request with a body fails at once and its
// body is closed; a request that waits for the fetch at the slot can still
// give up with its context.
func TestTransportBackingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		res := &resource{}
		res.minValid.Store(1 << 40)
		s := newTestSource(t, u, Options{TokenURL: "https://auth.example/token", jitter: top})
		tr := &Transport{Source: s, Base: res}
		drain(get(t, tr, "https://api.example/")) // two strikes: backing off for 1s

		body := &trackedBody{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(http.MethodPost, "https://api.example/", body)
		if _, err := tr.RoundTrip(req); !errors.Is(err, ErrTokenRejected) || !body.closed.Load() {
			t.Fatalf("err %v, body closed %v; want ErrTokenRejected and closed", err, body.closed.Load())
		}

		// At the slot the fetch hangs; a caller waits for it only as long
		// as its context lets it.
		gate := make(chan struct{})
		u.setGate(gate)
		time.Sleep(time.Second)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example/", nil)
		before := time.Now()
		if _, err := tr.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) || time.Since(before) != 5*time.Second {
			t.Fatalf("after %v: %v, want the request's deadline after 5s", time.Since(before), err)
		}
		close(gate)
	})
}
