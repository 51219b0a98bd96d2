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
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// maxDocument bounds the metadata and JWKS documents read.
const maxDocument = 1 << 20

// key returns the public key kid names, fetching the keys when they were
// never fetched or when kid is unknown (at most once per MinRefresh).
func (v *Verifier) key(ctx context.Context, kid string) (publicKey, error) {
	if ks := v.keys.Load(); ks != nil {
		if k, ok := (*ks)[kid]; ok {
			return k, nil
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	ks := v.keys.Load()
	if ks != nil {
		if k, ok := (*ks)[kid]; ok {
			return k, nil // fetched while we waited
		}
		if v.o.Now().Sub(v.lastFetch) < v.o.MinRefresh {
			return publicKey{}, ErrUnknownKey
		}
	}
	if err := v.fetchLocked(ctx); err != nil {
		v.o.Logger.WarnContext(ctx, "fetch keys", "issuer", v.issuer, "err", err)
		return publicKey{}, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if k, ok := (*v.keys.Load())[kid]; ok {
		return k, nil
	}
	return publicKey{}, ErrUnknownKey
}

func (v *Verifier) fetchLocked(ctx context.Context) error {
	v.lastFetch = v.o.Now()
	if v.jwksURL == "" {
		u, err := v.discover(ctx)
		if err != nil {
			return err
		}
		v.jwksURL = u
	}
	var set jose.JSONWebKeySet
	if err := v.get(ctx, v.jwksURL, &set); err != nil {
		return err
	}
	keys := map[string]publicKey{}
	for _, k := range set.Keys {
		if k.KeyID == "" || k.Use != "" && k.Use != "sig" {
			continue
		}
		var pk publicKey
		switch key := k.Key.(type) {
		case ed25519.PublicKey:
			pk = publicKey{alg: "EdDSA", ed: key}
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() {
				continue
			}
			pk = publicKey{alg: "ES256", ec: key}
		default:
			continue // symmetric and RSA keys are never used
		}
		if k.Algorithm != "" && k.Algorithm != pk.alg {
			continue // a key published for another algorithm
		}
		keys[k.KeyID] = pk
	}
	v.keys.Store(&keys)
	return nil
}

// discover finds the jwks_uri in the issuer's metadata.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	base := strings.TrimRight(v.issuer, "/")
	var errs []error
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		err := v.get(ctx, base+path, &meta)
		if err == nil && meta.JWKSURI != "" {
			if meta.Issuer != v.issuer {
				return "", fmt.Errorf("metadata names issuer %q, want %q", meta.Issuer, v.issuer)
			}
			return meta.JWKSURI, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return "", errors.Join(errs...)
}

func (v *Verifier) get(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
