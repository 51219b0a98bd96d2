package refresh

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/internal/policytable"
)

// policyLifetimes are the token lifetimes the table's expressions are
// checked at: short tokens, where the caps by a fraction of the lifetime
// apply, and long ones.
var policyLifetimes = []time.Duration{5 * time.Second, 10 * time.Second, time.Minute, 100 * time.Second,
	200 * time.Second, 5 * time.Minute, time.Hour, 24 * time.Hour}

// The Go column of docs/client-policy.md is what a Source does with the
// zero Options: each row outside socket.* (wsconn/policy_test.go checks
// those) is compared with the schedule, backoff and Retry-After code
// that runs, and a row without a check here fails.
func TestPolicyTable(t *testing.T) {
	rows, err := policytable.Read("../docs/client-policy.md")
	if err != nil {
		t.Fatal(err)
	}
	o := (&Options{}).withDefaults()
	eval := func(t *testing.T, expr string, life, lead time.Duration) time.Duration {
		t.Helper()
		d, err := policytable.Eval(expr, map[string]time.Duration{"lifetime": life, "lead": lead})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	near := func(a, b time.Duration) bool { return a-b <= 1 && b-a <= 1 }
	got := time.Unix(1_700_000_000, 0)
	checks := map[string]func(t *testing.T, v string){
		"refresh.start": func(t *testing.T, v string) {
			for _, life := range policyLifetimes {
				p := makePlan(got, life, &o, noJitter)
				if at, want := p.refreshAt.Sub(got), eval(t, v, life, 0); !near(at, want) {
					t.Errorf("lifetime %v: refresh %v after the send, table %v", life, at, want)
				}
			}
		},
		"refresh.jitter": func(t *testing.T, v string) {
			for _, life := range policyLifetimes {
				p0, p1 := makePlan(got, life, &o, noJitter), makePlan(got, life, &o, top)
				lead := p0.expiry.Sub(p0.refreshAt)
				if most, want := p0.refreshAt.Sub(p1.refreshAt)+1, eval(t, v, life, lead); !near(most, want) {
					t.Errorf("lifetime %v: refresh at most %v earlier, table %v", life, most, want)
				}
			}
		},
		"expiry.margin": func(t *testing.T, v string) {
			for _, life := range policyLifetimes {
				p := makePlan(got, life, &o, noJitter)
				if m, want := p.expiry.Sub(p.deadline), eval(t, v, life, 0); !near(m, want) {
					t.Errorf("lifetime %v: served until %v before expiry, table %v", life, m, want)
				}
			}
		},
		"backoff.base": func(t *testing.T, v string) {
			if c := backoff(1, o.MinBackoff, o.MaxBackoff, top) + 1; c != eval(t, v, 0, 0) {
				t.Errorf("first ceiling %v", c)
			}
		},
		"backoff.cap": func(t *testing.T, v string) {
			if c := backoff(100, o.MinBackoff, o.MaxBackoff, top) + 1; c != eval(t, v, 0, 0) {
				t.Errorf("largest ceiling %v", c)
			}
		},
		"backoff.unanswered-cap": func(t *testing.T, v string) {
			// TestRecoveryAfterOutage checks the waits with these defaults.
			if c := backoff(100, o.MinBackoff, o.MaxUnreachableBackoff, top) + 1; c != eval(t, v, 0, 0) {
				t.Errorf("largest ceiling after unanswered failures %v", c)
			}
		},
		"backoff.jitter": func(t *testing.T, v string) {
			lo, hi := backoff(3, o.MinBackoff, o.MaxBackoff, noJitter), backoff(3, o.MinBackoff, o.MaxBackoff, top)
			var kind string
			switch {
			case lo == 0 && hi == 4*time.Second-1:
				kind = "full"
			case lo == 2*time.Second && hi == 4*time.Second-1:
				kind = "equal"
			}
			if kind != v {
				t.Errorf("third wait drawn from [%v, %v], a %q jitter; table %q", lo, hi+1, kind, v)
			}
		},
		"retry-after.statuses": func(t *testing.T, v string) {
			var honoured []string
			for _, st := range []int{408, 429, 500, 502, 503, 504} {
				if retryWait(0, &OAuthError{Status: st, Code: "x", RetryAfter: 7 * time.Second}, o.MaxBackoff) == 7*time.Second {
					honoured = append(honoured, strconv.Itoa(st))
				}
			}
			if h := strings.Join(honoured, ", "); h != v {
				t.Errorf("Retry-After honoured on %q, table %q", h, v)
			}
		},
		"retry-after.cap": func(t *testing.T, v string) {
			if w := retryWait(0, &OAuthError{Status: 503, RetryAfter: 24 * time.Hour}, o.MaxBackoff); w != eval(t, v, 0, 0) {
				t.Errorf("Retry-After of a day waits %v", w)
			}
		},
		"retry-after.clock": func(t *testing.T, v string) {
			// The server's clock an hour ahead of the client's: the
			// answer's Date measures the date.
			now := got
			h := http.Header{}
			h.Set("Date", now.Add(time.Hour).UTC().Format(http.TimeFormat))
			h.Set("Retry-After", now.Add(time.Hour+7*time.Second).UTC().Format(http.TimeFormat))
			d, _ := oauth.RetryAfter(h, now)
			kind := map[time.Duration]string{7 * time.Second: "Date header", time.Hour + 7*time.Second: "client clock"}[d]
			if kind != v {
				t.Errorf("HTTP-date measured to %v: %q; table %q", d, kind, v)
			}
		},
		"fetch.timeout": func(t *testing.T, v string) {
			// TestFetchTimeout checks that FetchTimeout bounds a fetch.
			if o.FetchTimeout != eval(t, v, 0, 0) {
				t.Errorf("FetchTimeout %v", o.FetchTimeout)
			}
		},
	}
	var keys []string
	for k := range rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "socket.") {
			continue
		}
		t.Run(k, func(t *testing.T) {
			check, ok := checks[k]
			if !ok {
				t.Fatalf("the table's %q has no check here", k)
			}
			check(t, rows[k].Go)
		})
	}
	for k := range checks {
		if _, ok := rows[k]; !ok {
			t.Errorf("the table has no row %q", k)
		}
	}
}
