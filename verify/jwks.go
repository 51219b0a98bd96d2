package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
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

// keySet is the issuer's usable keys by kid. It is never modified once
// published in Verifier.keys.
type keySet map[string]*publicKey

// fetchCall is one fetch of the keys; the callers that wait for it read
// its result once done is closed.
type fetchCall struct {
	done chan struct{}
	keys keySet
	err  error
}

// key returns the public key kid names. The hot path is one atomic load
// and a map lookup; a kid not in the cache leads to refresh.
func (v *Verifier) key(ctx context.Context, kid string) (*publicKey, error) {
	if ks := v.keys.Load(); ks != nil {
		if k := (*ks)[kid]; k != nil {
			return k, nil
		}
	}
	return v.refresh(ctx, kid)
}

// refresh fetches the keys again and looks kid up in them. Concurrent
// callers share one fetch, which runs on its own goroutine so that a caller
// whose ctx ends stops waiting without failing the others. A new fetch
// starts at most once per MinRefresh; within that time refresh answers
// from the last fetch: ErrKeys if it failed, ErrUnknownKey otherwise.
func (v *Verifier) refresh(ctx context.Context, kid string) (*publicKey, error) {
	v.mu.Lock()
	if ks := v.keys.Load(); ks != nil {
		if k := (*ks)[kid]; k != nil {
			v.mu.Unlock()
			return k, nil // fetched while we took the lock
		}
	}
	c := v.inflight
	if c == nil {
		now := v.o.Now()
		if !v.lastFetch.IsZero() && now.Sub(v.lastFetch) < v.o.MinRefresh {
			err := v.lastErr
			v.mu.Unlock()
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrKeys, err)
			}
			return nil, fmt.Errorf("%w (keys fetched less than %s ago)", ErrUnknownKey, v.o.MinRefresh)
		}
		v.lastFetch = now
		c = &fetchCall{done: make(chan struct{})}
		v.inflight = c
		go v.fetch(context.WithoutCancel(ctx), c, v.jwksURL)
	}
	v.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the fetch: %w", ErrKeys, context.Cause(ctx))
	}
	if c.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, c.err)
	}
	if k := c.keys[kid]; k != nil {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// fetch runs one fetch for c, with jwksURL if it is known, and publishes
// the result. On failure the keys fetched before stay in use.
func (v *Verifier) fetch(ctx context.Context, c *fetchCall, jwksURL string) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	var err error
	if jwksURL == "" {
		jwksURL, err = v.discover(ctx)
	}
	var ks keySet
	if err == nil {
		ks, err = v.fetchJWKS(ctx, jwksURL)
	}

	v.mu.Lock()
	if err == nil {
		v.jwksURL = jwksURL
		v.keys.Store(&ks)
	}
	v.lastErr = err
	v.inflight = nil
	v.mu.Unlock()
	c.keys, c.err = ks, err
	close(c.done)

	if err != nil {
		v.o.Logger.WarnContext(ctx, "verify: cannot fetch the issuer's keys", "issuer", v.issuer, "err", err)
	} else {
		v.o.Logger.DebugContext(ctx, "verify: fetched the issuer's keys", "issuer", v.issuer, "jwks_uri", jwksURL, "keys", len(ks))
	}
}

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
		err := v.get(ctx, u, &meta)
		switch {
		case err != nil:
		case meta.JWKSURI == "":
			err = errors.New("no jwks_uri")
		case meta.Issuer != v.issuer:
			err = fmt.Errorf("metadata names issuer %q", meta.Issuer)
		default:
			return meta.JWKSURI, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("discover jwks_uri: %w", errors.Join(errs...))
}

// fetchJWKS fetches the JWKS at u and keeps the keys this package can
// use: signature keys with a kid, Ed25519 for EdDSA or P-256 for ES256,
// whose alg (if any) fits the key. Keys it cannot use, or cannot parse,
// are skipped, so that a new key type at the issuer breaks nothing.
func (v *Verifier) fetchJWKS(ctx context.Context, u string) (keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.get(ctx, u, &doc); err != nil {
		return nil, err
	}
	ks := make(keySet, len(doc.Keys))
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
	return ks, nil
}

// usable returns the key of jwk, or nil if Verify cannot use it.
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
	default:
		return nil // symmetric, RSA and private keys are never used
	}
	if jwk.Algorithm != "" && jwk.Algorithm != k.alg {
		return nil // a key published for another algorithm
	}
	return &k
}

// get fetches the JSON document at u into out.
func (v *Verifier) get(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.o.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocument)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
