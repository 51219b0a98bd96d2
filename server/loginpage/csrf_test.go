package loginpage

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testSecret = bytes.Repeat([]byte{7}, MinSecretLen)

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newCSRF(tb testing.TB, insecure bool) (*CSRF, *clock) {
	tb.Helper()
	c := &clock{time.Unix(1_800_000_000, 0)}
	x, err := NewCSRF(testSecret, &CSRFOptions{Insecure: insecure, Now: c.now})
	if err != nil {
		tb.Fatal(err)
	}
	return x, c
}

// issue makes a token for purpose in a fresh browser and returns it with
// the browser's cookie.
func issue(tb testing.TB, x *CSRF, purpose string) (string, *http.Cookie) {
	tb.Helper()
	w := httptest.NewRecorder()
	tok := x.Token(w, httptest.NewRequest("GET", "/login", nil), purpose)
	cks := w.Result().Cookies()
	if len(cks) != 1 {
		tb.Fatalf("cookies %v", cks)
	}
	return tok, cks[0]
}

func post(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest("POST", "/login", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func TestCSRF(t *testing.T) {
	x, clk := newCSRF(t, false)
	tok, ck := issue(t, x, "login")
	_, other := issue(t, x, "login")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name    string
		r       *http.Request
		purpose string
		value   string
		want    error
	}{
		{"valid", post(ck), "login", tok, nil},
		{"missing cookie", post(), "login", tok, ErrCSRF},
		{"another browser's cookie", post(other), "login", tok, ErrCSRF},
		{"cookie under the plain name", post(&http.Cookie{Name: cookiePlain, Value: ck.Value}), "login", tok, ErrCSRF},
		{"malformed cookie", post(&http.Cookie{Name: ck.Name, Value: "short"}), "login", tok, ErrCSRF},
		{"other purpose", post(ck), "consent", tok, ErrCSRF},
		{"purpose prefix", post(ck), "logi", tok, ErrCSRF},
		{"empty", post(ck), "login", "", ErrCSRF},
		{"tampered mac", post(ck), "login", flip(tok, len(tok)-2), ErrCSRF},
		{"tampered expiry", post(ck), "login", strings.Replace(tok, ".1", ".2", 1), ErrCSRF},
		{"other version", post(ck), "login", "v2" + tok[2:], ErrCSRF},
		{"extra field", post(ck), "login", tok + ".x", ErrCSRF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := x.Check(tc.r, tc.purpose, tc.value)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Check: %v, want %v", err, tc.want)
			}
			if tc.want != nil && errors.Is(err, ErrFormExpired) {
				t.Fatalf("Check: %v: a refused token reported as expired", err)
			}
		})
	}

	clk.t = clk.t.Add(DefaultFormLife - time.Second)
	if err := x.Check(post(ck), "login", tok); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	clk.t = clk.t.Add(time.Second)
	if err := x.Check(post(ck), "login", tok); !errors.Is(err, ErrFormExpired) || !errors.Is(err, ErrCSRF) {
		t.Errorf("at expiry: %v, want ErrFormExpired (an ErrCSRF)", err)
	}
	if err := x.Check(post(ck), "consent", tok); errors.Is(err, ErrFormExpired) {
		t.Errorf("expired token of another purpose: %v, want ErrCSRF only", err)
	}

	// Another instance with the same secret accepts it; another secret does not.
	y, _ := NewCSRF(testSecret, &CSRFOptions{Now: func() time.Time { return clk.t.Add(-time.Minute) }})
	if err := y.Check(post(ck), "login", tok); err != nil {
		t.Errorf("same secret: %v", err)
	}
	z, _ := NewCSRF(bytes.Repeat([]byte{8}, MinSecretLen), &CSRFOptions{Now: func() time.Time { return clk.t.Add(-time.Minute) }})
	if err := z.Check(post(ck), "login", tok); !errors.Is(err, ErrCSRF) {
		t.Errorf("other secret: %v", err)
	}
}

func TestCSRFCookie(t *testing.T) {
	cases := []struct {
		insecure bool
		name     string
		secure   bool
	}{
		{false, "__Host-tokend-csrf", true},
		{true, "tokend-csrf", false},
	}
	for _, tc := range cases {
		x, _ := newCSRF(t, tc.insecure)
		w := httptest.NewRecorder()
		tok := x.Token(w, httptest.NewRequest("GET", "/login", nil), "login")
		tok2 := x.Token(w, httptest.NewRequest("GET", "/login", nil), "logout")
		lines := w.Header().Values("Set-Cookie")
		if len(lines) != 1 {
			t.Fatalf("Set-Cookie %q: want one", lines)
		}
		ck, err := http.ParseSetCookie(lines[0])
		if err != nil {
			t.Fatal(err)
		}
		if ck.Name != tc.name || ck.Secure != tc.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode ||
			ck.Path != "/" || ck.Domain != "" || ck.MaxAge != 0 || len(ck.Value) != browserChars {
			t.Errorf("insecure=%v: cookie %q", tc.insecure, lines[0])
		}
		if x.CookieName() != tc.name {
			t.Errorf("CookieName %q", x.CookieName())
		}
		for purpose, v := range map[string]string{"login": tok, "logout": tok2} {
			if err := x.Check(post(ck), purpose, v); err != nil {
				t.Errorf("insecure=%v %s: %v", tc.insecure, purpose, err)
			}
		}
		// A browser with the cookie gets no new one.
		w = httptest.NewRecorder()
		tok3 := x.Token(w, post(ck), "consent")
		if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("cookie set again: %q", got)
		}
		if err := x.Check(post(ck), "consent", tok3); err != nil {
			t.Errorf("consent: %v", err)
		}
	}
}

func TestNewCSRF(t *testing.T) {
	if _, err := NewCSRF(make([]byte, MinSecretLen-1), nil); err == nil {
		t.Error("short secret accepted")
	}
	x, err := NewCSRF(testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if x.life != DefaultFormLife || x.CookieName() != cookieSecure {
		t.Errorf("defaults: life %v, cookie %s", x.life, x.CookieName())
	}
	tok, ck := issue(t, x, "login")
	if err := x.Check(post(ck), "login", tok); err != nil {
		t.Errorf("wall clock: %v", err)
	}
}

// FuzzParseCSRFToken: the parser never panics, accepts only the shape
// Token makes, and a token not made with the key never passes.
func FuzzParseCSRFToken(f *testing.F) {
	x, _ := newCSRF(f, false)
	tok, ck := issue(f, x, "login")
	for _, s := range []string{tok, "", "v1..", "v1.0." + strings.Repeat("A", macChars), "v1.-1." + strings.Repeat("A", macChars),
		"v1.99999999999999999999." + strings.Repeat("A", macChars), tok + "=", strings.Repeat(".", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, mac, ok := parseToken(s)
		if !ok {
			if err := x.Check(post(ck), "login", s); !errors.Is(err, ErrCSRF) {
				t.Fatalf("unparsable %q: Check %v", s, err)
			}
			return
		}
		if exp <= 0 || len(mac) != macChars || s != "v1."+strconv.FormatInt(exp, 10)+"."+mac {
			t.Fatalf("parse %q: %d %q", s, exp, mac)
		}
		if s != tok && x.Check(post(ck), "login", s) == nil {
			t.Fatalf("forged %q passes", s)
		}
	})
}
