package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/tokend/tokend/server/throttle"
	"github.com/tokend/tokend/store"
)

// HashClientSecret returns the hash under which a client secret is stored.
// Client secrets are generated with 256 bits of entropy by `tokend client
// create`, so SHA-256 is enough and keeps client authentication cheap on
// every token request.
func HashClientSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// authenticateClient identifies the client of a token-endpoint request by
// client_secret_basic or client_secret_post (never both), or as a public
// client that sends only client_id. It returns the client and whether it
// proved a secret. A request that presents a secret is a check for the
// throttle: refused with 429 while its source, or the client from that
// source, is locked; counted if the secret is wrong or the client
// unknown or public.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (store.Client, bool, error) {
	if _, err := singleHeader(r, "Authorization"); err != nil {
		return store.Client{}, false, err
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.Has("client_secret") {
			return store.Client{}, false, errInvalidRequest("use one client authentication method")
		}
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return store.Client{}, false, errInvalidClient(true)
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return store.Client{}, false, errInvalidRequest("client_id does not match the authenticated client")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return store.Client{}, false, errInvalidClient(true)
	}
	if err := checkClientID(id, basic); err != nil {
		return store.Client{}, false, err
	}
	// Only a presented secret can be a guess; a request with a client_id
	// alone is a public client's, or refused below without counting.
	var chk throttle.Check
	if secret != "" && s.thr != nil {
		var wait time.Duration
		if chk, wait = s.thr.Begin(ctx, throttle.ClientSecret, s.sourceAddr(r), id, s.now()); wait > 0 {
			return store.Client{}, false, errThrottledFor(wait)
		}
	}
	c, err := s.store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same work as a real comparison.
		subtle.ConstantTimeCompare(HashClientSecret(secret), make([]byte, sha256.Size))
		chk.End(ctx, throttle.Failed, s.now())
		return store.Client{}, false, errInvalidClient(basic)
	}
	if err != nil {
		chk.End(ctx, throttle.Unfinished, s.now())
		return store.Client{}, false, err
	}
	if len(c.SecretHash) == 0 {
		if secret != "" {
			chk.End(ctx, throttle.Failed, s.now())
			return store.Client{}, false, errInvalidClient(basic)
		}
		noteClient(ctx, c.ID)
		return c, false, nil // a public client
	}
	if secret == "" {
		return store.Client{}, false, errInvalidClient(basic)
	}
	if !secretMatches(c, HashClientSecret(secret), s.now()) {
		chk.End(ctx, throttle.Failed, s.now())
		return store.Client{}, false, errInvalidClient(basic)
	}
	chk.End(ctx, throttle.OK, s.now())
	noteClient(ctx, c.ID)
	return c, true, nil
}

// secretMatches reports whether h is the hash of c's secret, or of its
// previous secret (store.Client.PreviousSecretHash) while that still
// works at now. Both comparisons always run, in constant time (without a
// previous secret, the second is against zeros), and their results are
// combined without a branch, so that the time taken does not tell which
// secret matched, or whether one did.
func secretMatches(c store.Client, h []byte, now time.Time) bool {
	var zeros [sha256.Size]byte
	prev := c.PreviousSecretHash
	if len(prev) != len(h) {
		prev = zeros[:len(h)]
	}
	cur := subtle.ConstantTimeCompare(h, c.SecretHash)
	old := subtle.ConstantTimeCompare(h, prev)
	live := 0
	if len(c.PreviousSecretHash) == len(h) && now.Before(c.PreviousSecretExpiresAt) {
		live = 1
	}
	return cur|(old&live) == 1
}

func allowsGrant(c store.Client, grant string) bool {
	return slices.Contains(c.Grants, grant)
}
