package verify_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend/verify"
)

// The audience is checked by default (RFC 9068 §4): aud must name the
// issuer, tokend's default audience. Options.Audience names other
// audiences instead; only InsecureSkipAudienceCheck turns the check off.
// Each refusal is ErrAudience and, through the middleware, a 401
// invalid_token that says so.
func TestAudience(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	list := []string{"api", "", "https://api2.example"}
	withDefaults := func(o *verify.Options) { o.Audience = nil }
	verifiers := []struct {
		name string
		v    *verify.Verifier
		col  int // the column of the table below that applies
	}{
		{"default", f.verifier(withDefaults), 0},
		{"only empty names: the default", f.verifier(func(o *verify.Options) { o.Audience = []string{""} }), 0},
		{"a list", f.verifier(func(o *verify.Options) { o.Audience = list }), 1},
		{"opt-out", f.verifier(func(o *verify.Options) { o.Audience, o.InsecureSkipAudienceCheck = nil, true }), 2},
		{"opt-out and a list: the list", f.verifier(func(o *verify.Options) {
			o.InsecureSkipAudienceCheck = true
			o.Audience = list
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}), 1},
	}
	if !slices.Equal(list, []string{"api", "", "https://api2.example"}) {
		t.Fatalf("New changed the caller's Audience: %q", list)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"verify: InsecureSkipAudienceCheck ignored: Audience names the audiences to check\"") {
		t.Errorf("no warning for an opt-out with a list: %q", logs.String())
	}

	noAud, wrong := errors.New("no aud"), verify.ErrAudience // noAud: ErrAudience saying "no aud"
	for _, tc := range []struct {
		name string
		aud  any   // nil: no aud claim
		want []any // per column: default, list, opt-out; nil accepted
	}{
		{"the issuer", issuerID, []any{nil, wrong, nil}},
		{"an array with the issuer", []string{"other", issuerID}, []any{nil, wrong, nil}},
		{"a listed name", "api", []any{wrong, nil, nil}},
		{"an array with a listed name", []string{"x", "https://api2.example"}, []any{wrong, nil, nil}},
		{"another audience", "other", []any{wrong, wrong, nil}},
		{"an array without ours", []string{"other", "x"}, []any{wrong, wrong, nil}},
		{"no aud", nil, []any{noAud, noAud, nil}},
		{"an empty array", []string{}, []any{noAud, noAud, nil}},
		{"an empty name", "", []any{wrong, wrong, nil}},
		{"an array of an empty name", []string{""}, []any{wrong, wrong, nil}},
		{"the issuer with a trailing slash", issuerID + "/", []any{wrong, wrong, nil}},
		{"a listed name in another case", "API", []any{wrong, wrong, nil}},
		{"a number", 7, []any{verify.ErrMalformed, verify.ErrMalformed, verify.ErrMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(hdr("EdDSA", "ed"), f.claims("aud", tc.aud), edSign(edKey))
			for _, vc := range verifiers {
				want := tc.want[vc.col]
				c, err := vc.v.Verify(t.Context(), tok)
				switch want {
				case nil:
					if err != nil || c.Subject != "alice" {
						t.Errorf("%s: %+v, %v; want accepted", vc.name, c, err)
					}
					continue
				case noAud:
					if !errors.Is(err, verify.ErrAudience) || err.Error() != "verify: wrong audience: no aud" {
						t.Errorf("%s: %v; want %q", vc.name, err, "verify: wrong audience: no aud")
					}
				case wrong:
					if !errors.Is(err, verify.ErrAudience) || err.Error() != "verify: wrong audience" {
						t.Errorf("%s: %v; want %q", vc.name, err, "verify: wrong audience")
					}
				default:
					if !errors.Is(err, want.(error)) {
						t.Errorf("%s: %v; want %v", vc.name, err, want)
					}
					continue
				}
				rec := serve(vc.v.Middleware(http.NotFoundHandler()), "Bearer "+tok)
				if ch := rec.Header().Get("WWW-Authenticate"); rec.Code != http.StatusUnauthorized ||
					ch != `Bearer error="invalid_token", error_description="wrong audience"` ||
					rec.Body.String() != `{"error":"invalid_token","error_description":"wrong audience"}`+"\n" {
					t.Errorf("%s: middleware %d, WWW-Authenticate %q, body %q", vc.name, rec.Code, ch, rec.Body)
				}
			}
		})
	}
}
