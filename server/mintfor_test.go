package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// A backend with MintFor starts families for a public client: the family is
// the public client's, refreshed with client_id alone, and the backend
// sees and ends those families (/v1 sessions); everything else is refused.
func TestMintForPublicClient(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	for _, c := range []store.Client{
		{ID: "backend", SecretHash: server.HashClientSecret("backend-secret"), Grants: []string{"client_credentials", "refresh_token"}, Mint: true,
			MintFor: []string{"spa", "ghost", "other", "norefresh", "readonly"}},
		{ID: "norefresh", Grants: []string{"password"}},
		{ID: "readonly", Grants: []string{"refresh_token"}, Scopes: []string{"read"}},
	} {
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	call := func(method, path, id, secret, body string) answer {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, e.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.SetBasicAuth(id, secret)
		return e.do(req)
	}
	mint := func(id, secret, body string) answer {
		t.Helper()
		return call(http.MethodPost, "/v1/tokens", id, secret, body)
	}
	spaRefresh := func(rt string) answer {
		t.Helper()
		return e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {rt}})
	}

	own := mint("backend", "backend-secret", `{"subject":"u1"}`)
	a := mint("backend", "backend-secret", `{"subject":"u1","client_id":"spa"}`)
	if a.status != 200 || a.str("refresh_token") == "" || a.str("session_id") == own.str("session_id") {
		t.Fatalf("mint for spa after a mint for the backend itself (the cache must tell them apart): %d %v", a.status, a.body)
	}
	if c, err := verify.New(e.url, &verify.Options{Now: e.clock.Now}).Verify(ctx, a.str("access_token")); err != nil || c.ClientID != "spa" || c.Subject != "u1" {
		t.Errorf("minted access token: %+v, %v", c, err)
	}
	// The backend cannot use spa's refresh token, and trying changes nothing.
	if b := e.post("/oauth/token", "backend", "backend-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.str("refresh_token")}}); b.status != 400 || b.str("error") != "invalid_grant" {
		t.Errorf("backend presenting spa's refresh token: %d %v", b.status, b.body)
	}
	rotated := spaRefresh(a.str("refresh_token"))
	if rotated.status != 200 || rotated.str("refresh_token") == "" {
		t.Fatalf("refresh as spa without a secret: %d %v", rotated.status, rotated.body)
	}
	if r := mint("backend", "backend-secret", `{"subject":"u1","client_id":"backend"}`); r.status != 200 || r.str("session_id") != own.str("session_id") {
		t.Errorf("client_id naming the minting client itself is a mint for itself (here the cached one): %d %v", r.status, r.body)
	}

	refused := []struct {
		name, id, secret, body string
		status                 int
		code, desc             string
	}{
		{"not in MintFor", appID, appSecret, `{"subject":"u1","client_id":"spa"}`, 403, "unauthorized_client", `field "client_id": this client may not mint for client "spa"`},
		{"unknown", "backend", "backend-secret", `{"subject":"u1","client_id":"ghost"}`, 400, "invalid_request", `field "client_id" names no registered client`},
		{"confidential", "backend", "backend-secret", `{"subject":"u1","client_id":"other"}`, 403, "unauthorized_client", `field "client_id" must name a public client`},
		{"no refresh_token grant", "backend", "backend-secret", `{"subject":"u1","client_id":"norefresh"}`, 403, "unauthorized_client", `without the refresh_token grant`},
		{"target's scopes", "backend", "backend-secret", `{"subject":"u1","client_id":"readonly","scope":"write"}`, 400, "invalid_scope", `field "client_id"`},
		{"wrong type", "backend", "backend-secret", `{"subject":"u1","client_id":7}`, 400, "invalid_request", `field "client_id" must be a string`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			got := mint(tc.id, tc.secret, tc.body)
			if got.status != tc.status || got.str("error") != tc.code || !strings.Contains(got.str("error_description"), tc.desc) {
				t.Errorf("got %d %q %q, want %d %s containing %q", got.status, got.str("error"), got.str("error_description"), tc.status, tc.code, tc.desc)
			}
		})
	}

	// Families: the backend sees its own and spa's; app sees neither.
	list := func(id, secret string) map[string]string {
		t.Helper()
		got := map[string]string{}
		ss, _ := call(http.MethodGet, "/v1/subjects/u1/sessions", id, secret, "").body["sessions"].([]any)
		for _, s := range ss {
			m, _ := s.(map[string]any)
			got[m["id"].(string)], _ = m["client_id"].(string)
		}
		return got
	}
	got := list("backend", "backend-secret")
	if len(got) != 2 || got[a.str("session_id")] != "spa" || got[own.str("session_id")] != "backend" {
		t.Fatalf("backend's sessions of u1: %v", got)
	}
	if got := list(appID, appSecret); len(got) != 0 {
		t.Errorf("app sees sessions of clients it may not mint for: %v", got)
	}
	if r := call(http.MethodDelete, "/v1/sessions/"+a.str("session_id"), appID, appSecret, ""); r.status != 404 {
		t.Errorf("app ending spa's session: %d", r.status)
	}
	if r := call(http.MethodDelete, "/v1/sessions/"+a.str("session_id"), "backend", "backend-secret", ""); r.status != 204 {
		t.Fatalf("backend ending spa's session: %d %v", r.status, r.body)
	}
	if r := spaRefresh(rotated.str("refresh_token")); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("refresh of an ended session: %d %v", r.status, r.body)
	}
	mint("backend", "backend-secret", `{"subject":"u1","client_id":"spa","force":true}`)
	if r := call(http.MethodDelete, "/v1/subjects/u1/sessions", "backend", "backend-secret", ""); r.status != 200 || r.body["revoked"] != float64(2) {
		t.Errorf("backend logging u1 out everywhere: %d %v, want 2 revoked (its own, spa's)", r.status, r.body)
	}
	if got := list("backend", "backend-secret"); len(got) != 0 {
		t.Errorf("sessions left: %v", got)
	}
}
