package loginpage

import (
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every page: a document with a language and a title, the stylesheet
// from this server, nothing from another origin, no script, the
// security headers, and (for forms) only real submit buttons.
func TestPagesRender(t *testing.T) {
	p := mustNew(t, Options{})
	for _, withError := range []bool{false, true} {
		for name, w := range samplePages(t, p, withError) {
			body := w.Body.String()
			if !strings.HasPrefix(body, "<!doctype html>\n<html lang=\"en\">") {
				t.Errorf("%s: does not start with the doctype and <html lang>: %.40q", name, body)
			}
			if i, j := strings.Index(body, "<title>"), strings.Index(body, "</title>"); i < 0 || j <= i+len("<title>") {
				t.Errorf("%s: no title", name)
			}
			if strings.Contains(strings.ToLower(body), "<script") {
				t.Errorf("%s: has a script", name)
			}
			ts := tags(body)
			if _, ok := find(ts, "link", "href", p.StyleURL()); !ok {
				t.Errorf("%s: no stylesheet link to %s", name, p.StyleURL())
			}
			for _, tg := range ts {
				for _, a := range []string{"href", "src", "action", "formaction", "srcset", "poster", "data"} {
					v, ok := tg.attrs[a]
					if ok && (!strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//")) {
						t.Errorf("%s: <%s %s=%q> is not a path on this server", name, tg.name, a, v)
					}
				}
				if tg.name == "button" && tg.attrs["type"] != "submit" {
					t.Errorf("%s: button without type=submit", name)
				}
				if tg.name == "a" || tg.name == "iframe" || tg.name == "img" || tg.name == "meta" && tg.attrs["http-equiv"] != "" {
					t.Errorf("%s: unexpected <%s>", name, tg.name)
				}
			}
			if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
				t.Errorf("%s: CSP %q", name, got)
			}
			if w.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Errorf("%s: Content-Length %s for %d bytes", name, w.Header().Get("Content-Length"), len(body))
			}
		}
	}
}

// The login page as a keyboard and a screen reader see it.
func TestLoginAccessible(t *testing.T) {
	p := mustNew(t, Options{})
	cases := []struct {
		name      string
		d         LoginData
		autofocus string
	}{
		{"fresh", LoginData{Form: Form{Action: "/login"}}, "username"},
		{"error", LoginData{Form: Form{Action: "/login", Error: BadCredentials}, Username: "alice"}, "password"},
		{"error without username", LoginData{Form: Form{Action: "/login", Error: Busy}}, "username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := render(t, func(w *httptest.ResponseRecorder) error { return p.Login(w, 200, tc.d) }).Body.String()
			ts := tags(body)
			form, ok := find(ts, "form", "method", "post")
			if !ok || form.attrs["action"] != "/login" {
				t.Fatalf("no POST form to /login: %+v", form)
			}
			want := map[string]string{"username": "username", "password": "current-password"}
			var focused []string
			for id, auto := range want {
				in, ok := find(ts, "input", "id", id)
				if !ok {
					t.Fatalf("no input #%s", id)
				}
				if in.attrs["name"] != id || in.attrs["autocomplete"] != auto {
					t.Errorf("input #%s: %v", id, in.attrs)
				}
				if _, ok := find(ts, "label", "for", id); !ok {
					t.Errorf("input #%s has no <label for>", id)
				}
				if _, ok := in.attrs["autofocus"]; ok {
					focused = append(focused, id)
				}
				desc, has := in.attrs["aria-describedby"]
				if tc.d.Error != NoError && desc != "alert" || tc.d.Error == NoError && has {
					t.Errorf("input #%s: aria-describedby %q with error %q", id, desc, tc.d.Error)
				}
			}
			if len(focused) != 1 || focused[0] != tc.autofocus {
				t.Errorf("autofocus on %v, want [%s]", focused, tc.autofocus)
			}
			pw, _ := find(ts, "input", "id", "password")
			if pw.attrs["type"] != "password" {
				t.Errorf("password input type %q", pw.attrs["type"])
			}
			if _, ok := pw.attrs["value"]; ok {
				t.Error("the password field has a value")
			}
			user, _ := find(ts, "input", "id", "username")
			if user.attrs["value"] != tc.d.Username {
				t.Errorf("username value %q, want %q", user.attrs["value"], tc.d.Username)
			}
			alert, hasAlert := find(ts, "p", "role", "alert")
			if hasAlert != (tc.d.Error != NoError) {
				t.Fatalf("alert shown %v with error %q", hasAlert, tc.d.Error)
			}
			if hasAlert && (alert.attrs["id"] != "alert" || alert.pos > form.pos) {
				t.Errorf("alert %v at %d, form at %d: want #alert before the form", alert.attrs, alert.pos, form.pos)
			}
			if _, ok := find(ts, "button", "type", "submit"); !ok {
				t.Error("no submit button")
			}
		})
	}
}

// The error text depends on the kind alone: never on the username, nor
// on which part was wrong; an unknown kind reads as BadForm.
func TestErrorKindsGeneric(t *testing.T) {
	p := mustNew(t, Options{})
	alert := func(d LoginData) string {
		body := render(t, func(w *httptest.ResponseRecorder) error { return p.Login(w, 401, d) }).Body.String()
		i := strings.Index(body, `role="alert">`)
		if i < 0 {
			t.Fatalf("no alert for %+v", d)
		}
		rest := body[i+len(`role="alert">`):]
		return rest[:strings.Index(rest, "<")]
	}
	for _, k := range []ErrorKind{BadCredentials, TooManyAttempts, Busy, FormExpired, BadForm} {
		a := alert(LoginData{Form: Form{Error: k, RetryAfter: 30 * time.Second}, Username: "alice"})
		b := alert(LoginData{Form: Form{Error: k, RetryAfter: 30 * time.Second}, Username: "no-such-user"})
		c := alert(LoginData{Form: Form{Error: k, RetryAfter: 30 * time.Second}})
		if a != b || a != c || a == "" {
			t.Errorf("%s: texts differ: %q, %q, %q", k, a, b, c)
		}
		if strings.Contains(a, "alice") || strings.Contains(strings.ToLower(a), "user not") {
			t.Errorf("%s: %q reveals the detail", k, a)
		}
	}
	if got, want := alert(LoginData{Form: Form{Error: "user_unknown"}}), alert(LoginData{Form: Form{Error: BadForm}}); got != want {
		t.Errorf("unknown kind %q, want BadForm's %q", got, want)
	}
	if got := alert(LoginData{Form: Form{Error: TooManyAttempts, RetryAfter: 1500 * time.Millisecond}}); !strings.Contains(got, "in 2 seconds") {
		t.Errorf("retry after 1.5 s: %q", got)
	}
	if got := alert(LoginData{Form: Form{Error: TooManyAttempts}}); !strings.Contains(got, "later") {
		t.Errorf("retry without a delay: %q", got)
	}
	body := render(t, func(w *httptest.ResponseRecorder) error {
		return p.Login(w, 401, LoginData{Form: Form{Error: BadCredentials}})
	}).Body.String()
	if _, ok := find(tags(body), "input", "value", "alice"); ok || strings.Contains(body, "alice") {
		t.Error("a username not given as the prefill appears")
	}
}

// Consent and logout: labelled buttons posting a decision, the alert
// before the form.
func TestConsentAndLogout(t *testing.T) {
	p := mustNew(t, Options{})
	pages := samplePages(t, p, true)
	ts := tags(pages[fileConsent].Body.String())
	for _, v := range []string{"allow", "deny"} {
		b, ok := find(ts, "button", "value", v)
		if !ok || b.attrs["name"] != "decision" || b.attrs["type"] != "submit" {
			t.Errorf("consent: button %s: %v", v, b.attrs)
		}
	}
	for _, name := range []string{fileConsent, fileLogout} {
		body := pages[name].Body.String()
		ts := tags(body)
		alert, ok := find(ts, "p", "role", "alert")
		form, _ := find(ts, "form", "method", "post")
		if !ok || alert.pos > form.pos {
			t.Errorf("%s: no alert before the form", name)
		}
		if _, ok := find(ts, "input", "name", CSRFField); !ok {
			t.Errorf("%s: hidden fields not carried", name)
		}
		if _, ok := find(ts, "button", "aria-describedby", "alert"); !ok {
			t.Errorf("%s: the button does not refer to the alert", name)
		}
	}
	if !strings.Contains(pages[fileConsent].Body.String(), "<li>profile</li>") {
		t.Error("consent: scopes not listed")
	}
	if !strings.Contains(pages[fileLoggedOut].Body.String(), "You are logged out") {
		t.Error("logged out page")
	}
}

// The caller's strings are escaped: a client name cannot add markup, an
// action cannot be javascript:.
func TestEscaping(t *testing.T) {
	p := mustNew(t, Options{})
	body := render(t, func(w *httptest.ResponseRecorder) error {
		return p.Login(w, 200, LoginData{Form: Form{Action: "javascript:alert(1)",
			Hidden: []Field{{`x"><script>`, `"><script>alert(1)</script>`}}},
			Client: "<script>alert(1)</script>", Username: `"><script>`})
	}).Body.String()
	if strings.Contains(body, "<script") || strings.Contains(body, "javascript:") {
		t.Errorf("not escaped:\n%s", body)
	}
}

// An operator's directory overrides the files it has; the rest stay the
// defaults.
func TestOverrideDir(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "login.html", `{{define "title"}}Acme{{end}}{{define "main"}}<p class="acme">{{.Message}}</p>{{end}}{{template "layout" .}}`)
	write(t, dir, "style.css", "body{color:#000}")
	write(t, dir, "notes.txt", "ignored")
	p := mustNew(t, Options{Dir: dir, StylePath: "/static/login.css"})
	pages := samplePages(t, p, true)
	if body := pages[fileLogin].Body.String(); !strings.Contains(body, `<p class="acme">The username or password is incorrect.</p>`) ||
		!strings.Contains(body, "<title>Acme</title>") {
		t.Errorf("login not overridden:\n%s", body)
	}
	def := mustNew(t, Options{StylePath: "/static/login.css"})
	want := samplePages(t, def, true)
	for _, name := range []string{fileConsent, fileError, fileLogout, fileLoggedOut} {
		got := strings.ReplaceAll(pages[name].Body.String(), p.StyleURL(), def.StyleURL())
		if got != want[name].Body.String() {
			t.Errorf("%s changed by another file's override", name)
		}
	}
	if !strings.HasPrefix(p.StyleURL(), "/static/login.css?v=") || p.StyleURL() == def.StyleURL() {
		t.Errorf("style URL %q (default %q)", p.StyleURL(), def.StyleURL())
	}
	w := httptest.NewRecorder()
	p.StyleHandler().ServeHTTP(w, httptest.NewRequest("GET", p.StyleURL(), nil))
	if w.Body.String() != "body{color:#000}" {
		t.Errorf("style %q", w.Body.String())
	}
}

// A template that does not parse, or does not execute with sample data,
// fails New with an error naming its file.
func TestBrokenTemplate(t *testing.T) {
	cases := []struct{ file, text string }{
		{"login.html", `{{define "main"}}{{if}}{{end}}{{template "layout" .}}`},
		{"consent.html", `{{define "title"}}x{{end}}{{define "main"}}{{.NoSuchField}}{{end}}{{template "layout" .}}`},
		{"logout.html", `{{define "title"}}x{{end}}{{define "main"}}{{if .Message}}<b title="{{end}}{{end}}{{template "layout" .}}`},
		{"error.html", `{{template "nosuch" .}}`},
		{"logged_out.html", `{{define "title"}}x{{end}}{{define "main"}}{{.Client.Nope}}{{end}}{{template "layout" .}}`},
		{"layout.html", `{{define "layout"}}<html>{{template "main" .}</html>{{end}}`},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.file, tc.text)
			_, err := New(Options{Dir: dir})
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.file)
			}
		})
	}
}

func TestBadDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{Dir: filepath.Join(dir, "missing")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	write(t, dir, "file", "")
	if _, err := New(Options{Dir: filepath.Join(dir, "file")}); err == nil {
		t.Error("a file as the directory: no error")
	}
	if err := os.Mkdir(filepath.Join(dir, "login.html"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "login.html") {
		t.Errorf("unreadable login.html: %v", err)
	}
}

func TestStyleHandler(t *testing.T) {
	p := mustNew(t, Options{})
	h := p.StyleHandler()
	serve := func(method, target string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := serve("GET", p.StyleURL())
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/css; charset=utf-8" ||
		w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Body.Len() != len(p.style) {
		t.Errorf("hashed URL: %d %v", w.Code, w.Header())
	}
	if w := serve("GET", DefaultStylePath+"?v=old"); w.Header().Get("Cache-Control") != "no-cache" || w.Code != 200 {
		t.Errorf("stale URL: %d %v", w.Code, w.Header())
	}
	etag := w.Header().Get("ETag")
	if w := serve("GET", DefaultStylePath, "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d", etag, w.Code)
	}
	if w := serve("POST", DefaultStylePath); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", w.Code, w.Header())
	}
}

// A render error writes nothing, so the caller can still answer 500.
func TestRenderErrorWritesNothing(t *testing.T) {
	p := mustNew(t, Options{})
	w := httptest.NewRecorder()
	if err := p.render(w, 200, fileLogin, struct{}{}, nil); err == nil {
		t.Fatal("no error")
	}
	if w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Errorf("wrote %v %q", w.Header(), w.Body.String())
	}
}

// The login page stays light: its HTML and the stylesheet together
// under 4 kB.
func TestLoginPageWeight(t *testing.T) {
	p := mustNew(t, Options{})
	html := samplePages(t, p, true)[fileLogin].Body.Len()
	if total := html + len(p.style); total > 4096 {
		t.Errorf("login page %d B + style %d B = %d B, over 4 kB", html, len(p.style), total)
	}
}

func write(tb testing.TB, dir, name, text string) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}
