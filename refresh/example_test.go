package refresh_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/tokentest"
)

// A Source for the client-credentials grant, and a Transport that recovers
// when the API rejects the token it holds.
func ExampleTransport() {
	idp := tokentest.NewServer(nil) // a token endpoint
	defer idp.Close()
	api := httptest.NewServer(idp.Handler()) // an API that checks its tokens
	defer api.Close()

	src := refresh.FromClientCredentials(&clientcredentials.Config{
		ClientID:     "client",
		ClientSecret: "secret",
		TokenURL:     idp.TokenURL(),
	}, nil)
	defer src.Close()
	client := &http.Client{Transport: &refresh.Transport{Source: src}}

	resp, err := client.Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	// The server revokes the token; the next request gets a 401, which the
	// Transport answers with one refresh and one replay.
	tok, _ := src.Token()
	idp.RevokeAccessToken(tok.AccessToken)
	resp, err = client.Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "after", idp.Requests(), "token requests")
	// Output:
	// 200 OK
	// 200 OK after 2 token requests
}

// The README's five lines: a Source for the client-credentials grant
// (RFC 6749 section 4.4). It fetches once, then hands out the same token
// until it is due for a refresh.
func ExampleFromClientCredentials() {
	idp := tokentest.NewServer(&tokentest.Options{ClientID: "id", ClientSecret: "secret"})
	defer idp.Close()

	src := refresh.FromClientCredentials(&clientcredentials.Config{
		ClientID:     "id",
		ClientSecret: "secret",
		TokenURL:     idp.TokenURL(),
	}, nil)
	defer src.Close()

	for range 3 {
		tok, err := src.TokenContext(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tok.Type(), idp.Valid(tok.AccessToken))
	}
	fmt.Println(idp.Requests(), "token request")
	// Output:
	// Bearer true
	// Bearer true
	// Bearer true
	// 1 token request
}

// A Source from any fetch function.
func ExampleNew() {
	src := refresh.New(func(ctx context.Context) (*oauth2.Token, error) {
		// Ask your identity provider here; ctx carries the fetch timeout.
		return &oauth2.Token{AccessToken: "abc", ExpiresIn: 3600}, nil
	}, &refresh.Options{RefreshAt: 0.75})
	defer src.Close()

	tok, err := src.TokenContext(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.Expiry.Sub(tok.Expiry.Add(-3600e9)))
	// Output: abc 1h0m0s
}

// A refresh-token grant whose refresh token rotates: OnRefresh persists each
// new one before it is used.
func ExampleFromConfig() {
	idp := tokentest.NewServer(&tokentest.Options{Rotate: true})
	defer idp.Close()
	cfg := &oauth2.Config{
		ClientID:     "client",
		ClientSecret: "secret",
		Endpoint:     oauth2.Endpoint{TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader},
	}
	saved := idp.IssueRefreshToken() // from the user's login
	src := refresh.FromConfig(cfg, &oauth2.Token{RefreshToken: saved}, &refresh.Options{
		OnRefresh: func(ctx context.Context, tok *oauth2.Token) error {
			saved = tok.RefreshToken // write it to disk in a real program
			return nil
		},
	})
	defer src.Close()

	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.RefreshToken == saved, idp.Valid(tok.AccessToken))
	// Output: true true
}
