package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/tokend/tokend/secrets"
)

func hmacOf(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// A ring of one secret derives what the single secret of earlier versions
// did, so that no token and no throttle count changes at the upgrade; a
// rotation changes the fleet's key when the new secret takes over.
func TestSecretKeysCompatible(t *testing.T) {
	secret := bytes.Repeat([]byte{3}, 32)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	k, err := newSecretKeys(Config{Secrets: secrets.New(secret), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	family := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{9}, familyIDLen))
	body := bytes.Repeat([]byte{4}, bodyLen)
	tok, err := k.issueRefreshToken(tokenRef{family: family}, body)
	if err != nil {
		t.Fatal(err)
	}
	raw := append(append(bytes.Repeat([]byte{9}, familyIDLen), make([]byte, 8)...), body...)
	raw = append(raw, hmacOf(hmacOf(secret, []byte("tokend refresh-token MAC key v2")), raw)[:macLen]...)
	if want := refreshPrefix + base64.RawURLEncoding.EncodeToString(raw); tok != want {
		t.Fatalf("a ring of one issues %s; the single secret issued %s", tok, want)
	}
	if want := hmacOf(secret, []byte("tokend throttle: fleet keys v1")); !bytes.Equal(k.FleetKey(), want) {
		t.Fatal("a ring of one keys the fleet's counts otherwise than the single secret did")
	}
	next := secrets.Secret{Seq: 2, Value: bytes.Repeat([]byte{5}, 32), ActiveFrom: t0.Add(time.Minute)}
	k.set(secrets.Ring{secrets.New(secret)[0], next})
	if !bytes.Equal(k.FleetKey(), hmacOf(secret, []byte("tokend throttle: fleet keys v1"))) {
		t.Fatal("the fleet's key changed before the new secret took over")
	}
	now = next.ActiveFrom
	if !bytes.Equal(k.FleetKey(), hmacOf(next.Value, []byte("tokend throttle: fleet keys v1"))) {
		t.Fatal("the fleet's key is not the new secret's once it took over")
	}
	if ref, ok := k.parseRefreshToken(tok); !ok || ref.family != family {
		t.Fatal("a token of the old secret no longer parses after the takeover")
	}
}

// The throttle's fleet finds a source marked familiar under any secret of
// the ring: FleetKeys lists the current secret's key first, then the
// others', until a secret is retired.
func TestFleetKeysAcrossRotation(t *testing.T) {
	old, newer := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	k := newRefreshKeys(old)
	k.now = func() time.Time { return t0 }
	fleetKeyOf := func(secret []byte) []byte { return hmacOf(secret, []byte("tokend throttle: fleet keys v1")) }
	rotated := secrets.Ring{{Seq: 1, Value: old}, {Seq: 2, Value: newer, ActiveFrom: t0}}
	k.set(rotated)
	if got := k.FleetKeys(); len(got) != 2 || !bytes.Equal(got[0], fleetKeyOf(newer)) || !bytes.Equal(got[1], fleetKeyOf(old)) {
		t.Fatal("after the takeover: want the new secret's fleet key, then the old one's")
	}
	k.set(rotated[1:])
	if got := k.FleetKeys(); len(got) != 1 || !bytes.Equal(got[0], fleetKeyOf(newer)) {
		t.Fatal("a retired secret's fleet key is still listed")
	}
}
