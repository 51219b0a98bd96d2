package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// --origin takes exact origins, repeated or comma-separated, and names the
// bad one; --cookie needs --origin; client list shows both.
func TestClientCreateOrigins(t *testing.T) {
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	for _, tc := range []struct {
		origin string
		want   string
	}{
		{"http://localhost:5173/", `"http://localhost:5173/" is not an origin: it has a path`},
		{"https://app.example.com/login", "it has a path"},
		{"http://localhost:5173?x=1", "it has a query"},
		{"http://localhost:5173#top", "it has a fragment"},
		{"ftp://example.com", "the scheme must be http or https"},
		{"localhost:5173", "the scheme must be http or https"},
		{"http://", "it has no host"},
		{"http://a@example.com", "it has a user"},
		{"http://localhost:99999", "the port must be a number"},
		{"http://localhost:", "the port must be a number"},
		{"https://example.com:443", "write https://example.com"},
		{"http://LocalHost:5173", "write http://localhost:5173"},
		{"https://*.example.com", "is not an origin"},
		{"http://ok.example,http://bad.example/", `"http://bad.example/" is not an origin`},
	} {
		code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "spa", "--public", "--store", storeURL, "--origin", tc.origin)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("--origin %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.origin, code, out, errOut, tc.want)
		}
	}
	code, out, errOut := runCmd(t, "", "client", "create", "--init", "--id", "spa", "--public", "--cookie", "--store", storeURL)
	if code != 2 || out != "" || !strings.Contains(errOut, "--cookie without --origin: cookie mode is for a browser app") {
		t.Errorf("--cookie alone: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = runCmd(t, "", "client", "create", "--init", "--id", "spa", "--public", "--cookie", "--json", "--store", storeURL,
		"--origin", "http://localhost:5173,https://app.example.com", "--origin", "http://[::1]:8080", "--origin", "http://localhost:5173")
	var created struct {
		Origins []string `json:"origins"`
		Cookie  bool     `json:"cookie"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil ||
		fmt.Sprint(created.Origins) != "[http://localhost:5173 https://app.example.com http://[::1]:8080]" || !created.Cookie {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	st, err := openStore(t.Context(), storeURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.GetClient(t.Context(), "spa")
	st.Close()
	if err != nil || fmt.Sprint(c.Origins) != "[http://localhost:5173 https://app.example.com http://[::1]:8080]" || !c.Cookie {
		t.Fatalf("stored %+v, %v", c, err)
	}
	code, out, errOut = runCmd(t, "", "client", "list", "--store", storeURL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[0], "ORIGINS") || !strings.Contains(lines[0], "COOKIE") ||
		!strings.Contains(lines[1], "http://localhost:5173,https://app.example.com,http://[::1]:8080") || !strings.HasSuffix(lines[1], "true") {
		t.Fatalf("client list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
