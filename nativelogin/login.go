package nativelogin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
)

// Config describes the client and how to reach the user. Issuer and
// ClientID are required; every other zero field means its documented
// default.
type Config struct {
	// Issuer is the authorization server's issuer identifier, such as
	// "https://auth.example.com". Its metadata must name exactly this
	// issuer (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3). https,
	// or http on a loopback host.
	Issuer string
	// ClientID is the client's id, registered as a public client with a
	// loopback redirect URI such as http://127.0.0.1/callback (RFC 8252
	// §7.3: the server accepts it on any port). A native app has no
	// secret (RFC 8252 §8.5); PKCE protects the code.
	ClientID string
	// Scopes are the scopes to ask for. With "openid" the login asks for
	// an ID token and checks it (see Login).
	Scopes []string
	// Resource lists resource indicators (RFC 8707 §2.1), absolute URIs of
	// the APIs the access token is for, sent on the authorization request;
	// the code carries them to the token endpoint. Default: none.
	Resource []string

	// HTTPClient reaches the discovery document and the token endpoint.
	// Default http.DefaultClient. The Source uses it too unless
	// Options.HTTPClient is set.
	HTTPClient *http.Client
	// OpenBrowser opens the authorization URL for the user and returns
	// once the browser has it (it should not wait for the user). ctx ends
	// when the login stops waiting. Default OpenSystemBrowser. When it
	// fails, Login prints the URL to Prompt and keeps waiting.
	OpenBrowser func(ctx context.Context, url string) error
	// Prompt receives the URL when OpenBrowser fails. Default os.Stderr.
	Prompt io.Writer
	// Options configures the refresh.Source that Login and Resume return.
	// Its OnRefresh receives the token of the code exchange (from Login),
	// then every refreshed one with its rotated refresh token: persist the
	// refresh token there. It may be nil.
	Options *refresh.Options
	// ListenAddr is the address of the redirect listener: a loopback IP
	// literal and a port, never a host name (RFC 8252 §7.3, §8.3). Default
	// "127.0.0.1:0", a random port.
	ListenAddr string
	// Timeout is how long Login waits for the browser to come back to the
	// redirect URI. Default 5 minutes.
	Timeout time.Duration

	// listen opens the redirect listener; tests replace it.
	listen func(network, addr string) (net.Listener, error)
}

func (c Config) withDefaults() (Config, error) {
	if c.Issuer == "" || c.ClientID == "" {
		return c, errors.New("nativelogin: Config.Issuer and Config.ClientID are required")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.OpenBrowser == nil {
		c.OpenBrowser = OpenSystemBrowser
	}
	if c.Prompt == nil {
		c.Prompt = os.Stderr
	}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:0"
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.listen == nil {
		c.listen = net.Listen
	}
	return c, nil
}

// Result is a finished login.
type Result struct {
	// Source serves the access token of the login and refreshes it with
	// the refresh token from then on. Close it when done.
	Source *refresh.Source
	// Token is the token endpoint's answer to the code exchange; its
	// RefreshToken is the one to persist (Options.OnRefresh has seen it).
	Token *oauth2.Token
	// IDToken is the raw ID token (OpenID Connect Core 1.0 §2), "" when
	// the openid scope was not asked for and none came.
	IDToken string
	// IDClaims are the ID token's claims, nil without one.
	IDClaims map[string]any
}

// Login logs the user in through the system browser, as RFC 8252 lays
// out for native apps, and returns a Source for the tokens it got:
//
//  1. It reads the server's metadata from Config.Issuer (see Config).
//  2. It listens on a random loopback port (Config.ListenAddr); the
//     redirect URI is http://127.0.0.1:PORT/callback (RFC 8252 §7.3).
//  3. It opens the browser (Config.OpenBrowser) on the authorization
//     endpoint (RFC 6749 §4.1.1) with a PKCE S256 challenge (RFC 7636
//     §4.2), a random state and, with the openid scope, a random nonce.
//  4. It waits at most Config.Timeout for the first request to the
//     redirect URI, answers it with a short plain-text page that shows no
//     token, and closes the listener. Later requests are answered and
//     ignored. The callback is refused, and no code exchanged, when its
//     state differs (ErrStateMismatch), when its iss names another
//     issuer, or is missing although the metadata has
//     authorization_response_iss_parameter_supported (RFC 9207,
//     ErrIssuerMismatch), or when it repeats a parameter
//     (ErrMalformedCallback). An error answer is an *AuthorizationError.
//  5. It exchanges the code with the PKCE verifier (RFC 6749 §4.1.3);
//     an error answer of the token endpoint is an *oauth2.RetrieveError.
//  6. It checks the ID token, if one came or the openid scope was asked
//     for (ErrIDToken): present, and its iss, aud, azp and nonce claims
//     match (OpenID Connect Core 1.0 §3.1.3.7 items 2–5 and 11). Its
//     signature is not verified: the token came straight from the token
//     endpoint over TLS, which item 6 accepts in place of the signature;
//     nor is its exp, which a wrong local clock would fail.
//  7. It hands the token to Options.OnRefresh and returns a Source that
//     refreshes it (refresh.FromConfig), rotating the refresh token.
//
// Cancelling ctx stops the wait (the error wraps context.Cause(ctx)),
// as does the Timeout (ErrTimeout); either way the listener is closed
// when Login returns. Errors never hold a token, a code, the state or the
// verifier.
func Login(ctx context.Context, cfg Config) (*Result, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, c.HTTPClient)
	md, err := discover(hctx, c.HTTPClient, c.Issuer)
	if err != nil {
		return nil, err
	}
	ln, err := c.listenLoopback()
	if err != nil {
		return nil, err
	}
	oc := c.oauth2Config(md, "http://"+ln.Addr().String()+callbackPath)
	req := newRequest(slices.Contains(c.Scopes, "openid"))
	code, err := c.await(ctx, ln, req.authURL(oc, c.Resource), want{state: req.state, issuer: c.Issuer, issNeeded: md.IssParameterSupported})
	if err != nil {
		return nil, err
	}
	tok, err := oc.Exchange(hctx, code, oauth2.VerifierOption(req.verifier))
	if err != nil {
		return nil, fmt.Errorf("nativelogin: exchange the code: %w", err)
	}
	raw, claims, err := checkIDToken(tok, c.Issuer, c.ClientID, req.nonce)
	if err != nil {
		return nil, err
	}
	if o := c.Options; o != nil && o.OnRefresh != nil {
		if err := o.OnRefresh(ctx, tok); err != nil && o.Logger != nil {
			o.Logger.Error("nativelogin: OnRefresh failed for the login's token", slog.Any("err", err))
		}
	}
	return &Result{Source: c.source(oc, tok), Token: tok, IDToken: raw, IDClaims: claims}, nil
}

// Resume returns a Source that starts from tok, a token persisted from
// an earlier Login (through Options.OnRefresh), so that a program logs
// the user in once and later runs reuse the refresh token. It reads the
// server's metadata for the token endpoint. tok's access token is served
// while it is valid; a token without one is refreshed on first use. When
// the refresh token is refused (expired, revoked, reused), the Source's
// Token fails with refresh.ErrReauthRequired: call Login again.
//
// Without the metadata round trip, the same Source is
//
//	refresh.FromConfig(&oauth2.Config{ClientID: id, Endpoint: oauth2.Endpoint{
//		TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}, tok, opts)
func Resume(ctx context.Context, cfg Config, tok *oauth2.Token) (*refresh.Source, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	md, err := discover(ctx, c.HTTPClient, c.Issuer)
	if err != nil {
		return nil, err
	}
	return c.source(c.oauth2Config(md, ""), tok), nil
}

func (c *Config) oauth2Config(md *metadata, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.ClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:  md.AuthorizationEndpoint,
			TokenURL: md.TokenEndpoint,
			// A public client names itself in the body (RFC 6749 §4.1.3).
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURI,
		Scopes:      c.Scopes,
	}
}

func (c *Config) source(oc *oauth2.Config, tok *oauth2.Token) *refresh.Source {
	var o refresh.Options
	if c.Options != nil {
		o = *c.Options
	}
	if o.HTTPClient == nil {
		o.HTTPClient = c.HTTPClient
	}
	return refresh.FromConfig(oc, tok, &o)
}

// listenLoopback listens on c.ListenAddr, which must be a loopback IP
// literal: a host name could resolve elsewhere, and the listener must not
// be reachable from the network (RFC 8252 §8.3).
func (c *Config) listenLoopback() (net.Listener, error) {
	host, _, err := net.SplitHostPort(c.ListenAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("nativelogin: ListenAddr %q is not a loopback IP address and port", c.ListenAddr)
	}
	ln, err := c.listen("tcp", c.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("nativelogin: listen for the redirect: %w", err)
	}
	return ln, nil
}

// request holds the secrets of one authorization request.
type request struct {
	state, nonce, verifier string
}

func newRequest(openid bool) request {
	r := request{state: rand.Text(), verifier: oauth2.GenerateVerifier()}
	if openid {
		r.nonce = rand.Text()
	}
	return r
}

// authURL is the authorization request (RFC 6749 §4.1.1) with the PKCE
// challenge (RFC 7636 §4.3), the nonce (OpenID Connect Core 1.0
// §3.1.2.1) and the resource indicators (RFC 8707 §2.1, repeatable, so
// added here: x/oauth2 sets one value per parameter).
func (r request) authURL(oc *oauth2.Config, resources []string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(r.verifier)}
	if r.nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", r.nonce))
	}
	s := oc.AuthCodeURL(r.state, opts...)
	if len(resources) == 0 {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s // the endpoint parsed in discover; AuthCodeURL keeps it parseable
	}
	q := u.Query()
	for _, res := range resources {
		q.Add("resource", res)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// await serves the redirect URI on ln, opens the browser on authURL and
// waits for the first callback, Config.Timeout or ctx. The listener is
// closed when it returns.
func (c *Config) await(ctx context.Context, ln net.Listener, authURL string, w want) (string, error) {
	h := &callbackHandler{host: ln.Addr().String(), want: w, done: make(chan callback, 1)}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	defer func() {
		// Let the page reach the browser, then close whatever is left.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
		<-served
	}()

	wctx, cancel := context.WithTimeoutCause(ctx, c.Timeout, ErrTimeout)
	defer cancel()
	if err := c.OpenBrowser(wctx, authURL); err != nil && wctx.Err() == nil {
		_, _ = fmt.Fprintf(c.Prompt, "Open this address in a browser to log in:\n\n    %s\n\n", authURL)
	}
	select {
	case cb := <-h.done:
		return cb.code, cb.err
	case <-wctx.Done():
		if cause := context.Cause(wctx); errors.Is(cause, ErrTimeout) {
			return "", fmt.Errorf("%w (waited %v)", ErrTimeout, c.Timeout)
		}
		return "", fmt.Errorf("nativelogin: wait for the browser: %w", context.Cause(wctx))
	}
}
