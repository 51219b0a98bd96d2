package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// ErrNoCode is an authorization request that did not end in a redirect
// with a code: the login page's form was not found or refused the user,
// or the server did not redirect to the client.
var ErrNoCode = errors.New("no authorization code")

// Codes is a run of RunCodes.
type Codes struct {
	// Levels are the numbers of concurrent virtual clients, each level
	// run for Duration (the code flow, then as long the rotations).
	Levels   []int
	Duration time.Duration
	// Username and Password are the user who logs in on the login page,
	// once per virtual client.
	Username, Password string
	// RedirectURI is one of the client's registered redirect URIs. It is
	// never visited: the code is read from the redirect's Location.
	RedirectURI string
	// Scope is the authorization requests' scope parameter, not sent if
	// "" (the client's registered scopes). With openid, every exchange
	// also signs an ID token.
	Scope string
	// Against names the server in the table's heading.
	Against string
}

// RunCodes measures the authorization code flow (RFC 6749 §4.1 with
// PKCE, RFC 7636) through c's first server, beside refresh-token
// rotations in the same run, and writes to w a heading and a table, one
// row per level. At each level, n virtual browsers log in once on the
// login page (GET /oauth/authorize, POST /login with the form's hidden
// fields: a browser session, not timed); then each, again and again for
// Duration, gets a code from the authorization endpoint with its session
// (a 302, timed apart: the authorize columns) and exchanges it at the
// token endpoint with its PKCE verifier (timed: exchanges/s, p50, p99).
// Then n families, minted as RunRotations does, rotate for Duration: the
// anchor, and the ratio of exchanges to rotations. Every other level
// runs the rotations first, so that drift hits both alike. Failed
// answers are counted by status (0: a transport error; an authorization
// request answered with anything but a redirect with a code counts under
// its status). It stops at a level whose browsers cannot log in or whose
// families cannot start.
func RunCodes(ctx context.Context, w io.Writer, c *Client, k Codes) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "tokend bench: authorization_code exchanges beside refresh_token rotations against %s, %v each per level\n", k.Against, k.Duration)
	fmt.Fprintln(tw, "clients\texchanges\texchanges/s\tp50\tp99\tmax\tauthorize p50\tauthorize p99\terrors\trotations/s\tp50\tp99\terrors\texchanges/rotations\t")
	for l, n := range k.Levels {
		var codes *codeResult
		var rots *result
		for step := range 2 {
			var err error
			if step == l%2 {
				codes, err = c.runCodes(ctx, n, k)
			} else {
				rots, err = c.run(ctx, n, k.Duration)
			}
			if err != nil {
				return err
			}
		}
		exch := float64(codes.ok) / codes.elapsed.Seconds()
		rot := float64(rots.ok) / rots.elapsed.Seconds()
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%.2f\t\n", n, codes.ok, exch,
			pct(codes.lat, 0.50), pct(codes.lat, 0.99), pct(codes.lat, 1), pct(codes.auth, 0.50), pct(codes.auth, 0.99), codes.errors(),
			rot, pct(rots.lat, 0.50), pct(rots.lat, 0.99), rots.errors(), exch/rot)
	}
	return tw.Flush()
}

// codeResult is what the virtual browsers of one code-flow run measured:
// result's lat are the exchanges' latencies (every exchange sent), ok
// the exchanges answered 200.
type codeResult struct {
	result
	auth []time.Duration // the authorization requests' latencies
}

// runCodes logs n virtual browsers in, one after the other, then drives
// them for k.Duration.
func (c *Client) runCodes(ctx context.Context, n int, k Codes) (*codeResult, error) {
	browsers := make([]*browser, n)
	for i := range n {
		b := c.newBrowser(k)
		if err := b.logIn(ctx); err != nil {
			return nil, fmt.Errorf("bench: log in browser %d: %w", i, err)
		}
		browsers[i] = b
	}
	res := &codeResult{result: result{byStatus: map[int]int{}}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(k.Duration)
	for _, b := range browsers {
		wg.Go(func() {
			one := b.exchangeUntil(ctx, deadline)
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, one.lat...)
			res.auth = append(res.auth, one.auth...)
			res.ok += one.ok
			for s, m := range one.byStatus {
				res.byStatus[s] += m
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	slices.Sort(res.auth)
	return res, nil
}

// browser is a virtual browser of one user at c's first server: it
// keeps its cookies (the session) and does not follow redirects.
type browser struct {
	c  *Client
	k  Codes
	hc *http.Client
}

// newBrowser returns a browser with an empty cookie jar over c's
// transport.
func (c *Client) newBrowser(k Codes) *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	hc := &http.Client{Transport: c.hc.Transport, Timeout: c.hc.Timeout, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{c: c, k: k, hc: hc}
}

// exchangeUntil gets and exchanges codes until deadline.
func (b *browser) exchangeUntil(ctx context.Context, deadline time.Time) *codeResult {
	r := &codeResult{result: result{byStatus: map[int]int{}}}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		verifier := newVerifier()
		t0 := time.Now()
		code, status, err := b.code(ctx, verifier)
		r.auth = append(r.auth, time.Since(t0))
		if err != nil {
			r.byStatus[status]++
			continue
		}
		t1 := time.Now()
		status, err = b.c.exchange(ctx, code, verifier, b.k.RedirectURI)
		r.lat = append(r.lat, time.Since(t1))
		if err != nil || status != http.StatusOK {
			r.byStatus[status]++
			continue
		}
		r.ok++
	}
	return r
}

// authorizeURL is an authorization request for the PKCE verifier.
func (b *browser) authorizeURL(verifier, state string) string {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {b.c.id}, "redirect_uri": {b.k.RedirectURI}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if b.k.Scope != "" {
		q.Set("scope", b.k.Scope)
	}
	return b.c.base + "/oauth/authorize?" + q.Encode()
}

// code sends an authorization request for verifier with the browser's
// session and returns the code of the redirect that answers it, and the
// status; the error, ErrNoCode or a transport error, says there is no
// code.
func (b *browser) code(ctx context.Context, verifier string) (string, int, error) {
	state := newState()
	page, err := b.get(ctx, b.authorizeURL(verifier, state))
	if err != nil {
		return "", 0, err
	}
	return b.codeFrom(page, state)
}

// codeFrom reads the code from p, a redirect to the client with state.
func (b *browser) codeFrom(p *page, state string) (string, int, error) {
	if p.status != http.StatusFound && p.status != http.StatusSeeOther || p.location == nil {
		return "", p.status, fmt.Errorf("authorization request answered %d: %w", p.status, ErrNoCode)
	}
	q := p.location.Query()
	if q.Get("code") == "" || q.Get("state") != state || !strings.HasPrefix(p.location.String(), b.k.RedirectURI) {
		return "", p.status, fmt.Errorf("authorization request redirected to %s?%s: %w", p.location.Path, q.Get("error"), ErrNoCode)
	}
	return q.Get("code"), p.status, nil
}

// Where the login page's form posts and its hidden fields (the
// authorization request and the CSRF token).
var (
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

// logIn logs the browser in through the login page, as a user would: an
// authorization request without a session shows the form, whose POST
// sets the session cookie and sends the browser back to the
// authorization endpoint, which now redirects with a code (unused).
func (b *browser) logIn(ctx context.Context) error {
	verifier, state := newVerifier(), newState()
	p, err := b.get(ctx, b.authorizeURL(verifier, state))
	if err != nil {
		return err
	}
	action := formAction.FindStringSubmatch(p.body)
	fields := hiddenField.FindAllStringSubmatch(p.body, -1)
	if p.status != http.StatusOK || action == nil || len(fields) == 0 {
		return fmt.Errorf("authorization request answered %d without the login form: %w", p.status, ErrNoCode)
	}
	form := url.Values{}
	for _, f := range fields {
		form.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	form.Set("username", b.k.Username)
	form.Set("password", b.k.Password)
	target, err := url.Parse(b.c.base)
	if err == nil {
		target, err = target.Parse(html.UnescapeString(action[1]))
	}
	if err != nil {
		return err
	}
	if p, err = b.post(ctx, target.String(), form); err != nil {
		return err
	}
	if p.status != http.StatusSeeOther && p.status != http.StatusFound || p.location == nil {
		return fmt.Errorf("the login page answered %d, not a redirect (wrong user or password?): %w", p.status, ErrNoCode)
	}
	if p, err = b.get(ctx, target.ResolveReference(p.location).String()); err != nil {
		return err
	}
	_, _, err = b.codeFrom(p, state)
	return err
}

// page is an answer to a browser.
type page struct {
	status   int
	body     string
	location *url.URL // nil without a (parsable) Location
}

func (b *browser) get(ctx context.Context, u string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return b.send(req)
}

func (b *browser) post(ctx context.Context, u string, form url.Values) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.send(req)
}

func (b *browser) send(req *http.Request) (*page, error) {
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if err != nil {
		return nil, err
	}
	p := &page{status: resp.StatusCode, body: string(raw)}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, _ = url.Parse(loc)
	}
	return p, nil
}

// exchange redeems code at the first server's token endpoint (RFC 6749
// §4.1.3) with the PKCE verifier (RFC 7636 §4.5), authenticating the
// client, and returns the status; the error is a transport error or a
// 200 without a token.
func (c *Client) exchange(ctx context.Context, code, verifier, redirectURI string) (int, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	status, err := c.do(req, &out)
	if err == nil && status == http.StatusOK && out.AccessToken == "" {
		err = errors.New("malformed answer")
	}
	return status, err
}

// newVerifier returns a PKCE code verifier (RFC 7636 §4.1): 32 random
// bytes, base64url, 43 characters.
func newVerifier() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// newState returns a random state parameter.
func newState() string { return base64.RawURLEncoding.EncodeToString(randomBytes(12)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}
