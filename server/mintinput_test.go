package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// mintBody posts body to /v1/tokens as app.
func (e *env) mintBody(body string) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(appID, appSecret)
	return e.do(req)
}

// jwtPayload returns the payload of a JWT as sent, undecoded JSON.
func jwtPayload(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// issue 16, item 7: every number of a mint is range-checked before any
// arithmetic; 9223372037 seconds overflowed time.Duration, was accepted
// (expires_in 900) and stored a negative access_ttl.
func TestMintTTLRange(t *testing.T) {
	e := newEnv(t, nil)
	const rule = `field "ttl" must be a whole number of seconds from 0 to 86400`
	for _, ttl := range []string{
		"9223372036854775807", "9223372037", "9223372036854775808", "99999999999999999999999",
		"-9223372036854775808", "-1", "86401", "1.5", "1e3", "86400.0", "1e400", "-0.5", `"60"`, "true", "[60]",
	} {
		a := e.mintBody(`{"subject":"alice","ttl":` + ttl + `}`)
		if a.status != 400 || a.str("error") != "invalid_request" || a.str("error_description") != rule {
			t.Errorf("ttl %s: %d %v", ttl, a.status, a.body)
		}
	}
	if fams, _ := e.store.ListFamilies(t.Context(), store.FamilyFilter{}); len(fams) != 0 {
		t.Fatalf("a refused mint stored %d families", len(fams))
	}
	for _, tc := range []struct {
		ttl       string
		expiresIn float64
		stored    time.Duration
	}{{"0", 900, 0}, {"1", 1, time.Second}, {"86400", 86400, 24 * time.Hour}, {"-0", 900, 0}, {"null", 900, 0}} {
		a := e.mintBody(`{"subject":"alice","force":true,"ttl":` + tc.ttl + `}`)
		f, err := e.store.GetFamily(t.Context(), a.str("session_id"))
		if a.status != 200 || a.body["expires_in"] != tc.expiresIn || err != nil || f.AccessTTL != tc.stored {
			t.Errorf("ttl %s: %d %v; stored %v, %v", tc.ttl, a.status, a.body, f.AccessTTL, err)
		}
	}
}

// issue 16, item 5: a custom claim may not carry a reserved name under
// Unicode case folding, which encoding/json applies when it decodes into
// a struct: "ſub" (U+017F folds to s) was read as sub=root.
func TestMintClaimNamesFold(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct{ claims, want string }{
		{`{"ſcope":"admin write","ſub":"root","iſs":"https://evil"}`,
			`field "claims" may not set "\u017fcope": under Unicode case folding it is scope, which resource servers may read in its place`},
		{`{"SUB":"root"}`, `field "claims" may not set "SUB": under Unicode case folding it is sub, which resource servers may read in its place`},
		{`{"Scope":"admin"}`, `field "claims" may not set "Scope": under Unicode case folding it is scope, which resource servers may read in its place`},
		{`{"Client_ID":"admin-app"}`, `field "claims" may not set "Client_ID": under Unicode case folding it is client_id, which resource servers may read in its place`},
		{`{"SİD":"x","sid":"y"}`, `field "claims" may not set sid`}, // İ (U+0130) does not fold to i: only sid is refused
		{`{"iat":1}`, `field "claims" may not set iat`},
		{`{"nbf":1}`, `field "claims" may not set nbf`},
		{`{"cnf":{"jkt":"x"}}`, `field "claims" may not set cnf`},
		{`{"Act":{"sub":"admin"}}`, `field "claims" may not set "Act": under Unicode case folding it is act, which resource servers may read in its place`},
		{`{"acr":"mfa"}`, `field "claims" may not set acr`},
		{`{"authorization_details":[]}`, `field "claims" may not set authorization_details`},
		// The same name twice, or two names one under folding, in any object.
		{`{"role":"user","role":"admin"}`, `field "claims" has "role" twice in one object`},
		{`{"Role":"user","role":"admin"}`, `field "claims" has "Role" and "role" in one object, one name under Unicode case folding`},
		{`{"mas\u212a":"1","mask":"2"}`, `field "claims" has "mas\u212a" and "mask" in one object, one name under Unicode case folding`},
		{`{"p":{"admin":false,"Admin":true}}`, `field "claims" has "admin" and "Admin" in one object, one name under Unicode case folding`},
		{`{"l":[{"a":1},{"b":1,"b":2}]}`, `field "claims" has "b" twice in one object`},
		{`{"n":1e400}`, `field "claims" holds a number beyond the range of a double (RFC 7493 §2.2)`},
		{`{"p":[-1e309]}`, `field "claims" holds a number beyond the range of a double (RFC 7493 §2.2)`},
	}
	for _, tc := range cases {
		a := e.mintBody(`{"subject":"alice","claims":` + tc.claims + `}`)
		if a.status != 400 || a.str("error") != "invalid_request" || a.str("error_description") != tc.want {
			t.Errorf("claims %s:\n got %d %q\nwant 400 %q", tc.claims, a.status, a.str("error_description"), tc.want)
		}
	}

	// Names reserved only at the top; attributes of the user; numbers as
	// written, never through a float.
	a := e.mintBody(`{"subject":"alice","claims":{"profile":{"sub":"x","Sub":"y"},"roles":["admin"],"email":"a@example.com","uid":12345678901234567890,"big":1e308}}`)
	if a.status != 400 || a.str("error_description") != `field "claims" has "sub" and "Sub" in one object, one name under Unicode case folding` {
		t.Fatalf("nested fold pair: %d %v", a.status, a.body)
	}
	a = e.mintBody(`{"subject":"alice","claims":{"profile":{"sub":"x"},"roles":["admin"],"email":"a@example.com","uid":12345678901234567890,"big":1e308}}`)
	if a.status != 200 {
		t.Fatalf("mint: %d %v", a.status, a.body)
	}
	p := jwtPayload(t, a.str("access_token"))
	for _, want := range []string{`"profile":{"sub":"x"}`, `"roles":["admin"]`, `"uid":12345678901234567890`, `"big":1e308`, `"sub":"alice"`} {
		if !strings.Contains(p, want) {
			t.Errorf("token payload lacks %s: %s", want, p)
		}
	}
	// A refresh re-issues the stored claims as written.
	r := e.refresh(a.str("refresh_token"))
	if r.status != 200 || !strings.Contains(jwtPayload(t, r.str("access_token")), `"uid":12345678901234567890`) {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
}

// A claims hook, or a family minted before names were checked, may hold a
// claim whose name folds onto one the server sets: the token never
// carries it, and the log says so (naming the claim, not its value).
func TestIssuedTokensDropFoldedServerClaims(t *testing.T) {
	e := newEnv(t, func(c *server.Config) {
		c.Claims = func(context.Context, server.ClaimsRequest) (map[string]any, error) {
			return map[string]any{"ſub": "root", "SCOPE": "admin", "Acr": "hook", "tenant": "t1"}, nil
		}
	})
	now := e.clock.Now()
	id, rt := server.FirstRefreshToken(testSecret)
	if err := e.store.CreateFamily(t.Context(), store.Family{ID: id, ClientID: appID, Subject: "alice", Scope: "read",
		Claims: []byte(`{"Iss":"https://evil","client_ıd":"x","room":"42"}`), CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: server.HashClientSecret(rt)}); err != nil {
		t.Fatal(err)
	}
	a := e.refresh(rt)
	if a.status != 200 {
		t.Fatalf("refresh: %d %v", a.status, a.body)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(jwtPayload(t, a.str("access_token"))), &claims); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"ſub", "SCOPE", "Iss"} {
		if _, ok := claims[gone]; ok {
			t.Errorf("token carries %q: %v", gone, claims)
		}
	}
	// Kept: names that fold onto nothing the server sets (ı, U+0131, does
	// not fold to i; acr is the hook's to set), and ordinary ones.
	for k, v := range map[string]any{"sub": "alice", "scope": "read", "iss": e.url, "Acr": "hook", "tenant": "t1", "room": "42", "client_ıd": "x"} {
		if claims[k] != v {
			t.Errorf("claim %q = %v, want %v", k, claims[k], v)
		}
	}
	logs := e.logs.String()
	for _, want := range []string{`claim="\"\\u017fub\"" folds_to=sub`, `claim="\"SCOPE\"" folds_to=scope`, `claim="\"Iss\"" folds_to=iss`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "root") || strings.Contains(logs, "evil") {
		t.Errorf("a dropped claim's value reached the log:\n%s", logs)
	}
}

// FuzzMintBody sends arbitrary bodies to POST /v1/tokens: never a panic
// or a 5xx, every refusal an RFC 6749 JSON error; every token minted
// holds no two claim names that fold alike (so a case-insensitive decoder
// reads the server's sub, scope and the rest), and every stored lifetime
// is within 0 to 24h.
func FuzzMintBody(f *testing.F) {
	e := newEnv(f, nil) // shared by every input
	f.Fuzz(func(t *testing.T, body []byte) {
		req := rawRequest("POST", "/v1/tokens", "application/json", string(body), "Authorization", basic(appID, appSecret))
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
		if rec.Code != 200 {
			if code, _ := m["error"].(string); code == "" {
				t.Fatalf("error answer without error code: %q", rec.Body)
			}
			return
		}
		at, _ := m["access_token"].(string)
		var claims map[string]json.RawMessage
		if err := json.Unmarshal([]byte(jwtPayload(t, at)), &claims); err != nil {
			t.Fatal(err)
		}
		folded := map[string]string{}
		for k := range claims {
			for other, prev := range folded {
				if strings.EqualFold(other, k) {
					t.Fatalf("token for %q holds %q and %q", body, prev, k)
				}
			}
			folded[k] = k
		}
		sid, _ := m["session_id"].(string)
		fam, err := e.store.GetFamily(t.Context(), sid)
		if exp, _ := m["expires_in"].(float64); err != nil || fam.AccessTTL < 0 || fam.AccessTTL > server.MaxAccessTTL || exp > 86400 {
			t.Fatalf("mint %q: family %+v, %v; expires_in %v", body, fam, err, m["expires_in"])
		}
		var sub string
		if err := json.Unmarshal(claims["sub"], &sub); err != nil || sub != fam.Subject {
			t.Fatalf("token sub %s, family subject %q", claims["sub"], fam.Subject)
		}
	})
}

// The server's own access-token lifetime has the mint's bound.
func TestAccessTTLBound(t *testing.T) {
	st := memory.New()
	ks, err := keys.Load(t.Context(), st, "EdDSA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, Signer: ks, Secret: testSecret, Issuer: "http://tokend.test", AccessTTL: server.MaxAccessTTL + time.Second}
	if _, err := server.New(cfg); err == nil || err.Error() != "server: Config.AccessTTL is longer than MaxAccessTTL (24h)" {
		t.Fatalf("New with AccessTTL 24h1s: %v", err)
	}
	cfg.AccessTTL = server.MaxAccessTTL
	if _, err := server.New(cfg); err != nil {
		t.Fatalf("New with AccessTTL 24h: %v", err)
	}
}
