// Package refresh keeps an OAuth 2.0 access token fresh on the client side.
//
//	src := refresh.FromClientCredentials(&clientcredentials.Config{
//		ClientID: "id", ClientSecret: "secret", TokenURL: "https://auth.example.com/oauth/token",
//	}, nil)
//	defer src.Close()
//	client := &http.Client{Transport: &refresh.Transport{Source: src}}
//	resp, err := client.Get("https://api.example.com/orders") // a fresh token, a 401 retried once
//
// A [Source] holds the current token and refreshes it in the background
// before it expires, so callers of [Source.Token] get a cached token without
// waiting on the network, taking a lock or allocating. However many goroutines
// need a token at once, at most one fetch is in flight; failed fetches are
// retried with capped exponential backoff and full jitter while the
// still-valid token keeps being served. A fetch that fails terminally (the
// token endpoint answers invalid_grant or invalid_client) stops the retries
// and is reported as [ErrReauthRequired].
//
// A [Transport] puts the token on outgoing requests and, when the server
// answers 401, reports the token with [Source.Invalidate], waits for the one
// shared refresh and replays the request once.
//
// # Rejected tokens
//
// A rejected token is replaced at once, but a server that rejects every
// token (a wrong audience, signing keys it does not know) must not make
// the client fetch one for every request. A token rejected before it
// proved good (soon after it arrived) counts as a failed refresh, a
// strike: the first strike still refreshes at once, so a revoked token
// costs one fetch and the replay succeeds; each further strike in a row
// waits the backoff of a failed fetch before the next fetch (MinBackoff 1s
// doubling up to MaxBackoff 1m, full jitter), and until then callers get
// [ErrTokenRejected] at once instead of a token. A token that proves good
// ends the run. [Source.Invalidate] and [Transport] give the details.
//
// # Errors and Retry-After
//
// A failed fetch whose error holds the token endpoint's answer (an
// *oauth2.RetrieveError, as x/oauth2 returns, or an [OAuthError] from the
// fetch function) reaches callers as an error holding an [*OAuthError]:
// the RFC 6749 §5.2 error, error_description and error_uri, the HTTP
// status and the Retry-After. errors.As gives it; errors.Is(err,
// [ErrReauthRequired]) still tells a terminal failure.
//
// After a 429 or 503 answer with a Retry-After (RFC 9110 §10.2.3:
// delay-seconds, or an HTTP-date, read against the answer's Date header so
// that a skewed client clock does not change it), the next fetch waits at
// least that long after the answer arrived, and at most
// [Options.MaxBackoff]: the wait is min(max(backoff, Retry-After),
// MaxBackoff). This holds for every fetch, background or on demand
// (Token, FreshToken, a [Transport] replaying after a 401): until then no
// fetch is made, and a caller without a valid token gets the failure at
// once. A Retry-After that cannot be read, or one on
// another status, is ignored and the backoff alone applies.
// [Source.Reset] clears the wait with every other failure.
//
// Sources are built from a fetch function ([New], [NewRotating]) or from
// golang.org/x/oauth2 pieces ([FromTokenSource], [FromConfig],
// [FromClientCredentials]). A Source is itself an [oauth2.TokenSource].
//
// # Time
//
// Token lifetimes are measured on the local clock from the moment the
// request for the token was sent: the token expires at send time +
// expires_in, so neither the server's clock nor the answer's flight time
// matters (expires_in is what was left when the server answered). A token
// is never served past send time + expires_in, whatever the margins: it
// stops being served [Options.ExpiryMargin] (at most a tenth of its
// lifetime) before then, also while its refresh is in flight, and a token
// that arrives after that point is refused ([ErrMalformedToken]) and
// fetched again. (A suspended machine is the one exception for
// [Source.Token], below.) Expiry is
// judged on the wall clock, not the monotonic clock: monotonic time stands
// still while a machine is suspended, so a timer alone would keep serving a
// token that expired during the suspend. [Source.Token] never reads the clock
// (a clock read costs ten times more than the whole cached read); instead the
// background goroutine compares the wall clock with the expiry at least every
// [Options.WallClockCheck] (default 1s) while it holds a token, and withdraws
// the token when it is due. After a resume, [Source.Token] can therefore
// return a token that expired during the suspend for at most one check
// interval. [Source.FreshToken] and the [Transport] close that gap: they read
// the wall clock on every call (about 50 ns, beside a network round trip) and
// never hand out a token the wall clock says has expired.
//
// [Options.Now] replaces the wall clock on which refreshes are scheduled and
// expiry is judged; a token's lifetime does not depend on it. The lifetime
// comes from the token, read when it arrives and counted from the send
// time: expires_in; else its Expiry, read against time.Now at arrival,
// because that is the clock x/oauth2 sets it on (time.Now plus expires_in,
// and its clientcredentials package keeps nothing else); else the
// exp claim of a JWT access token (exp-iat, or exp against Options.Now). The
// lifetime is then placed on Options.Now. A token from storage
// ([Options.Initial], the token given to [FromConfig], [Source.Reset]) is
// judged by its Expiry the same way. The tokens a Source hands out carry
// their Expiry on time.Now's clock, which is where x/oauth2
// ([oauth2.Token.Valid], [oauth2.ReuseTokenSource]) reads it and what a
// token persisted from [Options.OnRefresh] and loaded again needs.
//
// # What the hard cases cost
//
//   - A suspended machine (a laptop asleep): a token that expired during
//     the sleep is handed out by [Source.Token] for at most
//     [Options.WallClockCheck] after the resume, never by
//     [Source.FreshToken] or the [Transport] (above).
//   - A wrong local clock, ahead or behind by any amount: nothing. A
//     lifetime is counted on the local clock from the request's send, so
//     refreshes come once per lifetime as with a right clock.
//   - An outage of the token server: the valid token keeps being served;
//     after it, the next fetch is at most 5s away (below).
//   - A dead WebSocket: see package wsconn (at most 35s by default).
//
// # What an outage costs
//
// A failure nobody answered (connection refused or reset, DNS, TLS, a
// timeout, or a gateway's 502, 503 or 504 without an OAuth error body or
// Retry-After: the server is not there) costs the server nothing, so the
// next fetch comes at most [Options.MaxUnreachableBackoff] (default 5s)
// after it, whatever the number of failures before: a Source notices
// within 5s that the server is back (plus [Options.FetchTimeout] if an
// fetch hangs rather than fails). A failure the server answered (its
// own 5xx or 429 with an OAuth error or a Retry-After, a 408) keeps the
// exponential backoff up to [Options.MaxBackoff] (1m) and waits at least
// the Retry-After of a 429 or 503, also at most MaxBackoff. Both kinds
// count towards one run of failures: the ceiling keeps doubling, and only
// its cap depends on who answered. [FetchInfo] reports each failure's
// kind (Unanswered) and wait (RetryIn). Meanwhile a still-valid token
// keeps being served; a caller without one, and a [Transport] whose
// request needs a new one, get the latest failure at once until the next
// fetch, then wait for it. A newer token ends the run: a successful
// fetch, or [Source.Reset], clears the failures and cancels the pending
// retry, so no stale retry spends the new refresh token.
//
// # Outages and rotated refresh tokens
//
// tokend's server rotates the refresh token on every use, and for a grace
// window of 5 minutes after a rotation it answers a repeated presentation of
// the old refresh token with the same successor, until that successor is
// first used. That window is what saves a client whose refresh the server
// carried out but whose answer was lost: the client still holds the old
// refresh token and presents it again. Presented after the window, it is
// reuse, answered invalid_grant, and the user is logged out
// ([ErrReauthRequired]).
//
// With the default options a server outage of up to 2 minutes never gets
// there. Every failure an outage causes (timeouts, resets, 5xx, 503
// temporarily_unavailable) is transient, so the Source keeps retrying the
// same refresh token, and a retry reaches the server at most outage +
// [Options.MaxBackoff] + [Options.FetchTimeout] after the rotation: when the
// outage ends, the fetch then in flight gives up within FetchTimeout (30s)
// and the next one starts within MaxBackoff (60s; full jitter only
// shortens waits), or within MaxUnreachableBackoff (5s) if the server
// did not answer the last one. 2m + 60s + 30s = 3m30s, 1m30s inside the
// window. Keep outage + MaxBackoff + FetchTimeout under 5 minutes when
// changing them.
package refresh
