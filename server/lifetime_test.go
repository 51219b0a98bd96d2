package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/verify"
)

// subSecond are the instants within a second at which the lifetime tests
// answer: a JWT's exp has whole seconds, the clock does not.
var subSecond = []time.Duration{0, time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond}

// toOffset moves the clock on to the next whole second plus off.
func toOffset(c *clocktest.Clock, off time.Duration) time.Time {
	now := c.Now()
	c.Advance(now.Truncate(time.Second).Add(time.Second + off).Sub(now))
	return c.Now()
}

// lifetimeEnv is a server on st, on a clock of its own, with the clients
// "app" (confidential, every grant, mints), "web" (public, cookie mode,
// refresh_token, pages of pageOrigin) and "minter" (mints for web), and
// alice/wonderland checked without argon2id.
func lifetimeEnv(t *testing.T, st store.Store, mod func(*server.Config)) *env {
	t.Helper()
	ctx := t.Context()
	clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ks, err := keys.Load(ctx, st, "EdDSA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, issuer := serve(t, server.Config{Store: st, Signer: ks, Secret: testSecret, Now: clk.Now}, func(c *server.Config) {
		c.Authenticate = func(_ context.Context, user, pass string) (string, error) {
			if user == "alice" && pass == "wonderland" {
				return user, nil
			}
			return "", server.ErrBadCredentials
		}
		if mod != nil {
			mod(c)
		}
	})
	for _, c := range []store.Client{
		{ID: appID, SecretHash: server.HashClientSecret(appSecret), Grants: []string{"client_credentials", "refresh_token", "password"}, Mint: true},
		{ID: "web", Grants: []string{"refresh_token"}, Origins: []string{pageOrigin}, Cookie: true},
		{ID: "minter", SecretHash: server.HashClientSecret("minter-secret"), Grants: []string{"client_credentials"}, Mint: true, MintFor: []string{"web"}},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, url: issuer, store: st, clock: clk, srv: srv}
}

// checkAccessLife checks a token answer given at now for a token of ttl:
// expires_in is the whole seconds left until the token's exp, rounded
// down, never more; answered at the instant of issue, that is ttl, and
// the token lives at least ttl and less than a second more; iat is now
// rounded down. It returns the token's exp.
func checkAccessLife(t *testing.T, e *env, what string, a answer, now time.Time, ttl time.Duration) time.Time {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("%s: %d %v", what, a.status, a.body)
	}
	c, err := verify.New(e.url, &verify.Options{Now: e.clock.Now}).Verify(t.Context(), a.str("access_token"))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	in, ok := a.body["expires_in"].(float64)
	left := c.Expiry.Sub(now)
	if !ok || int64(in) != int64(left/time.Second) || time.Duration(in)*time.Second > left {
		t.Errorf("%s at %s: expires_in %v, exp %s ahead; want the whole seconds left", what, now.Format(time.RFC3339Nano), a.body["expires_in"], left)
	}
	if time.Duration(in)*time.Second != ttl || left < ttl || left >= ttl+time.Second {
		t.Errorf("%s at %s: expires_in %v, exp %s ahead; want %v, and at least that", what, now.Format(time.RFC3339Nano), in, left, ttl)
	}
	if c.IssuedAt.Unix() != now.Unix() {
		t.Errorf("%s at %s: iat %d, want %d", what, now.Format(time.RFC3339Nano), c.IssuedAt.Unix(), now.Unix())
	}
	return c.Expiry
}

// Every token answer, at every instant within a second: expires_in never
// promises more than the token's exp leaves, and is its TTL when answered
// at once.
func TestTokenAnswersPromiseNoMoreThanExp(t *testing.T) {
	for _, off := range subSecond {
		t.Run(off.String(), func(t *testing.T) {
			e := lifetimeEnv(t, memory.New(), nil)
			now := toOffset(e.clock, off)
			login := e.login()
			checkAccessLife(t, e, "password grant", login, now, 15*time.Minute)

			now = toOffset(e.clock, off)
			checkAccessLife(t, e, "refresh_token grant", e.refresh(login.str("refresh_token")), now, 15*time.Minute)

			now = toOffset(e.clock, off)
			cc := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}})
			checkAccessLife(t, e, "client_credentials grant", cc, now, 15*time.Minute)

			now = toOffset(e.clock, off)
			mint := func() answer { return e.mintJSON(`{"subject":"bob","ttl":60}`) }
			minted := mint()
			exp := checkAccessLife(t, e, "mint", minted, now, time.Minute)
			// The cached repeat is the same token, with what is left of it.
			for _, d := range []time.Duration{10*time.Second + 250*time.Millisecond, 7*time.Second + 999*time.Millisecond} {
				e.clock.Advance(d)
				now = e.clock.Now()
				again := mint()
				want := int64(exp.Sub(now) / time.Second)
				if again.str("access_token") != minted.str("access_token") || again.body["expires_in"] != float64(want) {
					t.Errorf("repeated mint at exp-%s: same token %v, expires_in %v; want the same token, %d",
						exp.Sub(now), again.str("access_token") == minted.str("access_token"), again.body["expires_in"], want)
				}
			}
		})
	}
}

// cookieMaxAge returns the Max-Age of the refresh cookie a answer sets:
// -1 if it sets none, 0 if it clears it.
func cookieMaxAge(t *testing.T, a answer) int64 {
	t.Helper()
	sc := a.header.Values("Set-Cookie")
	if len(sc) == 0 {
		return -1
	}
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie %q: want one", sc)
	}
	if sc[0] == "__Host-tokend-rt=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict" {
		return 0
	}
	m := setCookieRE.FindStringSubmatch(sc[0])
	if m == nil {
		t.Fatalf("Set-Cookie %q", sc[0])
	}
	n, _ := strconv.ParseInt(m[2], 10, 64)
	return n
}

// The refresh cookie lives as long as its token, in whole seconds rounded
// down: until the idle end, or the absolute end when sooner; with less
// than a second left it is cleared. Introspection and the families listing
// give the same end, never later.
func TestRefreshLifeIsTrue(t *testing.T) {
	const idle, absolute = 30 * time.Minute, time.Hour
	for _, off := range subSecond {
		t.Run(off.String(), func(t *testing.T) {
			e := lifetimeEnv(t, memory.New(), func(c *server.Config) { c.RefreshIdle, c.RefreshAbsolute = idle, absolute })
			b := newBrowser(t, e)
			cookieRefresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}}
			born := toOffset(e.clock, off)
			minted := e.mintFor("alice")
			end := born.Add(absolute)

			// Early on the token ends idle after its rotation.
			e.clock.Advance(10*time.Minute + 300*time.Millisecond)
			now := e.clock.Now()
			first := b.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {minted.str("refresh_token")}})
			checkAccessLife(t, e, "cookie exchange", first, now, 15*time.Minute)
			if got := cookieMaxAge(t, first); got != int64(idle/time.Second) {
				t.Errorf("first exchange: Max-Age %d, want %d (the idle time)", got, int64(idle/time.Second))
			}
			e.checkFamilyEnd(t, minted.str("session_id"), now.Add(idle))

			// Later the absolute end comes first: 24m59.7s left, 1499 s.
			e.clock.Advance(25 * time.Minute)
			now = e.clock.Now()
			second := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1")
			checkAccessLife(t, e, "cookie refresh", second, now, 15*time.Minute)
			if got, want := cookieMaxAge(t, second), int64(end.Sub(now)/time.Second); got != want || got != 1499 {
				t.Errorf("refresh at end-%s: Max-Age %d, want %d", end.Sub(now), got, want)
			}
			e.checkFamilyEnd(t, minted.str("session_id"), end)

			// Half a second before the end: the answer holds, the cookie
			// goes.
			e.clock.Advance(end.Add(-500 * time.Millisecond).Sub(e.clock.Now()))
			last := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1")
			if last.status != http.StatusOK || cookieMaxAge(t, last) != 0 || b.cookie() != "" {
				t.Errorf("refresh 0.5 s before the end: %d, Set-Cookie %q; want 200 and the cookie cleared", last.status, last.header.Values("Set-Cookie"))
			}
		})
	}
}

// checkFamilyEnd checks that the listing of alice's families (GET
// /v1/subjects/alice/sessions) shows family id ending at end.
func (e *env) checkFamilyEnd(t *testing.T, id string, end time.Time) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/v1/subjects/alice/sessions", nil)
	req.SetBasicAuth("minter", "minter-secret")
	list := e.do(req)
	sessions, _ := list.body["sessions"].([]any)
	for _, s := range sessions {
		if m, _ := s.(map[string]any); m["id"] == id {
			got, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["expires_at"]))
			if err != nil || !got.Equal(end) {
				t.Errorf("session expires_at %v, want %s", m["expires_at"], end.Format(time.RFC3339Nano))
			}
			return
		}
	}
	t.Errorf("session %s not listed: %d %v", id, list.status, list.body)
}

// Introspection gives each token's true end, never later: an access
// token's exp, active until then; a refresh token's family end rounded
// down to a second, active until the end itself.
func TestIntrospectionLifeIsTrue(t *testing.T) {
	const idle, absolute = 30 * time.Minute, time.Hour
	for _, off := range subSecond {
		t.Run(off.String(), func(t *testing.T) {
			e := lifetimeEnv(t, memory.New(), func(c *server.Config) { c.RefreshIdle, c.RefreshAbsolute = idle, absolute })
			born := toOffset(e.clock, off)
			login := e.login()
			exp := checkAccessLife(t, e, "password grant", login, born, 15*time.Minute)
			introspect := e.introspect
			at, rt := login.str("access_token"), login.str("refresh_token")
			if a := introspect(at); a.body["active"] != true || a.body["exp"] != float64(exp.Unix()) || a.body["iat"] != float64(born.Unix()) {
				t.Errorf("access token: %v; want active, exp %d, iat %d", a.body, exp.Unix(), born.Unix())
			}
			end := born.Add(idle)
			if a := introspect(rt); a.body["active"] != true || a.body["exp"] != float64(end.Unix()) || a.body["iat"] != float64(born.Unix()) {
				t.Errorf("refresh token: %v; want active, exp %d, iat %d", a.body, end.Unix(), born.Unix())
			}
			e.clock.Advance(exp.Add(-time.Nanosecond).Sub(e.clock.Now()))
			if a := introspect(at); a.body["active"] != true {
				t.Errorf("access token 1 ns before its exp: %v", a.body)
			}
			e.clock.Advance(time.Nanosecond)
			if a := introspect(at); a.body["active"] != false {
				t.Errorf("access token at its exp: %v", a.body)
			}
			e.clock.Advance(end.Add(-time.Nanosecond).Sub(e.clock.Now()))
			if a := introspect(rt); a.body["active"] != true || a.body["exp"] != float64(end.Unix()) {
				t.Errorf("refresh token 1 ns before its end: %v", a.body)
			}
			e.clock.Advance(time.Nanosecond)
			if a := introspect(rt); a.body["active"] != false {
				t.Errorf("refresh token at its end: %v", a.body)
			}
		})
	}
}

// On every store, the refresh cookie's Max-Age is the token's life as the
// store will judge it. PostgreSQL and Redis keep a family's times on their
// own clock, here years from the server's: the life is measured on it.
// A repeat within the grace window (the same successor again) counts its
// life as if the grace had passed.
func TestRefreshCookieLifeOnEveryStore(t *testing.T) {
	for _, s := range backends {
		t.Run(s.name, func(t *testing.T) {
			e := lifetimeEnv(t, s.open(t), func(c *server.Config) { c.RefreshIdle, c.RefreshAbsolute = 30*time.Minute, time.Hour })
			minted := e.mintFor("alice")
			e.clock.Advance(10*time.Minute + 300*time.Millisecond)
			exchange := url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {minted.str("refresh_token")}}
			first := newBrowser(t, e).post("/oauth/token", exchange)
			if got := cookieMaxAge(t, first); first.status != http.StatusOK || got != 1800 {
				t.Errorf("first exchange: %d, Max-Age %d; want 1800 (the idle time)", first.status, got)
			}
			again := newBrowser(t, e).post("/oauth/token", exchange)
			if got := cookieMaxAge(t, again); again.status != http.StatusOK || got != 1800-300 {
				t.Errorf("repeat within the grace window: %d, Max-Age %d; want %d (the idle time less the grace)", again.status, got, 1800-300)
			}
		})
	}
}
