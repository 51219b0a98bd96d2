package refresh

import (
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// Invalidate reports that a server rejected tok. If tok is still the
// current token, it stops being served and a new one is fetched; reports
// about older tokens, and repeated reports about the same one, do nothing.
//
// A server that rejects every token (a wrong audience, signing keys it
// does not know) would turn each report into a fetch. So a token rejected
// soon after it arrived, before it could prove good, counts as a failed
// refresh, a strike: within Options.MinBackoff of its arrival, or a tenth
// of its lifetime if that is shorter (a caller renewing short-lived tokens
// may invalidate one early only to get a newer one). The first strike
// still refreshes at once, so a token revoked as it arrived costs one
// fetch. After the n-th strike in a row (n ≥ 2) the fetch waits as after
// the (n-1)-th failed fetch: full jitter below MinBackoff·2^(n-2), at most
// MaxBackoff. Until then Token, TokenContext, FreshToken and a Transport's
// requests get an error wrapping ErrTokenRejected at once, as they get a
// failed fetch's error until its retry; from then on they wait for the
// fetch. A token that proves good ends the run of strikes: one rejected
// after its window, or one refreshed or expired on schedule without being
// rejected. Reset ends it too. A Transport judges its rejections more
// strictly (see there).
func (s *Source) Invalidate(tok *oauth2.Token) {
	s.reject(tok, false)
}

// reject withdraws tok if it is the current token, and judges whether its
// rejection is a strike: within its young window for Invalidate, within
// Options.MaxBackoff for a Transport (byTransport).
func (s *Source) reject(tok *oauth2.Token, byTransport bool) {
	if tok == nil {
		return
	}
	s.mu.Lock()
	st := s.cur.Load()
	if !st.ok || !sameToken(st.tok, tok) {
		s.mu.Unlock()
		return
	}
	now := s.o.Now().Round(0)
	window := s.young
	if byTransport {
		window = s.o.MaxBackoff
	}
	var wait time.Duration
	if now.Sub(s.arrived) < window {
		s.strikes++
		s.rejections.Add(1)
		if s.strikes > 1 {
			wait = backoff(s.strikes-1, s.o.MinBackoff, s.o.MaxBackoff, s.o.jitter)
		}
	} else {
		s.strikes = 0
	}
	strikes := s.strikes
	s.hold = now.Add(wait)
	err := s.lastErr
	if wait > 0 {
		err = fmt.Errorf("%w (%d in a row)", ErrTokenRejected, strikes)
	}
	s.cur.Store(&state{tok: st.tok, err: err})
	s.rejected = true
	s.wanted, s.reason = true, "invalidated"
	s.poke()
	s.mu.Unlock()
	if wait > 0 {
		s.o.Logger.Warn("refresh: tokens rejected soon after they were fetched; waiting before the next fetch",
			"in_a_row", strikes, "wait", wait)
	}
}

// youngFor returns how long after its arrival at got (Options.Now) the
// rejection of a token planned by p counts as a strike when reported by
// Invalidate: Options.MinBackoff, or a tenth of the token's lifetime if
// known and shorter.
func (s *Source) youngFor(p plan, got time.Time) time.Duration {
	w := s.o.MinBackoff
	if !p.expiry.IsZero() {
		w = min(w, p.expiry.Sub(got)/10)
	}
	return w
}
