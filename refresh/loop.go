package refresh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// loop is the schedule owned by the Source's goroutine.
type loop struct {
	plan     plan      // of the current token
	failures int       // consecutive failed fetches
	nextTry  time.Time // earliest retry after a failure
	terminal error     // set after a terminal failure, until Reset
}

// run is the Source's goroutine. It makes every fetch, so at most one is
// ever in flight, and it withdraws tokens when the wall clock passes their
// deadline.
func (s *Source) run(first plan) {
	defer close(s.done)
	l := loop{plan: first}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		now := s.o.Now().Round(0)
		s.mu.Lock()
		if tok := s.reset; tok != nil {
			s.reset = nil
			l = loop{plan: s.installLocked(tok, now, time.Now().Round(0))}
		}
		st := s.cur.Load()
		if st.ok && !l.plan.deadline.IsZero() && !now.Before(l.plan.deadline) {
			s.withdrawLocked(st, "expired")
			st = s.cur.Load()
		}
		wanted, reason, hold := s.wanted, s.reason, s.hold
		s.mu.Unlock()

		due := false
		if l.terminal == nil && !now.Before(l.nextTry) {
			switch {
			case !st.ok && wanted && !now.Before(hold):
				due = true
			case st.ok && !l.plan.refreshAt.IsZero() && !now.Before(l.plan.refreshAt):
				due, reason = true, "proactive"
			}
		}
		if due {
			if l.failures > 0 {
				reason = "retry"
			}
			s.fetchOnce(&l, reason)
			continue
		}

		var wake time.Time
		earliest := func(t time.Time) {
			if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
				wake = t
			}
		}
		if st.ok && !l.plan.deadline.IsZero() {
			earliest(l.plan.deadline)
			earliest(now.Add(s.o.WallClockCheck))
			if l.terminal == nil {
				earliest(later(l.plan.refreshAt, l.nextTry))
			}
		}
		if !st.ok && wanted && l.terminal == nil {
			earliest(later(l.nextTry, hold))
		}
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(now), 0))
		}
		select {
		case <-s.quit:
			return
		case <-s.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// installLocked makes tok, handed to Options.Initial or Reset, the current
// token, served if it is still valid at now (Options.Now; real is
// time.Now). It returns tok's plan.
func (s *Source) installLocked(tok *oauth2.Token, now, real time.Time) plan {
	var p plan
	var expiry time.Time
	st := &state{tok: tok}
	if tok.AccessToken != "" {
		life, known := lifetime(tok, now, real, false)
		switch {
		case !known:
			st.ok = true
		case life > 0:
			p = makePlan(now, life, &s.o, s.o.jitter)
			cp := *tok
			cp.Expiry = real.Add(life)
			expiry = cp.Expiry
			st = &state{tok: &cp, ok: true, deadline: nanos(p.deadline)}
		}
	}
	s.cur.Store(st)
	s.expiry.Store(nanos(expiry))
	s.lastErr = nil
	s.arrived, s.young, s.rejected = now, s.youngFor(p, now), false
	s.strikes, s.hold = 0, time.Time{}
	s.wanted, s.reason = false, ""
	if a := s.next; a != nil {
		if st.ok {
			s.next = nil
			a.tok = st.tok
			close(a.done)
		} else {
			s.wanted, s.reason = true, "initial"
		}
	}
	return p
}

// fetchOnce makes one fetch and publishes its outcome: to the callers waiting
// for it, and to everyone through cur.
func (s *Source) fetchOnce(l *loop, reason string) {
	a, prev, withdraw := s.openFlight()
	if withdraw != nil {
		defer withdraw.Stop()
	}
	ctx, cancel := s.fetchContext()
	defer cancel()
	f := s.fetchAndAccept(ctx, prev.tok)
	if s.ctx.Err() != nil {
		return // closed: Close answers the waiters
	}
	if f.err == nil && s.o.OnRefresh != nil {
		if herr := s.o.OnRefresh(ctx, f.tok); herr != nil {
			s.o.Logger.Error("refresh: OnRefresh hook failed; the new token is installed anyway", "err", herr)
		}
	}
	s.fetches.Add(1)
	s.latency.Store(int64(f.latency))

	s.mu.Lock()
	if f.err == nil {
		s.publishTokenLocked(l, f)
	} else {
		s.publishFailureLocked(l, &f)
	}
	s.next = nil
	a.tok, a.err = f.tok, f.err
	close(a.done)
	s.mu.Unlock()

	s.report(l, reason, f)
}

// openFlight makes s.next the flight that callers wait for, creating it
// if none is, and returns it with the state being served. If that state
// is a token with a deadline, it also returns the timer that withdraws
// the token at its deadline, to be stopped when the fetch ends.
func (s *Source) openFlight() (*flight, *state, *time.Timer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.next
	if a == nil {
		a = &flight{done: make(chan struct{})}
		s.next = a
	}
	prev := s.cur.Load()
	if !prev.ok && prev.err != nil {
		// A retry is due: new callers wait for it instead of being
		// answered with the failure it may repair.
		s.cur.Store(&state{tok: prev.tok})
	}
	var withdraw *time.Timer
	if prev.ok && prev.deadline != 0 {
		// The loop is busy with this fetch and cannot withdraw the token
		// being served at its deadline: this timer does, so that callers
		// wait for the fetch instead of getting a token past its deadline.
		withdraw = time.AfterFunc(time.Duration(prev.deadline-s.o.Now().UnixNano()), func() {
			s.mu.Lock()
			if s.cur.Load() == prev {
				s.cur.Store(&state{tok: prev.tok})
				s.wanted, s.reason = true, "expired"
			}
			s.mu.Unlock()
		})
	}
	return a, prev, withdraw
}

// fetchContext returns the context of one fetch: marked as the Source's
// own (fetchKey), bounded by Options.FetchTimeout, and carrying
// Options.HTTPClient for x/oauth2.
func (s *Source) fetchContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithValue(s.ctx, fetchKey{}, s), s.o.FetchTimeout)
	if s.o.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.o.HTTPClient)
	}
	return ctx, cancel
}

// fetched is the outcome of one fetch.
type fetched struct {
	tok     *oauth2.Token // accepted; nil on failure
	p       plan          // of tok
	err     error
	sent    sendTime      // when the request was sent
	got     time.Time     // when the answer arrived, on Options.Now
	latency time.Duration // of the request, on time.Now

	// Of a failure (publishFailureLocked):
	retryIn    time.Duration // wait before the retry; zero if terminal
	unanswered bool          // nobody answered the request
}

// fetchAndAccept fetches a token to replace prev and checks it (accept).
func (s *Source) fetchAndAccept(ctx context.Context, prev *oauth2.Token) fetched {
	// The lifetime is counted from when the request was sent: the
	// server's expires_in is what was left when it answered, so counting
	// from the answer's arrival would add the flight time to it.
	start := time.Now()
	sent := sendTime{now: s.o.Now().Round(0), real: start.Round(0)}
	tok, err := s.fetch(ctx, prev)
	latency := time.Since(start)
	got, real := s.o.Now().Round(0), time.Now().Round(0)
	var p plan
	if err == nil {
		tok, p, err = s.accept(prev, tok, sent, got, real)
	}
	return fetched{tok: tok, p: p, err: err, sent: sent, got: got, latency: latency}
}

// publishTokenLocked serves the token f fetched and plans its refresh.
// s.mu must be held.
func (s *Source) publishTokenLocked(l *loop, f fetched) {
	if !s.rejected {
		// The token replaced was not rejected (it was refreshed or
		// expired on schedule, or there was none): it ended any run
		// of strikes.
		s.strikes = 0
	}
	s.arrived, s.young, s.rejected = f.got, s.youngFor(f.p, f.got), false
	s.hold = time.Time{} // spent, or overtaken by a fetch already under way
	s.cur.Store(&state{tok: f.tok, ok: true, deadline: nanos(f.p.deadline)})
	s.expiry.Store(nanos(f.tok.Expiry))
	s.wanted, s.lastErr = false, nil
	l.plan, l.failures, l.nextTry = f.p, 0, time.Time{}
}

// publishFailureLocked records the failure of fetch f as terminal
// (wrapping ErrReauthRequired, which stops the loop until Reset) or to be
// retried after a backoff, and sets in f the error to answer with (f.tok
// becomes nil), the wait before the retry, and whether the failure was
// unanswered. s.mu must be held.
func (s *Source) publishFailureLocked(l *loop, f *fetched) {
	s.failures.Add(1)
	l.failures++
	err, got := f.err, f.got
	var retryIn time.Duration
	var silent bool
	oe, added := asOAuthError(err, got)
	isTerminal := terminal(err, oe)
	if added {
		err = oe // wraps err
	}
	if isTerminal {
		if !errors.Is(err, ErrReauthRequired) {
			err = fmt.Errorf("%w: %w", ErrReauthRequired, err)
		}
		l.terminal = err
	} else {
		err = fmt.Errorf("refresh: fetch token: %w", err)
		if silent = unanswered(err, oe); silent {
			// Nobody answered: retrying costs the server nothing,
			// and a short cap notices its return promptly.
			retryIn = backoff(l.failures, s.o.MinBackoff, s.o.MaxUnreachableBackoff, s.o.jitter)
		} else {
			retryIn = retryWait(backoff(l.failures, s.o.MinBackoff, s.o.MaxBackoff, s.o.jitter), oe, s.o.MaxBackoff)
		}
		l.nextTry = got.Add(retryIn)
	}
	s.lastErr = err
	if cur := s.cur.Load(); !cur.ok {
		s.cur.Store(&state{tok: cur.tok, err: err})
	}
	f.tok, f.err, f.retryIn, f.unanswered = nil, err, retryIn, silent
}

// report logs a failed fetch, calls Options.OnReauthRequired after a
// terminal one, and describes the fetch to Options.OnFetch.
func (s *Source) report(l *loop, reason string, f fetched) {
	if f.err != nil {
		s.o.Logger.Warn("refresh: fetch failed", "reason", reason, "failures", l.failures, "err", f.err)
		if l.terminal != nil && s.o.OnReauthRequired != nil {
			s.o.OnReauthRequired(f.err)
		}
	}
	if s.o.OnFetch != nil {
		info := FetchInfo{Reason: reason, Latency: f.latency, Err: f.err, Failures: l.failures, RetryIn: f.retryIn, Unanswered: f.unanswered}
		if f.err == nil && !f.p.expiry.IsZero() {
			info.Lifetime = f.p.expiry.Sub(f.sent.now)
		}
		s.o.OnFetch(info)
	}
}

// nanos returns t in Unix nanoseconds, or 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// sendTime is when a fetch's request was sent, on Options.Now (now) and on
// time.Now (real), both without a monotonic reading.
type sendTime struct{ now, real time.Time }

// accept checks a fetched token, sent for at sent and received at got
// (Options.Now) and real (time.Now), and plans its refresh. The lifetime
// read from the answer at its arrival (expires_in, or an Expiry set on
// arrival as x/oauth2 sets it) is counted from sent, so that the token
// expires no later than the server's exp whatever the request's flight
// time. It returns a copy whose Expiry is that expiry on time.Now's clock,
// as x/oauth2 reads it (Token.Valid), and which keeps prev's refresh token
// when the answer carried none. A token that arrives at or after its
// deadline is refused: it could not be served.
func (s *Source) accept(prev, tok *oauth2.Token, sent sendTime, got, real time.Time) (*oauth2.Token, plan, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, plan{}, fmt.Errorf("%w: no access token", ErrMalformedToken)
	}
	cp := *tok
	if cp.RefreshToken == "" && prev != nil {
		cp.RefreshToken = prev.RefreshToken
	}
	life, known := lifetime(&cp, got, real, true)
	if !known {
		cp.Expiry = time.Time{}
		return &cp, plan{}, nil
	}
	if life <= 0 {
		return nil, plan{}, fmt.Errorf("%w: expired on arrival", ErrMalformedToken)
	}
	p := makePlan(sent.now, life, &s.o, s.o.jitter)
	if !got.Before(p.deadline) {
		return nil, plan{}, fmt.Errorf("%w: arrived %v after its request, past its deadline (lifetime %v)", ErrMalformedToken, got.Sub(sent.now), life)
	}
	cp.Expiry = sent.real.Add(life)
	return &cp, p, nil
}
