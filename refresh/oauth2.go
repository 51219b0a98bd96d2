package refresh

import (
	"context"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// FromTokenSource returns a Source that fetches from ts. Pass the
// underlying source, not an oauth2.ReuseTokenSource: a caching source would
// hand back its cached token when a refresh is due. ts.Token takes no
// context, so Options.FetchTimeout and Close cannot interrupt it; give its
// HTTP client a timeout. If ts is already a *Source it is returned as it is
// and opts are ignored.
func FromTokenSource(ts oauth2.TokenSource, opts *Options) *Source {
	if s, ok := ts.(*Source); ok {
		return s
	}
	return New(func(context.Context) (*oauth2.Token, error) { return ts.Token() }, opts)
}

// FromConfig returns a Source that refreshes tok with cfg's refresh-token
// grant, rotating the refresh token when the server sends a new one. tok's
// access token, if still valid, is served first. Options.TokenURL defaults
// to cfg.Endpoint.TokenURL, and Options.Initial is replaced by tok.
func FromConfig(cfg *oauth2.Config, tok *oauth2.Token, opts *Options) *Source {
	o := copyOptions(opts)
	o.Initial = tok
	if o.TokenURL == "" {
		o.TokenURL = cfg.Endpoint.TokenURL
	}
	return NewRotating(func(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
		// cfg.TokenSource makes the HTTP request with ctx, so the fetch's
		// timeout and HTTP client apply.
		return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	}, &o)
}

// FromClientCredentials returns a Source for the client-credentials grant
// (RFC 6749 §4.4). Options.TokenURL defaults to cfg.TokenURL.
func FromClientCredentials(cfg *clientcredentials.Config, opts *Options) *Source {
	o := copyOptions(opts)
	if o.TokenURL == "" {
		o.TokenURL = cfg.TokenURL
	}
	return New(cfg.Token, &o)
}

func copyOptions(opts *Options) Options {
	if opts == nil {
		return Options{}
	}
	return *opts
}
