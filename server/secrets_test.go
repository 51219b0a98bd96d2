package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/server"
)

// A rotation of the server secret, as `tokend secrets rotate` and the
// servers' reload do it: before the new secret takes over, tokens carry
// the old one's tag; after, every new token carries the new one's, while
// tokens tagged under the old one still refresh (their successors move to
// the new one), and a retry across the takeover gets the successor it was
// first given. Retiring the old secret then ends exactly the families still
// on it, which the count says, and their tokens are invalid_grant; the
// others refresh on.
func TestSecretRotation(t *testing.T) {
	ctx := t.Context()
	one := secrets.Ring{{Seq: 1, Value: bytes.Repeat([]byte{1}, 32)}}
	e := newEnv(t, func(c *server.Config) { c.Secret, c.Secrets = nil, one })
	if _, err := e.store.Secret(ctx, secrets.Name, one[0].Value); err != nil { // what the ring is stored as
		t.Fatal(err)
	}
	tagged := func(what string, tok string, want int) {
		t.Helper()
		ring, err := secrets.Load(ctx, e.store)
		if err != nil {
			t.Fatal(err)
		}
		if got := server.TaggedUnder(ring, tok); got != want {
			t.Fatalf("%s is tagged under secret %d; want %d", what, got, want)
		}
	}
	refresh := func(what, rt string) string {
		t.Helper()
		a := e.refresh(rt)
		if a.status != http.StatusOK || a.str("refresh_token") == "" {
			t.Fatalf("refresh of %s: %d %v", what, a.status, a.body)
		}
		return a.str("refresh_token")
	}
	metric := func(name string) string {
		t.Helper()
		resp, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no metric %s", name)
		return ""
	}

	idle := e.login().str("refresh_token") // never refreshed again
	moving := e.login().str("refresh_token")
	tagged("a first login", idle, 1)

	lead := time.Minute
	added, err := secrets.Rotate(ctx, e.store, e.clock.Now(), lead)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.Load(ctx, e.store)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetSecrets(ring); err != nil {
		t.Fatal(err)
	}
	if cur, n := metric("tokend_server_secret_current"), metric("tokend_server_secrets"); cur != "1" || n != "2" {
		t.Fatalf("before the takeover the metrics say secret %s of %s; want 1 of 2", cur, n)
	}
	// Before the takeover: the old secret tags.
	moving = refresh("a token of secret 1", moving)
	tagged("a successor before the takeover", moving, 1)
	early := e.login().str("refresh_token")
	tagged("a login before the takeover", early, 1)
	retried := e.login().str("refresh_token")
	firstAnswer := refresh("a token to retry", retried)

	e.clock.Advance(lead)
	if cur := metric("tokend_server_secret_current"); cur != "2" {
		t.Fatalf("after the takeover the metrics say secret %s; want 2", cur)
	}
	// Past Skew, so that what follows is not taken for a token that a
	// server whose clock is behind may have tagged under secret 1.
	e.clock.Advance(secrets.DefaultSkew)
	// After: tokens of the old secret refresh, into the new one.
	moving = refresh("a token of secret 1 after the takeover", moving)
	tagged("a successor after the takeover", moving, added.Seq)
	tagged("a login after the takeover", e.login().str("refresh_token"), added.Seq)
	// A retry across the takeover is answered with the successor it got
	// first (tagged under secret 1), not taken for reuse.
	if again := refresh("a retry across the takeover", retried); again != firstAnswer {
		t.Fatal("a retry across the takeover got another successor")
	}
	tagged("the repeated successor", firstAnswer, 1)
	_ = refresh("the repeated successor", firstAnswer)
	// Introspection knows a current token of either secret.
	if a := e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {early}}); a.body["active"] != true {
		t.Fatalf("introspection of a current token of secret 1: %v", a.body)
	}

	// Retire: the families last given a token before the takeover (plus
	// Skew) end, and are counted.
	ret, err := secrets.Retire(ctx, e.store, e.clock.Now(), secrets.DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	if ret.Ended != 2 { // idle and early
		t.Fatalf("Retire ended %d logins; want 2 (the two never refreshed since the takeover)", ret.Ended)
	}
	ring, err = secrets.Load(ctx, e.store)
	if err != nil || len(ring) != 1 || ring[0].Seq != added.Seq {
		t.Fatalf("after Retire the ring is %+v, %v", ring, err)
	}
	if err := e.srv.SetSecrets(ring); err != nil {
		t.Fatal(err)
	}
	for what, rt := range map[string]string{"an idle login's token": idle, "a login's before the takeover": early} {
		if a := e.refresh(rt); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
			t.Fatalf("%s after Retire: %d %v; want 400 invalid_grant", what, a.status, a.body)
		}
	}
	moving = refresh("a token of secret 2 after Retire", moving)
	tagged("a successor after Retire", moving, added.Seq)
	if n := metric("tokend_server_secrets"); n != "1" {
		t.Fatalf("after Retire the metrics say %s secrets; want 1", n)
	}
}

// A ring that secrets.Ring.Check refuses is refused by New and by
// SetSecrets, which then changes nothing.
func TestSetSecretsRefuses(t *testing.T) {
	short := secrets.Ring{{Seq: 1, Value: []byte("short")}}
	e := newEnv(t, nil)
	if _, err := server.New(server.Config{Store: e.store, Signer: nil, Secrets: short, Issuer: "x"}); err == nil {
		t.Fatal("New took a ring of a short secret")
	}
	rt := e.login().str("refresh_token")
	if err := e.srv.SetSecrets(short); err == nil {
		t.Fatal("SetSecrets took a ring of a short secret")
	}
	if err := e.srv.SetSecrets(nil); err == nil {
		t.Fatal("SetSecrets took an empty ring")
	}
	if a := e.refresh(rt); a.status != http.StatusOK {
		t.Fatalf("after a refused SetSecrets: %d %v", a.status, a.body)
	}
}
