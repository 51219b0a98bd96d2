package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokend/tokend/secrets"
)

// The server secrets (Config.Secrets, package secrets) key three things,
// each through a key derived from the secret by HMAC-SHA-256 with its own
// label:
//
//   - the MAC of a refresh token, over its family and generation
//     (refreshtoken.go);
//   - the body of a refresh token's successor, an HMAC of the token it
//     replaces;
//   - the throttle's keys in a shared store (throttle.Fleet), so that the store
//     never holds a username or an address in clear.
//
// Nothing else: access tokens are signed by the signing keys (package
// keys), and cookie mode's cookie carries the refresh token itself.
//
// The current secret (secrets.Ring.Current, judged on the server's clock)
// issues and derives; every secret of the ring verifies. A retry of a
// refresh token after the current secret has changed would derive another
// successor, which the store would take for reuse; so the refresh grant
// also offers the successors under the ring's other secrets
// (store.RotateRequest.Alternates), and answers a Repeated with the one
// the store holds. The fleet's key changes when a new secret takes over:
// failures counted in the store before then are forgotten once.

// secretKeys are the keys one server secret derives.
type secretKeys struct {
	seq        int
	activeFrom time.Time
	mac        []byte // authenticates a refresh token's family and generation
	next       []byte // derives a successor's body
	fleet      []byte // keys the throttle's counts in a shared store
}

// deriveKeys returns the keys of one secret. The labels are those of the
// single secret before rings, so a ring of one derives the same keys.
func deriveKeys(seq int, activeFrom time.Time, secret []byte) secretKeys {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return secretKeys{seq: seq, activeFrom: activeFrom,
		mac:   derive("tokend refresh-token MAC key v2"),
		next:  derive("tokend refresh-token successor key v2"),
		fleet: derive("tokend throttle: fleet keys v1")}
}

// refreshKeys are the keys of the server secrets, oldest first, replaced
// whole by SetSecrets. Safe for concurrent use.
type refreshKeys struct {
	ring atomic.Pointer[[]secretKeys]
	now  func() time.Time
}

// newRefreshKeys returns the keys of a single secret.
func newRefreshKeys(secret []byte) *refreshKeys {
	k := &refreshKeys{now: time.Now}
	ring := []secretKeys{deriveKeys(1, time.Time{}, secret)}
	k.ring.Store(&ring)
	return k
}

// set replaces the ring by the keys of r, which Check accepts.
func (k *refreshKeys) set(r secrets.Ring) {
	ring := make([]secretKeys, len(r))
	for i, s := range r {
		ring[i] = deriveKeys(s.Seq, s.ActiveFrom, s.Value)
	}
	k.ring.Store(&ring)
}

// current returns the keys of the secret that issues at now: the newest
// whose activeFrom has passed, or the oldest if none has.
func current(ring []secretKeys, now time.Time) secretKeys {
	for i := len(ring) - 1; i >= 0; i-- {
		if ring[i].activeFrom.IsZero() || !now.Before(ring[i].activeFrom) {
			return ring[i]
		}
	}
	return ring[0]
}

func (k *refreshKeys) current() secretKeys { return current(*k.ring.Load(), k.now()) }

// FleetKey returns the key of the throttle's keys in a shared store.
func (k *refreshKeys) FleetKey() []byte { return k.current().fleet }

// FleetKeys returns the fleet keys of every secret of the ring, the
// current one's first: what was marked in the store under an older
// secret is still found.
func (k *refreshKeys) FleetKeys() [][]byte {
	ring := *k.ring.Load()
	cur := current(ring, k.now())
	out := [][]byte{cur.fleet}
	for i := len(ring) - 1; i >= 0; i-- {
		if ring[i].seq != cur.seq {
			out = append(out, ring[i].fleet)
		}
	}
	return out
}

// register adds the ring's gauges to reg: the secret that issues, and how
// many verify, so that an operator can see every instance pick up a
// rotation.
func (k *refreshKeys) register(reg *prometheus.Registry) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokend_server_secret_current", Help: "The number (Seq) of the server secret that tags new refresh tokens.",
		}, func() float64 { return float64(k.current().seq) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokend_server_secrets", Help: "How many server secrets verify refresh tokens (the ring's length).",
		}, func() float64 { return float64(len(*k.ring.Load())) }))
}

// errNoSecret reports a Config with neither Secret nor Secrets.
var errNoSecret = errors.New("server: Config.Secret must have at least 32 bytes (or Config.Secrets be set)")

// newSecretKeys returns the keys of cfg's secrets.
func newSecretKeys(cfg Config) (*refreshKeys, error) {
	if len(cfg.Secrets) == 0 {
		if len(cfg.Secret) < 32 {
			return nil, errNoSecret
		}
		k := newRefreshKeys(cfg.Secret)
		k.now = cfg.Now
		return k, nil
	}
	if err := cfg.Secrets.Check(); err != nil {
		return nil, fmt.Errorf("server: Config.Secrets: %w", err)
	}
	k := &refreshKeys{now: cfg.Now}
	k.set(cfg.Secrets)
	return k, nil
}

// SetSecrets replaces the server secrets, as `tokend serve` does when it
// reloads them from the store (every --key-reload): requests that start
// after it returns verify refresh tokens under r's secrets and tag new
// ones under r.Current. It returns an error wrapping secrets.ErrFormat,
// and changes nothing, if r.Check refuses r. Safe to call while the
// server serves.
func (s *Server) SetSecrets(r secrets.Ring) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("server: SetSecrets: %w", err)
	}
	s.refreshKeys.set(r)
	return nil
}
