package refresh

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	"golang.org/x/oauth2"

	backoffpkg "github.com/tokend/tokend/internal/backoff"
)

// plan is when the background goroutine acts on one token. All times are
// on the Options.Now clock, without a monotonic reading. A zero expiry means
// the token's lifetime is unknown: it is served until invalidated and never
// refreshed proactively.
type plan struct {
	expiry    time.Time // when the token expires
	deadline  time.Time // when the token stops being served (expiry less the margin)
	refreshAt time.Time // when the proactive refresh starts
}

// lifetime returns how long tok stays valid from the moment it was
// received, and whether that is known at all. now is Options.Now at that
// moment and real is time.Now, both without a monotonic reading.
//
// A fresh token (just fetched) is judged by expires_in first (accept counts
// the result from the request's send time); a token from storage (Options.Initial, Reset) by its Expiry
// first, because its expires_in is as old as the token. An Expiry is read
// on time.Now's clock, real, whatever clock Options.Now is: x/oauth2 sets it
// to time.Now()+expires_in (its clientcredentials package keeps only that),
// and a Source hands out and persists tokens with Expiry on that clock too.
// Without either, the exp claim of a JWT access token is used: exp-iat from
// receipt when iat is present (immune to clock skew), otherwise exp, an
// instant on the issuer's wall clock, against now.
func lifetime(tok *oauth2.Token, now, real time.Time, fresh bool) (time.Duration, bool) {
	if fresh && tok.ExpiresIn > 0 {
		return time.Duration(tok.ExpiresIn) * time.Second, true
	}
	if !tok.Expiry.IsZero() {
		return tok.Expiry.Round(0).Sub(real), true
	}
	if tok.ExpiresIn > 0 {
		return time.Duration(tok.ExpiresIn) * time.Second, true
	}
	exp, iat, ok := jwtTimes(tok.AccessToken)
	if !ok {
		return 0, false
	}
	if fresh && iat > 0 && exp > iat {
		return time.Duration(exp-iat) * time.Second, true
	}
	return time.Unix(exp, 0).Sub(now), true
}

// makePlan schedules a token received at got that lives for life.
// jitter(n) returns a random number in [0, n).
func makePlan(got time.Time, life time.Duration, o *Options, jitter func(int64) int64) plan {
	got = got.Round(0)
	expiry := got.Add(life)
	margin := min(o.ExpiryMargin, life/10)
	deadline := expiry.Add(-margin)
	at := got.Add(time.Duration(float64(life) * o.RefreshAt))
	if o.Lead > 0 {
		if lead := expiry.Add(-o.Lead); lead.Before(at) {
			at = lead
		}
	}
	if j := int64(float64(life) * o.Jitter); j > 0 {
		at = at.Add(-time.Duration(jitter(j)))
	}
	if at.Before(got) {
		at = got
	}
	if at.After(deadline) {
		at = deadline
	}
	return plan{expiry: expiry, deadline: deadline, refreshAt: at}
}

// backoff returns the wait before retry number n (n ≥ 1): full jitter over
// an exponentially growing ceiling, min·2^(n-1), capped at max.
func backoff(n int, lo, hi time.Duration, jitter func(int64) int64) time.Duration {
	return backoffpkg.Full(n, lo, hi, jitter)
}

// maxJWT bounds the access tokens jwtTimes looks into.
const maxJWT = 16 << 10

// jwtTimes reads the exp and iat claims (seconds since the epoch) from a JWT
// without verifying it: the values only schedule refreshes, and a forged
// token would be rejected by the server that receives it. ok is false unless
// the token is a well-formed JWS compact serialisation with a positive exp.
func jwtTimes(token string) (exp, iat int64, ok bool) {
	if len(token) > maxJWT {
		return 0, 0, false
	}
	_, rest, found := strings.Cut(token, ".")
	if !found {
		return 0, 0, false
	}
	payload, sig, found := strings.Cut(rest, ".")
	if !found || strings.Contains(sig, ".") {
		return 0, 0, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return 0, 0, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
		Iat json.Number `json:"iat"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return 0, 0, false
	}
	exp, ok = seconds(claims.Exp)
	if !ok || exp <= 0 {
		return 0, 0, false
	}
	iat, _ = seconds(claims.Iat)
	return exp, iat, true
}

// seconds converts a NumericDate (RFC 7519 §2) to whole seconds.
func seconds(n json.Number) (int64, bool) {
	if n == "" {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || f > math.MaxInt64/2 || f < 0 || math.IsNaN(f) {
		return 0, false
	}
	return int64(f), true
}
