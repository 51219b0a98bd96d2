package verify_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokend/tokend/verify"
)

// A resource server admits requests with a valid access token that has the
// "read" scope. Here a fake issuer publishes its metadata and keys, and
// signs a token with go-jose.
func ExampleVerifier_Middleware() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	mux := http.NewServeMux()
	issuer := httptest.NewServer(mux)
	defer issuer.Close()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer.URL, "jwks_uri": issuer.URL + "/jwks.json"})
	})
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: priv.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"},
		}})
	})

	// The resource server. Its tokens have aud "https://api.example"
	// (tokend --audience); without Options.Audience, aud must name the issuer.
	v := verify.New(issuer.URL, &verify.Options{Audience: []string{"https://api.example"}})
	api := v.Middleware(verify.RequireScope("read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})))

	// A token from the issuer.
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	now := time.Now()
	tok, _ := jwt.Signed(signer).Claims(map[string]any{
		"iss": issuer.URL, "sub": "alice", "aud": "https://api.example", "client_id": "app", "scope": "read",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "1",
	}).Serialize()

	forged := tok[:strings.LastIndexByte(tok, '.')+1] + strings.Repeat("A", 86) // a zero signature
	for _, auth := range []string{"Bearer " + tok, "", "Bearer " + forged} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			fmt.Println(rec.Code, rec.Body)
		} else {
			fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 hello alice
	// 401 Bearer
	// 401 Bearer error="invalid_token", error_description="invalid signature"
}
