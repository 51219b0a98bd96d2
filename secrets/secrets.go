// Package secrets keeps the token server's secrets: the random keys, 256
// bits each, that tag its refresh tokens (an HMAC over the family and
// generation a token names), derive each token's successor, and key the
// throttle's counters in a shared store (server.Config.Secrets says how).
// Anyone who holds one can mint refresh tokens that pass the tag and
// compute the successors of any token they hold; rotating the secret, and
// then retiring the old one, ends that.
//
// # A ring of secrets
//
// The store holds the secrets as one value, the store.Store.Secret called
// Name, so that sealing at rest (package sealed) covers them and every
// change is one atomic store.Store.RewriteSecrets. A Ring lists them
// oldest first. Every secret of the ring verifies tokens; the newest one
// whose ActiveFrom has passed (Ring.Current) tags new ones.
//
// Rotate adds a secret that takes over a lead after now: with a lead of
// two reload intervals plus the skew (how far apart the servers' clocks,
// and the store's, may be: DefaultSkew unless the operator knows better),
// every server has reloaded the ring, and so verifies with the new
// secret, before any server tags a token with it (serve reloads every
// --key-reload), and their clocks agree on the moment. No server ever
// refuses a token that another issued, and no one is logged out: a
// refresh token tagged under an older secret still refreshes, and its
// successor is tagged under the current secret, so a family moves to the
// new secret at its next refresh.
//
// Retire removes every secret older than the current one, once the
// current one has tagged for the skew. The families not refreshed since
// it took over still hold a token under an old secret, which would no
// longer verify: Retire ends them (it revokes them, reason
// ReasonRetired) and says how many; Dependents counts them beforehand.
// Each family's last issue time (its last rotation, or its start) tells
// which secret tagged its token, judged against the takeover plus the
// skew: a family refreshed within the skew after the takeover is ended
// too, although it may have moved. This is exact for one server on its
// own clock (memory, sqlite); for a fleet it assumes that the servers'
// clocks are within the skew of the store's, and a family refreshed on a
// server further off may keep a token that no longer verifies (its next
// refresh is invalid_grant) without being counted.
//
// # Format
//
// A store whose ring holds a single secret created before rings existed
// (or by Load) stores its raw bytes, as every earlier tokend did, so
// tokend can still be rolled back until the first rotation. A larger ring
// is stored as "tokend-secrets/1" and a newline followed by a JSON object:
//
//	{"secrets":[{"seq":1,"value":"<base64>"},
//	            {"seq":2,"value":"<base64>","created_at":"2026-12-01T10:00:00Z","active_from":"2026-12-01T10:00:30Z"}]}
//
// A server of a version before rings takes that whole value for one
// secret and refuses every refresh token: roll every server forward
// before rotating.
package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Name is the store.Store.Secret the ring is kept under (the name of the
// one secret of earlier versions, which is the ring's first).
const Name = "refresh-successor"

// Sizes of a secret's value, in bytes: new ones have Size; a stored one
// must have at least MinSize (the server refuses shorter secrets) and at
// most MaxSize.
const (
	Size    = 32
	MinSize = 32
	MaxSize = 64
)

// MaxSecrets is the most secrets a ring holds. Every secret of the ring is
// tried on a refresh token that none verifies, so a ring is kept short:
// Rotate refuses to grow it beyond this; retire first.
const MaxSecrets = 8

// DefaultSkew is how far apart the clocks of the servers (and of the store
// that records when each family was refreshed) are taken to be unless the
// operator says otherwise: a rotation's lead includes the skew, and
// Retire waits for it after the new secret has taken over.
const DefaultSkew = 10 * time.Second

// ReasonRetired is the revocation reason (store.Family.RevokeReason) of a
// family that Retire ended.
const ReasonRetired = "secret_retired"

// Errors returned by this package, wrapped; test them with errors.Is.
var (
	// ErrFormat reports a stored ring that does not parse or breaks a
	// rule of Ring.Check.
	ErrFormat = errors.New("secrets: malformed ring")
	// ErrPending reports a rotation asked for while the previous one has
	// not taken over yet.
	ErrPending = errors.New("secrets: a rotation is pending")
	// ErrFull reports a rotation that would make the ring longer than
	// MaxSecrets.
	ErrFull = errors.New("secrets: the ring is full")
	// ErrNothingToRetire reports a retirement with no secret older than
	// the current one.
	ErrNothingToRetire = errors.New("secrets: nothing to retire")
	// ErrTooSoon reports a retirement before the current secret has
	// tagged for the skew.
	ErrTooSoon = errors.New("secrets: too soon to retire")
)

// Secret is one server secret.
type Secret struct {
	// Seq numbers the secrets of a store: 1 for its first, one more for
	// each rotation. It names the secret in commands and logs.
	Seq   int
	Value []byte
	// CreatedAt is when Rotate made it; zero for a store's first secret.
	CreatedAt time.Time
	// ActiveFrom is when it starts to tag new tokens; zero for at once.
	ActiveFrom time.Time
}

// activeAt reports whether s tags tokens at now if it is the newest such.
func (s Secret) activeAt(now time.Time) bool {
	return s.ActiveFrom.IsZero() || !now.Before(s.ActiveFrom)
}

// Ring is the server's secrets, oldest first.
type Ring []Secret

// New returns a ring of one secret, value, as a store's first (a server
// given a single secret, server.Config.Secret, uses it).
func New(value []byte) Ring {
	return Ring{{Seq: 1, Value: bytes.Clone(value)}}
}

// Current returns the secret that tags new tokens at now: the newest whose
// ActiveFrom has passed (the oldest if none has). r must not be empty.
func (r Ring) Current(now time.Time) Secret {
	for i := len(r) - 1; i >= 0; i-- {
		if r[i].activeAt(now) {
			return r[i]
		}
	}
	return r[0]
}

// Next returns the secret that will take over from the current one, if a
// rotation is pending at now.
func (r Ring) Next(now time.Time) (Secret, bool) {
	if len(r) == 0 || r[len(r)-1].activeAt(now) {
		return Secret{}, false
	}
	cur := r.Current(now)
	for _, s := range r {
		if s.Seq > cur.Seq {
			return s, true
		}
	}
	return Secret{}, false
}

// Check reports, wrapping ErrFormat, a ring that breaks a rule: from 1 to
// MaxSecrets secrets, each of MinSize to MaxSize bytes, Seq positive and
// rising, ActiveFrom never falling (a zero ActiveFrom only before the
// others).
func (r Ring) Check() error {
	if len(r) == 0 || len(r) > MaxSecrets {
		return fmt.Errorf("%w: %d secrets, want 1 to %d", ErrFormat, len(r), MaxSecrets)
	}
	for i, s := range r {
		switch {
		case s.Seq < 1:
			return fmt.Errorf("%w: secret %d is numbered below 1", ErrFormat, s.Seq)
		case len(s.Value) < MinSize || len(s.Value) > MaxSize:
			return fmt.Errorf("%w: secret %d has %d bytes, want %d to %d", ErrFormat, s.Seq, len(s.Value), MinSize, MaxSize)
		case i == 0:
		case s.Seq <= r[i-1].Seq:
			return fmt.Errorf("%w: secret %d follows secret %d", ErrFormat, s.Seq, r[i-1].Seq)
		case s.ActiveFrom.Before(r[i-1].ActiveFrom), s.ActiveFrom.IsZero() && !r[i-1].ActiveFrom.IsZero():
			return fmt.Errorf("%w: secret %d takes over before secret %d", ErrFormat, s.Seq, r[i-1].Seq)
		}
	}
	return nil
}

// magic starts a stored ring of the JSON form. It cannot start a sealed
// value ("tks1", package sealed), so a ring in clear is never taken for a
// sealed one.
const magic = "tokend-secrets/1\n"

type wireRing struct {
	Secrets []wireSecret `json:"secrets"`
}

type wireSecret struct {
	Seq        int       `json:"seq"`
	Value      []byte    `json:"value"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	ActiveFrom time.Time `json:"active_from,omitzero"`
}

// Parse reads a stored ring: the JSON form after its first line, or any
// other value as the raw bytes of a single secret. It returns an error
// wrapping ErrFormat for a value that is neither, or a ring that Check
// refuses.
func Parse(b []byte) (Ring, error) {
	if !bytes.HasPrefix(b, []byte(magic)) {
		r := New(b)
		if err := r.Check(); err != nil {
			return nil, err
		}
		return r, nil
	}
	var w wireRing
	dec := json.NewDecoder(bytes.NewReader(b[len(magic):]))
	dec.DisallowUnknownFields()
	// The errors say where, never what: the value holds the secrets.
	if err := dec.Decode(&w); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: not a ring of the JSON form (byte %d)", ErrFormat, len(magic)+int(dec.InputOffset()))
	}
	r := make(Ring, len(w.Secrets))
	for i, s := range w.Secrets {
		r[i] = Secret(s)
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return r, nil
}

// MarshalBinary returns r as it is stored (see the package doc): the raw
// value of a lone first secret with no times, the JSON form otherwise. It
// returns Check's error for a ring that breaks a rule.
func (r Ring) MarshalBinary() ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	if len(r) == 1 && r[0].Seq == 1 && r[0].CreatedAt.IsZero() && r[0].ActiveFrom.IsZero() && !bytes.HasPrefix(r[0].Value, []byte(magic)) {
		return bytes.Clone(r[0].Value), nil
	}
	w := wireRing{Secrets: make([]wireSecret, len(r))}
	for i, s := range r {
		w.Secrets[i] = wireSecret{Seq: s.Seq, Value: s.Value, CreatedAt: s.CreatedAt.UTC(), ActiveFrom: s.ActiveFrom.UTC()}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return append([]byte(magic), body...), nil
}
