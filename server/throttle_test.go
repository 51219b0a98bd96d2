package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// trustLoopback makes the test's requests arrive through a trusted proxy
// (the loopback peer), so that X-Forwarded-For names their source.
func trustLoopback(c *server.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// cheapUsers replaces the argon2id users with alice/wonderland and
// bob/builder, so that hundreds of logins stay fast.
func cheapUsers(c *server.Config) {
	c.Authenticate = func(_ context.Context, user, pass string) (string, error) {
		if user == "alice" && pass == "wonderland" || user == "bob" && pass == "builder" {
			return user, nil
		}
		return "", server.ErrBadCredentials
	}
}

func with(mods ...func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		for _, m := range mods {
			m(c)
		}
	}
}

// postFrom is post with X-Forwarded-For: src, unless src is empty.
func (e *env) postFrom(src, path, id, secret string, form url.Values) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if src != "" {
		req.Header.Set("X-Forwarded-For", src)
	}
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return e.do(req)
}

// mint starts a family for subject through the app's /v1/tokens and
// returns its refresh token.
func (e *env) mint(subject string) string {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(`{"subject":"`+subject+`","force":true}`))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(appID, appSecret)
	a := e.do(req)
	if a.status != http.StatusOK || a.str("refresh_token") == "" {
		e.t.Fatalf("mint: %d %v", a.status, a.body)
	}
	return a.str("refresh_token")
}

// spaFamily stores a family of the public client spa and returns its
// refresh token.
func (e *env) spaFamily(subject string) string {
	e.t.Helper()
	now := e.clock.Now()
	id, rt := server.FirstRefreshToken(testSecret)
	f := store.Family{ID: id, ClientID: "spa", Subject: subject, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: server.HashClientSecret(rt)}
	if err := e.store.CreateFamily(e.t.Context(), f); err != nil {
		e.t.Fatal(err)
	}
	return rt
}

// junkToken is a refresh token of the right shape that was never issued:
// its MAC does not verify.
func junkToken() string {
	_, rt := server.FirstRefreshToken(bytes.Repeat([]byte{8}, 32))
	return rt
}

func retryAfter(t testing.TB, a answer) int {
	t.Helper()
	n, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("429 with Retry-After %q", a.header.Get("Retry-After"))
	}
	return n
}

func is429(t testing.TB, a answer) int {
	t.Helper()
	if a.status != http.StatusTooManyRequests || a.str("error") != "temporarily_unavailable" {
		t.Fatalf("got %d %v, want 429 temporarily_unavailable", a.status, a.body)
	}
	return retryAfter(t, a)
}

var (
	refreshGrant = func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	}
	spaRefresh = func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {rt}}
	}
	passwordGrant = func(user, pass string) url.Values {
		return url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}
	}
	clientCredentials = url.Values{"grant_type": {"client_credentials"}}
)

// Sixteen users of one confidential client, refreshing at once and far
// more often than any per-client bucket would allow, are never
// throttled: successes spend nothing. (The per-client bucket answered
// 429 after about 100 rotations.)
func TestThrottleManyUsersOfOneClient(t *testing.T) {
	e := newEnv(t, nil)
	const users, rotations = 16, 150
	var wg sync.WaitGroup
	var ok atomic.Int64
	errs := make(chan error, users)
	for i := range users {
		rt := e.mint(fmt.Sprintf("user-%d", i))
		wg.Go(func() {
			for n := range rotations {
				next, status, err := rotate(t.Context(), e.url, rt)
				if err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("user %d, rotation %d: status %d, %v", i, n, status, err)
					return
				}
				ok.Add(1)
				rt = next
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ok.Load() != users*rotations {
		t.Fatalf("%d rotations succeeded, want %d", ok.Load(), users*rotations)
	}
}

// rotate is the refresh grant as the app, safe to call from any
// goroutine.
func rotate(ctx context.Context, base, rt string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(refreshGrant(rt).Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, appSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return "", resp.StatusCode, err
		}
	}
	return out.RefreshToken, resp.StatusCode, nil
}

// A refresh token that cannot work is invalid_grant however many came
// before, from one source or many, through a public client_id or a
// confidential client's credentials, so that its holder goes back to log
// in instead of retrying (RFC 6749 §5.2); and the junk never costs a
// valid token anything. Every kind of dead token: junk of the right shape
// (its MAC does not verify), a damaged one, one issued under another
// server secret, one of a family deleted after it ended, another
// client's, a revoked one, an old-format one, and garbage.
func TestRefreshTokensThatCannotWorkAreInvalidGrant(t *testing.T) {
	e := newEnv(t, with(trustLoopback, cheapUsers))
	const attacker = "203.0.113.66"
	deleted := e.spaFamily("gone")
	if _, err := e.store.DeleteExpired(t.Context(), e.clock.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	damaged := []byte(e.spaFamily("u9"))
	damaged[len(damaged)-3] ^= 1
	revoked := e.spaFamily("u8")
	if a := e.post("/oauth/revoke", "", "", url.Values{"token": {revoked}, "client_id": {"spa"}}); a.status != http.StatusOK {
		t.Fatalf("revoke: %d %v", a.status, a.body)
	}
	dead := map[string]string{
		"junk":             junkToken(),
		"damaged":          string(damaged),
		"other secret":     junkToken(),
		"deleted login":    deleted,
		"revoked":          revoked,
		"another client's": e.mint("u7"),
		"old format":       "rt_" + strings.Repeat("A", 43),
		"garbage":          "not a token",
	}
	users := []string{e.spaFamily("u1"), e.spaFamily("u2"), e.spaFamily("u3")}
	userSources := []string{"", "198.51.100.1", attacker}
	for i := range 300 {
		src := attacker
		if i%3 == 1 {
			src = fmt.Sprintf("198.51.100.%d", 100+i%50)
		}
		var a answer
		if i%2 == 0 {
			a = e.postFrom(src, "/oauth/token", "", "", spaRefresh(junkToken()))
		} else {
			a = e.postFrom(src, "/oauth/token", appID, appSecret, refreshGrant(junkToken()))
		}
		if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
			t.Fatalf("junk %d: %d %v, want 400 invalid_grant", i, a.status, a.body)
		}
		if i%50 == 49 {
			for u, rt := range users {
				a := e.postFrom(userSources[u], "/oauth/token", "", "", spaRefresh(rt))
				if a.status != http.StatusOK {
					t.Fatalf("after %d junk tokens, spa user %d: %d %v", i+1, u, a.status, a.body)
				}
				users[u] = a.str("refresh_token")
			}
		}
	}
	for name, rt := range dead {
		for _, src := range []string{attacker, "192.0.2.200"} {
			for try := range 20 { // a client retrying: the same answer every time
				a := e.postFrom(src, "/oauth/token", "", "", spaRefresh(rt))
				if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.header.Get("Retry-After") != "" {
					t.Fatalf("%s token from %s, try %d: %d %v (Retry-After %q), want 400 invalid_grant", name, src, try, a.status, a.body, a.header.Get("Retry-After"))
				}
			}
		}
	}
	// The confidential client's other grants are untouched.
	if a := e.postFrom(attacker, "/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", a.status, a.body)
	}
	if a := e.postFrom(attacker, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); a.status != http.StatusOK {
		t.Fatalf("password login: %d %v", a.status, a.body)
	}
}

// Wrong client secrets: five are answered 401, then the source waits,
// right secret or wrong, with a Retry-After that doubles with each
// further failure up to 15 minutes.
func TestThrottleWrongClientSecrets(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.Throttle.Window = 24 * time.Hour }) // no forgetting during the test
	statuses := map[int]int{}
	for range 300 {
		statuses[e.post("/oauth/token", appID, "wrong", clientCredentials).status]++
	}
	if statuses[401] != 5 || statuses[429] != 295 {
		t.Fatalf("300 wrong secrets at once: %v, want 5×401 and 295×429", statuses)
	}
	if a := e.post("/oauth/token", appID, appSecret, clientCredentials); is429(t, a) != 1 {
		t.Fatalf("right secret while locked: Retry-After %s, want 1", a.header.Get("Retry-After"))
	}
	// Follow the lock: after each Retry-After one more guess is checked
	// (401) and the next waits twice as long.
	want := 1
	for i := range 16 {
		e.clock.Advance(time.Duration(want) * time.Second)
		if a := e.post("/oauth/token", appID, "wrong", clientCredentials); a.status != http.StatusUnauthorized {
			t.Fatalf("guess %d after the lock: %d %v, want 401", i, a.status, a.body)
		}
		want = min(2*want, 900)
		if got := is429(t, e.post("/oauth/token", appID, "wrong", clientCredentials)); got != want {
			t.Fatalf("lock %d: Retry-After %d, want %d", i, got, want)
		}
	}
	e.clock.Advance(900 * time.Second)
	if a := e.post("/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
		t.Fatalf("right secret after the lock: %d %v", a.status, a.body)
	}
	if a := e.post("/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
		t.Fatalf("after a success: %d %v", a.status, a.body)
	}
}

// Wrong secrets for one client from any number of sources never lock the
// client out: the right secret goes through from where it was, and from
// an address it never used (a new pod), on any instance (the fleet
// tests). One source trying many clients is locked for all.
func TestThrottleClientSecretsPerAccountAndSource(t *testing.T) {
	t.Run("account", func(t *testing.T) {
		e := newEnv(t, trustLoopback)
		const home = "192.0.2.10"
		if a := e.postFrom(home, "/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
			t.Fatal(a.status)
		}
		for i := range 200 {
			if a := e.postFrom(fmt.Sprintf("203.0.%d.%d", 113+i/100, i%100), "/oauth/token", appID, "wrong", clientCredentials); a.status != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, a.status)
			}
		}
		for _, src := range []string{home, "198.51.100.1", "2001:db8::1"} {
			if a := e.postFrom(src, "/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
				t.Fatalf("the client from %s: %d %v", src, a.status, a.body)
			}
		}
		// The guesser's own pair still locks.
		for range 5 {
			e.postFrom("203.0.113.250", "/oauth/token", appID, "wrong", clientCredentials)
		}
		is429(t, e.postFrom("203.0.113.250", "/oauth/token", appID, "wrong", clientCredentials))
	})
	t.Run("source", func(t *testing.T) {
		e := newEnv(t, trustLoopback)
		const sprayer = "203.0.113.7"
		for i := range 50 {
			a := e.postFrom(sprayer, "/oauth/token", fmt.Sprintf("client-%d", i), "guess", clientCredentials)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, a.status)
			}
		}
		is429(t, e.postFrom(sprayer, "/oauth/token", appID, appSecret, clientCredentials))
		if a := e.postFrom("198.51.100.1", "/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
			t.Fatalf("another source: %d %v", a.status, a.body)
		}
	})
	t.Run("every endpoint counts", func(t *testing.T) {
		e := newEnv(t, nil)
		tok := url.Values{"token": {"x"}}
		for _, path := range []string{"/oauth/revoke", "/oauth/introspect", "/oauth/revoke", "/oauth/introspect"} {
			if a := e.post(path, appID, "wrong", tok); a.status != http.StatusUnauthorized {
				t.Fatalf("%s: %d", path, a.status)
			}
		}
		if a := e.post("/oauth/token", appID, "wrong", clientCredentials); a.status != http.StatusUnauthorized {
			t.Fatalf("token: %d", a.status)
		}
		is429(t, e.post("/oauth/introspect", appID, appSecret, tok))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(`{"subject":"s"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(appID, appSecret)
		is429(t, e.do(req))
	})
}

// Wrong passwords: per (source, username) first, per username across
// sources except where the user has logged in before, per source across
// usernames; a lock refuses the right password too.
func TestThrottleWrongPasswords(t *testing.T) {
	t.Run("source and user", func(t *testing.T) {
		e := newEnv(t, with(trustLoopback, cheapUsers))
		const a1, a2 = "203.0.113.1", "198.51.100.2"
		for i := range 5 {
			if a := e.postFrom(a1, "/oauth/token", appID, appSecret, passwordGrant("alice", "guess")); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
				t.Fatalf("guess %d: %d %v", i, a.status, a.body)
			}
		}
		if ra := is429(t, e.postFrom(a1, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland"))); ra != 1 {
			t.Fatalf("Retry-After %d, want 1", ra)
		}
		if a := e.postFrom(a1, "/oauth/token", appID, appSecret, passwordGrant("bob", "builder")); a.status != http.StatusOK {
			t.Fatalf("bob from the same source: %d %v", a.status, a.body)
		}
		if a := e.postFrom(a2, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); a.status != http.StatusOK {
			t.Fatalf("alice from another source: %d %v", a.status, a.body)
		}
		// The client's own authentication is another kind of credential.
		if a := e.postFrom(a1, "/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
			t.Fatalf("client credentials from the same source: %d %v", a.status, a.body)
		}
		// Usernames differing in case are one account.
		is429(t, e.postFrom(a1, "/oauth/token", appID, appSecret, passwordGrant("ALICE", "guess")))
		// The lockout is logged, without the username: a user who typed
		// a password into the username field may be the one locked.
		logs := e.logs.String()
		if !strings.Contains(logs, "credential=password key=source+account source=203.0.113.1") || strings.Contains(logs, "alice") {
			t.Fatalf("logs: %s", logs)
		}
	})
	t.Run("user", func(t *testing.T) {
		e := newEnv(t, with(trustLoopback, cheapUsers))
		const home = "192.0.2.20"
		if a := e.postFrom(home, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); a.status != http.StatusOK {
			t.Fatal(a.status)
		}
		for i := range 20 {
			if a := e.postFrom(fmt.Sprintf("203.0.113.%d", i), "/oauth/token", appID, appSecret, passwordGrant("alice", "guess")); a.status != http.StatusBadRequest {
				t.Fatalf("guess %d: %d", i, a.status)
			}
		}
		is429(t, e.postFrom("198.51.100.3", "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")))
		if a := e.postFrom(home, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); a.status != http.StatusOK {
			t.Fatalf("alice where she logs in: %d %v", a.status, a.body)
		}
		if a := e.postFrom("198.51.100.3", "/oauth/token", appID, appSecret, passwordGrant("bob", "builder")); a.status != http.StatusOK {
			t.Fatalf("bob from a new source: %d %v", a.status, a.body)
		}
	})
	t.Run("source", func(t *testing.T) {
		e := newEnv(t, with(trustLoopback, cheapUsers))
		const sprayer = "2001:db8:1:2::7"
		for i := range 50 {
			if a := e.postFrom(sprayer, "/oauth/token", appID, appSecret, passwordGrant(fmt.Sprintf("user%d", i), "Summer2030!")); a.status != http.StatusBadRequest {
				t.Fatalf("guess %d: %d", i, a.status)
			}
		}
		// Its whole /64 waits; another /64 does not.
		is429(t, e.postFrom("2001:db8:1:2::8", "/oauth/token", appID, appSecret, passwordGrant("bob", "builder")))
		if a := e.postFrom("2001:db8:1:3::7", "/oauth/token", appID, appSecret, passwordGrant("bob", "builder")); a.status != http.StatusOK {
			t.Fatalf("another /64: %d %v", a.status, a.body)
		}
	})
}

// Guesses sent together are all checked (the hashing gate, not the
// throttle, bounds how many are in flight: TestHashGate*) and all
// counted: once they are answered, the pair is locked.
func TestThrottleConcurrentPasswordGuesses(t *testing.T) {
	var checked atomic.Int64
	entered := make(chan struct{}, 40)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	e := newEnv(t, func(c *server.Config) {
		c.Authenticate = func(ctx context.Context, user, pass string) (string, error) {
			checked.Add(1)
			entered <- struct{}{}
			select {
			case <-gate:
			case <-ctx.Done():
			}
			return "", server.ErrBadCredentials
		}
	})
	t.Cleanup(open) // before the server closes, which waits for the held checks
	const n = 40
	answers := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/oauth/token", strings.NewReader(passwordGrant("alice", "guess").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(appID, appSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- 0
				return
			}
			resp.Body.Close()
			answers <- resp.StatusCode
		}()
	}
	for range n {
		<-entered
	}
	open()
	got := map[int]int{}
	for range n {
		got[<-answers]++
	}
	if checked.Load() != n || got[http.StatusBadRequest] != n {
		t.Fatalf("%d checked, answers %v; want %d checked and answered 400", checked.Load(), got, n)
	}
	is429(t, e.post("/oauth/token", appID, appSecret, passwordGrant("alice", "guess")))
}

// Correct logins are not refused for being many: 60 users logging in at
// once from one address (behind a NAT, or a backend) all get in, 20
// logins at once of a user who has logged in from that address all get
// in, and so do 16 at once of a user who never has.
func TestThrottleManyCorrectLoginsFromOneAddress(t *testing.T) {
	var mu sync.Mutex
	gate := make(chan struct{})
	entered := make(chan struct{}, 80)
	e := newEnv(t, func(c *server.Config) {
		c.Authenticate = func(ctx context.Context, user, pass string) (string, error) {
			mu.Lock()
			g := gate
			mu.Unlock()
			entered <- struct{}{}
			select {
			case <-g:
			case <-ctx.Done():
			}
			return user, nil
		}
	})
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		close(gate)
		gate = make(chan struct{})
	}
	t.Cleanup(release)
	login := func(user string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/oauth/token", strings.NewReader(passwordGrant(user, "right").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(appID, appSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	burst := func(n int, user func(i int) string) {
		answers := make(chan int, n)
		for i := range n {
			go func() { answers <- login(user(i)) }()
		}
		for in := 0; in < n; { // every login is in its check before any ends
			select {
			case <-entered:
				in++
			case code := <-answers:
				t.Fatalf("a correct login among %d at once from one address: %d before the checks ended", n, code)
			}
		}
		release()
		for range n {
			if code := <-answers; code != http.StatusOK {
				t.Fatalf("a correct login among %d at once from one address: %d", n, code)
			}
		}
	}
	burst(60, func(i int) string { return fmt.Sprintf("user-%d", i) })
	burst(20, func(int) string { return "user-0" })
	burst(16, func(int) string { return "new-user" })
}
