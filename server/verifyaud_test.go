package server_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/verify"
)

// issue 17, item 7: package verify checks aud by default, against the
// issuer, which is the server's default audience (TestDiscoveryAndVerifier
// has a verifier left to its defaults accept the tokens of a server left
// to its). A server with another audience: its tokens are refused by a
// default verifier and accepted by one that names that audience, and the
// server's own introspection still accepts them.
func TestVerifierChecksTheServersAudience(t *testing.T) {
	const aud = "https://api.example"
	e := newEnv(t, func(c *server.Config) { c.Audience = aud })
	at := e.login().str("access_token")
	if _, err := verify.New(e.url, &verify.Options{Now: e.clock.Now}).Verify(t.Context(), at); !errors.Is(err, verify.ErrAudience) {
		t.Fatalf("a verifier left to its default audience (the issuer): %v; want ErrAudience", err)
	}
	c, err := verify.New(e.url, &verify.Options{Now: e.clock.Now, Audience: []string{aud}}).Verify(t.Context(), at)
	if err != nil || !slices.Equal(c.Audience, []string{aud}) || c.Subject != "alice" {
		t.Fatalf("a verifier naming the server's audience: %+v, %v", c, err)
	}
	a := e.introspect(at)
	if got, _ := a.body["aud"].([]any); a.status != 200 || a.body["active"] != true || !slices.Equal(got, []any{aud}) {
		t.Fatalf("introspection: %d %v", a.status, a.body)
	}
}
