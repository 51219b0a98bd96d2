package oauth

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

var raNow = time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)

// date formats t as an HTTP-date (IMF-fixdate, RFC 9110 §5.6.7).
func date(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

var retryAfterCases = []struct {
	name, value, date string // header values; "" leaves the header out
	want              time.Duration
	ok                bool
}{
	{"absent", "", "", 0, false},
	{"seconds", "5", "", 5 * time.Second, true},
	{"zero", "0", "", 0, true},
	{"spaces around", " 120 ", "", 2 * time.Minute, true},
	{"leading zeros", "007", "", 7 * time.Second, true},
	{"seconds ignore Date", "5", date(raNow.Add(time.Hour)), 5 * time.Second, true},
	{"huge saturates", "99999999999999999999999", "", math.MaxInt64, true},
	{"just too large saturates", "9223372037", "", math.MaxInt64, true},
	{"negative", "-5", "", 0, false},
	{"plus", "+5", "", 0, false},
	{"fraction", "1.5", "", 0, false},
	{"unit", "5s", "", 0, false},
	{"garbage", "soon", "", 0, false},
	{"two values in one", "5, 6", "", 0, false},
	{"date ahead of the client", date(raNow.Add(30 * time.Second)), "", 30 * time.Second, true},
	{"date behind the client", date(raNow.Add(-30 * time.Second)), "", 0, true},
	{"RFC 850 date", raNow.Add(10 * time.Second).Format(time.RFC850), "", 10 * time.Second, true},
	{"asctime date", raNow.Add(10 * time.Second).Format(time.ANSIC), "", 10 * time.Second, true},
	// A server whose clock runs an hour ahead of the client's, or an hour
	// behind: its Date says when it answered, so the delay is what it
	// meant, 5s, not 1h5s or nothing.
	{"server clock ahead, with Date", date(raNow.Add(time.Hour + 5*time.Second)), date(raNow.Add(time.Hour)), 5 * time.Second, true},
	{"server clock behind, with Date", date(raNow.Add(-time.Hour + 5*time.Second)), date(raNow.Add(-time.Hour)), 5 * time.Second, true},
	{"date before its Date", date(raNow), date(raNow.Add(time.Minute)), 0, true},
	{"garbage Date falls back to the client's clock", date(raNow.Add(5 * time.Second)), "yesterday", 5 * time.Second, true},
	{"date with a zone other than GMT", "Sun, 06 Dec 2026 14:00:05 CET", "", 0, false},
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range retryAfterCases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if tc.date != "" {
				h.Set("Date", tc.date)
			}
			got, ok := RetryAfter(h, raNow)
			if got != tc.want || ok != tc.ok {
				t.Errorf("RetryAfter(%q, Date %q) = %v, %v; want %v, %v", tc.value, tc.date, got, ok, tc.want, tc.ok)
			}
		})
	}
	h := http.Header{"Retry-After": {"5", "6"}}
	if got, ok := RetryAfter(h, raNow); ok || got != 0 {
		t.Errorf("two Retry-After headers = %v, %v; want none", got, ok)
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, tc := range retryAfterCases {
		f.Add(tc.value, tc.date)
	}
	f.Fuzz(func(t *testing.T, value, dateValue string) {
		h := http.Header{"Retry-After": {value}, "Date": {dateValue}}
		got, ok := RetryAfter(h, raNow)
		if got < 0 || !ok && got != 0 {
			t.Fatalf("RetryAfter(%q, %q) = %v, %v", value, dateValue, got, ok)
		}
		v := strings.TrimSpace(value)
		if ok && v != "" && v[0] >= '0' && v[0] <= '9' && digits(v) && got%time.Second != 0 && got != math.MaxInt64 {
			t.Fatalf("RetryAfter(%q) = %v, not whole seconds", value, got)
		}
	})
}

func TestParseBody(t *testing.T) {
	cases := []struct {
		in   string
		want Body
		ok   bool
	}{
		{`{"error":"invalid_grant","error_description":"reused","error_uri":"https://x/e"}`, Body{"invalid_grant", "reused", "https://x/e"}, true},
		{`{"error":"temporarily_unavailable"}`, Body{Error: "temporarily_unavailable"}, true},
		{`{"error_description":"no code"}`, Body{}, false},
		{`{"error":7}`, Body{}, false},
		{`<html>Bad Gateway</html>`, Body{}, false},
		{``, Body{}, false},
	}
	for _, tc := range cases {
		got, ok := ParseBody([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseBody(%s) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseBody(f *testing.F) {
	f.Add([]byte(`{"error":"invalid_grant","error_description":"reused","error_uri":"https://x/e"}`))
	f.Add([]byte(`{"error":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, ok := ParseBody(b)
		if ok != (body.Error != "") || !ok && body != (Body{}) {
			t.Fatalf("ParseBody(%q) = %+v, %v", b, body, ok)
		}
	})
}
