package redirecturi_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokend/tokend/server/redirecturi"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{
		"https://app.example.com/callback",
		"https://app.example.com:8443/cb?tenant=a",
		"http://127.0.0.1/callback",
		"http://127.0.0.1:5173/callback",
		"http://[::1]:8080/cb",
		"http://localhost:5173/callback",
		"com.example.app:/oauth2redirect",
		"com.example.app:callback",
	} {
		if err := redirecturi.Validate(ok); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{
		"",
		"/callback",
		"app.example.com/callback",
		"https://app.example.com/cb#frag",
		"https://app.example.com/cb#",
		"https://user:pw@app.example.com/cb",
		"https://user@app.example.com/cb",
		"http://app.example.com/callback",
		"http://127.0.0.1.nip.io/callback",
		"HTTPS://app.example.com/cb",
		"http://LOCALHOST/cb",
		"https:///cb",
		"https://app.example.com/c b",
		"https://app.example.com/cb\n",
		"https://app.example.com\\@evil.example/cb",
		"https://аpp.example.com/cb", // Cyrillic а: register the punycode form
		"javascript:alert(1)",
		"data:text/html,x",
		"file:///etc/passwd",
		"myapp:/cb",                 // private-use scheme without a period
		"com.example.app://host/cb", // a private-use URI has no host
		"https://app.example.com/" + strings.Repeat("a", redirecturi.MaxLength),
	} {
		if err := redirecturi.Validate(bad); !errors.Is(err, redirecturi.ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// Every variant of a registered URI that the field's attacks use is
// refused: exact match only, but for a loopback IP literal's port.
func TestMatch(t *testing.T) {
	reg := []string{"https://app.example.com/callback", "http://127.0.0.1/native", "http://[::1]:9000/v6?x=1", "http://localhost:5173/dev", "com.example.app:/cb"}
	for _, tc := range []struct {
		presented string
		want      string // "" for no match
	}{
		{"https://app.example.com/callback", "https://app.example.com/callback"},
		{"https://APP.example.com/callback", ""},
		{"https://app.example.com/Callback", ""},
		{"https://app.example.com/callback/", ""},
		{"https://app.example.com/callback/extra", ""},
		{"https://app.example.com/callback?next=/", ""},
		{"https://app.example.com/callback#x", ""},
		{"https://user@app.example.com/callback", ""},
		{"https://app.example.com/c%61llback", ""},
		{"https://app.example.com/%63allback", ""},
		{"https://app.example.com:443/callback", ""},
		{"https://аpp.example.com/callback", ""}, // IDN look-alike (Cyrillic а)
		{"https://xn--pp-8cd.example.com/callback", ""},
		{"https://app.example.com.evil.example/callback", ""},
		{"https://app.example.com/callback\\", ""},
		{"http://app.example.com/callback", ""},
		{"", ""},

		// Loopback IP literals: any port, the rest exact (RFC 8252 §7.3).
		{"http://127.0.0.1/native", "http://127.0.0.1/native"},
		{"http://127.0.0.1:49152/native", "http://127.0.0.1/native"},
		{"http://127.0.0.1:1/native", "http://127.0.0.1/native"},
		{"http://127.0.0.1:65535/native", "http://127.0.0.1/native"},
		{"http://127.0.0.1:65536/native", ""},
		{"http://127.0.0.1:0/native", ""},
		{"http://127.0.0.1:08080/native", ""},
		{"http://127.0.0.1:/native", ""},
		{"http://127.0.0.1:8080/native/", ""},
		{"http://127.0.0.1:8080/Native", ""},
		{"http://127.0.0.1:8080/native?x=1", ""},
		{"http://127.0.0.1:8080@evil.example/native", ""},
		{"http://127.0.0.1.evil.example/native", ""},
		{"http://127.0.0.2:8080/native", ""},
		{"https://127.0.0.1:8080/native", ""},
		{"http://[::1]:50000/v6?x=1", "http://[::1]:9000/v6?x=1"},
		{"http://[::1]/v6?x=1", "http://[::1]:9000/v6?x=1"},
		{"http://[::1]:50000/v6?x=2", ""},
		{"http://[0:0:0:0:0:0:0:1]:50000/v6?x=1", ""},

		// localhost is matched exactly, port included.
		{"http://localhost:5173/dev", "http://localhost:5173/dev"},
		{"http://localhost:5174/dev", ""},

		{"com.example.app:/cb", "com.example.app:/cb"},
		{"com.example.app:/cb/", ""},
		{"com.example.evil:/cb", ""},
	} {
		got, ok := redirecturi.Match(reg, tc.presented)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", tc.presented, got, ok, tc.want)
		}
	}
}

// FuzzMatch: no input panics; a URI matches only itself or, on a
// loopback IP literal, itself but for the port; whatever matches is a
// URI Validate accepts.
func FuzzMatch(f *testing.F) {
	f.Add("https://app.example.com/callback", "https://app.example.com/callback")
	f.Add("http://127.0.0.1/native", "http://127.0.0.1:49152/native")
	f.Add("http://[::1]:9000/v6", "http://[::1]:1/v6")
	f.Add("http://127.0.0.1/x", "http://127.0.0.1:80@evil.example/x")
	f.Fuzz(func(t *testing.T, registered, presented string) {
		got, ok := redirecturi.Match([]string{registered}, presented)
		if !ok {
			return
		}
		if got != registered {
			t.Fatalf("Match returned %q, not the registered URI", got)
		}
		if presented != registered && redirecturi.Validate(presented) != nil {
			t.Fatalf("Match(%q, %q) accepted a URI Validate refuses", registered, presented)
		}
		if presented != registered && !strings.HasPrefix(presented, "http://127.0.0.1") && !strings.HasPrefix(presented, "http://[::1]") {
			t.Fatalf("Match(%q, %q): a non-loopback URI matched another", registered, presented)
		}
	})
}

func FuzzValidate(f *testing.F) {
	f.Add("https://app.example.com/callback")
	f.Add("com.example.app:/cb")
	f.Add("http://localhost:5173/x#y")
	f.Fuzz(func(t *testing.T, raw string) {
		if err := redirecturi.Validate(raw); err != nil {
			if !errors.Is(err, redirecturi.ErrInvalid) {
				t.Fatalf("Validate(%q) = %v, not ErrInvalid", raw, err)
			}
			if raw != "" && len(raw) > 8 && strings.Contains(err.Error(), raw) {
				t.Fatalf("the error echoes the URI: %v", err)
			}
			return
		}
		if strings.ContainsAny(raw, "# \\") || strings.Contains(raw, "@") && strings.HasPrefix(raw, "http") {
			t.Fatalf("Validate accepted %q", raw)
		}
	})
}
