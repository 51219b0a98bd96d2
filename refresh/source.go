package refresh

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Options configures a Source. The zero value is usable: every zero field
// means the documented default.
type Options struct {
	// Initial is a token to start with, for example one loaded from disk.
	// Its access token is served while it is valid; its refresh token seeds
	// a rotating source.
	Initial *oauth2.Token

	// RefreshAt is the fraction of a token's lifetime after which the
	// background refresh starts. Default 0.8.
	RefreshAt float64
	// Lead, if positive, starts the refresh at least Lead before expiry when
	// that comes before RefreshAt.
	Lead time.Duration
	// Jitter is the largest fraction of the lifetime by which each refresh
	// is moved earlier at random, so that a fleet of processes does not
	// refresh in lockstep. Default 0.05; negative disables it.
	Jitter float64
	// ExpiryMargin is how long before expiry (send time + expires_in) a
	// token stops being served, to cover the flight time of the requests
	// that present it. It is capped at a tenth of the token's lifetime.
	// Default 10s.
	ExpiryMargin time.Duration

	// FetchTimeout bounds each fetch, independently of the callers waiting
	// for it. Default 30s.
	FetchTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// failed fetches, and between fetches for tokens rejected soon after
	// they arrived (see Source.Invalidate). Defaults 1s and 1m. After a
	// 429 or 503 with Retry-After the wait is at least the Retry-After,
	// and still at most MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxUnreachableBackoff caps the backoff after a fetch the
	// authorization server did not answer: a transport error (connection
	// refused or reset, DNS, TLS, timeout), or a 502, 503 or 504 that
	// carries neither an OAuth error body (RFC 6749 §5.2) nor a
	// Retry-After, which is a gateway's answer, not the server's. Such
	// fetches cost the server nothing, and a short cap lets the Source
	// notice within this long that the server is back. Default 5s; at most
	// MaxBackoff.
	MaxUnreachableBackoff time.Duration
	// WallClockCheck is how often, while it holds a token with a known
	// expiry, the background goroutine compares the wall clock with that
	// expiry (see the package documentation). Default 1s.
	WallClockCheck time.Duration

	// OnRefresh is called with every new token before any caller can see it,
	// so that an application can persist a rotated refresh token before it is
	// used. An error is logged; the token is still installed, because the
	// refresh token it replaces may already be spent.
	OnRefresh func(ctx context.Context, tok *oauth2.Token) error
	// OnReauthRequired is called when a fetch fails terminally. The error
	// wraps ErrReauthRequired and the upstream error.
	OnReauthRequired func(err error)
	// OnFetch is called after every fetch, for metrics.
	OnFetch func(FetchInfo)

	// TokenURL is the token endpoint. A Transport never intercepts requests
	// to it. The x/oauth2 constructors fill it in.
	TokenURL string
	// HTTPClient, if set, is the client the x/oauth2 constructors use to
	// reach the token endpoint.
	HTTPClient *http.Client
	// Logger receives failures. Tokens are never logged. Default: discard.
	Logger *slog.Logger
	// Now returns the wall-clock time on which refreshes are scheduled,
	// expiry is judged and rejections are timed. Default time.Now. A
	// token's lifetime is taken from the token itself (expires_in, or its
	// Expiry against time.Now at arrival, see the package documentation)
	// and then placed on this clock, so every clock gives the same
	// lifetimes.
	Now func() time.Time

	// jitter returns a uniform random number in [0, n); tests replace it.
	jitter func(n int64) int64
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.RefreshAt <= 0 || c.RefreshAt > 1 {
		c.RefreshAt = 0.8
	}
	if c.Jitter == 0 {
		c.Jitter = 0.05
	}
	if c.ExpiryMargin <= 0 {
		c.ExpiryMargin = 10 * time.Second
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 30 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(time.Minute, c.MinBackoff)
	}
	if c.MaxUnreachableBackoff <= 0 {
		c.MaxUnreachableBackoff = 5 * time.Second
	}
	c.MaxUnreachableBackoff = min(c.MaxUnreachableBackoff, c.MaxBackoff)
	if c.WallClockCheck <= 0 {
		c.WallClockCheck = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.jitter == nil {
		c.jitter = rand.Int64N
	}
	return c
}

// FetchInfo describes one fetch, for Options.OnFetch.
type FetchInfo struct {
	// Reason is why the fetch ran: "initial", "proactive", "expired",
	// "invalidated" (a server rejected the token, see Source.Invalidate)
	// or "retry".
	Reason string
	// Latency is how long the fetch took.
	Latency time.Duration
	// Err is the failure, or nil.
	Err error
	// Lifetime is the new token's lifetime, or 0 if unknown or failed.
	Lifetime time.Duration
	// Failures counts consecutive failures, this one included.
	Failures int
	// RetryIn is, after a transient failure, how long the Source waits
	// before its next fetch: the backoff, at most MaxUnreachableBackoff
	// when the fetch was Unanswered, else raised to the answer's
	// Retry-After after a 429 or 503 and at most MaxBackoff. 0 after a
	// success or a terminal failure.
	RetryIn time.Duration
	// Unanswered is set after a failure the authorization server did not
	// answer (see Options.MaxUnreachableBackoff).
	Unanswered bool
}

// Stats is a snapshot of a Source's counters.
type Stats struct {
	Fetches     int64         // fetches made, successful or not
	Failures    int64         // failed fetches
	LastLatency time.Duration // latency of the latest fetch
	Expiry      time.Time     // expiry of the token being served, on time.Now's clock as on the token; zero if none or unknown
	Rejected    int64         // rejections that counted as strikes: tokens rejected before they proved good (see Source.Invalidate)
}

// fetchFunc fetches a token; prev is the token held so far (nil at first),
// whose refresh token a refresh grant spends.
type fetchFunc func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error)

// A Source is an oauth2.TokenSource that refreshes its token in the
// background before it expires. All methods are safe for concurrent use.
// Close stops the background goroutine.
type Source struct {
	fetch    fetchFunc
	o        Options
	tokenURL *url.URL

	// cur is what callers read; it is replaced, never modified.
	cur atomic.Pointer[state]

	mu      sync.Mutex
	next    *flight       // the fetch waiting callers get; nil if none pending
	wanted  bool          // someone needs a token and none is valid
	reason  string        // why wanted
	lastErr error         // the latest failure, until a fetch succeeds
	reset   *oauth2.Token // a token handed to Reset, for the loop to install
	closed  bool

	// Judging rejections (reject.go). The first three describe the
	// current token and change with cur.
	arrived  time.Time     // when it arrived, on Options.Now
	young    time.Duration // how long after arriving its Invalidate is a strike
	rejected bool          // it was withdrawn because a server rejected it
	strikes  int           // tokens rejected in a row before they proved good
	hold     time.Time     // no fetch for a rejected token before this (Options.Now)

	kick   chan struct{} // wakes the loop; capacity 1
	quit   chan struct{}
	done   chan struct{} // closed when the loop has returned
	ctx    context.Context
	cancel context.CancelFunc

	fetches, failures, latency, expiry, rejections atomic.Int64
}

// state is one immutable view of the current token.
type state struct {
	tok      *oauth2.Token
	ok       bool  // tok may be served
	err      error // when !ok: returned at once, without waiting for a fetch
	deadline int64 // wall-clock Unix nanoseconds after which tok is not served; 0 = none
}

// flight is one fetch in flight: it carries the fetch's outcome to the
// callers waiting for it.
type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// New returns a Source that obtains tokens by calling fetch: once when the
// first caller needs a token, then in the background before each expires.
// fetch runs on the Source's goroutine with a context that carries
// Options.FetchTimeout and is cancelled by Close. A fetch error that wraps
// ErrReauthRequired, or an *oauth2.RetrieveError or *OAuthError for
// invalid_grant, invalid_client, unauthorized_client or a 400/401 answer,
// is terminal; any other is retried, after a 429 or 503 not before its
// Retry-After (see OAuthError). opts may be nil.
func New(fetch func(ctx context.Context) (*oauth2.Token, error), opts *Options) *Source {
	return newSource(func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
		return fetch(ctx)
	}, opts)
}

// NewRotating returns a Source for a refresh-token grant: refresh receives
// the current refresh token and returns a new token. When the answer carries
// a new refresh token it replaces the old one (rotation), after
// Options.OnRefresh has seen it; when it carries none, the old one is kept.
// The first refresh token comes from Options.Initial.
func NewRotating(refresh func(ctx context.Context, refreshToken string) (*oauth2.Token, error), opts *Options) *Source {
	return newSource(func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
		if prev == nil || prev.RefreshToken == "" {
			return nil, fmt.Errorf("%w: no refresh token", ErrReauthRequired)
		}
		return refresh(ctx, prev.RefreshToken)
	}, opts)
}

func newSource(fetch fetchFunc, opts *Options) *Source {
	s := &Source{
		fetch: fetch,
		o:     opts.withDefaults(),
		kick:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if s.o.TokenURL != "" {
		s.tokenURL, _ = url.Parse(s.o.TokenURL)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cur.Store(&state{})
	var first plan
	if tok := s.o.Initial; tok != nil {
		s.o.Initial = nil
		first = s.installLocked(tok, s.o.Now().Round(0), time.Now().Round(0))
	}
	go s.run(first)
	return s
}

// Token returns the current token, implementing oauth2.TokenSource. While a
// valid token is cached it returns at once, without locking or allocating;
// otherwise it waits for the one shared fetch. The returned token must not
// be modified.
func (s *Source) Token() (*oauth2.Token, error) {
	if st := s.cur.Load(); st.ok {
		return st.tok, nil
	}
	return s.wait(context.Background())
}

// TokenContext is Token with a context that bounds the wait for a fetch.
// Cancelling ctx ends only this caller's wait, never the shared fetch.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if st := s.cur.Load(); st.ok {
		return st.tok, nil
	}
	return s.wait(ctx)
}

// FreshToken is TokenContext that also reads the wall clock, so it never
// returns a token whose expiry has passed, even in the moment after a
// machine resumes from suspend. Use it where the token goes on the wire.
func (s *Source) FreshToken(ctx context.Context) (*oauth2.Token, error) {
	st := s.cur.Load()
	if st.ok && (st.deadline == 0 || s.o.Now().UnixNano() < st.deadline) {
		return st.tok, nil
	}
	if st.ok {
		s.mu.Lock()
		if s.cur.Load() == st {
			s.withdrawLocked(st, "expired")
		}
		s.mu.Unlock()
	}
	return s.wait(ctx)
}

// wait returns the token of the next fetch, or the remembered failure of the
// last one while no retry is due.
func (s *Source) wait(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	st := s.cur.Load()
	if st.ok {
		s.mu.Unlock()
		return st.tok, nil
	}
	if st.err != nil {
		s.mu.Unlock()
		return nil, st.err
	}
	a := s.next
	if a == nil {
		a = &flight{done: make(chan struct{})}
		s.next = a
		if !s.wanted {
			s.wanted, s.reason = true, "initial"
			if st.tok != nil {
				s.reason = "expired"
			}
		}
		s.poke()
	}
	s.mu.Unlock()
	select {
	case <-a.done:
		return a.tok, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("refresh: wait for token: %w", context.Cause(ctx))
	}
}

// withdrawLocked stops serving st's token and asks the loop for a new one.
func (s *Source) withdrawLocked(st *state, reason string) {
	s.cur.Store(&state{tok: st.tok, err: s.lastErr})
	s.wanted, s.reason = true, reason
	s.poke()
}

func sameToken(a, b *oauth2.Token) bool {
	return a == b || subtle.ConstantTimeCompare([]byte(a.AccessToken), []byte(b.AccessToken)) == 1
}

// Reset replaces the held token, for example after the user has logged in
// again following ErrReauthRequired, and clears any failure and backoff.
func (s *Source) Reset(tok *oauth2.Token) {
	s.mu.Lock()
	s.reset = tok
	if tok == nil {
		s.reset = &oauth2.Token{}
	}
	s.mu.Unlock()
	s.poke()
}

// Close stops the background goroutine and cancels a fetch in flight.
// Afterwards every call returns ErrClosed. Close is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	s.cancel()
	<-s.done
	s.mu.Lock()
	s.cur.Store(&state{err: ErrClosed})
	if a := s.next; a != nil {
		s.next = nil
		a.err = ErrClosed
		close(a.done)
	}
	s.mu.Unlock()
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Source) Stats() Stats {
	st := Stats{
		Fetches:     s.fetches.Load(),
		Failures:    s.failures.Load(),
		LastLatency: time.Duration(s.latency.Load()),
		Rejected:    s.rejections.Load(),
	}
	if e := s.expiry.Load(); e != 0 && s.cur.Load().ok {
		st.Expiry = time.Unix(0, e)
	}
	return st
}

func (s *Source) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// fetchKey marks the contexts of fetches, so that a Transport used by the
// fetch itself passes the request through instead of waiting on itself.
type fetchKey struct{}

// bypass reports whether a Transport should send req untouched: a request
// made by a fetch, or one to the token endpoint.
func (s *Source) bypass(req *http.Request) bool {
	if req.Context().Value(fetchKey{}) != nil {
		return true
	}
	u := s.tokenURL
	return u != nil && req.URL != nil && req.URL.Host == u.Host && req.URL.Path == u.Path && req.URL.Scheme == u.Scheme
}
