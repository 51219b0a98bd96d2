package tokentest_test

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/tokentest"
)

func ExampleNewServer() {
	s := tokentest.NewServer(nil) // accepts client "client" with secret "secret"
	defer s.Close()

	cfg := clientcredentials.Config{
		ClientID:     "client",
		ClientSecret: "secret",
		TokenURL:     s.TokenURL(),
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.Client())
	tok, err := cfg.Token(ctx)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("valid:", s.Valid(tok.AccessToken))
	s.RevokeAccessToken(tok.AccessToken)
	fmt.Println("valid after revocation:", s.Valid(tok.AccessToken))
	// Output:
	// valid: true
	// valid after revocation: false
}
