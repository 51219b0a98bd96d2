// Package nativelogin logs a user in from a command-line or desktop
// program, the way RFC 8252 (OAuth 2.0 for Native Apps) lays out: the
// authorization code grant with PKCE in the system browser, and a
// redirect to a listener on a random loopback port.
//
//	res, err := nativelogin.Login(ctx, nativelogin.Config{
//		Issuer:   "https://auth.example.com",
//		ClientID: "my-cli",
//		Scopes:   []string{"openid", "offline_access"},
//		Options: &refresh.Options{OnRefresh: func(ctx context.Context, tok *oauth2.Token) error {
//			return save(tok.RefreshToken) // a 0600 file: it is a credential
//		}},
//	})
//	if err != nil { ... }
//	defer res.Source.Close()
//	client := &http.Client{Transport: &refresh.Transport{Source: res.Source}}
//
// [Login] returns a [refresh.Source] that keeps the access token fresh
// with the refresh token, rotating it; [refresh.Options.OnRefresh] sees
// the first token and every rotated one. A later run starts from the
// saved refresh token with [Resume], and logs in again only when the
// Source reports [refresh.ErrReauthRequired].
//
// Only standard endpoints found by discovery are used (OpenID Connect
// Discovery 1.0, or RFC 8414), so any authorization server that offers
// the code flow with PKCE S256 and loopback redirect URIs works.
package nativelogin
