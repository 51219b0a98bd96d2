package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// client create registers the redirect URIs of the authorization code
// flow: validated (error, nothing stored), and authorization_code and
// refresh_token by default once there is one; the password grant is
// never a default.
func TestClientCreateRedirectURIs(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redirect-uri", "https://app.example/cb#frag"}, "fragment"},
		{[]string{"--redirect-uri", "http://app.example/cb"}, "http is allowed only on a loopback host"},
		{[]string{"--redirect-uri", "javascript:alert(1)"}, "private-use scheme"},
		{[]string{"--redirect-uri", "https://user@app.example/cb"}, "user information"},
		{[]string{"--post-logout-redirect-uri", "/bye", "--redirect-uri", "https://app.example/cb"}, "absolute"},
		{[]string{"--grant", "authorization_code"}, "needs at least one --redirect-uri"},
		{[]string{"--redirect-uri", "https://app.example/cb", "--resource", "api"}, "absolute URI without a fragment"},
		{[]string{"--redirect-uri", "https://app.example/cb", "--grant", "implicit"}, `unknown grant "implicit"`},
	} {
		code, out, errOut := runCmd(t, "", append([]string{"client", "create", "--init", "--id", "app", "--public", "--store", storeURL}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "spa", "--public", "--json", "--store", storeURL,
		"--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1/native", "--post-logout-redirect-uri", "https://app.example/bye",
		"--resource", "https://api.example", "--third-party")
	if code != 0 {
		t.Fatalf("create: exit %d, %q", code, errOut)
	}
	var got struct {
		Grants     []string `json:"grants"`
		Redirects  []string `json:"redirect_uris"`
		PostLogout []string `json:"post_logout_redirect_uris"`
		Resources  []string `json:"resources"`
		ThirdParty bool     `json:"third_party"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Grants, []string{"authorization_code", "refresh_token"}) || len(got.Redirects) != 2 || len(got.PostLogout) != 1 ||
		len(got.Resources) != 1 || !got.ThirdParty {
		t.Fatalf("created %+v", got)
	}
	st, err := openStore(t.Context(), storeURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(t.Context(), "spa")
	if err != nil || !slices.Equal(c.RedirectURIs, got.Redirects) || !c.ThirdParty || slices.Contains(c.Grants, "password") {
		t.Fatalf("stored %+v, %v", c, err)
	}
}
