package refresh

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/internal/bearer"
	"github.com/tokend/tokend/internal/oauth"
)

// Transport is an http.RoundTripper that authorizes requests with the
// Source's token. When the server rejects the token (401 and, with
// RetryForbidden, 403 other than insufficient_scope), it reports that
// token to the Source as Source.Invalidate does, so that no later request
// is sent with it, on every path. Then, if the body can be replayed (no
// body, or Request.GetBody), it waits for the one shared refresh and
// replays the request once with the new token; otherwise it returns the
// response as it is, and the next request gets a new token. It never
// replays twice: when the replay is rejected too, that response is
// returned and its token is invalidated as well. Requests to the token
// endpoint, and those a fetch makes, pass through untouched.
//
// A server that rejects every token would make each request fetch two, so
// the Transport's rejections count as strikes as Source.Invalidate
// describes, with a stricter window: every rejection is a strike unless
// the token had been held for Options.MaxBackoff (default 1m). A 2xx is
// not taken as proof that a token is good: one Source may serve an API
// that accepts its tokens and another that rejects them all (a wrong
// audience), and each success at the first would then buy two fetches per
// request at the second. With this window a run of strikes ends only once
// a token has served for MaxBackoff, or until its scheduled refresh,
// without being rejected, however the rejections are spread. The first
// strike still refreshes and replays at once, so a token revoked or signed
// with a withdrawn key costs one fetch and no failed request. While a
// later strike waits out its backoff, the replay is not attempted: the
// rejected response is returned as it is, and new requests fail at once,
// without reaching the server, with an error wrapping ErrTokenRejected
// until the next fetch.
//
// The zero values of the fields other than Source are the documented
// defaults. A Transport is safe for concurrent use.
type Transport struct {
	// Source supplies the tokens. Required.
	Source *Source
	// Base sends the requests. Default http.DefaultTransport.
	Base http.RoundTripper
	// Header is the request header that carries the token. Default
	// "Authorization".
	Header string
	// Scheme precedes the token in Header. Default "Bearer".
	Scheme string
	// Query, if set, sends the token in this URL query parameter instead of
	// a header (RFC 6750 §2.3; avoid it where URLs are logged).
	Query string
	// RetryForbidden also refreshes and replays on 403, unless the
	// WWW-Authenticate challenge says insufficient_scope (a new token would
	// not have more scope).
	RetryForbidden bool
}

// maxDrain bounds how much of a replaced response body is read so that the
// connection can be reused.
const maxDrain = 64 << 10

// RoundTrip implements http.RoundTripper. It closes the request body on
// every path, as the interface requires.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("refresh: Transport has no Source")
	}
	if t.Source.bypass(req) {
		return base.RoundTrip(req)
	}
	tok, err := t.Source.FreshToken(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := base.RoundTrip(t.authorize(req, tok))
	if err != nil || !t.rejects(resp) {
		return resp, err
	}
	// tok is rejected: whatever happens to this request, no other is sent
	// with it.
	t.Source.reject(tok, true)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return resp, nil
	}
	fresh, err := t.Source.FreshToken(req.Context())
	if errors.Is(err, ErrTokenRejected) {
		// Fresh tokens keep being rejected and the Source is backing off:
		// the server's own answer is the one to give, at once.
		return resp, nil
	}
	if err != nil {
		drain(resp)
		return nil, fmt.Errorf("refresh: replay after %d: %w", resp.StatusCode, err)
	}
	req2 := t.authorize(req, fresh)
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			drain(resp)
			return nil, fmt.Errorf("refresh: replay: get body: %w", err)
		}
		req2.Body = body
	}
	drain(resp)
	resp, err = base.RoundTrip(req2)
	if err == nil && t.rejects(resp) {
		t.Source.reject(fresh, true)
	}
	return resp, err
}

// authorize returns a clone of req that carries tok; req is not modified.
func (t *Transport) authorize(req *http.Request, tok *oauth2.Token) *http.Request {
	r := req.Clone(req.Context())
	if t.Query != "" {
		u := *r.URL
		q := u.Query()
		q.Set(t.Query, tok.AccessToken)
		u.RawQuery = q.Encode()
		r.URL = &u
		return r
	}
	header, scheme := t.Header, t.Scheme
	if header == "" {
		header = "Authorization"
	}
	if scheme == "" {
		scheme = "Bearer"
	}
	r.Header.Set(header, scheme+" "+tok.AccessToken)
	return r
}

// rejects reports whether resp says the token it was sent with is no good:
// 401, or, with RetryForbidden, 403 unless the challenge says
// insufficient_scope (RFC 6750 §3.1: a new token would not have more
// scope).
func (t *Transport) rejects(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusForbidden:
		return t.RetryForbidden && bearer.BearerError(resp.Header.Values("WWW-Authenticate")) != oauth.InsufficientScope
	}
	return false
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
