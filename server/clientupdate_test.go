package server_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
)

// updateClient changes client id in st through fn, as `tokend client
// update` does: a read, then a compare-and-set.
func updateClient(t *testing.T, st store.Store, id string, fn func(c *store.Client)) {
	t.Helper()
	prev, err := st.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	next := prev
	fn(&next)
	if err := st.UpdateClient(t.Context(), prev, next); err != nil {
		t.Fatal(err)
	}
}

// wantStatus fails unless a has status (and, if code is set, that error).
func wantStatus(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || code != "" && a.str("error") != code {
		t.Fatalf("%s: %d %v; want %d %s", what, a.status, a.body, status, code)
	}
}

// pgPair opens two handles on one new PostgreSQL schema, as two
// instances of tokend have.
func pgPair(t *testing.T) (store.Store, store.Store) {
	u := pgtest.ServerURL + pgtest.Schema(t)
	var sts [2]store.Store
	for i := range sts {
		st, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		sts[i] = st
	}
	return sts[0], sts[1]
}

// Two instances on one PostgreSQL: a client's secret is rotated with an
// overlap and the client updated in place. Logins started before go on
// refreshing through both instances; during the overlap the old and the
// new secret work on both, after it only the new one; removing a scope
// narrows the logins that hold it, removing a grant refuses it clearly.
func TestClientUpdateFleetPostgres(t *testing.T) {
	a, b := fleetEnvs(t, pgPair, nil)
	ctx := t.Context()
	if err := a.store.CreateUser(ctx, store.User{Name: "alice", PasswordHash: password.Hash("wonderland")}); err != nil {
		t.Fatal(err)
	}
	login := func(e *env, secret string) answer {
		t.Helper()
		f := passwordGrant("alice", "wonderland")
		f.Set("scope", "read write")
		return e.post("/oauth/token", appID, secret, f)
	}
	first := login(a, appSecret)
	wantStatus(t, "login before the rotation", first, 200, "")
	rts := map[*env]string{a: first.str("refresh_token"), b: login(b, appSecret).str("refresh_token")}
	spaRT := a.spaFamily("bob")

	const newSecret = "app-secret-rotated-0123456789"
	overlap := 24 * time.Hour
	updateClient(t, a.store, appID, func(c *store.Client) {
		*c = c.WithSecret(server.HashClientSecret(newSecret), a.clock.Now(), overlap)
		c.Origins = append(c.Origins, "https://staging.example.com")
		c.RedirectURIs = []string{"https://app.example.com/cb"}
	})
	refreshOn := func(what string, e *env, secret string) {
		t.Helper()
		for _, from := range []*env{a, b} {
			r := e.post("/oauth/token", appID, secret, refreshGrant(rts[from]))
			wantStatus(t, what+": refresh of a login from "+from.url, r, 200, "")
			rts[from] = r.str("refresh_token")
		}
	}
	// During the overlap: both secrets, both instances.
	for _, e := range []*env{a, b} {
		for _, secret := range []string{appSecret, newSecret} {
			wantStatus(t, "client_credentials during the overlap", e.post("/oauth/token", appID, secret, clientCredentials), 200, "")
			wantStatus(t, "login during the overlap", login(e, secret), 200, "")
			refreshOn("during the overlap", e, secret)
		}
	}
	// A second before its end the old secret still works; at its end not.
	a.clock.Advance(overlap - time.Second)
	wantStatus(t, "old secret a second before the overlap ends", b.post("/oauth/token", appID, appSecret, clientCredentials), 200, "")
	a.clock.Advance(time.Second)
	for _, e := range []*env{a, b} {
		wantStatus(t, "old secret after the overlap", e.post("/oauth/token", appID, appSecret, clientCredentials), http.StatusUnauthorized, "invalid_client")
		wantStatus(t, "refresh with the old secret after the overlap", e.post("/oauth/token", appID, appSecret, refreshGrant(rts[a])), http.StatusUnauthorized, "invalid_client")
		wantStatus(t, "new secret after the overlap", e.post("/oauth/token", appID, newSecret, clientCredentials), 200, "")
		refreshOn("after the overlap", e, newSecret)
	}

	// The origin added is answered by CORS on both instances (within
	// the reload of the union of origins, which the clock has passed).
	for _, e := range []*env{a, b} {
		req, err := http.NewRequestWithContext(ctx, http.MethodOptions, e.url+"/oauth/token", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://staging.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		if r := e.do(req); r.header.Get("Access-Control-Allow-Origin") != "https://staging.example.com" {
			t.Fatalf("preflight from the added origin on %s: %d %v", e.url, r.status, r.header)
		}
	}

	// Removing a scope narrows the logins that hold it: they go on
	// without it.
	updateClient(t, b.store, appID, func(c *store.Client) { c.Scopes = []string{"read"} })
	for _, e := range []*env{a, b} {
		r := e.post("/oauth/token", appID, newSecret, refreshGrant(rts[a]))
		wantStatus(t, "refresh after a scope was removed", r, 200, "")
		if r.str("scope") != "read" {
			t.Fatalf("refresh after \"write\" was removed from the client: scope %q; want \"read\"", r.str("scope"))
		}
		rts[a] = r.str("refresh_token")
	}
	// Removing the refresh_token grant refuses refreshes with a clear
	// error; adding it back lets the same login go on.
	updateClient(t, a.store, "spa", func(c *store.Client) {
		c.Grants = slices.DeleteFunc(slices.Clone(c.Grants), func(g string) bool { return g == "refresh_token" })
	})
	for _, e := range []*env{a, b} {
		r := e.post("/oauth/token", "", "", spaRefresh(spaRT))
		wantStatus(t, "refresh after the grant was removed", r, http.StatusBadRequest, "unauthorized_client")
	}
	updateClient(t, a.store, "spa", func(c *store.Client) { c.Grants = append(c.Grants, "refresh_token") })
	wantStatus(t, "refresh after the grant was added back", b.post("/oauth/token", "", "", spaRefresh(spaRT)), 200, "")

	// Nothing above revoked a family.
	fams, err := a.store.ListFamilies(ctx, store.FamilyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if !f.RevokedAt.IsZero() {
			t.Fatalf("family %s of %s revoked (%s) by a client update", f.ID, f.ClientID, f.RevokeReason)
		}
	}
}

// rotatingStore rotates a client's secret (once) right after a family of
// that client is stored: a login in flight across a rotation.
type rotatingStore struct {
	store.Store
	client  string
	rotated bool
}

func (r *rotatingStore) CreateFamily(ctx context.Context, f store.Family) error {
	if err := r.Store.CreateFamily(ctx, f); err != nil {
		return err
	}
	if f.ClientID != r.client || r.rotated {
		return nil
	}
	r.rotated = true
	prev, err := r.GetClient(ctx, r.client)
	if err != nil {
		return err
	}
	return r.UpdateClient(ctx, prev, prev.WithSecret(server.HashClientSecret("rotated-secret"), time.Now(), 0))
}

// A login whose family is stored just before its client's secret is
// rotated (even with no overlap) stands: only a deleted or re-created
// client ends it.
func TestLoginAcrossSecretRotation(t *testing.T) {
	rs := &rotatingStore{client: appID}
	e := newEnv(t, func(c *server.Config) { rs.Store = c.Store; c.Store = rs })
	a := e.login()
	if !rs.rotated {
		t.Fatal("the secret was not rotated during the login")
	}
	r := e.post("/oauth/token", appID, "rotated-secret", refreshGrant(a.str("refresh_token")))
	wantStatus(t, "refresh of the login after the rotation", r, 200, "")
	wantStatus(t, "the old secret, rotated with no overlap", e.post("/oauth/token", appID, appSecret, clientCredentials), http.StatusUnauthorized, "invalid_client")
}

// Resources removed from a client narrow the access tokens of its
// families for them; a family left with none is refused invalid_grant,
// and revoked.
func TestRefreshAfterResourcesRemoved(t *testing.T) {
	e := newAudienceEnv(t, nil)
	b := e.agent(t)
	p := authorizeParams("client_id", confApp, "redirect_uri", confCB, "state", "s1")
	p["resource"] = []string{resAPI, resFiles}
	a := e.confExchange(b.loginFlow(p))
	wantStatus(t, "exchange", a, 200, "")
	refresh := func(rt string) answer {
		return e.confToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	updateClient(t, e.store, confApp, func(c *store.Client) { c.Resources = []string{resAPI} })
	r := refresh(a.str("refresh_token"))
	wantStatus(t, "refresh after a resource was removed", r, 200, "")
	if got := aud(t, r.str("access_token")); !slices.Equal(got, []string{resAPI}) {
		t.Fatalf("aud after %s was removed: %q; want [%s]", resFiles, got, resAPI)
	}
	updateClient(t, e.store, confApp, func(c *store.Client) { c.Resources = nil })
	x := refresh(r.str("refresh_token"))
	wantStatus(t, "refresh after every resource of the family was removed", x, http.StatusBadRequest, "invalid_grant")
	if d := x.str("error_description"); d != "the client may no longer request the resources of this login" {
		t.Fatalf("error_description %q", d)
	}
	fams, err := e.store.ListFamilies(t.Context(), store.FamilyFilter{ClientID: confApp})
	if err != nil || len(fams) != 1 || fams[0].RevokedAt.IsZero() {
		t.Fatalf("the family after its resources were removed: %+v, %v; want it revoked", fams, err)
	}
}
