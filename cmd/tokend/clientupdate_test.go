package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// tempStore returns the URL and path of a new SQLite store with the
// clients and users the commands args create.
func tempStore(t *testing.T, setup ...[]string) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokend.db")
	u := "sqlite://" + path
	for i, args := range setup {
		stdin := ""
		if args[0] == "user" {
			stdin = "wonderland\n"
		}
		if i == 0 {
			args = append(args, "--init")
		}
		if code, out, errOut := runCmd(t, stdin, append(args, "--store", u)...); code != 0 {
			t.Fatalf("tokend %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	return u, path
}

// getClient reads client id from the store at path.
func getClient(t *testing.T, path, id string) store.Client {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// client update adds, removes and replaces each list, prints the client
// without a secret, and says what the change does to logins.
func TestClientUpdate(t *testing.T) {
	u, path := tempStore(t, []string{"client", "create", "--id", "app", "--grant", "client_credentials,refresh_token", "--scope", "read,write"})
	before := getClient(t, path, "app")
	code, out, errOut := runCmd(t, "", "client", "update", "app", "--store", u,
		"--add-origin", "https://staging.example.com", "--add-redirect-uri", "https://staging.example.com/cb", "--add-grant", "authorization_code",
		"--remove-scope", "write", "--add-resource", "https://api.example.com", "--third-party", "--mint", "--mint-for", "spa")
	if code != 0 {
		t.Fatalf("update: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"client_id:", "app", "origins:", "https://staging.example.com", "scopes:", "read",
		"restricts logins: scope write removed: 0 active logins hold it and go on without it"} {
		if !strings.Contains(out, want) {
			t.Errorf("update printed no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("update printed a secret:\n%s", out)
	}
	c := getClient(t, path, "app")
	want := before
	want.Origins, want.RedirectURIs = []string{"https://staging.example.com"}, []string{"https://staging.example.com/cb"}
	want.Grants, want.Scopes = []string{"client_credentials", "refresh_token", "authorization_code"}, []string{"read"}
	want.Resources, want.ThirdParty, want.Mint, want.MintFor = []string{"https://api.example.com"}, true, true, []string{"spa"}
	if !c.Equal(want) {
		t.Fatalf("stored %+v\nwant   %+v", c, want)
	}
	// Replacing a list, and a change that restricts logins.
	if code, out, errOut := runCmd(t, "", "client", "update", "app", "--store", u, "--grant", "client_credentials,authorization_code", "--origin", ""); code != 0 ||
		!strings.Contains(out, "restricts logins: refresh_token removed") || !strings.Contains(out, "restricts logins: origin https://staging.example.com removed") {
		t.Fatalf("update: exit %d\n%s%s", code, out, errOut)
	}
	if c := getClient(t, path, "app"); strings.Join(c.Grants, ",") != "client_credentials,authorization_code" || len(c.Origins) != 0 {
		t.Fatalf("after replacing: %+v", c)
	}
	// The same change again changes nothing and says so.
	if code, out, _ := runCmd(t, "", "client", "update", "app", "--store", u, "--grant", "client_credentials,authorization_code"); code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("no-op update: exit %d\n%s", code, out)
	}
}

// An update of an unknown client, or one create would refuse, fails with
// a clear error and changes nothing.
func TestClientUpdateRefused(t *testing.T) {
	u, path := tempStore(t,
		[]string{"client", "create", "--id", "app", "--grant", "client_credentials,refresh_token"},
		[]string{"client", "create", "--id", "spa", "--public", "--origin", "http://localhost:5173"})
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"nobody", "--add-origin", "https://a.example"}, 1, "no client nobody"},
		{[]string{"app"}, 2, "nothing to change"},
		{[]string{"app", "--origin", "https://a.example", "--add-origin", "https://b.example"}, 2, "--origin replaces the list"},
		{[]string{"app", "--add-grant", "bogus"}, 2, `unknown grant "bogus"`},
		{[]string{"app", "--grant", ""}, 2, "would have no grant"},
		{[]string{"app", "--remove-origin", "https://never.example"}, 2, "has no such origin"},
		{[]string{"app", "--add-origin", "https://a.example/path"}, 2, "origin"},
		{[]string{"app", "--cookie"}, 2, "cookie mode without an origin"},
		{[]string{"app", "--add-redirect-uri", "http://evil.example/cb"}, 2, "redirect URI"},
		{[]string{"app", "--add-grant", "authorization_code"}, 2, "needs at least one --redirect-uri"},
		{[]string{"app", "--add-resource", "not-absolute"}, 2, "--resource"},
		{[]string{"app", "--add-mint-for", "spa"}, 2, "mint-for without mint"},
		{[]string{"app", "--mint", "--add-mint-for", "app"}, 2, "names app itself"},
		{[]string{"spa", "--add-grant", "password"}, 2, "spa is public"},
		{[]string{"spa", "--mint"}, 2, "spa is public"},
		{[]string{"spa", "--remove-origin", "http://localhost:5173", "--cookie"}, 2, "cookie mode without an origin"},
		{[]string{"app", "--add-scope", `a\b`}, 2, `is not a scope token`},
		{[]string{"app", "--scope", `read,a"b`}, 2, "is not a scope token"},
		{[]string{"app", "--scope", "read,read"}, 2, `scope "read" is given twice`},
	}
	for _, tc := range cases {
		id := tc.args[0]
		var before store.Client
		if id != "nobody" {
			before = getClient(t, path, id)
		}
		code, out, errOut := runCmd(t, "", append([]string{"client", "update", "--store", u}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.err) || out != "" {
			t.Errorf("update %v: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.err)
		}
		if id != "nobody" {
			if after := getClient(t, path, id); !after.Equal(before) {
				t.Errorf("refused update %v changed the client: %+v", tc.args, after)
			}
		}
	}
}

// rotate-secret stores the new secret's hash and keeps the old one as the
// previous secret for the overlap; --overlap 0 keeps none; a public
// client has no secret to rotate.
func TestClientRotateSecret(t *testing.T) {
	const old = "app-secret-0123456789abcdef0123456789"
	u, path := tempStore(t,
		[]string{"client", "create", "--id", "app", "--secret", old},
		[]string{"client", "create", "--id", "spa", "--public"})
	start := time.Now()
	code, out, errOut := runCmd(t, "", "client", "rotate-secret", "app", "--overlap", "1h", "--quiet", "--store", u)
	secret := strings.TrimSpace(out)
	if code != 0 || len(secret) < minSecretLength || !strings.Contains(errOut, "the previous secret works until") {
		t.Fatalf("rotate-secret: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	c := getClient(t, path, "app")
	if !bytes.Equal(c.SecretHash, server.HashClientSecret(secret)) || !bytes.Equal(c.PreviousSecretHash, server.HashClientSecret(old)) ||
		c.PreviousSecretExpiresAt.Before(start.Add(time.Hour)) || c.PreviousSecretExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("after rotate-secret --overlap 1h: %+v", c)
	}
	code, out, _ = runCmd(t, "", "client", "rotate-secret", "app", "--overlap", "0", "--store", u)
	if code != 0 || !strings.Contains(out, "client_secret: ") || !strings.Contains(out, "the previous secret stopped working now (--overlap 0)") ||
		!strings.Contains(out, "the secret kept from the earlier rotation") {
		t.Fatalf("rotate-secret --overlap 0: exit %d\n%s", code, out)
	}
	if c := getClient(t, path, "app"); c.PreviousSecretHash != nil || bytes.Equal(c.SecretHash, server.HashClientSecret(secret)) {
		t.Fatalf("after rotate-secret --overlap 0: %+v", c)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"spa"}, 1, "client spa is public: it has no secret to rotate"},
		{[]string{"nobody"}, 1, "no client nobody"},
		{[]string{"app", "--overlap", "-1s"}, 2, "--overlap -1s"},
	} {
		if code, out, errOut := runCmd(t, "", append([]string{"client", "rotate-secret", "--store", u}, tc.args...)...); code != tc.code || out != "" || !strings.Contains(errOut, tc.err) {
			t.Errorf("rotate-secret %v: exit %d, stdout %q, stderr %q; want %d, %q", tc.args, code, out, errOut, tc.code, tc.err)
		}
	}
}

// user passwd: at the token endpoint, the old password is refused and
// the new one accepted; the user's logins go on, or end with
// --end-logins.
func TestUserPasswd(t *testing.T) {
	const secret = "app-secret-0123456789abcdef0123456789"
	u, path := tempStore(t,
		[]string{"client", "create", "--id", "app", "--secret", secret, "--grant", "password,refresh_token"},
		[]string{"user", "create", "alice", "--password-stdin", "--argon2-params", "m=64,t=1,p=1"})
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ks, err := keys.Load(t.Context(), st, "EdDSA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	srv, err := server.New(server.Config{Store: st, Signer: ks, Issuer: "http://" + hs.Listener.Addr().String(), Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv
	hs.Start()
	t.Cleanup(hs.Close)
	token := func(form url.Values) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, hs.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	login := func(pw string) int {
		return token(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}})
	}
	if s := login("wonderland"); s != 200 {
		t.Fatalf("login before passwd: %d", s)
	}
	code, out, errOut := runCmd(t, "looking-glass\n", "user", "passwd", "alice", "--password-stdin", "--argon2-params", "m=64,t=1,p=1", "--store", u)
	if code != 0 || !strings.Contains(out, "password of user alice changed; 1 sessions go on (--end-logins ends them)") {
		t.Fatalf("passwd: exit %d\n%s%s", code, out, errOut)
	}
	if s := login("wonderland"); s != http.StatusBadRequest {
		t.Fatalf("the old password after passwd: %d; want 400", s)
	}
	if s := login("looking-glass"); s != 200 {
		t.Fatalf("the new password after passwd: %d", s)
	}
	code, out, errOut = runCmd(t, "queen of hearts\n", "user", "passwd", "alice", "--password-stdin", "--end-logins", "--argon2-params", "m=64,t=1,p=1", "--store", u)
	if code != 0 || !strings.Contains(out, "password of user alice changed; 2 sessions revoked") {
		t.Fatalf("passwd --end-logins: exit %d\n%s%s", code, out, errOut)
	}
	fams, err := st.ListFamilies(t.Context(), store.FamilyFilter{Subject: "alice", ActiveAt: time.Now()})
	if err != nil || len(fams) != 0 {
		t.Fatalf("active families after --end-logins: %d, %v", len(fams), err)
	}
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		err   string
	}{
		{[]string{"nobody", "--password-stdin"}, "x\n", 1, "no user nobody"},
		{[]string{"alice"}, "x\n", 2, "--password-stdin is required"},
		{[]string{"alice", "--password-stdin"}, "\n", 2, "empty password"},
	} {
		if code, _, errOut := runCmd(t, tc.stdin, append([]string{"user", "passwd", "--store", u, "--argon2-params", "m=64,t=1,p=1"}, tc.args...)...); code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("passwd %v: exit %d, stderr %q; want %d, %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	if s := login("queen of hearts"); s != 200 {
		t.Fatalf("the password after the refused changes: %d", s)
	}
}
