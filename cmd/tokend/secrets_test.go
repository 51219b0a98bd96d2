package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/store/sqlite/sqlitetest"
)

// Settings of the secret-rotation tests: a short reload, and a skew that
// stands for clocks on one machine (longer for the fleet, so that a
// refresh right after the rotation surely comes before the takeover).
const (
	secretsReload = 100 * time.Millisecond
	secretsSkew   = 100 * time.Millisecond
	fleetSkew     = time.Second
)

// metricOf reads one metric's value from base's /metrics.
func metricOf(ctx context.Context, hc *http.Client, base, name string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s/metrics has no %s", base, name)
}

// poll calls ok every 20 ms until it returns true, failing t after
// within.
func poll(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("not within %v: %s", within, what)
		case <-tick.C:
		}
	}
}

// rotateSecret runs `tokend secrets rotate` on storeURL for servers that
// reload every reload, and returns the new secret as the store holds it
// (read with ring, which opens it).
func rotateSecret(t *testing.T, storeURL string, reload, skew time.Duration, ring func() secrets.Ring) secrets.Secret {
	t.Helper()
	code, out, errOut := runCmd(t, "", "secrets", "rotate", "--key-reload", reload.String(), "--clock-skew", skew.String(), "--store", storeURL)
	r := ring()
	if code != 0 || len(r) != 2 || !strings.Contains(out, fmt.Sprintf("new server secret %d:", r[1].Seq)) || !strings.Contains(out, "no one is logged out") {
		t.Fatalf("secrets rotate: exit %d, %q %q; the ring %+v", code, out, errOut, r)
	}
	if lead := r[1].ActiveFrom.Sub(r[1].CreatedAt); lead != 2*reload+skew {
		t.Fatalf("the new secret takes over %v after it was made; want 2 x --key-reload + --clock-skew", lead)
	}
	return r[1]
}

// `tokend secrets` on SQLite, beside a running server: rotate adds a
// secret the server picks up before it tags; list counts the families still
// on the old one; retire ends exactly those (their tokens are
// invalid_grant), the others refresh on, and no file of the database
// holds the retired secret any more.
func TestSecretsCommands(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + dbPath
	if code, _, errOut := runCmd(t, "", "client", "create", "--id", fleetClient, "--secret", fleetSecret, "--grant", "password,refresh_token", "--init", "--store", storeURL); code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	if code, _, errOut := runCmd(t, "wonderland\n", "user", "create", "alice", "--password-stdin", "--store", storeURL); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	base, stop := serveInProcess(t, io.Discard, "--store", storeURL, "--key-reload", secretsReload.String())
	f := &fleet{t: t, store: storeURL, hc: &http.Client{Timeout: fleetRequestTimeout}}
	nd := &node{name: "A", base: base}
	ring := func() secrets.Ring { return storedRing(t, storeURL) }
	old := ring()[0]
	idle := f.login(ctx, nd).str("refresh_token")
	rt := f.login(ctx, nd).str("refresh_token")
	refresh := func(what string) {
		t.Helper()
		a := f.refresh(ctx, nd, rt)
		if a.status != http.StatusOK || a.str("refresh_token") == "" {
			t.Fatalf("refresh %s: %v", what, a)
		}
		rt = a.str("refresh_token")
	}

	added := rotateSecret(t, storeURL, secretsReload, secretsSkew, ring)
	poll(t, 10*time.Second, "the server tags with the new secret", func() bool {
		v, err := metricOf(ctx, f.hc, base, "tokend_server_secret_current")
		if err != nil {
			t.Fatal(err)
		}
		return v == fmt.Sprint(added.Seq)
	})
	if code, _, errOut := runCmd(t, "", "secrets", "retire", "--clock-skew", "1h", "--store", storeURL); code != 2 || !strings.Contains(errOut, "too soon to retire") {
		t.Fatalf("retire within the skew: exit %d, %q", code, errOut)
	}
	poll(t, 10*time.Second, "the takeover plus the skew passes", func() bool { return time.Now().After(added.ActiveFrom.Add(secretsSkew)) })
	refresh("after the takeover")

	code, out, errOut := runCmd(t, "", "secrets", "list", "--clock-skew", secretsSkew.String(), "--store", storeURL)
	if code != 0 || !strings.Contains(out, "tags new refresh tokens") || !strings.Contains(out, "verifies (older)") ||
		!strings.Contains(out, "1 logins were last given a refresh token before") {
		t.Fatalf("secrets list: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "secrets", "retire", "--clock-skew", secretsSkew.String(), "--store", storeURL)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("retired server secret %d: ended 1 logins", old.Seq)) ||
		!strings.Contains(out, "the database files hold no old copy") {
		t.Fatalf("secrets retire: exit %d, %q %q", code, out, errOut)
	}
	wantInvalidGrant(t, "the idle login's token after retire", f.refresh(ctx, nd, idle))
	refresh("after retire")
	poll(t, 10*time.Second, "the server drops the retired secret", func() bool {
		v, err := metricOf(ctx, f.hc, base, "tokend_server_secrets")
		if err != nil {
			t.Fatal(err)
		}
		return v == "1"
	})
	refresh("once the server has only the new secret")
	if r := ring(); len(r) != 1 || r[0].Seq != added.Seq {
		t.Fatalf("after retire the ring is %+v", r)
	}
	if found := sqlitetest.Holding(t, dbPath, [][]byte{old.Value}); found != nil {
		t.Fatalf("after retire the old secret is still in %v", found)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// Two instances on one PostgreSQL, and on Redis, see a rotation of the
// server secret: from the rotation to the takeover and after it, a login
// refreshed alternately through each is never refused, and a refresh
// retried across the takeover through the other instance gets the
// successor it was given; after retire, the families not given a token
// since the takeover are invalid_grant on both, the count says two, and
// once both have dropped the old secret the moving family still refreshes
// on both (its tokens carry the new secret's tags).
func TestFleetSecretRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary against PostgreSQL and Redis")
	}
	for _, fs := range fleetStores {
		t.Run(fs.name, func(t *testing.T) {
			t.Parallel()
			u := fs.fresh(t)(fs.addr)
			f := newFleet(t, u, u, 2, 0)
			ctx := t.Context()
			a, b := f.nodes[0], f.nodes[1]
			ring := func() secrets.Ring { return storedRing(t, u) }
			idle := f.login(ctx, a).str("refresh_token")
			rt := f.login(ctx, b).str("refresh_token")
			turn := 0
			refresh := func(what string) {
				t.Helper()
				nd := f.nodes[turn%2]
				turn++
				ans := f.refresh(ctx, nd, rt)
				if ans.status != http.StatusOK || ans.str("refresh_token") == "" {
					t.Fatalf("refresh %s through %s: %v", what, nd.name, ans)
				}
				rt = ans.str("refresh_token")
			}
			secretsOf := func(nd *node, name string) string {
				t.Helper()
				v, err := metricOf(ctx, f.hc, nd.base, name)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}

			retried := f.login(ctx, a).str("refresh_token")
			added := rotateSecret(t, u, keyReload, fleetSkew, ring)
			// A refresh before the takeover, whose answer is "lost": its
			// retry after the takeover, through the other instance, gets
			// the same successor.
			first := f.refresh(ctx, a, retried)
			if first.status != http.StatusOK || !time.Now().Before(added.ActiveFrom) {
				t.Fatalf("a refresh before the takeover: %v, done %v after it", first, time.Since(added.ActiveFrom))
			}
			// Until after the takeover, refresh through A and B in turn:
			// no instance refuses what the other issued.
			poll(t, 10*time.Second, "the takeover plus the skew passes", func() bool {
				refresh("around the takeover")
				return time.Now().After(added.ActiveFrom.Add(fleetSkew))
			})
			for _, nd := range f.nodes {
				if v := secretsOf(nd, "tokend_server_secret_current"); v != fmt.Sprint(added.Seq) {
					t.Fatalf("after the takeover %s tags with secret %s; want %d", nd.name, v, added.Seq)
				}
			}
			refresh("after the takeover")
			refresh("after the takeover")
			if again := f.refresh(ctx, b, retried); again.status != http.StatusOK || again.str("refresh_token") != first.str("refresh_token") {
				t.Fatalf("a retry across the takeover through B: %v; want the successor A gave before it", again)
			}

			code, out, errOut := runCmd(t, "", "secrets", "retire", "--clock-skew", fleetSkew.String(), "--store", u)
			// Ended: the idle login, and the retried one (last issued a
			// token before the takeover).
			if code != 0 || !strings.Contains(out, "ended 2 logins") || !strings.Contains(out, "may keep old copies") {
				t.Fatalf("secrets retire: exit %d, %q %q", code, out, errOut)
			}
			wantInvalidGrant(t, "the idle login's token through A after retire", f.refresh(ctx, a, idle))
			wantInvalidGrant(t, "the idle login's token through B after retire", f.refresh(ctx, b, idle))
			poll(t, 10*time.Second, "both instances drop the retired secret", func() bool {
				return secretsOf(a, "tokend_server_secrets") == "1" && secretsOf(b, "tokend_server_secrets") == "1"
			})
			refresh("once both have only the new secret")
			refresh("once both have only the new secret")
			if !f.active(ctx, a, rt) {
				t.Fatal("introspection through A: the moving login's token is not active")
			}
		})
	}
}

// storedRing reads the server secrets of the store at storeURL, as the
// admin commands open it.
func storedRing(t *testing.T, storeURL string) secrets.Ring {
	t.Helper()
	st, err := openAdminStore(t.Context(), storeURL, "--store", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := secrets.Load(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
