package server

import (
	"time"

	"github.com/tokend/tokend/store"
)

// Lifetimes: the one rule for every answer that says how long something
// lives. No answer promises more life than its token has.
//
// An access token issued at now for ttl expires at accessExpiry(now,
// ttl): a JWT's exp is whole seconds (RFC 7519 §2, NumericDate), so it is
// the first whole second at or after now plus ttl rounded up to a whole
// second. The token lives at least ttl and less than a second more; its
// iat is now rounded down.
//
// A relative lifetime (expires_in, RFC 6749 §5.1; a cookie's Max-Age,
// RFC 6265 §5.2.2) is secondsLeft(end, now): the whole seconds from the
// moment the answer is written to the end, rounded down. Answered at the
// instant of issue, expires_in is ttl exactly; answered later, it is
// what is left.
//
// An absolute time (exp and iat in a token or an introspection answer, a
// family's expires_at in the /v1 sessions listing) is the end itself, in
// whole seconds rounded down where the format has whole seconds. A family
// ends at its End; a shared store (PostgreSQL, Redis) keeps a family's
// times on its own clock, which judges them, so a relative lifetime
// derived from them is measured on that clock (refreshExpiry).

// accessExpiry returns the exp of an access token issued at now to live
// ttl.
func accessExpiry(now time.Time, ttl time.Duration) time.Time {
	if r := ttl % time.Second; r > 0 {
		ttl += time.Second - r
	}
	exp := now.Truncate(time.Second)
	if exp.Before(now) {
		exp = exp.Add(time.Second)
	}
	return exp.Add(ttl)
}

// secondsLeft returns the whole seconds from now until end, rounded down;
// 0 if end is less than a second away or past.
func secondsLeft(end, now time.Time) int64 {
	return int64(max(end.Sub(now), 0) / time.Second)
}

// refreshExpiry returns when the refresh token just made for f ends, on
// this server's clock: f as startFamily created it (generation 0, times on
// this clock) or as a rotation left it (times on the store's clock),
// and now taken before the store was asked. The token's life is measured
// on f's clock, from when it was made (CreatedAt, or RotatedAt) to
// its End, and laid from now; it ends no later than the store will judge
// it ended. A repeated rotation (store.Repeated) hands out again a token
// made up to grace before the store's now, which this server cannot read:
// its life is counted from grace after it was made.
func refreshExpiry(f store.Family, repeated bool, grace time.Duration, now time.Time) time.Time {
	made := f.CreatedAt
	if f.Generation > 0 {
		made = f.RotatedAt
	}
	life := f.End().Sub(made)
	if repeated {
		life -= grace
	}
	return now.Add(max(life, 0))
}

// stamp sets r's expires_in for an answer written at now.
func (r *tokenResponse) stamp(now time.Time) { r.ExpiresIn = secondsLeft(r.expires, now) }
