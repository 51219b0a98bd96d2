package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

func (e *env) introspect(tok string) answer {
	e.t.Helper()
	return e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {tok}})
}

func (e *env) mintJSON(body string) answer {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(appID, appSecret)
	return e.do(req)
}

// Introspection judges exp on the issuer's own clock, without the
// verifier's clock-skew leeway (RFC 7662 §2.2).
func TestIntrospectExpiryIsExact(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.AccessTTL = time.Minute })
	at := e.login().str("access_token")
	e.clock.Advance(59 * time.Second)
	if r := e.introspect(at); r.body["active"] != true {
		t.Fatalf("1 s before exp: %v", r.body)
	}
	e.clock.Advance(time.Second)
	if r := e.introspect(at); r.body["active"] != false {
		t.Fatalf("at exp: %v", r.body)
	}
	e.clock.Advance(2 * time.Second)
	if r := e.introspect(at); r.body["active"] != false {
		t.Fatalf("2 s past exp: %v", r.body)
	}
}

// Every revocation does what its 200 says, whatever the token's grant and
// state; other clients' revocations change nothing.
func TestRevokeEveryKindOfToken(t *testing.T) {
	cases := []struct {
		name string
		// issue returns the token to revoke and the tokens that must be
		// dead afterwards (access tokens: introspection inactive; refresh
		// tokens: refresh fails).
		issue func(e *env) (revoke string, dead []string)
	}{
		{"current refresh token", func(e *env) (string, []string) {
			a := e.login()
			return a.str("refresh_token"), []string{a.str("refresh_token"), a.str("access_token")}
		}},
		{"rotated refresh token", func(e *env) (string, []string) {
			a := e.login()
			b := e.refresh(a.str("refresh_token"))
			return a.str("refresh_token"), []string{b.str("refresh_token"), b.str("access_token"), a.str("access_token")}
		}},
		{"password-grant access token", func(e *env) (string, []string) {
			a := e.login()
			return a.str("access_token"), []string{a.str("access_token"), a.str("refresh_token")}
		}},
		{"refreshed access token", func(e *env) (string, []string) {
			a := e.login()
			b := e.refresh(a.str("refresh_token"))
			return b.str("access_token"), []string{b.str("access_token"), b.str("refresh_token")}
		}},
		{"minted access token", func(e *env) (string, []string) {
			a := e.mintJSON(`{"subject":"u1"}`)
			return a.str("access_token"), []string{a.str("access_token"), a.str("refresh_token")}
		}},
		{"client_credentials access token", func(e *env) (string, []string) {
			a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}})
			return a.str("access_token"), []string{a.str("access_token")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tok, dead := tc.issue(e)
			for _, d := range dead {
				if !strings.HasPrefix(d, "rt2_") && e.introspect(d).body["active"] != true {
					t.Fatalf("access token inactive before revocation")
				}
			}
			if r := e.post("/oauth/revoke", "other", "other-secret", url.Values{"token": {tok}}); r.status != 200 {
				t.Fatalf("other client's revoke: %d %v", r.status, r.body)
			}
			for _, d := range dead {
				if !strings.HasPrefix(d, "rt2_") && e.introspect(d).body["active"] != true {
					t.Fatalf("another client's revocation took effect")
				}
			}
			if r := e.post("/oauth/revoke", appID, appSecret, url.Values{"token": {tok}}); r.status != 200 {
				t.Fatalf("revoke: %d %v", r.status, r.body)
			}
			for i, d := range dead {
				if strings.HasPrefix(d, "rt2_") {
					if r := e.refresh(d); r.status != 400 || r.str("error") != "invalid_grant" {
						t.Errorf("dead[%d]: refresh after revocation: %d %v", i, r.status, r.body)
					}
				} else if r := e.introspect(d); r.body["active"] != false {
					t.Errorf("dead[%d]: access token active after revocation: %v", i, r.body)
				}
			}
		})
	}
}

// A repeated mint without force returns the cached access token, never the
// same refresh-token family: two devices minted a second apart cannot log
// each other out.
func TestMintNeverSharesAFamily(t *testing.T) {
	e := newEnv(t, nil)
	dev1 := e.mintJSON(`{"subject":"dave"}`)
	e.clock.Advance(time.Second)
	dev2 := e.mintJSON(`{"subject":"dave"}`)
	if dev1.str("refresh_token") == "" || dev2.str("access_token") != dev1.str("access_token") || dev2.str("session_id") != dev1.str("session_id") {
		t.Fatalf("repeated mint: %v then %v", dev1.body, dev2.body)
	}
	if _, ok := dev2.body["refresh_token"]; ok {
		t.Fatalf("a repeated mint handed out the first caller's refresh token")
	}
	if dev2.body["expires_in"] != float64(899) {
		t.Errorf("repeated mint: expires_in %v, want the access token's remaining 899", dev2.body["expires_in"])
	}
	// Device 1 refreshes; device 2 gets its own family with force, and
	// both keep working well after the grace window.
	dev3 := e.mintJSON(`{"subject":"dave","force":true}`)
	if dev3.str("refresh_token") == "" || dev3.str("session_id") == dev1.str("session_id") {
		t.Fatalf("forced mint: %v", dev3.body)
	}
	r1 := e.refresh(dev1.str("refresh_token"))
	e.clock.Advance(31 * time.Second)
	r3 := e.refresh(dev3.str("refresh_token"))
	e.clock.Advance(10 * time.Minute)
	if r1.status != 200 || r3.status != 200 || e.refresh(r1.str("refresh_token")).status != 200 || e.refresh(r3.str("refresh_token")).status != 200 {
		t.Fatalf("devices logged each other out: %v %v", r1.body, r3.body)
	}
}

// Deleting a user or a client ends its families in the same step, and a
// re-created namesake inherits nothing.
func TestDeleteRevokesFamilies(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	alice := e.login()
	mintedForAlice := e.mintJSON(`{"subject":"alice"}`)
	other := e.post("/oauth/token", "other", "other-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})
	if n, err := e.store.DeleteUser(ctx, "alice", e.clock.Now()); err != nil || n != 3 {
		t.Fatalf("DeleteUser: %d, %v; want 3 revoked", n, err)
	}
	if err := e.store.CreateUser(ctx, store.User{Name: "alice", PasswordHash: password.Hash("wonderland")}); err != nil {
		t.Fatal(err)
	}
	for _, rt := range []string{alice.str("refresh_token"), mintedForAlice.str("refresh_token")} {
		if r := e.refresh(rt); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Errorf("refresh of a deleted user's login: %d %v", r.status, r.body)
		}
	}
	if r := e.post("/oauth/token", "other", "other-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {other.str("refresh_token")}}); r.status != 400 {
		t.Errorf("refresh through another client of a deleted user's login: %d %v", r.status, r.body)
	}
	if r := e.introspect(alice.str("access_token")); r.body["active"] != false {
		t.Errorf("access token of a deleted user: %v", r.body)
	}

	// A client deleted and re-created under the same id.
	b := e.login()
	c, err := e.store.GetClient(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.DeleteClient(ctx, appID, e.clock.Now()); err != nil || n != 1 {
		t.Fatalf("DeleteClient: %d, %v; want 1 revoked", n, err)
	}
	if err := e.store.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if r := e.refresh(b.str("refresh_token")); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("refresh through a re-created client: %d %v", r.status, r.body)
	}
	fams, _ := e.store.ListFamilies(ctx, store.FamilyFilter{})
	reasons := map[string]int{}
	for _, f := range fams {
		reasons[f.RevokeReason]++
	}
	if reasons[store.ReasonUserDeleted] != 3 || reasons[store.ReasonClientDeleted] != 1 {
		t.Errorf("revocation reasons: %v", reasons)
	}
}

// tokend keys revoke, run by another process, takes effect at once:
// introspection refuses the key's tokens, and the JWKS drops it within a
// second. A key another instance rotated to is accepted at once too.
func TestWithdrawnKey(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	a := e.login()
	at := a.str("access_token")
	kid := verify.KeyID(at)
	// Another process withdraws the signing key; this server's key set is
	// not told.
	next, err := keys.Revoke(ctx, e.store, kid, "", e.clock.Now())
	if err != nil || next.ID == "" {
		t.Fatalf("Revoke: %v, %v", next, err)
	}
	if r := e.introspect(at); r.status != 200 || r.body["active"] != false {
		t.Fatalf("token of a withdrawn key: %d %v", r.status, r.body)
	}
	e.clock.Advance(time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/.well-known/jwks.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(jwks), kid) || !strings.Contains(string(jwks), next.ID) {
		t.Fatalf("JWKS a second after the withdrawal: %s", jwks)
	}
	b := e.login()
	if got := verify.KeyID(b.str("access_token")); got != next.ID {
		t.Fatalf("new tokens signed by %q, want %q", got, next.ID)
	}
	if r := e.introspect(b.str("access_token")); r.body["active"] != true {
		t.Fatalf("token of the new key: %v", r.body)
	}

	// Another instance on the same store rotates and signs with its new
	// key before this one has reloaded.
	ks2, err := keys.Load(ctx, e.store, "", time.Hour, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Rotate(ctx, e.store, "", e.clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	if err := ks2.Reload(ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	srv2, err := server.New(server.Config{Store: e.store, Signer: ks2, Secret: bytes.Repeat([]byte{7}, 32), Issuer: e.url, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, appSecret)
	srv2.ServeHTTP(w, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || w.Code != 200 {
		t.Fatalf("token from the other instance: %d %s", w.Code, w.Body)
	}
	if r := e.introspect(tok.AccessToken); r.body["active"] != true {
		t.Fatalf("token signed by the other instance's new key: %v", r.body)
	}
}

// beforeCreate is a store that runs a hook just before each family is
// created: a delete that lands between a login's checks and its family.
type beforeCreate struct {
	store.Store
	hook func()
}

func (b *beforeCreate) CreateFamily(ctx context.Context, f store.Family) error {
	if b.hook != nil {
		b.hook()
		b.hook = nil
	}
	return b.Store.CreateFamily(ctx, f)
}

// A login whose user or client is deleted while it is being checked gets
// nothing, and its family stays revoked when the namesake is created again.
func TestDeleteDuringLogin(t *testing.T) {
	var bc *beforeCreate
	e := newEnv(t, func(c *server.Config) {
		bc = &beforeCreate{Store: c.Store}
		c.Store = bc
	})
	ctx := t.Context()
	recreateUser := func() {
		if _, err := e.store.DeleteUser(ctx, "alice", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateUser(ctx, store.User{Name: "alice", PasswordHash: password.Hash("wonderland"), CreatedAt: e.clock.Now().Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	recreateClient := func() {
		app, err := e.store.GetClient(ctx, appID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.DeleteClient(ctx, appID, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		again := app
		again.CreatedAt = app.CreatedAt.Add(time.Second)
		if err := e.store.CreateClient(ctx, again); err != nil {
			t.Fatal(err)
		}
	}
	passwordLogin := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}}
	for _, tc := range []struct {
		name   string
		hook   func()
		call   func() answer
		status int
		code   string
		reason string
	}{
		{"user deleted and re-created", recreateUser,
			func() answer { return e.post("/oauth/token", appID, appSecret, passwordLogin) }, 400, "invalid_grant", store.ReasonUserDeleted},
		{"client deleted and re-created", recreateClient,
			func() answer { return e.post("/oauth/token", appID, appSecret, passwordLogin) }, 401, "invalid_client", store.ReasonClientDeleted},
		{"client deleted during a mint", recreateClient,
			func() answer { return e.mintJSON(`{"subject":"u9","force":true}`) }, 401, "invalid_client", store.ReasonClientDeleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]bool{}
			fams, _ := e.store.ListFamilies(ctx, store.FamilyFilter{})
			for _, f := range fams {
				before[f.ID] = true
			}
			bc.hook = tc.hook
			a := tc.call()
			if a.status != tc.status || a.str("error") != tc.code || a.str("refresh_token") != "" {
				t.Fatalf("login across a delete: %d %v", a.status, a.body)
			}
			fams, _ = e.store.ListFamilies(ctx, store.FamilyFilter{})
			var created []store.Family
			for _, f := range fams {
				if !before[f.ID] {
					created = append(created, f)
				}
			}
			if len(created) != 1 || created[0].RevokeReason != tc.reason {
				t.Fatalf("families the login created: %+v, want one revoked for %q", created, tc.reason)
			}
			if a := e.post("/oauth/token", appID, appSecret, passwordLogin); a.status != 200 {
				t.Fatalf("a login after the delete: %d %v", a.status, a.body)
			}
		})
	}
}
