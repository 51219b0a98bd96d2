package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// maxDocument bounds the metadata and JWKS documents read.
	maxDocument = 1 << 20
	// fetchTimeout bounds one fetch (discovery and JWKS), whatever the
	// HTTP client's own timeout.
	fetchTimeout = time.Minute
)

// discover finds the jwks_uri in the issuer's metadata (RFC 8414, or
// OpenID Connect Discovery as a fallback). The metadata must name the
// same issuer (RFC 8414 §3.3).
func (v *Verifier) discover(ctx context.Context) (string, error) {
	base := strings.TrimSuffix(v.issuer, "/")
	candidates := []string{base + "/.well-known/oauth-authorization-server"}
	if u, err := url.Parse(v.issuer); err == nil && u.Path != "" && u.Path != "/" {
		// RFC 8414 §3.1: the well-known path goes between host and path.
		p := strings.TrimSuffix(u.Path, "/")
		u.Path, u.RawPath = "/.well-known/oauth-authorization-server"+p, ""
		candidates = append(candidates, u.String())
	}
	candidates = append(candidates, base+"/.well-known/openid-configuration")

	var errs []error
	for _, u := range candidates {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		_, err := v.get(ctx, u, &meta)
		switch {
		case err != nil:
		case meta.JWKSURI == "":
			err = errors.New("no jwks_uri")
		case meta.Issuer != v.issuer && !slashOnly(meta.Issuer, v.issuer):
			err = fmt.Errorf("metadata names issuer %q", meta.Issuer)
		default:
			if meta.Issuer != *v.iss.Load() {
				v.o.Logger.DebugContext(ctx, "verify: the metadata names the issuer with a different trailing slash; using its form",
					"configured", v.issuer, "issuer", meta.Issuer)
				v.iss.Store(&meta.Issuer)
			}
			return meta.JWKSURI, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("discover jwks_uri: %w", errors.Join(errs...))
}

// slashOnly reports whether a and b differ only by one trailing slash on
// one of them ("https://as.example" and "https://as.example/").
func slashOnly(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return len(a) == len(b)+1 && a[len(b)] == '/' && a[:len(b)] == b
}

// fetchJWKS fetches the JWKS at u and keeps the keys this package can
// use: signature keys with a kid, Ed25519 for EdDSA, P-256 for ES256 or
// RSA of 2048 bits or more for RS256, whose alg (if any) fits the key. Keys it cannot use, or cannot parse,
// are skipped, so that a new key type at the issuer breaks nothing. It
// also returns the response's header, for its lifetime.
func (v *Verifier) fetchJWKS(ctx context.Context, u string) (map[string]*publicKey, http.Header, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	h, err := v.get(ctx, u, &doc)
	if err != nil {
		return nil, nil, err
	}
	ks := make(map[string]*publicKey, len(doc.Keys))
	for i, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			v.o.Logger.DebugContext(ctx, "verify: skipping a JWK", "index", i, "err", err)
			continue
		}
		k := usable(jwk)
		if k == nil {
			v.o.Logger.DebugContext(ctx, "verify: skipping a JWK", "index", i, "kid", jwk.KeyID, "alg", jwk.Algorithm)
			continue
		}
		if _, dup := ks[jwk.KeyID]; dup {
			v.o.Logger.WarnContext(ctx, "verify: the JWKS has a kid twice: keeping the first", "kid", jwk.KeyID)
			continue
		}
		ks[jwk.KeyID] = k
	}
	return ks, h, nil
}

// minRSABits is the least size of an RSA key Verify uses (RFC 7518 §3.3).
const minRSABits = 2048

// usable returns the key of jwk, or nil if Verify cannot use it. An RSA
// key is used for RS256 only, whatever else its alg could be (PS256).
func usable(jwk jose.JSONWebKey) *publicKey {
	if jwk.KeyID == "" || jwk.Use != "" && jwk.Use != "sig" {
		return nil
	}
	var k publicKey
	switch key := jwk.Key.(type) {
	case ed25519.PublicKey:
		k = publicKey{alg: algEdDSA, ed: key}
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return nil
		}
		k = publicKey{alg: algES256, ec: key}
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return nil
		}
		k = publicKey{alg: algRS256, rs: key}
	default:
		return nil // symmetric and private keys are never used
	}
	if jwk.Algorithm != "" && jwk.Algorithm != k.alg {
		return nil // a key published for another algorithm
	}
	return &k
}

// get fetches the JSON document at u into out and returns the response's
// header.
func (v *Verifier) get(ctx context.Context, u string, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.o.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return nil, fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocument)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp.Header, nil
}
