package nativelogin_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/nativelogin"
	"github.com/tokend/tokend/refresh"
)

// A command-line login against an authorization server (here a fake in
// the test process) with a scripted user in place of the system browser.
// OnRefresh persists the refresh token of the login and each rotated one.
func ExampleLogin() {
	idp := newFakeProvider("my-cli")
	defer idp.Close()

	var saved string
	res, err := nativelogin.Login(context.Background(), nativelogin.Config{
		Issuer:     idp.URL,
		ClientID:   "my-cli",
		Scopes:     []string{"openid", "offline_access"},
		HTTPClient: idp.Client(),
		// The user: the browser follows the authorization URL, the server
		// logs the user in and redirects to the loopback listener.
		OpenBrowser: func(ctx context.Context, u string) error {
			p := visit(ctx, idp.Client(), u)
			fmt.Println("browser:", strings.TrimSpace(p.body))
			return p.err
		},
		Options: &refresh.Options{OnRefresh: func(_ context.Context, tok *oauth2.Token) error {
			saved = tok.RefreshToken // a 0600 file in a real program
			return nil
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer res.Source.Close()

	tok, err := res.Source.TokenContext(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("subject:", res.IDClaims["sub"])
	fmt.Println("token:", tok.Type(), "saved:", saved)

	// A later run starts from the saved refresh token.
	src, err := nativelogin.Resume(context.Background(), nativelogin.Config{
		Issuer: idp.URL, ClientID: "my-cli", HTTPClient: idp.Client(),
		Options: &refresh.Options{OnRefresh: func(_ context.Context, tok *oauth2.Token) error {
			saved = tok.RefreshToken
			return nil
		}},
	}, &oauth2.Token{RefreshToken: saved})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	if _, err := src.TokenContext(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("resumed, saved:", saved)
	// Output:
	// browser: Login complete. You can close this tab and return to the application.
	// subject: alice
	// token: Bearer saved: refresh-1
	// resumed, saved: refresh-2
}
