package loadgen

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAS is an authorization server as strict as tokend's on what the
// code flow's load generator sends: the login form's hidden fields and
// CSRF token, a session cookie, PKCE S256, single-use codes bound to the
// redirect URI, client authentication. It also mints and rotates, for
// the anchor.
type fakeAS struct {
	t        *testing.T
	mu       sync.Mutex
	codes    map[string]string // code → challenge, until redeemed
	next     int
	logins   int // successful POST /login
	exchange int // successful exchanges
}

const (
	fakeRedirect = "http://127.0.0.1/cb"
	fakeCSRF     = `csrf&"token`
)

func (f *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = r.ParseForm()
	switch r.URL.Path {
	case "/oauth/authorize":
		f.authorize(w, r)
	case "/login":
		if r.PostForm.Get("csrf") != fakeCSRF || r.PostForm.Get("username") != "alice" || r.PostForm.Get("password") != "wonderland" {
			w.WriteHeader(http.StatusOK) // the form again, as tokend answers a failed login
			return
		}
		f.logins++
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "ok", Path: "/"})
		q := url.Values{}
		for k, v := range r.PostForm {
			if k != "csrf" && k != "username" && k != "password" {
				q[k] = v
			}
		}
		http.Redirect(w, r, "/oauth/authorize?"+q.Encode(), http.StatusSeeOther)
	case "/oauth/token":
		f.token(w, r)
	case "/v1/tokens":
		fmt.Fprint(w, `{"refresh_token":"r0"}`)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != "bench" || q.Get("redirect_uri") != fakeRedirect || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || q.Get("response_type") != "code" || q.Get("scope") != "openid" {
		f.t.Errorf("authorization request %v", q)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if c, err := r.Cookie("session"); err != nil || c.Value != "ok" {
		fmt.Fprint(w, `<main><form method="post" action="/login">`)
		for k := range q {
			fmt.Fprintf(w, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(q.Get(k)))
		}
		fmt.Fprintf(w, `<input type="hidden" name="csrf" value="%s"><input name="username"></form></main>`, html.EscapeString(fakeCSRF))
		return
	}
	f.next++
	code := fmt.Sprintf("code-%d", f.next)
	f.codes[code] = q.Get("code_challenge")
	http.Redirect(w, r, fakeRedirect+"?"+url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {"http://" + r.Host}}.Encode(), http.StatusFound)
}

func (f *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	if id, secret, ok := r.BasicAuth(); !ok || id != "bench" || secret != "s" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.PostForm.Get("grant_type") == "refresh_token" {
		fmt.Fprint(w, `{"refresh_token":"r1"}`)
		return
	}
	code := r.PostForm.Get("code")
	challenge, ok := f.codes[code]
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("grant_type") != "authorization_code" || !ok || r.PostForm.Get("redirect_uri") != fakeRedirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
		f.t.Errorf("exchange %v: the code is unknown or used, or the verifier or redirect URI wrong", r.PostForm)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	delete(f.codes, code)
	f.exchange++
	fmt.Fprint(w, `{"access_token":"a","refresh_token":"r"}`)
}

// RunCodes logs each virtual browser in once through the form, then
// exchanges each code it gets once with its PKCE verifier; its row
// counts every exchange and has no errors, beside the rotations.
func TestRunCodes(t *testing.T) {
	f := &fakeAS{t: t, codes: map[string]string{}}
	ts := httptest.NewServer(f)
	defer ts.Close()
	var out strings.Builder
	err := RunCodes(t.Context(), &out, NewClient(ts.Client(), []string{ts.URL}, "bench", "s"), Codes{Levels: []int{2}, Duration: 50 * time.Millisecond,
		Username: "alice", Password: "wonderland", RedirectURI: fakeRedirect, Scope: "openid", Against: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	// clients exchanges exchanges/s p50 p99 max authorize-p50 authorize-p99 errors rotations/s p50 p99 errors ratio
	row := regexp.MustCompile(`\S+`).FindAllString(lines[2], -1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(row) != 14 || row[0] != "2" || row[1] != fmt.Sprint(f.exchange) || row[8] != "0" || row[12] != "0" {
		t.Fatalf("row %q, want 2 clients, %d exchanges, no errors", lines[2], f.exchange)
	}
	if f.logins != 2 || f.exchange < 2 {
		t.Errorf("%d logins, %d exchanges: want one login per browser and at least one exchange each", f.logins, f.exchange)
	}
}

// A browser the login page does not let in stops the run with
// ErrNoCode, before anything is measured.
func TestRunCodesLoginRefused(t *testing.T) {
	f := &fakeAS{t: t, codes: map[string]string{}}
	ts := httptest.NewServer(f)
	defer ts.Close()
	var out strings.Builder
	err := RunCodes(t.Context(), &out, NewClient(ts.Client(), []string{ts.URL}, "bench", "s"), Codes{Levels: []int{1}, Duration: time.Second,
		Username: "alice", Password: "wrong", RedirectURI: fakeRedirect, Scope: "openid"})
	if !errors.Is(err, ErrNoCode) || !strings.Contains(err.Error(), "wrong user or password") {
		t.Fatalf("error %v, want ErrNoCode saying the login failed", err)
	}
	if f.exchange != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("%d exchanges, output %q: want none and the heading alone", f.exchange, out.String())
	}
}
