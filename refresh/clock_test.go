package refresh

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/tokentest"
)

// A Source whose Options.Now runs a year ahead of time.Now, or a year
// behind, gives every token the lifetime the token endpoint gave it,
// whichever constructor built it and whichever field carries the lifetime:
// a token that lives an hour is served, not refreshed, until just before
// an hour has passed on Options.Now, and its Expiry is an hour after its
// arrival on time.Now's clock, as x/oauth2 reads it.
func TestLifetimeWhateverTheClock(t *testing.T) {
	const life = time.Hour
	// Each constructor gets opts and returns a Source and its fetch count.
	// stored is set when the first token comes from Options.Initial (or
	// FromConfig's tok) rather than a fetch.
	ctors := []struct {
		name   string
		stored bool
		start  func(t *testing.T, o *Options) (*Source, func() int64)
	}{
		{"New with expires_in", false, func(t *testing.T, o *Options) (*Source, func() int64) {
			var n atomic.Int64
			return New(func(context.Context) (*oauth2.Token, error) {
				return &oauth2.Token{AccessToken: fmt.Sprint("at-", n.Add(1)), ExpiresIn: int64(life / time.Second)}, nil
			}, o), n.Load
		}},
		{"New with an Expiry from time.Now", false, func(t *testing.T, o *Options) (*Source, func() int64) {
			var n atomic.Int64
			return New(func(context.Context) (*oauth2.Token, error) {
				return &oauth2.Token{AccessToken: fmt.Sprint("at-", n.Add(1)), Expiry: time.Now().Add(life)}, nil
			}, o), n.Load
		}},
		{"NewRotating from a stored token", true, func(t *testing.T, o *Options) (*Source, func() int64) {
			var n atomic.Int64
			o.Initial = &oauth2.Token{AccessToken: "stored", RefreshToken: "rt-0", Expiry: time.Now().Add(life)}
			return NewRotating(func(_ context.Context, rt string) (*oauth2.Token, error) {
				i := n.Add(1)
				return &oauth2.Token{AccessToken: fmt.Sprint("at-", i), RefreshToken: fmt.Sprint("rt-", i), Expiry: time.Now().Add(life)}, nil
			}, o), n.Load
		}},
		{"FromTokenSource", false, func(t *testing.T, o *Options) (*Source, func() int64) {
			var n atomic.Int64
			return FromTokenSource(tokenSourceFunc(func() (*oauth2.Token, error) {
				return &oauth2.Token{AccessToken: fmt.Sprint("at-", n.Add(1)), Expiry: time.Now().Add(life)}, nil
			}), o), n.Load
		}},
		{"FromConfig from a stored token", true, func(t *testing.T, o *Options) (*Source, func() int64) {
			idp := tokentest.NewServer(&tokentest.Options{TTL: life, Rotate: true})
			t.Cleanup(idp.Close)
			cfg := &oauth2.Config{ClientID: "client", ClientSecret: "secret",
				Endpoint: oauth2.Endpoint{TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
			// As oauth2.Config.Exchange returns it: Expiry on time.Now's clock.
			stored := &oauth2.Token{AccessToken: "stored", RefreshToken: idp.IssueRefreshToken(), Expiry: time.Now().Add(life)}
			return FromConfig(cfg, stored, o), func() int64 { return int64(idp.Requests()) }
		}},
		{"FromClientCredentials", false, func(t *testing.T, o *Options) (*Source, func() int64) {
			idp := tokentest.NewServer(&tokentest.Options{TTL: life})
			t.Cleanup(idp.Close)
			// clientcredentials keeps only Expiry, on time.Now's clock.
			return FromClientCredentials(&clientcredentials.Config{ClientID: "client", ClientSecret: "secret",
				TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}, o), func() int64 { return int64(idp.Requests()) }
		}},
	}
	for _, skew := range []time.Duration{365 * 24 * time.Hour, -365 * 24 * time.Hour} {
		for _, c := range ctors {
			t.Run(fmt.Sprintf("%s/clock %+v", c.name, skew), func(t *testing.T) {
				clock := clocktest.New(time.Now().Add(skew))
				start := time.Now()
				// No proactive refresh and no jitter: the token is replaced
				// only once its deadline (expiry less 10s) has passed on clock.
				s, fetches := c.start(t, &Options{Now: clock.Now, RefreshAt: 1, Jitter: -1})
				t.Cleanup(func() { _ = s.Close() })

				tok, err := s.FreshToken(t.Context())
				if err != nil {
					t.Fatalf("first token: %v", err)
				}
				arrived := time.Now()
				if tok.Expiry.Before(start.Add(life)) || tok.Expiry.After(arrived.Add(life)) {
					t.Errorf("Expiry %v, want an hour after arrival on time.Now's clock, within [%v, %v]",
						tok.Expiry, start.Add(life), arrived.Add(life))
				}
				want := int64(1)
				if c.stored {
					want = 0
				}
				if n := fetches(); n != want {
					t.Fatalf("%d fetches for the first token, want %d", n, want)
				}

				clock.Advance(life - 11*time.Second) // just before the deadline
				if again, err := s.FreshToken(t.Context()); err != nil || again != tok || fetches() != want {
					t.Fatalf("before the deadline: %v, %v after %d fetches; want the same token, no fetch", again, err, fetches())
				}
				clock.Advance(2 * time.Second) // just after
				next, err := s.FreshToken(t.Context())
				if err != nil || next.AccessToken == tok.AccessToken || fetches() != want+1 {
					t.Fatalf("after the deadline: %v, %v after %d fetches; want a new token from one more fetch", next, err, fetches())
				}
			})
		}
	}
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// A token handed to Reset is judged like Options.Initial: its Expiry on
// time.Now's clock, its lifetime then placed on Options.Now.
func TestResetWhateverTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := clocktest.New(time.Now().Add(365 * 24 * time.Hour))
		u := &upstream{life: time.Hour}
		s := newTestSource(t, u, Options{Now: clock.Now, RefreshAt: 1})
		mustToken(t, s)
		s.Reset(&oauth2.Token{AccessToken: "relogged", Expiry: time.Now().Add(time.Hour)})
		synctest.Wait()
		tok, err := s.FreshToken(t.Context())
		if err != nil || tok.AccessToken != "relogged" || !tok.Expiry.Equal(time.Now().Add(time.Hour)) {
			t.Fatalf("after Reset: %v, %v; want the reset token, expiring in an hour", tok, err)
		}
		clock.Advance(time.Hour - 11*time.Second)
		if tok, _ := s.FreshToken(t.Context()); tok.AccessToken != "relogged" {
			t.Fatalf("before its deadline on Options.Now: got %q", tok.AccessToken)
		}
		clock.Advance(2 * time.Second)
		if tok, _ := s.FreshToken(t.Context()); tok.AccessToken != "tok-2" {
			t.Fatalf("after its deadline on Options.Now: got %q, want tok-2", tok.AccessToken)
		}
	})
}
