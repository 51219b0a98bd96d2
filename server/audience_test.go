package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// The resources of the audience tests and the confidential client that
// may ask for them.
const (
	resAPI     = "https://api.example"
	resFiles   = "https://files.example"
	confApp    = "conf"
	confSecret = "conf-secret-0123456789"
	confCB     = "https://conf.example/cb"
)

// newAudienceEnv is newCodeEnv with confApp: confidential, first party,
// registered for resAPI and resFiles.
func newAudienceEnv(t *testing.T, mod func(*server.Config)) *env {
	t.Helper()
	e := newCodeEnv(t, mod)
	c := store.Client{ID: confApp, SecretHash: server.HashClientSecret(confSecret), Grants: []string{"authorization_code", "refresh_token"},
		Scopes: []string{"read", "openid"}, RedirectURIs: []string{confCB}, Resources: []string{resAPI, resFiles}}
	if err := e.store.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return e
}

// confCode logs alice in for confApp with params over authorizeParams
// and returns the code.
func confCode(b *agent, extra ...string) string {
	b.t.Helper()
	p := authorizeParams(append([]string{"client_id", confApp, "redirect_uri", confCB}, extra...)...)
	return b.loginFlow(p)
}

// confToken posts a token request of confApp, authenticated with Basic.
func (e *env) confToken(form url.Values) answer {
	e.t.Helper()
	return e.post("/oauth/token", confApp, confSecret, form)
}

// confExchange redeems a code of confApp.
func (e *env) confExchange(code string) answer {
	e.t.Helper()
	return e.confToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}})
}

// aud returns the aud of an access token, as a list.
func aud(t *testing.T, at string) []string {
	t.Helper()
	var c struct {
		Aud any `json:"aud"`
	}
	if err := json.Unmarshal([]byte(jwtPayload(t, at)), &c); err != nil {
		t.Fatal(err)
	}
	switch a := c.Aud.(type) {
	case string:
		return []string{a}
	case []any:
		return toStrings(a)
	}
	t.Fatalf("aud %v", c.Aud)
	return nil
}

// The family of a code for resources remembers them: its refreshes are
// for them too (RFC 8707 §2.2), a refresh may narrow them and is refused
// invalid_target for another one, spending nothing; a family without
// resources refuses any.
func TestRefreshKeepsTheCodesAudience(t *testing.T) {
	e := newAudienceEnv(t, nil)
	b := e.agent(t)
	a := e.confExchange(confCode(b, "resource", resAPI))
	if a.status != http.StatusOK || !slices.Equal(aud(t, a.str("access_token")), []string{resAPI}) {
		t.Fatalf("exchange of a code for %s: %d %v", resAPI, a.status, a.body)
	}
	refresh := func(rt string, resources ...string) answer {
		t.Helper()
		return e.confToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": resources})
	}
	r := refresh(a.str("refresh_token"))
	if r.status != http.StatusOK || !slices.Equal(aud(t, r.str("access_token")), []string{resAPI}) {
		t.Fatalf("refresh: %d %v; want aud [%s]", r.status, r.body, resAPI)
	}
	for _, other := range [][]string{{resFiles}, {resAPI, resFiles}, {""}} {
		if x := refresh(r.str("refresh_token"), other...); x.status != http.StatusBadRequest || x.str("error") != "invalid_target" {
			t.Fatalf("refresh naming %q of a family for %s: %d %v; want invalid_target", other, resAPI, x.status, x.body)
		}
	}
	// The refusals spent nothing: the token is still the current one.
	r = refresh(r.str("refresh_token"), resAPI)
	if r.status != http.StatusOK || !slices.Equal(aud(t, r.str("access_token")), []string{resAPI}) {
		t.Fatalf("refresh naming %s: %d %v", resAPI, r.status, r.body)
	}

	// Two resources: a refresh gets both, or narrows to one.
	p := authorizeParams("client_id", confApp, "redirect_uri", confCB, "state", "s3")
	p["resource"] = []string{resAPI, resFiles}
	a = e.confExchange(b.codeFrom(b.authorize(p), confCB, "s3"))
	if got := aud(t, a.str("access_token")); !slices.Equal(got, []string{resAPI, resFiles}) {
		t.Fatalf("exchange of a code for two resources: aud %q", got)
	}
	if r := refresh(a.str("refresh_token")); !slices.Equal(aud(t, r.str("access_token")), []string{resAPI, resFiles}) {
		t.Fatalf("refresh of a family for two resources: %d %v", r.status, r.body)
	} else if r = refresh(r.str("refresh_token"), resFiles); r.status != http.StatusOK || !slices.Equal(aud(t, r.str("access_token")), []string{resFiles}) {
		t.Fatalf("refresh narrowed to %s: %d %v", resFiles, r.status, r.body)
	}

	// A family without resources: the server's audience, and no resource.
	p = authorizeParams("client_id", confApp, "redirect_uri", confCB, "state", "s4")
	a = e.confExchange(b.codeFrom(b.authorize(p), confCB, "s4"))
	if got := aud(t, a.str("access_token")); !slices.Equal(got, []string{e.url}) {
		t.Fatalf("exchange without resources: aud %q, want the issuer", got)
	}
	if r := refresh(a.str("refresh_token")); !slices.Equal(aud(t, r.str("access_token")), []string{e.url}) {
		t.Fatalf("refresh without resources: %d %v", r.status, r.body)
	} else if x := refresh(r.str("refresh_token"), resAPI); x.str("error") != "invalid_target" {
		t.Fatalf("refresh naming a resource of a family without: %d %v", x.status, x.body)
	}
}

// The server's own checks of its access tokens (introspection, /userinfo,
// revocation) accept a token whose aud is a resource of its client.
func TestOwnTokensForAResource(t *testing.T) {
	e := newAudienceEnv(t, nil)
	a := e.confExchange(confCode(e.agent(t), "scope", "openid read", "resource", resAPI))
	if a.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	r := e.confToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.str("refresh_token")}})
	for name, at := range map[string]string{"code": a.str("access_token"), "refresh": r.str("access_token")} {
		i := e.post("/oauth/introspect", confApp, confSecret, url.Values{"token": {at}})
		if got, _ := i.body["aud"].([]any); i.status != 200 || i.body["active"] != true || !slices.Equal(toStrings(got), []string{resAPI}) {
			t.Fatalf("introspection of the %s's token: %d %v", name, i.status, i.body)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		if u := e.do(req); u.status != 200 || u.str("sub") != "alice" {
			t.Fatalf("userinfo with the %s's token: %d %v", name, u.status, u.body)
		}
	}
	// Revoking the access token ends its family (RFC 7009 §2.1).
	if v := e.post("/oauth/revoke", confApp, confSecret, url.Values{"token": {r.str("access_token")}}); v.status != 200 {
		t.Fatalf("revoke: %d %v", v.status, v.body)
	}
	if i := e.post("/oauth/introspect", confApp, confSecret, url.Values{"token": {a.str("access_token")}}); i.body["active"] != false {
		t.Fatalf("introspection after the revocation: %v", i.body)
	}
}

// A token the server's key signed is its own only for its audience or a
// resource of the token's client: another aud, or a resource of another
// client, is inactive.
func TestOwnAudienceChecked(t *testing.T) {
	e := newAudienceEnv(t, nil)
	ks, err := keys.Load(t.Context(), e.store, "EdDSA", time.Hour, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	sign := func(clientID string, aud any, jti int) string {
		t.Helper()
		tok, err := ks.Sign(map[string]any{"iss": e.url, "sub": "alice", "aud": aud, "client_id": clientID, "scope": "openid",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprint("j", jti)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for i, tc := range []struct {
		client string
		aud    any
		active bool
	}{
		{confApp, resAPI, true},
		{confApp, []string{resFiles}, true},
		{confApp, e.url, true},
		{confApp, []string{"https://evil.example", resAPI}, true},
		{confApp, "https://evil.example", false},
		{confApp, []string{}, false},
		{webApp, resFiles, false}, // the resource of another client
		{"gone", resAPI, false},
	} {
		tok := sign(tc.client, tc.aud, i)
		secret := map[string]string{confApp: confSecret}[tc.client]
		if tc.client != confApp {
			// Introspection answers only the token's client: ask
			// /userinfo, which takes any client's token.
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if u := e.do(req); (u.status == 200) != tc.active {
				t.Errorf("userinfo with a token of %s for %v: %d %v; want active %v", tc.client, tc.aud, u.status, u.body, tc.active)
			}
			continue
		}
		if i := e.post("/oauth/introspect", tc.client, secret, url.Values{"token": {tok}}); i.body["active"] != tc.active {
			t.Errorf("introspection of a token of %s for %v: %v; want active %v", tc.client, tc.aud, i.body, tc.active)
		}
	}
}

// A code is refused once its built-in user has been deleted, or deleted
// and created again, since the login (store.DeleteUser leaves unredeemed
// codes): invalid_grant, and no family of the user is active. With
// Config.Authenticate the users are not the server's: nothing to check.
func TestCodeOfADeletedUser(t *testing.T) {
	ctx := t.Context()
	active := func(e *env) int {
		t.Helper()
		fams, err := e.store.ListFamilies(ctx, store.FamilyFilter{Subject: "alice", ActiveAt: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return len(fams)
	}
	e := newAudienceEnv(t, nil)
	code := e.agent(t).loginFlow(authorizeParams())
	if _, err := e.store.DeleteUser(ctx, "alice", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if a := e.exchange(code); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.str("access_token") != "" {
		t.Fatalf("exchange of a deleted user's code: %d %v; want invalid_grant", a.status, a.body)
	}
	if n := active(e); n != 0 {
		t.Fatalf("%d families of the deleted user are active", n)
	}

	e = newAudienceEnv(t, nil)
	code = e.agent(t).loginFlow(authorizeParams())
	e.clock.Advance(time.Second)
	if _, err := e.store.DeleteUser(ctx, "alice", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(ctx, store.User{Name: "alice", PasswordHash: password.Hash("wonderland"), CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if a := e.exchange(code); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
		t.Fatalf("exchange of a code of the namesake's predecessor: %d %v; want invalid_grant", a.status, a.body)
	}
	if n := active(e); n != 0 {
		t.Fatalf("%d families of alice are active after the refused code", n)
	}

	e = newAudienceEnv(t, func(c *server.Config) {
		c.Authenticate = func(_ context.Context, user, pw string) (string, error) {
			if user == "alice" && pw == "wonderland" {
				return "ext-alice", nil // a subject no built-in user has
			}
			return "", server.ErrBadCredentials
		}
	})
	code = e.agent(t).loginFlow(authorizeParams())
	if a := e.exchange(code); a.status != http.StatusOK {
		t.Fatalf("exchange with Config.Authenticate for a subject that is no built-in user: %d %v", a.status, a.body)
	}
}

// beforeRedeem runs hook once, before a redemption reaches the store.
type beforeRedeem struct {
	store.Store
	hook func()
}

func (b *beforeRedeem) RedeemAuthorizationCode(ctx context.Context, hash []byte, f store.Family) (store.AuthorizationCode, error) {
	if b.hook != nil {
		b.hook()
		b.hook = nil
	}
	return b.Store.RedeemAuthorizationCode(ctx, hash, f)
}

// An owner of a code ended while the code is being redeemed (after the
// exchange's checks, before the store's redemption): the user deleted,
// or deleted and created again; the client deleted, or deleted and
// created again. The exchange is refused and no family of the user is
// active: the redemption reads the code (which DeleteClient deletes) and
// its session (which DeleteUser ends) in its atomic step.
func TestOwnerEndsDuringCodeExchange(t *testing.T) {
	recreateUser := func(e *env) {
		if err := e.store.CreateUser(t.Context(), store.User{Name: "alice", PasswordHash: password.Hash("wonderland"), CreatedAt: e.clock.Now().Add(time.Second)}); err != nil {
			t.Error(err)
		}
	}
	recreateClient := func(e *env) {
		c := store.Client{ID: webApp, Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"read"}, RedirectURIs: []string{webRedirect}}
		if err := e.store.CreateClient(t.Context(), c); err != nil {
			t.Error(err)
		}
	}
	deleteUser := func(e *env) {
		if _, err := e.store.DeleteUser(t.Context(), "alice", e.clock.Now()); err != nil {
			t.Error(err)
		}
	}
	deleteClient := func(e *env) {
		if _, err := e.store.DeleteClient(t.Context(), webApp, e.clock.Now()); err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		name  string
		hooks []func(*env)
	}{
		{"user deleted", []func(*env){deleteUser}},
		{"user deleted and created again", []func(*env){deleteUser, recreateUser}},
		{"client deleted", []func(*env){deleteClient}},
		{"client deleted and created again", []func(*env){deleteClient, recreateClient}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var br *beforeRedeem
			e := newAudienceEnv(t, func(c *server.Config) {
				br = &beforeRedeem{Store: c.Store}
				c.Store = br
			})
			code := e.agent(t).loginFlow(authorizeParams())
			br.hook = func() {
				for _, h := range tc.hooks {
					h(e)
				}
			}
			if a := e.exchange(code); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.str("refresh_token") != "" {
				t.Fatalf("exchange: %d %v; want invalid_grant", a.status, a.body)
			}
			fams, err := e.store.ListFamilies(t.Context(), store.FamilyFilter{Subject: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fams {
				if f.RevokedAt.IsZero() {
					t.Fatalf("family %+v of the exchange is active", f)
				}
			}
		})
	}
}
