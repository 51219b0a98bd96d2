package oauth

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryAfter returns the delay an answer's Retry-After header asks for
// (RFC 9110 §10.2.3), and whether it asks for one. The header holds either
// delay-seconds (1*DIGIT) or an HTTP-date. A date is measured against the
// answer's own Date header when that is a valid HTTP-date, so that the
// delay is the one the server meant whatever its clock's skew from the
// client's (RFC 9110 §6.6.1: both are on the server's clock); without a
// Date header it is measured against now, the client's clock. A date
// already past is a delay of 0. Anything else (garbage, a sign, a
// fraction, several values) is no Retry-After. Delays too long for a
// time.Duration saturate at its maximum; callers cap them anyway.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	vs := h.Values("Retry-After")
	if len(vs) != 1 {
		return 0, false
	}
	v := strings.TrimSpace(vs[0])
	if v == "" {
		return 0, false
	}
	if digits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64, true // all digits, so only too large
		}
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	return max(at.Sub(now), 0), true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseBody reads a JSON error body (RFC 6749 §5.2). ok is false unless b
// is a JSON object whose "error" is a non-empty string.
func ParseBody(b []byte) (body Body, ok bool) {
	if err := json.Unmarshal(b, &body); err != nil || body.Error == "" {
		return Body{}, false
	}
	return body, true
}
