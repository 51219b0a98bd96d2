package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/redis/redistest"
	"github.com/tokend/tokend/store/sqlite"
	"github.com/tokend/tokend/store/storetest"
)

// backends opens an empty store of each backend for t; PostgreSQL and
// Redis are the shared test servers (pgtest, redistest).
var backends = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"memory", func(*testing.T) store.Store { return memory.New() }},
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tokend.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(t.Context(), pgtest.ServerURL+pgtest.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"redis", func(t *testing.T) store.Store {
		st, err := redis.Open(t.Context(), redistest.ServerURL, &redis.Options{Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
}

// rawRequest builds a request the way a hostile client may send it, with
// any bytes in the path, the form and the headers (net/http's client
// refuses some), to be served by ServeHTTP directly.
func rawRequest(method, path, contentType, body string, headers ...string) *http.Request {
	req := httptest.NewRequest(method, "http://tokend.test"+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// basic is an Authorization header for id and secret, form-encoded first
// (RFC 6749 §2.3.1).
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// jsonString writes s as a JSON string, escaping only what JSON must
// and keeping any other byte as it is (json.Marshal would replace bytes
// that are not UTF-8).
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// issue 16, item 6: an identifier a database refuses (NUL, invalid UTF-8)
// or that no log should show (control characters), or a very long one,
// is refused at the edge on every endpoint that takes one, with the same
// answer on every backend, and reaches no log; it was a 500 with an
// ERROR line echoing it on PostgreSQL. The answers: 401 invalid_client
// for a client_id that authenticates, 400 invalid_request naming the
// parameter, field or path segment otherwise; a refresh token or a token
// to revoke or introspect is no identifier and is answered as any
// unknown one.
func TestIdentifiersAtTheEdge(t *testing.T) {
	const rule = "1 to 256 bytes of UTF-8 without control characters"
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnvOn(t, b.open(t), func(c *server.Config) { c.AccessLog = true })
			if err := e.store.CreateClient(t.Context(), store.Client{ID: "web", Grants: []string{"refresh_token"}, Origins: []string{pageOrigin}, Cookie: true}); err != nil {
				t.Fatal(err)
			}
			form := "application/x-www-form-urlencoded"
			app := basic(appID, appSecret)
			for _, bad := range storetest.BadIDs {
				q := url.QueryEscape(bad.ID)
				p := url.PathEscape(bad.ID)
				mintField := `field "subject" must be ` + rule
				mintClient := `field "client_id" must be ` + rule
				if !utf8.ValidString(bad.ID) {
					mintField = "malformed JSON body: not UTF-8 (RFC 8259 §8.1)"
					mintClient = mintField
				}
				cookieDesc := "invalid refresh token"
				if strings.ContainsFunc(bad.ID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
					cookieDesc = "no refresh token cookie" // net/http drops a cookie with such bytes
				}
				badClient := `client authentication failed: "client_id" must be ` + rule
				cases := []struct {
					name      string
					req       *http.Request
					status    int
					code      string
					desc      string
					challenge bool
				}{
					{"token: client_id of a public client", rawRequest("POST", "/oauth/token", form, "grant_type=refresh_token&refresh_token=x&client_id="+q), 401, "invalid_client", badClient, false},
					{"token: client_id and secret in the form", rawRequest("POST", "/oauth/token", form, "grant_type=client_credentials&client_secret=s&client_id="+q), 401, "invalid_client", badClient, false},
					{"token: client_id in Basic", rawRequest("POST", "/oauth/token", form, "grant_type=client_credentials", "Authorization", basic(bad.ID, "s")), 401, "invalid_client", badClient, true},
					{"revoke: client_id in Basic", rawRequest("POST", "/oauth/revoke", form, "token=x", "Authorization", basic(bad.ID, "s")), 401, "invalid_client", badClient, true},
					{"introspect: client_id in Basic", rawRequest("POST", "/oauth/introspect", form, "token=x", "Authorization", basic(bad.ID, "s")), 401, "invalid_client", badClient, true},
					{"mint: client_id in Basic", rawRequest("POST", "/v1/tokens", "application/json", `{"subject":"alice"}`, "Authorization", basic(bad.ID, "s")), 401, "invalid_client", badClient, true},
					{"token: username", rawRequest("POST", "/oauth/token", form, "grant_type=password&password=wonderland&username="+q, "Authorization", app), 400, "invalid_request", `parameter "username" must be ` + rule, false},
					{"token: refresh_token", rawRequest("POST", "/oauth/token", form, "grant_type=refresh_token&refresh_token="+q, "Authorization", app), 400, "invalid_grant", "invalid refresh token", false},
					{"token: refresh_token in the cookie", rawRequest("POST", "/oauth/token", form, "grant_type=refresh_token&client_id=web",
						"Origin", pageOrigin, "X-Tokend", "1", "Cookie", "__Host-tokend-rt="+bad.ID), 400, "invalid_grant", cookieDesc, false},
					{"mint: subject", rawRequest("POST", "/v1/tokens", "application/json", `{"subject":`+jsonString(bad.ID)+`}`, "Authorization", app), 400, "invalid_request", mintField, false},
					{"mint: client_id", rawRequest("POST", "/v1/tokens", "application/json", `{"subject":"alice","client_id":`+jsonString(bad.ID)+`}`, "Authorization", app), 400, "invalid_request", mintClient, false},
					{"sessions: list", rawRequest("GET", "/v1/subjects/"+p+"/sessions", "", "", "Authorization", app), 400, "invalid_request", "path segment {sub} must be " + rule, false},
					{"sessions: revoke a subject", rawRequest("DELETE", "/v1/subjects/"+p+"/sessions", "", "", "Authorization", app), 400, "invalid_request", "path segment {sub} must be " + rule, false},
					{"sessions: revoke one", rawRequest("DELETE", "/v1/sessions/"+p, "", "", "Authorization", app), 400, "invalid_request", "path segment {id} must be " + rule, false},
					{"revoke: token", rawRequest("POST", "/oauth/revoke", form, "token="+q, "Authorization", app), 200, "", "", false},
					{"introspect: token", rawRequest("POST", "/oauth/introspect", form, "token="+q, "Authorization", app), 200, "", "", false},
				}
				for _, tc := range cases {
					rec := httptest.NewRecorder()
					e.srv.ServeHTTP(rec, tc.req)
					var body map[string]any
					_ = json.Unmarshal(rec.Body.Bytes(), &body)
					code, _ := body["error"].(string)
					desc, _ := body["error_description"].(string)
					if rec.Code != tc.status || code != tc.code || desc != tc.desc || (rec.Header().Get("WWW-Authenticate") != "") != tc.challenge {
						t.Errorf("%s, %s: %d %q %q %q\nwant %d %q %q", bad.Name, tc.name, rec.Code, code, desc, rec.Header().Get("WWW-Authenticate"), tc.status, tc.code, tc.desc)
					}
					if tc.name == "introspect: token" && body["active"] != false {
						t.Errorf("%s, %s: %v", bad.Name, tc.name, body)
					}
				}
				logs := e.logs.String()
				quoted := strconv.Quote(bad.ID)
				for _, form := range []string{bad.ID, quoted[1 : len(quoted)-1], p, q} {
					if strings.Contains(logs, form) {
						t.Errorf("%s: a log line shows the refused value", bad.Name)
					}
				}
			}
			logs := e.logs.String()
			if strings.Contains(logs, "level=ERROR") {
				t.Errorf("an ERROR was logged:\n%s", logs)
			}
			for _, want := range []string{"method=GET path=/v1/subjects/{sub}/sessions status=400 client=app",
				"method=DELETE path=/v1/sessions/{id} status=400 client=app"} {
				if !strings.Contains(logs, want) {
					t.Errorf("access log lacks %q", want)
				}
			}
			// Nothing was stored, and the real client and user were not
			// locked out by any of it.
			if fams, err := e.store.ListFamilies(t.Context(), store.FamilyFilter{}); err != nil || len(fams) != 0 {
				t.Fatalf("families after the refused requests: %d, %v", len(fams), err)
			}
			e.login()
		})
	}
}

// Scopes are no identifiers, but bytes outside their syntax are refused
// the same way on every grant, naming the parameter or field.
func TestMalformedScopeNamesIt(t *testing.T) {
	e := newEnv(t, nil)
	const syntax = ` "scope" must be scope tokens of printable ASCII other than " and \, separated by single spaces (RFC 6749 §3.3)`
	for _, scope := range []string{"read\x00", "r\xffead", "read\nwrite", "read  write", " read", "é"} {
		a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
		if a.status != 400 || a.str("error") != "invalid_scope" || a.str("error_description") != "parameter"+syntax {
			t.Errorf("client_credentials scope %q: %d %v", scope, a.status, a.body)
		}
		if utf8.ValidString(scope) {
			a = e.mintBody(`{"subject":"alice","scope":` + jsonString(scope) + `}`)
			if a.status != 400 || a.str("error") != "invalid_scope" || a.str("error_description") != "field"+syntax {
				t.Errorf("mint scope %q: %d %v", scope, a.status, a.body)
			}
		}
	}
}

// An Authenticator that returns a subject no store may hold is the
// server's fault: 500, logged without the subject, and no family stored.
func TestAuthenticatorSubjectChecked(t *testing.T) {
	e := newEnv(t, func(c *server.Config) {
		c.Authenticate = func(context.Context, string, string) (string, error) { return "ro\x00ot", nil }
	})
	a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}})
	if a.status != 500 || a.str("error") != "server_error" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "family Subject: store: invalid identifier: a control character (U+0000)") || strings.Contains(logs, "ro\x00ot") || strings.Contains(logs, `ro\x00ot`) {
		t.Errorf("log:\n%s", logs)
	}
	if fams, _ := e.store.ListFamilies(t.Context(), store.FamilyFilter{}); len(fams) != 0 {
		t.Errorf("%d families stored", len(fams))
	}
}
