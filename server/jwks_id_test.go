package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// The JWKS publishes the ID-token key (RS256, public part, use sig) beside
// the access-token key; access tokens are signed with the access-token key
// only, and the ID-token key's rotation changes neither.
func TestJWKSPublishesIDKey(t *testing.T) {
	e := newEnv(t, nil)
	all, err := e.store.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var access, id string
	for _, k := range all {
		if k.Use == store.UseID {
			id = k.ID
		} else {
			access = k.ID
		}
	}
	if len(all) != 2 || access == "" || id == "" {
		t.Fatalf("stored keys %+v; want an access key and an ID key", all)
	}
	set := jwksOf(t, e)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS of %d keys, want the access and the ID key", len(set.Keys))
	}
	idKeys := set.Key(id)
	if len(idKeys) != 1 || idKeys[0].Algorithm != keys.RS256 || idKeys[0].Use != "sig" || !idKeys[0].IsPublic() {
		t.Fatalf("published ID key %+v", idKeys)
	}
	a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}})
	if a.status != http.StatusOK || verify.KeyID(a.str("access_token")) != access {
		t.Fatalf("access token: %d, kid %q; want signed by the access key %s", a.status, verify.KeyID(a.str("access_token")), access)
	}

	next, err := keys.RotateID(t.Context(), e.store, e.clock.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(server.DefaultKeyStaleness)
	if set := jwksOf(t, e); len(set.Keys) != 3 || len(set.Key(next.ID)) != 1 || len(set.Key(id)) != 1 {
		t.Fatalf("JWKS after rotating the ID key: %d keys; want the access key, the retired and the new ID key", len(set.Keys))
	}
	a = e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}})
	if a.status != http.StatusOK || verify.KeyID(a.str("access_token")) != access {
		t.Fatalf("access token after rotating the ID key: kid %q; want %s", verify.KeyID(a.str("access_token")), access)
	}
}

// jwksOf returns the server's JWKS document.
func jwksOf(t *testing.T, e *env) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(e.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}
