package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// issue 10, item 8: a refused mint says which field is wrong and what it
// must be, and a form body is told that the endpoint wants JSON.
func TestMintErrorsNameTheField(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name, contentType, body string
		want                    string // the whole error_description
	}{
		{"form body", "application/x-www-form-urlencoded", "subject=alice",
			`this endpoint takes a JSON object (Content-Type: application/json), not a form: {"subject": string, "scope": string, "ttl": seconds, "claims": object, "force": bool, "client_id": string}`},
		{"no content type", "", `{"subject":"alice"}`,
			`content type must be application/json: {"subject": string, "scope": string, "ttl": seconds, "claims": object, "force": bool, "client_id": string}`},
		{"sub for subject", "application/json", `{"sub":"alice"}`, `unknown field "sub" (did you mean "subject"?)`},
		{"expires_in for ttl", "application/json", `{"subject":"alice","expires_in":60}`, `unknown field "expires_in" (did you mean "ttl"?)`},
		{"unknown field", "application/json", `{"subject":"alice","colour":"red"}`,
			`unknown field "colour"; the fields are subject, scope, ttl, claims, force and client_id`},
		{"junk field name", "application/json", `{"a\"\u0001b":1}`,
			`unknown field "a??b"; the fields are subject, scope, ttl, claims, force and client_id`},
		{"ttl as a string", "application/json", `{"subject":"alice","ttl":"60s"}`, `field "ttl" must be a whole number of seconds from 0 to 86400`},
		{"ttl as a fraction", "application/json", `{"subject":"alice","ttl":1.5}`, `field "ttl" must be a whole number of seconds from 0 to 86400`},
		{"subject as a number", "application/json", `{"subject":42}`, `field "subject" must be a string`},
		{"force as a string", "application/json", `{"subject":"alice","force":"yes"}`, `field "force" must be true or false`},
		{"scope as an array", "application/json", `{"subject":"alice","scope":["a"]}`, `field "scope" must be a string of space-separated scopes`},
		{"claims as an array", "application/json", `{"subject":"alice","claims":[1]}`, `field "claims" must be a JSON object`},
		{"claims set sub", "application/json", `{"subject":"alice","claims":{"sub":"root"}}`, `field "claims" may not set sub`},
		{"no subject", "application/json", `{"scope":"read"}`, `field "subject" is required: the user to issue the tokens for`},
		{"long subject", "application/json", `{"subject":"` + strings.Repeat("a", 257) + `"}`, `field "subject" must be 1 to 256 bytes of UTF-8 without control characters`},
		{"ttl too long", "application/json", `{"subject":"alice","ttl":86401}`, `field "ttl" must be a whole number of seconds from 0 to 86400`},
		{"negative ttl", "application/json", `{"subject":"alice","ttl":-1}`, `field "ttl" must be a whole number of seconds from 0 to 86400`},
		{"an array body", "application/json", `[{"subject":"alice"}]`,
			`the body must be a JSON object {"subject": string, "scope": string, "ttl": seconds, "claims": object, "force": bool, "client_id": string}`},
		{"empty body", "application/json", ``,
			`empty body: want a JSON object {"subject": string, "scope": string, "ttl": seconds, "claims": object, "force": bool, "client_id": string}`},
		{"syntax error", "application/json", `{"subject":"alice",}`, `malformed JSON body at byte 20`},
		{"cut short", "application/json", `{"subject":"alice"`, `malformed JSON body: it ends early`},
		{"two objects", "application/json", `{"subject":"alice"}{"subject":"bob"}`, `malformed JSON body: data after the object`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.SetBasicAuth(appID, appSecret)
			a := e.do(req)
			if a.status != http.StatusBadRequest || a.str("error") != "invalid_request" || a.str("error_description") != tc.want {
				t.Errorf("got %d %q %q\nwant 400 invalid_request %q", a.status, a.str("error"), a.str("error_description"), tc.want)
			}
		})
	}
}
