package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/tokend/tokend/store"
)

// A refresh token is "rt2_" followed by 96 base64url characters, 72 bytes:
//
//	family ID (16) | generation (8, big-endian) | body (32) | MAC (16)
//
// The MAC, HMAC-SHA-256 under a key derived from the current server secret
// (Config.Secrets) and cut to 128 bits, proves the server issued that
// family and generation, so the store keeps one record per family however
// often it rotates: an old generation presented again is recognised as
// reuse without a stored tombstone, and no one can forge one to revoke
// another's family. A token verifies under any secret of the ring, so a
// rotation of the secret logs no one out (secrets.go). The body
// of the first token is random; each successor's is derived from the token
// it replaces, so a retry within the grace window gets the same successor
// without the successor ever being stored in clear. The store holds only
// SHA-256 hashes of tokens. The prefix lets secret scanners recognise them.
//
// Tokens issued before this format ("rt_" and 43 characters, 256 random
// bits) name no family; a store that still holds them (store.LegacyTokens)
// finds them by their hash, and their successors have the new format.
const (
	refreshPrefix = "rt2_"
	familyIDLen   = 16
	bodyLen       = 32
	macLen        = 16
	refreshRaw    = familyIDLen + 8 + bodyLen + macLen
	refreshLen    = len(refreshPrefix) + (refreshRaw*8+5)/6

	legacyPrefix = "rt_"
	legacyLen    = len(legacyPrefix) + 43
)

// tokenRef is what a refresh token names: its family and generation.
type tokenRef struct {
	family     string
	generation int64
}

// errUnknownToken reports a presented refresh token the server did not
// issue, or no longer knows: malformed, a MAC that does not verify, or a
// legacy token the store does not hold.
var errUnknownToken = errors.New("server: unknown refresh token")

// issue returns the token of ref with the given body, tagged under sk.
func (sk secretKeys) issue(ref tokenRef, body []byte) (string, error) {
	id, err := base64.RawURLEncoding.DecodeString(ref.family)
	if err != nil || len(id) != familyIDLen {
		return "", fmt.Errorf("server: family ID %q is not %d bytes in base64url", ref.family, familyIDLen)
	}
	raw := make([]byte, 0, refreshRaw)
	raw = append(raw, id...)
	raw = binary.BigEndian.AppendUint64(raw, uint64(ref.generation))
	raw = append(raw, body...)
	m := hmac.New(sha256.New, sk.mac)
	m.Write(raw)
	raw = m.Sum(raw)[:refreshRaw]
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// successor derives, under sk, the token that replaces tok, which names
// ref: the next generation of ref's family, its body an HMAC of tok.
func (sk secretKeys) successor(tok string, ref tokenRef) (string, error) {
	m := hmac.New(sha256.New, sk.next)
	m.Write([]byte(tok))
	return sk.issue(tokenRef{ref.family, ref.generation + 1}, m.Sum(nil))
}

// verifies reports, in constant time, whether the MAC of raw (a decoded
// token) is sk's.
func (sk secretKeys) verifies(raw []byte) bool {
	m := hmac.New(sha256.New, sk.mac)
	m.Write(raw[:refreshRaw-macLen])
	return hmac.Equal(m.Sum(nil)[:macLen], raw[refreshRaw-macLen:])
}

// issueRefreshToken returns the token of ref with the given body, tagged
// under the current secret.
func (k *refreshKeys) issueRefreshToken(ref tokenRef, body []byte) (string, error) {
	return k.current().issue(ref, body)
}

// firstRefreshToken returns generation 0 of family, with a random body.
func (k *refreshKeys) firstRefreshToken(family string) (string, error) {
	body := make([]byte, bodyLen)
	_, _ = rand.Read(body) // never fails (crypto/rand panics instead)
	return k.issueRefreshToken(tokenRef{family: family}, body)
}

// successor derives the token that replaces tok, which names ref, under
// the current secret. A retry of tok gets the same successor again, as
// long as the current secret is the same; alternates and repeated cover a
// retry under another.
func (k *refreshKeys) successor(tok string, ref tokenRef) (string, error) {
	return k.current().successor(tok, ref)
}

// alternates returns the hashes of tok's successors under every secret of
// the ring but the current one (store.RotateRequest.Alternates): the
// successor a first presentation of tok was given, if the current secret
// has changed since, or another instance's clock put it on another one.
func (k *refreshKeys) alternates(tok string, ref tokenRef) [][]byte {
	ring := *k.ring.Load()
	if len(ring) == 1 {
		return nil
	}
	cur := current(ring, k.now())
	out := make([][]byte, 0, len(ring)-1)
	for _, sk := range ring {
		if sk.seq == cur.seq {
			continue
		}
		if next, err := sk.successor(tok, ref); err == nil {
			out = append(out, hashToken(next))
		}
	}
	return out
}

// repeated returns tok's successor whose hash is hash, under whichever
// secret of the ring derives it: the successor a retry of tok is
// answered with again.
func (k *refreshKeys) repeated(tok string, ref tokenRef, hash []byte) (string, bool) {
	for _, sk := range *k.ring.Load() {
		if next, err := sk.successor(tok, ref); err == nil && bytes.Equal(hashToken(next), hash) {
			return next, true
		}
	}
	return "", false
}

// parseRefreshToken returns what tok names if it has the shape of a
// refresh token and its MAC verifies (in constant time) under a secret of
// the ring, the newest first.
func (k *refreshKeys) parseRefreshToken(tok string) (tokenRef, bool) {
	if len(tok) != refreshLen || !strings.HasPrefix(tok, refreshPrefix) {
		return tokenRef{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[len(refreshPrefix):])
	if err != nil || len(raw) != refreshRaw {
		return tokenRef{}, false
	}
	ring := *k.ring.Load()
	ok := false
	for i := len(ring) - 1; i >= 0 && !ok; i-- {
		ok = ring[i].verifies(raw)
	}
	if !ok {
		return tokenRef{}, false
	}
	gen := binary.BigEndian.Uint64(raw[familyIDLen:])
	if gen > 1<<62 {
		return tokenRef{}, false
	}
	return tokenRef{base64.RawURLEncoding.EncodeToString(raw[:familyIDLen]), int64(gen)}, true
}

// isLegacyRefreshToken reports whether tok has the shape of a refresh
// token of the format before family and generation were carried.
func isLegacyRefreshToken(tok string) bool {
	if len(tok) != legacyLen || !strings.HasPrefix(tok, legacyPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(tok[len(legacyPrefix):])
	return err == nil
}

// looksLikeRefreshToken reports whether tok is meant as a refresh token,
// of either format: introspection and revocation tell the kinds apart by
// it.
func looksLikeRefreshToken(tok string) bool {
	return strings.HasPrefix(tok, refreshPrefix) || strings.HasPrefix(tok, legacyPrefix)
}

// refreshTokenRef returns what a presented refresh token names: read from
// the token, whose MAC is checked, or for a legacy token looked up in the
// store. It returns errUnknownToken for a token the server cannot
// vouch for, and the store's error if it could not ask.
func (s *Server) refreshTokenRef(ctx context.Context, tok string) (tokenRef, error) {
	if ref, ok := s.refreshKeys.parseRefreshToken(tok); ok {
		return ref, nil
	}
	if !isLegacyRefreshToken(tok) {
		return tokenRef{}, errUnknownToken
	}
	l, ok := store.Capability[store.LegacyTokens](s.store)
	if !ok {
		return tokenRef{}, errUnknownToken
	}
	id, gen, err := l.LegacyToken(ctx, hashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return tokenRef{}, errUnknownToken
	}
	if err != nil {
		return tokenRef{}, fmt.Errorf("server: look up legacy refresh token: %w", err)
	}
	return tokenRef{id, gen}, nil
}

// hashToken is how a refresh token is stored: SHA-256. A token with 256
// bits the holder cannot guess needs no slow hash.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}
