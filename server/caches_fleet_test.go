package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/redis/redistest"
	"github.com/tokend/tokend/store/sqlite"
	"github.com/tokend/tokend/verify"
)

// The caches of caches_test.go on two instances and every backend.

// tokend keys revoke, run by another process: at once, on the same clock,
// on two instances that each have their own handle on the store and their
// own key set (neither told), on every backend, no grant signs with the
// revoked key, the JWKS no longer lists it, and introspection refuses its
// tokens while accepting the new key's.
func TestRevokedKeySignsNothing(t *testing.T) {
	for _, b := range storePairs {
		t.Run(b.name, func(t *testing.T) {
			e, e2 := twoInstances(t, b.open)
			testRevokedKeySignsNothing(t, e, e2)
		})
	}
}

// storePairs open two handles on one new store of each backend, as two
// processes would have (memory: one store, which no two processes share).
var storePairs = []struct {
	name string
	open func(t *testing.T) (store.Store, store.Store)
}{
	{"memory", func(t *testing.T) (store.Store, store.Store) { st := memory.New(); return st, st }},
	{"sqlite", func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "tokend.db")
		return openPair(t, func() (store.Store, error) { return sqlite.Open(t.Context(), path) })
	}},
	{"postgres", func(t *testing.T) (store.Store, store.Store) {
		u := pgtest.ServerURL + pgtest.Schema(t)
		return openPair(t, func() (store.Store, error) { return postgres.Open(t.Context(), u) })
	}},
	{"redis", func(t *testing.T) (store.Store, store.Store) {
		prefix := redistest.Prefix(t)
		return openPair(t, func() (store.Store, error) {
			return redis.Open(t.Context(), redistest.ServerURL, &redis.Options{Prefix: prefix})
		})
	}},
}

// openPair opens two handles with open, closed when t ends.
func openPair(t *testing.T, open func() (store.Store, error)) (store.Store, store.Store) {
	t.Helper()
	var sts [2]store.Store
	for i := range sts {
		st, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		sts[i] = st
	}
	return sts[0], sts[1]
}

// twoInstances starts two servers with one issuer, each on its own handle
// of one store (open's) and with its own key set, sharing a clock, with
// newEnv's app, spa and alice (a password check of its own), and
// "minter", which may mint for spa.
func twoInstances(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) (*env, *env) {
	t.Helper()
	ctx := t.Context()
	a, b := open(t)
	clk := clocktest.New(time.Now().UTC().Truncate(time.Second))
	for _, c := range []store.Client{
		{ID: appID, SecretHash: server.HashClientSecret(appSecret), Grants: []string{"client_credentials", "refresh_token", "password"}, Mint: true},
		{ID: "spa", Grants: []string{"refresh_token"}},
		{ID: "minter", SecretHash: server.HashClientSecret("minter-secret"), Mint: true, MintFor: []string{"spa"}},
	} {
		if err := a.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// alice/wonderland without argon2id, so that the test stays fast.
	users := func(_ context.Context, user, pass string) (string, error) {
		if user == "alice" && pass == "wonderland" {
			return user, nil
		}
		return "", server.ErrBadCredentials
	}
	hs := [2]*httptest.Server{httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)}
	issuer := "http://" + hs[0].Listener.Addr().String()
	var envs [2]*env
	for i, st := range []store.Store{a, b} {
		ks, err := keys.Load(ctx, st, "", time.Hour, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Store: st, Signer: ks, Secret: testSecret, Issuer: issuer, Now: clk.Now, Authenticate: users})
		if err != nil {
			t.Fatal(err)
		}
		hs[i].Config.Handler = srv
		hs[i].Start()
		t.Cleanup(hs[i].Close)
		envs[i] = &env{t: t, url: hs[i].URL, store: st, clock: clk, srv: srv}
	}
	return envs[0], envs[1]
}

func testRevokedKeySignsNothing(t *testing.T, e, e2 *env) {
	ctx := t.Context()
	old := e.login()
	kid := verify.KeyID(old.str("access_token"))
	if kids, _ := e2.jwksKids(); !slices.Equal(kids, []string{kid}) {
		t.Fatalf("instance 2 publishes %v; want %s", kids, kid)
	}
	next, err := keys.Revoke(ctx, e.store, kid, "", e.clock.Now())
	if err != nil || next.ID == "" {
		t.Fatalf("Revoke: %v, %v", next, err)
	}
	// Each instance read its keys within the last KeyStaleness; once that
	// has passed (`tokend keys revoke` waits for it), none signs with the
	// revoked key nor publishes it.
	e.clock.Advance(server.DefaultKeyStaleness)
	for i, inst := range []*env{e, e2} {
		minted := inst.mintJSON(`{"subject":"bob","force":true}`)
		grants := []struct {
			name string
			a    answer
		}{
			{"mint, forced", minted},
			{"password", inst.login()},
			{"refresh_token", inst.refresh(minted.str("refresh_token"))},
			{"client_credentials", inst.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}})},
			{"mint", inst.mintJSON(`{"subject":"carol"}`)},
			{"mint for spa", inst.mintAs("minter", "minter-secret", `{"subject":"carol","client_id":"spa"}`)},
		}
		for _, g := range grants {
			if g.a.status != http.StatusOK {
				t.Fatalf("instance %d, %s: %d %v", i+1, g.name, g.a.status, g.a.body)
			}
			if got := verify.KeyID(g.a.str("access_token")); got != next.ID {
				t.Errorf("instance %d, %s: signed by %q; want the new key %q", i+1, g.name, got, next.ID)
			}
			if g.name == "mint for spa" {
				continue // spa's token: introspected by no one but spa, a public client
			}
			if r := e.introspect(g.a.str("access_token")); r.body["active"] != true {
				t.Errorf("instance %d, %s: introspection %v; want active", i+1, g.name, r.body)
			}
		}
		if kids, cc := inst.jwksKids(); !slices.Equal(kids, []string{next.ID}) || cc != "public, max-age=60" {
			t.Errorf("instance %d: JWKS %v (%s) KeyStaleness after the revocation; want only %s", i+1, kids, cc, next.ID)
		}
		if r := inst.introspect(old.str("access_token")); r.status != http.StatusOK || r.body["active"] != false {
			t.Errorf("instance %d: the revoked key's token: %d %v; want inactive", i+1, r.status, r.body)
		}
	}
}

// The mint cache of one instance follows changes made through another
// instance or another handle on the store (tokend's CLI), on every
// backend: a family ended through instance 2, a subject's families
// ended on the store, and the signing key revoked on the store each make
// instance 1's next repeated mint a new family, which introspection
// through instance 2 calls active.
func TestMintCacheAcrossInstances(t *testing.T) {
	for _, b := range storePairs {
		t.Run(b.name, func(t *testing.T) {
			e, e2 := twoInstances(t, b.open)
			ctx := t.Context()
			mint := func(subject string) answer {
				t.Helper()
				a := e.mintJSON(`{"subject":"` + subject + `"}`)
				if a.status != http.StatusOK {
					t.Fatalf("mint for %s: %d %v", subject, a.status, a.body)
				}
				return a
			}
			first := map[string]answer{}
			for _, sub := range []string{"dave", "erin", "frank"} {
				first[sub] = mint(sub)
				if again := mint(sub); again.str("access_token") != first[sub].str("access_token") {
					t.Fatalf("%s: the repeat before any change is not the cached token: %v", sub, again.body)
				}
			}
			newFamily := func(what string, before answer, after answer) {
				t.Helper()
				if after.str("access_token") == before.str("access_token") || after.str("refresh_token") == "" || after.str("session_id") == before.str("session_id") {
					t.Errorf("%s: repeated mint %v; want a new login", what, after.body)
				}
				if r := e2.introspect(after.str("access_token")); r.body["active"] != true {
					t.Errorf("%s: the new login's token through instance 2: %v", what, r.body)
				}
				if r := e2.introspect(before.str("access_token")); r.body["active"] != false {
					t.Errorf("%s: the cached token through instance 2: %v; want inactive", what, r.body)
				}
			}

			if a := e2.request("DELETE", "/v1/sessions/"+first["dave"].str("session_id"), nil, [2]string{appID, appSecret}); a.status != http.StatusNoContent {
				t.Fatalf("end dave's session through instance 2: %d %v", a.status, a.body)
			}
			newFamily("session ended through instance 2", first["dave"], mint("dave"))
			if _, err := e2.store.RevokeFamilies(ctx, store.FamilyFilter{Subject: "erin"}, e.clock.Now(), "admin"); err != nil {
				t.Fatal(err)
			}
			newFamily("sessions ended on the store", first["erin"], mint("erin"))
			if _, err := keys.Revoke(ctx, e2.store, verify.KeyID(first["frank"].str("access_token")), "", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			newFamily("key revoked on the store", first["frank"], mint("frank"))
		})
	}
}

// A browser origin whose client was deleted through another handle on
// the store is refused by the next request to either instance, on every
// backend, though both had allowed it a moment before.
func TestCORSAcrossInstances(t *testing.T) {
	for _, b := range storePairs {
		t.Run(b.name, func(t *testing.T) {
			e, e2 := twoInstances(t, b.open)
			if err := e.store.CreateClient(t.Context(), store.Client{ID: "web", Grants: []string{"refresh_token"}, Origins: []string{pageOrigin}}); err != nil {
				t.Fatal(err)
			}
			preflight := func(inst *env) string {
				t.Helper()
				a := inst.request("OPTIONS", "/oauth/token", nil, [2]string{}, "Origin", pageOrigin, "Access-Control-Request-Method", "POST")
				return a.header.Get("Access-Control-Allow-Origin")
			}
			for i, inst := range []*env{e, e2} {
				if got := preflight(inst); got != pageOrigin {
					t.Fatalf("instance %d before the delete: Allow-Origin %q; want %s", i+1, got, pageOrigin)
				}
			}
			if _, err := e2.store.DeleteClient(t.Context(), "web", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			for i, inst := range []*env{e, e2} {
				if got := preflight(inst); got != "" {
					t.Errorf("instance %d right after the delete: Allow-Origin %q; want none", i+1, got)
				}
			}
		})
	}
}
