package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// The token server inside your own program, with your own user check and
// your own store (any store.Store; here the in-memory one).
func Example() {
	ctx := context.Background()
	st := memory.New()
	signer, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hs := httptest.NewUnstartedServer(nil)
	issuer := "http://" + hs.Listener.Addr().String()
	srv, err := server.New(server.Config{
		Store: st, Signer: signer, Secret: secret, Issuer: issuer,
		// Your own password check, instead of tokend's built-in users.
		Authenticate: func(ctx context.Context, user, pass string) (string, error) {
			if user == "alice" && pass == "wonderland" {
				return "user-42", nil
			}
			return "", server.ErrBadCredentials
		},
		// Your own claims in every access token.
		Claims: func(ctx context.Context, req server.ClaimsRequest) (map[string]any, error) {
			return map[string]any{"plan": "pro"}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	hs.Config.Handler = srv // or mount it on your mux
	hs.Start()
	defer hs.Close()

	_ = st.CreateClient(ctx, store.Client{ID: "web", SecretHash: server.HashClientSecret("web-secret"),
		Grants: []string{"password", "refresh_token"}})
	cfg := &oauth2.Config{ClientID: "web", ClientSecret: "web-secret", Endpoint: oauth2.Endpoint{TokenURL: issuer + "/oauth/token"}}
	tok, err := cfg.PasswordCredentialsToken(ctx, "alice", "wonderland")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, strings.HasPrefix(tok.RefreshToken, "rt2_"))

	resp, err := http.PostForm(issuer+"/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"},
		"password": {"wrong"}, "client_id": {"web"}, "client_secret": {"web-secret"}})
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// Bearer true
	// 400
}
