package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// legacyStore is a store that holds refresh tokens of the format before
// tokens carried their family (as an upgraded SQLite database does).
type legacyStore struct {
	store.Store
	legacy map[string]store.Family // by string(hash): the family and, in Generation, the token's
}

func (l *legacyStore) LegacyToken(_ context.Context, hash []byte) (string, int64, error) {
	f, ok := l.legacy[string(hash)]
	if !ok {
		return "", 0, fmt.Errorf("legacy: %w", store.ErrNotFound)
	}
	return f.ID, f.Generation, nil
}

func legacyToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "rt_" + base64.RawURLEncoding.EncodeToString(b)
}

// A refresh token issued before tokens carried their family still
// refreshes once the store is upgraded: its successor has the new format,
// a retry within grace gets that same successor, and once the successor
// is used, the old token presented again is reuse.
func TestLegacyRefreshToken(t *testing.T) {
	var ls *legacyStore
	e := newEnv(t, func(c *server.Config) {
		ls = &legacyStore{Store: c.Store, legacy: map[string]store.Family{}}
		c.Store = ls
	})
	now := e.clock.Now()
	prev, cur := legacyToken(), legacyToken()
	id, _ := server.FirstRefreshToken(testSecret)
	f := store.Family{ID: id, ClientID: appID, Subject: "alice", Scope: "read", CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
		Generation: 1, TokenHash: server.HashClientSecret(cur), PreviousHash: server.HashClientSecret(prev), RotatedAt: now}
	if err := ls.CreateFamily(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	ls.legacy[string(server.HashClientSecret(prev))] = store.Family{ID: id, Generation: 0}
	ls.legacy[string(server.HashClientSecret(cur))] = store.Family{ID: id, Generation: 1}

	a := e.refresh(cur)
	next := a.str("refresh_token")
	if a.status != 200 || !strings.HasPrefix(next, "rt2_") {
		t.Fatalf("refresh with a legacy token: %d %v", a.status, a.body)
	}
	if r := e.introspect(next); r.body["active"] != true || r.body["sub"] != "alice" {
		t.Fatalf("introspection of its successor: %v", r.body)
	}
	if r := e.refresh(cur); r.status != 200 || r.str("refresh_token") != next {
		t.Fatalf("retry of the legacy token within grace: %d %v; want the same successor", r.status, r.body)
	}
	if r := e.refresh(next); r.status != 200 {
		t.Fatalf("refresh with the successor: %d %v", r.status, r.body)
	}
	if r := e.refresh(cur); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("the legacy token after its successor was used: %d %v", r.status, r.body)
	}
	if got, _ := ls.GetFamily(t.Context(), id); got.RevokeReason != store.ReasonReuse {
		t.Fatalf("family after the legacy token's reuse: %+v", got)
	}
	if r := e.refresh(legacyToken()); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("an unknown legacy token: %d %v", r.status, r.body)
	}
}

// A token that names a real family but whose MAC does not verify (forged
// by someone who knows the family ID, which access tokens carry as sid) is
// unknown: refused, and the family it names is untouched, even when it
// names an old generation, which from the server would be reuse.
func TestForgedRefreshTokenRevokesNothing(t *testing.T) {
	e := newEnv(t, nil)
	rt := e.login().str("refresh_token")
	next := e.refresh(rt).str("refresh_token")
	raw, _ := base64.RawURLEncoding.DecodeString(rt[len("rt2_"):])
	raw[len(raw)-1] ^= 1 // generation 0 of the family, a wrong MAC
	forged := "rt2_" + base64.RawURLEncoding.EncodeToString(raw)
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {forged}, "token": {forged}}
		a := e.post(path, appID, appSecret, form)
		if path == "/oauth/token" && (a.status != 400 || a.str("error") != "invalid_grant") ||
			path != "/oauth/token" && a.status != 200 {
			t.Fatalf("%s with a forged token: %d %v", path, a.status, a.body)
		}
	}
	if r := e.refresh(next); r.status != 200 {
		t.Fatalf("the family after forged tokens: %d %v; want it untouched", r.status, r.body)
	}
	// The genuine old token is reuse.
	if r := e.refresh(rt); r.status != 400 {
		t.Fatalf("genuine generation 0 after two rotations: %d %v", r.status, r.body)
	}
}
