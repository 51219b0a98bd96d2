package server_test

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/server/loginpage"
	"github.com/tokend/tokend/store"
)

// newLoginPageEnv is newEnv with the web app of the code flow tests.
func newLoginPageEnv(tb testing.TB) *env {
	tb.Helper()
	e := newEnv(tb, nil)
	if err := e.store.CreateClient(tb.Context(), store.Client{ID: webApp, Grants: []string{"authorization_code", "refresh_token"},
		RedirectURIs: []string{webRedirect}}); err != nil {
		tb.Fatal(err)
	}
	return e
}

// getTimed GETs u with hc and returns the time to the first byte of the
// answer, the status, the header and the body.
func getTimed(tb testing.TB, hc *http.Client, u string) (time.Duration, int, http.Header, string) {
	tb.Helper()
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(tb.Context(), trace), http.MethodGet, u, nil)
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return first.Sub(t0), resp.StatusCode, resp.Header, string(raw)
}

// BenchmarkLoginPageHTTP is the login page as a browser without a
// session gets it: GET /oauth/authorize over loopback, the request
// checked, the page rendered with its CSRF token. Each iteration first
// GETs /healthz on the same connection, the anchor (a loopback round
// trip with nothing behind it), so that both see the same machine. It
// reports each one's time to first byte, and the page's weight: its
// HTML and its stylesheet, as served (uncompressed; no other resource).
func BenchmarkLoginPageHTTP(b *testing.B) {
	e := newLoginPageEnv(b)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	page := e.url + "/oauth/authorize?" + authorizeParams().Encode()
	_, _, _, html := getTimed(b, hc, page)
	_, _, _, css := getTimed(b, hc, e.url+loginpage.DefaultStylePath)
	var anchor, login time.Duration
	b.ReportAllocs()
	for b.Loop() {
		d, status, _, _ := getTimed(b, hc, e.url+"/healthz")
		if status != http.StatusOK {
			b.Fatalf("healthz: %d", status)
		}
		anchor += d
		if d, status, _, _ = getTimed(b, hc, page); status != http.StatusOK {
			b.Fatalf("login page: %d", status)
		}
		login += d
	}
	n := float64(b.N)
	b.ReportMetric(float64(login.Microseconds())/n, "ttfb-µs")
	b.ReportMetric(float64(anchor.Microseconds())/n, "healthz-ttfb-µs")
	b.ReportMetric(float64(len(html)), "html-B")
	b.ReportMetric(float64(len(css)), "css-B")
}

// References a page could load something through: attributes with a
// URL, and CSS url() and @import.
var (
	urlAttr = regexp.MustCompile(`(?i)\s(src|href|action|srcset|poster|data|formaction|background)\s*=\s*"([^"]*)"`)
	cssURL  = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")]*)|@import\s+['"]([^'"]*)`)
)

// The login page as served loads nothing from another origin: every URL
// in its HTML and stylesheet is on tokend, it has no script, and its
// Content-Security-Policy lets it load nothing from elsewhere.
func TestLoginPageLoadsNothingFromAnotherOrigin(t *testing.T) {
	e := newLoginPageEnv(t)
	hc := &http.Client{}
	_, status, h, html := getTimed(t, hc, e.url+"/oauth/authorize?"+authorizeParams().Encode())
	if status != http.StatusOK || !strings.Contains(html, `name="password"`) {
		t.Fatalf("want the login page, got %d: %.300s", status, html)
	}
	if strings.Contains(strings.ToLower(html), "<script") {
		t.Error("the page has a script")
	}
	base, _ := url.Parse(e.url + "/oauth/authorize")
	var refs []string
	for _, m := range urlAttr.FindAllStringSubmatch(html, -1) {
		refs = append(refs, m[2])
	}
	_, status, _, css := getTimed(t, hc, e.url+loginpage.DefaultStylePath)
	if status != http.StatusOK || !strings.Contains(html, loginpage.DefaultStylePath) {
		t.Fatalf("stylesheet %s: %d, or not linked", loginpage.DefaultStylePath, status)
	}
	for _, m := range cssURL.FindAllStringSubmatch(css, -1) {
		refs = append(refs, m[1]+m[2])
	}
	if len(refs) < 2 {
		t.Fatalf("found %d references (%q): the stylesheet and the form's action at least", len(refs), refs)
	}
	for _, ref := range refs {
		u, err := base.Parse(ref)
		if err != nil || u.Scheme+"://"+u.Host != e.url {
			t.Errorf("reference %q is not on tokend (%s)", ref, e.url)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && strings.HasSuffix(f[0], "-src") && strings.Contains(d, "://") {
			t.Errorf("Content-Security-Policy %q lets the page load from another origin", d)
		}
	}
}
