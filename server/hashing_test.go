package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// cheap are argon2id parameters that keep the tests fast: 1 MiB, one pass.
var cheap = server.PasswordParams{Memory: 1024, Time: 1, Threads: 1}

// gated is a server, built inside a synctest bubble and called without a
// network, whose password checks wait until release is closed. It counts
// the checks running at once. Its user "bob" has the password "builder",
// hashed with cheap.
type gated struct {
	t       *testing.T
	srv     *server.Server
	store   store.Store
	release chan struct{}
	open    func() // closes release, once

	mu                     sync.Mutex
	running, peak, checked int
	hashes                 []string // the hashes checked
}

// newGated returns a server whose hashing budget holds slots checks of
// cheap, with a queue of queue.
func newGated(t *testing.T, slots, queue int, mod func(*server.Config)) *gated {
	t.Helper()
	ctx := t.Context()
	st := memory.New()
	ks, err := keys.Load(ctx, st, "EdDSA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	g := &gated{t: t, store: st, release: make(chan struct{})}
	g.open = sync.OnceFunc(func() { close(g.release) })
	t.Cleanup(g.open) // a failed test leaves no check blocked
	cfg := server.Config{Store: st, Signer: ks, Secret: bytes.Repeat([]byte{7}, 32), Issuer: "http://tokend.test",
		PasswordParams: cheap, HashMemory: int64(slots) * cheap.MemoryBytes(), HashQueue: queue,
		// Concurrent logins of one user from one address are what the
		// failure throttle caps (TestThrottleConcurrentPasswordGuesses); these tests
		// are about the memory budget behind it.
		Throttle: server.Throttle{Disabled: true}}
	server.SetPasswordCheck(&cfg, g.check)
	if mod != nil {
		mod(&cfg)
	}
	if g.srv, err = server.New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, store.Client{ID: appID, SecretHash: server.HashClientSecret(appSecret), Grants: []string{"password", "refresh_token"}}); err != nil {
		t.Fatal(err)
	}
	h, err := cheap.Hash("builder")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, store.User{Name: "bob", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gated) check(_ context.Context, hash, pw string) error {
	g.mu.Lock()
	g.running++
	g.checked++
	g.peak = max(g.peak, g.running)
	g.hashes = append(g.hashes, hash)
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	return password.Check(hash, pw)
}

func (g *gated) counts() (running, peak, checked int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, g.peak, g.checked
}

// login starts a password-grant login with ctx; its answer arrives on the
// channel.
func (g *gated) login(ctx context.Context, user, pw string) <-chan *httptest.ResponseRecorder {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, appSecret)
	ch := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		g.srv.ServeHTTP(w, req)
		ch <- w
	}()
	return ch
}

// families is how many families the store holds.
func (g *gated) families() int {
	g.t.Helper()
	fs, err := g.store.ListFamilies(context.Background(), store.FamilyFilter{})
	if err != nil {
		g.t.Fatal(err)
	}
	return len(fs)
}

// answered returns the answer on ch, failing the test if there is none yet.
func answered(t *testing.T, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case w := <-ch:
		return w
	default:
		t.Fatal("not answered")
		return nil
	}
}

func pending(ch <-chan *httptest.ResponseRecorder) bool {
	select {
	case w := <-ch:
		panic("answered " + w.Body.String())
	default:
		return true
	}
}

// isBusy reports whether w is 503 temporarily_unavailable with Retry-After 1.
func isBusy(w *httptest.ResponseRecorder) bool {
	var body struct{ Error string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code == http.StatusServiceUnavailable && body.Error == "temporarily_unavailable" && w.Header().Get("Retry-After") == "1"
}

// With a budget for 3 checks and a queue of 2, of 9 concurrent logins 3
// check, 2 wait and the other 4 are refused at once, before any check
// ends; then the 5 admitted logins succeed, and never more than 3 checks
// ran at once.
func TestHashingAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slots, queue, n = 3, 2, 9
		g := newGated(t, slots, queue, nil)
		var answers []<-chan *httptest.ResponseRecorder
		for range n {
			answers = append(answers, g.login(t.Context(), "bob", "builder"))
		}
		synctest.Wait()
		var busy []<-chan *httptest.ResponseRecorder
		var waiting []<-chan *httptest.ResponseRecorder
		for _, ch := range answers {
			select {
			case w := <-ch:
				if !isBusy(w) {
					t.Fatalf("early answer %d %s %v, want 503 temporarily_unavailable, Retry-After 1", w.Code, w.Body, w.Header())
				}
				busy = append(busy, ch)
			default:
				waiting = append(waiting, ch)
			}
		}
		if running, _, _ := g.counts(); len(busy) != n-slots-queue || running != slots {
			t.Fatalf("%d refused, %d checks running; want %d, %d", len(busy), running, n-slots-queue, slots)
		}
		g.open()
		synctest.Wait()
		for _, ch := range waiting {
			if w := answered(t, ch); w.Code != http.StatusOK {
				t.Fatalf("admitted login: %d %s", w.Code, w.Body)
			}
		}
		if _, peak, checked := g.counts(); peak != slots || checked != slots+queue {
			t.Errorf("peak %d concurrent checks of %d; want %d of %d", peak, checked, slots, slots+queue)
		}
		if got := g.families(); got != slots+queue {
			t.Errorf("%d sessions, want %d", got, slots+queue)
		}
		w := httptest.NewRecorder()
		g.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, want := range []string{
			`tokend_password_checks_refused_total{reason="queue_full"} 4`,
			"tokend_password_hash_memory_bytes 0",
			"tokend_password_hash_waiting 0",
		} {
			if !strings.Contains(w.Body.String(), want+"\n") {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

// An unknown user's dummy check goes through the same admission: while a
// known user's check holds the whole budget, it is refused; alone, it is
// checked against the dummy hash, of the configured parameters.
func TestHashingUnknownUserAdmitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, 1, -1, nil)
		bob := g.login(t.Context(), "bob", "builder")
		synctest.Wait()
		if w := answered(t, g.syncLogin("nobody", "x")); !isBusy(w) {
			t.Fatalf("unknown user while the budget is taken: %d %s", w.Code, w.Body)
		}
		g.open()
		synctest.Wait()
		if w := answered(t, bob); w.Code != http.StatusOK {
			t.Fatalf("bob: %d %s", w.Code, w.Body)
		}
		nobody := g.login(t.Context(), "nobody", "x")
		synctest.Wait()
		if w := answered(t, nobody); w.Code != http.StatusBadRequest {
			t.Fatalf("unknown user: %d %s", w.Code, w.Body)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.hashes) != 2 || !strings.HasPrefix(g.hashes[1], "$argon2id$v=19$"+cheap.String()+"$") {
			t.Fatalf("checked %q; want bob's hash, then a dummy of %v", g.hashes, cheap)
		}
	})
}

// A queued login whose client gives up leaves the queue at once: the
// next login takes its place instead of being refused, it is never
// checked, and it writes no family.
func TestHashingQueuedCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, 1, 1, nil)
		first := g.syncLogin("bob", "builder")
		ctx, cancel := context.WithCancel(t.Context())
		queued := g.login(ctx, "bob", "builder")
		synctest.Wait()
		if w := answered(t, g.syncLogin("bob", "builder")); !isBusy(w) {
			t.Fatalf("login beyond the queue: %d %s", w.Code, w.Body)
		}
		cancel()
		synctest.Wait()
		answered(t, queued)
		next := g.login(t.Context(), "bob", "builder")
		synctest.Wait()
		pending(next) // queued, not refused
		g.open()
		synctest.Wait()
		for _, ch := range []<-chan *httptest.ResponseRecorder{first, next} {
			if w := answered(t, ch); w.Code != http.StatusOK {
				t.Fatalf("login: %d %s", w.Code, w.Body)
			}
		}
		if _, _, checked := g.counts(); checked != 2 {
			t.Errorf("%d checks, want 2: the cancelled login was checked", checked)
		}
		if got := g.families(); got != 2 {
			t.Errorf("%d sessions, want 2", got)
		}
	})
}

// A login whose client gives up while its check runs: the check finishes,
// its result is dropped, no family is written, and the memory is free
// for the next login.
func TestHashingRunningCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, 1, -1, nil)
		ctx, cancel := context.WithCancel(t.Context())
		gone := g.login(ctx, "bob", "builder")
		synctest.Wait()
		cancel()
		g.open()
		synctest.Wait()
		if w := answered(t, gone); w.Code == http.StatusOK {
			t.Fatalf("a gone client got tokens: %s", w.Body)
		}
		if got := g.families(); got != 0 {
			t.Fatalf("%d sessions written for a gone client", got)
		}
		if w := answered(t, g.syncLogin("bob", "builder")); w.Code != http.StatusOK {
			t.Fatalf("next login: %d %s", w.Code, w.Body)
		}
	})
}

// A login waits in the queue at most HashWait, then is refused.
func TestHashingWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, 1, 1, func(c *server.Config) { c.HashWait = 3 * time.Second })
		first := g.syncLogin("bob", "builder")
		start := time.Now()
		queued := g.login(t.Context(), "bob", "builder")
		synctest.Wait()
		time.Sleep(3*time.Second - time.Nanosecond)
		synctest.Wait()
		pending(queued)
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if w := answered(t, queued); !isBusy(w) || time.Since(start) != 3*time.Second {
			t.Fatalf("after %v: %d %s", time.Since(start), w.Code, w.Body)
		}
		g.open()
		synctest.Wait()
		if w := answered(t, first); w.Code != http.StatusOK {
			t.Fatalf("first: %d %s", w.Code, w.Body)
		}
	})
}

// A stored hash that needs more memory than the whole budget is refused
// without hashing, as an internal error.
func TestHashingTooCostly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t, 2, -1, nil)
		big, err := server.PasswordParams{Memory: 3 * cheap.Memory, Time: 1, Threads: 1}.Hash("pw")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.store.CreateUser(t.Context(), store.User{Name: "big", PasswordHash: big}); err != nil {
			t.Fatal(err)
		}
		w := answered(t, g.syncLogin("big", "pw"))
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("%d %s, want 500", w.Code, w.Body)
		}
		if _, _, checked := g.counts(); checked != 0 {
			t.Fatalf("%d checks", checked)
		}
	})
}

// syncLogin logs in and waits until the login is answered or blocked.
func (g *gated) syncLogin(user, pw string) <-chan *httptest.ResponseRecorder {
	ch := g.login(g.t.Context(), user, pw)
	synctest.Wait()
	return ch
}

// A stored hash with other parameters than the configured ones is
// replaced after a successful login, not after a failed one, and not
// again once it is current.
func TestPasswordHashUpgrade(t *testing.T) {
	current := server.PasswordParams{Memory: 2048, Time: 1, Threads: 1}
	e := newEnv(t, func(c *server.Config) { c.PasswordParams = current })
	ctx := t.Context()
	old, err := cheap.Hash("builder")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(ctx, store.User{Name: "carol", PasswordHash: old}); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		t.Helper()
		u, err := e.store.GetUser(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHash
	}
	login := func(pw string) answer {
		return e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {pw}})
	}
	if a := login("wrong"); a.status != http.StatusBadRequest {
		t.Fatalf("wrong password: %d %v", a.status, a.body)
	}
	if stored() != old {
		t.Fatal("a wrong password upgraded the hash")
	}
	if a := login("builder"); a.status != http.StatusOK {
		t.Fatalf("login: %d %v", a.status, a.body)
	}
	upgraded := stored()
	if p, err := password.ParamsOf(upgraded); err != nil || p != current {
		t.Fatalf("hash after login has %v (%v), want %v", p, err, current)
	}
	if err := password.Check(upgraded, "builder"); err != nil {
		t.Fatalf("upgraded hash does not check: %v", err)
	}
	if a := login("builder"); a.status != http.StatusOK || stored() != upgraded {
		t.Fatalf("second login: %d, hash changed again: %v", a.status, stored() != upgraded)
	}
}

// A password changed while a login's check runs is not undone by that
// login's upgrade (the store's compare-and-set says ErrConflict, which is
// ignored): the login succeeds and the new hash stays.
func TestPasswordHashUpgradeConflict(t *testing.T) {
	var changed string
	var st store.Store
	e := newEnv(t, func(c *server.Config) {
		st = c.Store
		server.SetPasswordCheck(c, func(ctx context.Context, hash, pw string) error {
			if strings.Contains(hash, "$"+cheap.String()+"$") {
				var err error
				if changed, err = cheap.Hash("new password"); err != nil {
					return err
				}
				if err := st.UpdatePasswordHash(ctx, "carol", hash, changed); err != nil {
					return err
				}
			}
			return password.Check(hash, pw)
		})
	})
	old, err := cheap.Hash("builder")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(t.Context(), store.User{Name: "carol", PasswordHash: old}); err != nil {
		t.Fatal(err)
	}
	a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"builder"}})
	if a.status != http.StatusOK {
		t.Fatalf("login: %d %v", a.status, a.body)
	}
	u, err := e.store.GetUser(t.Context(), "carol")
	if err != nil || u.PasswordHash != changed {
		t.Fatalf("hash after the login is not the changed one (%v)", err)
	}
}

func TestNewHashingConfig(t *testing.T) {
	st := memory.New()
	ks, err := keys.Load(t.Context(), st, "EdDSA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	base := server.Config{Store: st, Signer: ks, Secret: bytes.Repeat([]byte{7}, 32), Issuer: "http://tokend.test"}
	bad := []func(*server.Config){
		func(c *server.Config) { c.PasswordParams = server.PasswordParams{Memory: 19456, Time: 0, Threads: 1} },
		func(c *server.Config) { c.PasswordParams = server.PasswordParams{Memory: 19456, Time: 2, Threads: 0} },
		func(c *server.Config) { c.HashMemory = 18 << 20 }, // less than one default hash
	}
	for i, mod := range bad {
		c := base
		mod(&c)
		if _, err := server.New(c); err == nil {
			t.Errorf("case %d: New accepted %+v", i, c)
		}
	}
	if _, err := server.New(base); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// One password-grant login over loopback with the default parameters,
// beside its anchor: the argon2id check alone, which the login is
// expected to be all but entirely.
func BenchmarkPasswordLogin(b *testing.B) {
	e := newEnv(b, nil)
	u, err := e.store.GetUser(b.Context(), "alice")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := password.Check(u.PasswordHash, "wonderland"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("login", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e.login()
		}
	})
}
