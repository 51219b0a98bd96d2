package refresh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// upstream is a token endpoint stand-in, driven by fake time in a synctest
// bubble.
type upstream struct {
	life  time.Duration // lifetime of issued tokens (expires_in)
	delay time.Duration // how long each fetch takes

	calls atomic.Int64
	mu    sync.Mutex
	err   error         // when set, fetches fail with it
	gate  chan struct{} // when set, fetches block until it is closed
}

var errUpstream = errors.New("upstream down")

func (u *upstream) fetch(ctx context.Context) (*oauth2.Token, error) {
	n := u.calls.Add(1)
	u.mu.Lock()
	err, gate := u.err, u.gate
	u.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if u.delay > 0 {
		select {
		case <-time.After(u.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n), RefreshToken: fmt.Sprintf("rt-%d", n), ExpiresIn: int64(u.life / time.Second)}, nil
}

func (u *upstream) setErr(err error) {
	u.mu.Lock()
	u.err = err
	u.mu.Unlock()
}

func (u *upstream) setGate(c chan struct{}) {
	u.mu.Lock()
	u.gate = c
	u.mu.Unlock()
}

func noJitter(int64) int64 { return 0 }

func newTestSource(t *testing.T, u *upstream, o Options) *Source {
	t.Helper()
	if o.jitter == nil {
		o.jitter = noJitter
	}
	s := New(u.fetch, &o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustToken(t *testing.T, s *Source) *oauth2.Token {
	t.Helper()
	tok, err := s.TokenContext(t.Context())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestFirstFetchAndCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		s := newTestSource(t, u, Options{})
		tok := mustToken(t, s)
		if tok.AccessToken != "tok-1" {
			t.Fatalf("got %q, want tok-1", tok.AccessToken)
		}
		if want := time.Now().Add(time.Hour); !tok.Expiry.Equal(want) {
			t.Errorf("Expiry = %v, want %v (local clock + expires_in)", tok.Expiry, want)
		}
		for range 100 {
			if again := mustToken(t, s); again != tok {
				t.Fatalf("cached read returned %q", again.AccessToken)
			}
		}
		if n := u.calls.Load(); n != 1 {
			t.Errorf("%d fetches, want 1", n)
		}
	})
}

// 10,000 goroutines asking for a token at expiry cause exactly 1 fetch.
func TestStampedeAtExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Minute}
		s := newTestSource(t, u, Options{RefreshAt: 1}) // no proactive refresh before the deadline
		first := mustToken(t, s)

		gate := make(chan struct{})
		u.setGate(gate)
		time.Sleep(time.Until(first.Expiry)) // the token expires; its refresh blocks on gate
		synctest.Wait()

		const n = 10_000
		toks := make([]*oauth2.Token, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tok, err := s.TokenContext(context.Background())
				if err != nil {
					t.Errorf("Token: %v", err)
				}
				toks[i] = tok
			})
		}
		synctest.Wait() // every caller is now blocked
		if got := u.calls.Load(); got != 2 {
			t.Fatalf("%d fetches with %d callers waiting, want 2 (first + one refresh)", got, n)
		}
		close(gate)
		wg.Wait()
		for _, tok := range toks {
			if tok == nil || tok.AccessToken != "tok-2" {
				t.Fatalf("a caller got %v, want tok-2", tok)
			}
		}
		if got := u.calls.Load(); got != 2 {
			t.Errorf("%d fetches, want 2", got)
		}
	})
}

// With no valid token and a failing upstream, 1,000 callers share each
// attempt and all get its error within one attempt's time; the failure is
// then remembered until the next backoff slot.
func TestFailingUpstreamSharesAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour, delay: time.Second, err: errUpstream}
		s := newTestSource(t, u, Options{MinBackoff: 10 * time.Second, jitter: func(n int64) int64 { return n - 1 }})

		start := time.Now()
		const n = 1000
		errs := make([]error, n)
		took := make([]time.Duration, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.TokenContext(context.Background())
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		if got := u.calls.Load(); got != 1 {
			t.Fatalf("%d upstream calls for %d callers, want 1", got, n)
		}
		for i := range n {
			if !errors.Is(errs[i], errUpstream) {
				t.Fatalf("caller %d: err = %v, want one wrapping the upstream error", i, errs[i])
			}
			if took[i] > u.delay {
				t.Fatalf("caller %d waited %v, more than one attempt (%v)", i, took[i], u.delay)
			}
		}

		// Before the next slot, callers get the remembered failure at once.
		time.Sleep(5 * time.Second)
		before := time.Now()
		if _, err := s.TokenContext(context.Background()); !errors.Is(err, errUpstream) {
			t.Fatalf("err = %v, want the remembered failure", err)
		}
		if time.Since(before) != 0 || u.calls.Load() != 1 {
			t.Fatalf("remembered failure cost %v and %d calls", time.Since(before), u.calls.Load())
		}

		// The retry comes by itself at the slot; callers then share it.
		u.setErr(nil)
		time.Sleep(5 * time.Second)
		tok := mustToken(t, s)
		if tok.AccessToken != "tok-2" || u.calls.Load() != 2 {
			t.Fatalf("after the slot got %q with %d calls, want tok-2 with 2", tok.AccessToken, u.calls.Load())
		}
	})
}

// A still-valid token is served throughout a failing refresh, never an
// error, and the error appears only when no valid token remains.
func TestValidTokenServedWhileRefreshFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: 100 * time.Second, delay: time.Second}
		s := newTestSource(t, u, Options{MinBackoff: time.Second, MaxBackoff: 4 * time.Second})
		tok := mustToken(t, s) // refresh at 80s, deadline at 90s
		u.setErr(errUpstream)
		deadline := tok.Expiry.Add(-10 * time.Second)
		for time.Now().Before(deadline) {
			got, err := s.Token()
			if err != nil || got != tok {
				t.Fatalf("at %v before the deadline: %v, %v", time.Until(deadline), got, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if calls := u.calls.Load(); calls < 4 {
			t.Errorf("only %d fetches during 10s of failing refresh: no retries?", calls)
		}
		synctest.Wait()
		if _, err := s.Token(); !errors.Is(err, errUpstream) {
			t.Fatalf("after the deadline err = %v, want the upstream error", err)
		}
		// One retry may still be in flight, not yet counted.
		if st, calls := s.Stats(), u.calls.Load(); st.Failures == 0 || st.Fetches < calls-1 || st.Fetches > calls {
			t.Errorf("Stats = %+v with %d calls", st, u.calls.Load())
		}
	})
}

// A jump of the wall clock past expiry while monotonic time stands still (a
// suspended machine) is never answered with the old token by FreshToken, and
// Token drops it within one WallClockCheck of the resume.
func TestSuspendPastExpiry(t *testing.T) {
	// suspend returns a Source holding a one-hour token, and a function that
	// jumps its wall clock two hours ahead without moving monotonic time. The
	// refresh after the resume blocks until gate is closed, so the old token
	// could linger.
	suspend := func(t *testing.T) (s *Source, old *oauth2.Token, resume func(), gate chan struct{}) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		u := &upstream{life: time.Hour}
		s = newTestSource(t, u, Options{Now: now})
		old = mustToken(t, s)
		gate = make(chan struct{})
		u.setGate(gate)
		return s, old, func() { offset.Store(int64(2 * time.Hour)) }, gate
	}
	noToken := func(t *testing.T, get func(context.Context) (*oauth2.Token, error), old *oauth2.Token) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if tok, err := get(ctx); tok == old || err == nil {
			t.Fatalf("got %v, %v; want no token while the refresh is held", tok, err)
		}
	}
	t.Run("FreshToken at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, old, resume, gate := suspend(t)
			resume()
			noToken(t, s.FreshToken, old)
			close(gate)
			if tok := mustToken(t, s); tok.AccessToken != "tok-2" {
				t.Fatalf("after the refresh got %q, want tok-2", tok.AccessToken)
			}
		})
	})
	t.Run("Token after one check", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, old, resume, gate := suspend(t)
			resume()
			time.Sleep(time.Second) // one WallClockCheck of monotonic time after the resume
			synctest.Wait()
			noToken(t, s.TokenContext, old)
			close(gate)
			if tok := mustToken(t, s); tok.AccessToken != "tok-2" {
				t.Fatalf("after the refresh got %q, want tok-2", tok.AccessToken)
			}
		})
	})
}

// With a slow upstream and proactive refresh, no Token call waits for the
// network during a rotation.
func TestRotationNeverBlocksReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: 10 * time.Second, delay: 200 * time.Millisecond}
		s := newTestSource(t, u, Options{})
		_, _ = s.Token()
		seen := map[string]bool{}
		for range 500 { // 50s: several lifetimes and rotations
			before := time.Now()
			tok, err := s.Token()
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(before) != 0 {
				t.Fatalf("Token waited %v", time.Since(before))
			}
			seen[tok.AccessToken] = true
			time.Sleep(100 * time.Millisecond)
		}
		if len(seen) < 5 {
			t.Errorf("saw %d tokens over 50s of 10s tokens: no proactive refresh?", len(seen))
		}
	})
}

func TestTerminalFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		var calls atomic.Int64
		var reported error
		s := newTestSource(t, u, Options{OnReauthRequired: func(err error) { calls.Add(1); reported = err }})
		mustToken(t, s)
		upstreamErr := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"}
		u.setErr(upstreamErr)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		_, err := s.Token()
		if !errors.Is(err, ErrReauthRequired) || !errors.Is(err, upstreamErr) {
			t.Fatalf("err = %v, want ErrReauthRequired wrapping the upstream error", err)
		}
		if u.calls.Load() != 2 {
			t.Errorf("%d fetches, want 2: a terminal failure must stop retries", u.calls.Load())
		}
		if calls.Load() != 1 || !errors.Is(reported, ErrReauthRequired) {
			t.Errorf("OnReauthRequired called %d times with %v", calls.Load(), reported)
		}

		// Reset clears it: the user logged in again.
		u.setErr(nil)
		s.Reset(&oauth2.Token{AccessToken: "relogged", ExpiresIn: 3600})
		synctest.Wait()
		if tok := mustToken(t, s); tok.AccessToken != "relogged" {
			t.Fatalf("after Reset got %q", tok.AccessToken)
		}
	})
}

func TestClassification(t *testing.T) {
	retrieve := func(status int, code string) error {
		return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, ErrorCode: code}
	}
	cases := []struct {
		err  error
		want bool
	}{
		{retrieve(400, "invalid_grant"), true},
		{retrieve(401, "invalid_client"), true},
		{retrieve(400, "invalid_request"), true},
		{retrieve(401, ""), true},
		{fmt.Errorf("wrapped: %w", retrieve(400, "invalid_grant")), true},
		{fmt.Errorf("mine: %w", ErrReauthRequired), true},
		{retrieve(500, ""), false},
		{retrieve(503, "temporarily_unavailable"), false},
		{retrieve(429, ""), false},
		{&OAuthError{Status: 400, Code: "invalid_client"}, true},
		{fmt.Errorf("mine: %w", &OAuthError{Code: "unauthorized_client"}), true},
		{&OAuthError{Status: 503, Code: "temporarily_unavailable"}, false},
		{context.DeadlineExceeded, false},
		{errors.New("connection reset by peer"), false},
		{ErrMalformedToken, false},
	}
	for _, tc := range cases {
		oe, _ := asOAuthError(tc.err, time.Time{})
		if got := terminal(tc.err, oe); got != tc.want {
			t.Errorf("terminal(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestTransientFailureRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The server's own 503 (an OAuth error body): answered, so the
		// backoff grows to MaxBackoff (recovery_test.go has the bare
		// gateway answers).
		u := &upstream{life: time.Hour, err: &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}, ErrorCode: "temporarily_unavailable"}}
		var mu sync.Mutex
		var infos []FetchInfo
		s := newTestSource(t, u, Options{MinBackoff: time.Second, MaxBackoff: 8 * time.Second,
			jitter: func(n int64) int64 { return n - 1 }, OnFetch: func(i FetchInfo) {
				mu.Lock()
				infos = append(infos, i)
				mu.Unlock()
			}})
		if _, err := s.Token(); err == nil || errors.Is(err, ErrReauthRequired) {
			t.Fatalf("err = %v, want a transient failure", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		// Attempts at 0, 1, 3, 7, 15, 23, 31, ... (ceilings 1, 2, 4, 8, 8, ...).
		if got := u.calls.Load(); got < 8 || got > 10 {
			t.Errorf("%d attempts in a minute with backoff capped at 8s", got)
		}
		u.setErr(nil)
		time.Sleep(8 * time.Second)
		if _, err := s.Token(); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
		synctest.Wait() // OnFetch runs after the outcome is published
		mu.Lock()
		defer mu.Unlock()
		last := infos[len(infos)-1]
		if last.Err != nil || last.Reason != "retry" || last.Lifetime != time.Hour {
			t.Errorf("last FetchInfo = %+v", last)
		}
		if infos[0].Reason != "initial" || infos[0].Failures != 1 {
			t.Errorf("first FetchInfo = %+v", infos[0])
		}
	})
}

// A caller's context ends only its own wait, never the shared fetch.
func TestCallerCancelDoesNotCancelFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour, delay: time.Second}
		s := newTestSource(t, u, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { _, err := s.TokenContext(ctx); errc <- err }()
		var other *oauth2.Token
		done := make(chan struct{})
		go func() { other, _ = s.TokenContext(context.Background()); close(done) }()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v", err)
		}
		<-done
		if other == nil || other.AccessToken != "tok-1" || u.calls.Load() != 1 {
			t.Fatalf("other caller got %v after %d fetches", other, u.calls.Load())
		}
	})
}

func TestInvalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		s := newTestSource(t, u, Options{})
		first := mustToken(t, s)
		s.Invalidate(first)
		second := mustToken(t, s)
		if second.AccessToken != "tok-2" {
			t.Fatalf("after Invalidate got %q", second.AccessToken)
		}
		// Reports about an older token do nothing, even as a copy.
		stale := *first
		s.Invalidate(&stale)
		s.Invalidate(first)
		synctest.Wait()
		if tok := mustToken(t, s); tok != second || u.calls.Load() != 2 {
			t.Fatalf("stale Invalidate caused a refresh: %q, %d calls", tok.AccessToken, u.calls.Load())
		}
		s.Invalidate(nil)
	})
}

func TestRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var used []string
		var persisted []string
		n := 0
		var s *Source
		s = NewRotating(func(ctx context.Context, rt string) (*oauth2.Token, error) {
			used = append(used, rt)
			n++
			tok := &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", n), ExpiresIn: 100}
			if n != 2 { // the second answer carries no refresh token: keep the old one
				tok.RefreshToken = fmt.Sprintf("rt-%d", n)
			}
			return tok, nil
		}, &Options{
			Initial: &oauth2.Token{RefreshToken: "rt-0"},
			jitter:  noJitter,
			OnRefresh: func(ctx context.Context, tok *oauth2.Token) error {
				// Runs before any caller can see tok.
				if cur := s.cur.Load(); cur.ok && cur.tok == tok {
					t.Errorf("OnRefresh ran after %q was published", tok.AccessToken)
				}
				persisted = append(persisted, tok.RefreshToken)
				return errors.New("disk full") // logged; the token is installed anyway
			},
		})
		defer s.Close()
		for i := range 3 {
			tok := mustToken(t, s)
			if want := fmt.Sprintf("at-%d", i+1); tok.AccessToken != want {
				t.Fatalf("got %q, want %q", tok.AccessToken, want)
			}
			time.Sleep(80 * time.Second)
			synctest.Wait()
		}
		if fmt.Sprint(used) != "[rt-0 rt-1 rt-1 rt-3]" {
			t.Errorf("refresh tokens spent: %v, want [rt-0 rt-1 rt-1 rt-3]", used)
		}
		if fmt.Sprint(persisted[:3]) != "[rt-1 rt-1 rt-3]" {
			t.Errorf("refresh tokens persisted: %v", persisted)
		}
	})
}

func TestRotatingWithoutRefreshTokenIsTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewRotating(func(context.Context, string) (*oauth2.Token, error) {
			t.Error("refresh called without a refresh token")
			return nil, nil
		}, nil)
		defer s.Close()
		if _, err := s.Token(); !errors.Is(err, ErrReauthRequired) {
			t.Fatalf("err = %v, want ErrReauthRequired", err)
		}
	})
}

func TestInitialToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour}
		s := newTestSource(t, u, Options{Initial: &oauth2.Token{AccessToken: "stored", Expiry: time.Now().Add(time.Minute), ExpiresIn: 3600}})
		if tok := mustToken(t, s); tok.AccessToken != "stored" || u.calls.Load() != 0 {
			t.Fatalf("got %q after %d fetches; want the stored token, no fetch", tok.AccessToken, u.calls.Load())
		}
		time.Sleep(time.Minute) // its stored Expiry wins over its stale expires_in
		synctest.Wait()
		if tok := mustToken(t, s); tok.AccessToken != "tok-1" {
			t.Fatalf("got %q, want a refreshed token", tok.AccessToken)
		}
	})
}

func TestMalformedTokenIsTransient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answers := []*oauth2.Token{nil, {AccessToken: ""}, {AccessToken: "x", Expiry: time.Unix(1, 0)}, {AccessToken: "ok"}}
		i := 0
		top := func(n int64) int64 { return n - 1 } // retries after 1s, 2s, 4s
		s := New(func(context.Context) (*oauth2.Token, error) { i++; return answers[i-1], nil }, &Options{jitter: top})
		defer s.Close()
		for i := range 3 {
			if _, err := s.Token(); !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("answer %d: err = %v, want ErrMalformedToken", i, err)
			}
			time.Sleep(time.Second << i)
		}
		if tok := mustToken(t, s); tok.AccessToken != "ok" || !tok.Expiry.IsZero() {
			t.Fatalf("got %+v, want the token with no expiry", tok)
		}
	})
}

// Close stops the goroutine (synctest.Test fails on a leaked one), cancels
// the fetch in flight, and answers waiters with ErrClosed.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{life: time.Hour, delay: time.Hour}
		s := New(u.fetch, nil)
		errc := make(chan error)
		go func() { _, err := s.Token(); errc <- err }()
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("waiter got %v, want ErrClosed", err)
		}
		if _, err := s.Token(); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestTokenAllocatesNothing(t *testing.T) {
	s := New(func(context.Context) (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "x"}, nil }, nil)
	defer s.Close()
	if _, err := s.Token(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = s.Token() }); n != 0 {
		t.Errorf("Token allocates %v times per call", n)
	}
}

// A fetch that hangs is cut off by FetchTimeout and retried, whatever the
// callers' contexts say.
func TestFetchTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		s := New(func(ctx context.Context) (*oauth2.Token, error) {
			if calls.Add(1) == 1 {
				<-ctx.Done() // hangs until the fetch's own deadline
				return nil, ctx.Err()
			}
			return &oauth2.Token{AccessToken: "second"}, nil
		}, &Options{FetchTimeout: 5 * time.Second, jitter: noJitter})
		defer s.Close()
		start := time.Now()
		_, err := s.Token()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
			t.Fatalf("after %v: %v, want the fetch's deadline after 5s", time.Since(start), err)
		}
		synctest.Wait()
		if tok := mustToken(t, s); tok.AccessToken != "second" {
			t.Fatalf("retry got %q", tok.AccessToken)
		}
	})
}
