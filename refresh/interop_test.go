package refresh_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/tokentest"
)

// x/oauth2's own Config and clientcredentials, against a real token
// endpoint on loopback.
func TestOAuth2Interop(t *testing.T) {
	t.Run("clientcredentials", func(t *testing.T) {
		idp := tokentest.NewServer(nil)
		defer idp.Close()
		src := refresh.FromClientCredentials(&clientcredentials.Config{
			ClientID: "client", ClientSecret: "secret", TokenURL: idp.TokenURL(),
			AuthStyle: oauth2.AuthStyleInHeader,
		}, nil)
		defer src.Close()
		tok, err := src.TokenContext(t.Context())
		if err != nil || !idp.Valid(tok.AccessToken) {
			t.Fatalf("got %v, %v", tok, err)
		}
		// A Source is an oauth2.TokenSource: oauth2.NewClient takes it.
		api := httptest.NewServer(idp.Handler())
		defer api.Close()
		resp, err := oauth2.NewClient(t.Context(), src).Get(api.URL)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("oauth2.NewClient: %v, %v", resp, err)
		}
		resp.Body.Close()
	})
	t.Run("Config refresh with rotation", func(t *testing.T) {
		idp := tokentest.NewServer(&tokentest.Options{Rotate: true})
		defer idp.Close()
		cfg := &oauth2.Config{ClientID: "client", ClientSecret: "secret",
			Endpoint: oauth2.Endpoint{TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
		first := idp.IssueRefreshToken()
		var persisted []string
		src := refresh.FromConfig(cfg, &oauth2.Token{RefreshToken: first}, &refresh.Options{
			OnRefresh: func(_ context.Context, tok *oauth2.Token) error {
				persisted = append(persisted, tok.RefreshToken)
				return nil
			},
		})
		defer src.Close()
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		src.Invalidate(tok)
		tok2, err := src.Token()
		if err != nil || tok2.AccessToken == tok.AccessToken || !idp.Valid(tok2.AccessToken) {
			t.Fatalf("second token %v, %v", tok2, err)
		}
		if len(persisted) != 2 || persisted[0] == first || persisted[1] == persisted[0] || persisted[1] != tok2.RefreshToken {
			t.Errorf("persisted refresh tokens %d, want two distinct rotations", len(persisted))
		}
		if idp.Refreshes() != 2 {
			t.Errorf("%d refreshes at the server, want 2", idp.Refreshes())
		}
	})
	t.Run("invalid_grant is terminal", func(t *testing.T) {
		idp := tokentest.NewServer(nil)
		defer idp.Close()
		cfg := &oauth2.Config{ClientID: "client", ClientSecret: "secret",
			Endpoint: oauth2.Endpoint{TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
		src := refresh.FromConfig(cfg, &oauth2.Token{RefreshToken: "never-issued"}, nil)
		defer src.Close()
		_, err := src.Token()
		var re *oauth2.RetrieveError
		if !errors.Is(err, refresh.ErrReauthRequired) || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("err = %v, want ErrReauthRequired wrapping invalid_grant", err)
		}
		if idp.Requests() != 1 {
			t.Errorf("%d token requests, want 1: no retries after a terminal failure", idp.Requests())
		}
	})
	t.Run("503 is retried", func(t *testing.T) {
		idp := tokentest.NewServer(nil)
		defer idp.Close()
		idp.Fail(1, http.StatusServiceUnavailable, "temporarily_unavailable")
		fetched := make(chan refresh.FetchInfo, 2)
		src := refresh.FromClientCredentials(&clientcredentials.Config{
			ClientID: "client", ClientSecret: "secret", TokenURL: idp.TokenURL(),
			AuthStyle: oauth2.AuthStyleInHeader,
		}, &refresh.Options{MinBackoff: 1, OnFetch: func(i refresh.FetchInfo) { fetched <- i }}) // retry at once
		defer src.Close()
		_, err := src.Token()
		if err == nil || errors.Is(err, refresh.ErrReauthRequired) {
			t.Fatalf("first answer: %v, want a transient failure", err)
		}
		// The Source retries by itself.
		if first, retry := <-fetched, <-fetched; first.Err == nil || retry.Err != nil || retry.Reason != "retry" {
			t.Fatalf("attempts: %+v then %+v", first, retry)
		}
		if _, err := src.Token(); err != nil {
			t.Fatalf("after the retry: %v", err)
		}
	})
	t.Run("the answer is an OAuthError, Retry-After honoured", func(t *testing.T) {
		idp := tokentest.NewServer(nil)
		defer idp.Close()
		idp.SetRetryAfter("5")
		idp.Fail(1, http.StatusServiceUnavailable, "temporarily_unavailable")
		fetched := make(chan refresh.FetchInfo, 2)
		src := refresh.FromClientCredentials(&clientcredentials.Config{
			ClientID: "client", ClientSecret: "secret", TokenURL: idp.TokenURL(),
			AuthStyle: oauth2.AuthStyleInHeader,
		}, &refresh.Options{OnFetch: func(i refresh.FetchInfo) { fetched <- i }})
		defer src.Close()
		_, err := src.Token()
		oe, ok := errors.AsType[*refresh.OAuthError](err)
		if !ok || oe.Status != http.StatusServiceUnavailable || oe.Code != "temporarily_unavailable" ||
			oe.Description != "failure injected by tokentest" || oe.RetryAfter != 5*time.Second {
			t.Fatalf("err = %v, want tokentest's 503 temporarily_unavailable with Retry-After 5s", err)
		}
		// The backoff after one failure is at most MinBackoff, 1s: the
		// Retry-After decides.
		if info := <-fetched; info.RetryIn != 5*time.Second {
			t.Fatalf("RetryIn %v, want 5s", info.RetryIn)
		}
		if _, again := src.Token(); again == nil || idp.Requests() != 1 {
			t.Fatalf("at once again: %v after %d requests; want the failure without a request", again, idp.Requests())
		}
	})
	t.Run("invalid_client and invalid_grant told apart", func(t *testing.T) {
		for _, code := range []string{"invalid_client", "invalid_grant"} {
			idp := tokentest.NewServer(nil)
			status := http.StatusBadRequest
			if code == "invalid_client" {
				status = http.StatusUnauthorized
			}
			idp.Fail(1, status, code)
			src := refresh.FromClientCredentials(&clientcredentials.Config{
				ClientID: "client", ClientSecret: "secret", TokenURL: idp.TokenURL(),
				AuthStyle: oauth2.AuthStyleInHeader,
			}, nil)
			_, err := src.Token()
			oe, ok := errors.AsType[*refresh.OAuthError](err)
			if !ok || oe.Code != code || oe.Status != status || !errors.Is(err, refresh.ErrReauthRequired) {
				t.Errorf("err = %v, want ErrReauthRequired with the OAuthError %d %s", err, status, code)
			}
			_ = src.Close()
			idp.Close()
		}
	})
}
