package server_test

import (
	"testing"

	"github.com/tokend/tokend/verify"
)

// issue 10, item 10: a verifier given the server's URL with a trailing
// slash finds the keys and accepts the server's tokens (whose iss has no
// slash) instead of answering every request 503.
func TestVerifierIssuerWithTrailingSlash(t *testing.T) {
	e := newEnv(t, nil)
	at := e.login().str("access_token")
	c, err := verify.New(e.url+"/", &verify.Options{Now: e.clock.Now}).Verify(t.Context(), at)
	if err != nil || c.Issuer != e.url || c.Subject != "alice" {
		t.Fatalf("Verify: %+v, %v", c, err)
	}
}
