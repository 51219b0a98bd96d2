// Package loadgen is tokend's load generator, the engine of `tokend
// bench`: virtual clients drive real HTTP against one or more running
// servers and measure what they get. RunRotations has each virtual client
// hold its own refresh-token family and rotate it again and again;
// RunLogins has them log in again and again with the password grant;
// RunCodes has them log in once on the login page, then get and exchange
// authorization codes again and again, beside rotations in the same run.
// Each prints a table, one row per level of concurrency.
//
// It was part of the command package (cmd/tokend: bench.go,
// bench_password.go); the command keeps its flags, their checks and the
// in-process servers it starts, and hands the runs to this package.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrUnauthorized is a mint or login the target refused for the client
// (401).
var ErrUnauthorized = errors.New("401: the target does not accept the client")

// ErrForbidden is a mint the target refused because the client may not
// mint (403).
var ErrForbidden = errors.New("the client may not mint")

// Client is an OAuth client of one or more servers, which take its
// rotations in turn: the first of them takes its mints and logins. It
// authenticates with HTTP Basic (RFC 6749 §2.3.1). It is safe for
// concurrent use.
type Client struct {
	hc         *http.Client
	base       string // bases[0]: mints and logins
	bases      []string
	id, secret string
}

// NewClient returns the client id with secret of the servers at bases
// (base URLs such as http://127.0.0.1:8080; a trailing slash is removed
// in place), at least one, over hc.
func NewClient(hc *http.Client, bases []string, id, secret string) *Client {
	for i, b := range bases {
		bases[i] = strings.TrimRight(b, "/")
	}
	return &Client{hc: hc, base: bases[0], bases: bases, id: id, secret: secret}
}

// Mint starts a family for the subject bench-i through the first server's
// POST /v1/tokens and returns its refresh token. A 401 is
// ErrUnauthorized, a 403 ErrForbidden.
func (c *Client) Mint(ctx context.Context, i int) (string, error) {
	body := fmt.Sprintf(`{"subject":"bench-%d","force":true}`, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/tokens", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.id, c.secret)
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	code, err := c.do(req, &out)
	if err != nil {
		return "", err
	}
	switch {
	case code == http.StatusUnauthorized:
		return "", fmt.Errorf("mint answered %d: %w", code, ErrUnauthorized)
	case code == http.StatusForbidden:
		return "", fmt.Errorf("mint answered %d: %w", code, ErrForbidden)
	case code != http.StatusOK || out.RefreshToken == "":
		return "", fmt.Errorf("mint answered %d", code)
	}
	return out.RefreshToken, nil
}

// Rotate refreshes rt through the first server (the refresh_token grant,
// RFC 6749 §6) and returns its successor and the status; the successor
// is empty unless the status is 200. The error is a transport error or a
// malformed answer.
func (c *Client) Rotate(ctx context.Context, rt string) (string, int, error) {
	return c.rotateAt(ctx, c.base, rt)
}

// rotateAt refreshes rt through the server at base.
func (c *Client) rotateAt(ctx context.Context, base, rt string) (string, int, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	code, err := c.do(req, &out)
	return out.RefreshToken, code, err
}

// do sends req and decodes a 200's JSON body into out.
func (c *Client) do(req *http.Request, out any) (int, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(out); err != nil {
			return resp.StatusCode, errors.New("malformed answer")
		}
	}
	return resp.StatusCode, nil
}
