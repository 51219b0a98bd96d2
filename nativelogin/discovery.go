package nativelogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// metadata is the part of an authorization server's metadata that a
// native login reads (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
type metadata struct {
	Issuer                        string   `json:"issuer"`
	AuthorizationEndpoint         string   `json:"authorization_endpoint"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
	// RFC 9207 §3: the server puts iss on every authorization response.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// maxMetadata bounds the discovery document read into memory.
const maxMetadata = 1 << 20

// errNotFound marks a discovery URL that has no document, so that the
// next one is tried.
var errNotFound = errors.New("no document")

// discover reads the metadata of issuer: the OpenID Connect document
// first (OpenID Connect Discovery 1.0 §4: the issuer, without a trailing
// slash, followed by /.well-known/openid-configuration), then the RFC 8414
// §3.1 one (/.well-known/oauth-authorization-server inserted before the
// issuer's path). Either must name exactly issuer, and give https
// endpoints (or http ones on a loopback host).
func discover(ctx context.Context, client *http.Client, issuer string) (*metadata, error) {
	iu, err := url.Parse(issuer)
	if err != nil || !secureURL(iu) || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("nativelogin: issuer %q is not an https URL (or http on loopback) without query or fragment", issuer)
	}
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	rfc := *iu
	rfc.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(iu.Path, "/")
	rfc.RawPath = ""
	var md *metadata
	for _, u := range []string{oidc, rfc.String()} {
		md, err = fetchMetadata(ctx, client, u)
		if !errors.Is(err, errNotFound) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nativelogin: discovery: %w", err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("%w: the discovery document names another issuer", ErrIssuerMismatch)
	}
	for _, e := range [...][2]string{{"authorization_endpoint", md.AuthorizationEndpoint}, {"token_endpoint", md.TokenEndpoint}} {
		if u, err := url.Parse(e[1]); err != nil || !secureURL(u) {
			return nil, fmt.Errorf("nativelogin: discovery: %s %q is not an https URL (or http on loopback)", e[0], e[1])
		}
	}
	if m := md.CodeChallengeMethodsSupported; len(m) > 0 && !slices.Contains(m, "S256") {
		return nil, errors.New("nativelogin: discovery: the server does not support PKCE with S256")
	}
	return md, nil
}

// fetchMetadata GETs one metadata document; a 404 or 410 is errNotFound.
func fetchMetadata(ctx context.Context, client *http.Client, u string) (*metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("%s: %w", u, errNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	var md metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetadata)).Decode(&md); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return &md, nil
}

// secureURL reports whether u is absolute https, or http on a loopback
// host (RFC 8414 §2 asks for TLS; a loopback server is a test or a
// developer's machine).
func secureURL(u *url.URL) bool {
	switch {
	case u.Host == "" || u.User != nil:
		return false
	case u.Scheme == "https":
		return true
	case u.Scheme == "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}
