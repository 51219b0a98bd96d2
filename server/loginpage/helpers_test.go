package loginpage

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// tag is a start tag of a rendered page. html/template's output is
// regular enough (double-quoted attributes, no '>' inside them: it
// escapes it) to scan with a regexp instead of an HTML parser.
type tag struct {
	name  string
	attrs map[string]string // a boolean attribute maps to ""
	pos   int
}

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s>]+)*)\s*>`)
	attrRE = regexp.MustCompile(`([a-zA-Z-]+)(?:="([^"]*)")?`)
)

func tags(html string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatchIndex(html, -1) {
		t := tag{name: strings.ToLower(html[m[2]:m[3]]), attrs: map[string]string{}, pos: m[0]}
		for _, a := range attrRE.FindAllStringSubmatch(html[m[4]:m[5]], -1) {
			t.attrs[a[1]] = a[2]
		}
		out = append(out, t)
	}
	return out
}

func find(ts []tag, name, attr, value string) (tag, bool) {
	for _, t := range ts {
		if v, ok := t.attrs[attr]; t.name == name && ok && v == value {
			return t, true
		}
	}
	return tag{}, false
}

func mustNew(tb testing.TB, opts Options) *Pages {
	tb.Helper()
	p, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// render renders a page with render and returns the recorder.
func render(tb testing.TB, f func(*httptest.ResponseRecorder) error) *httptest.ResponseRecorder {
	tb.Helper()
	w := httptest.NewRecorder()
	if err := f(w); err != nil {
		tb.Fatal(err)
	}
	return w
}

// samplePages renders every page with its sample data through the
// public methods, by file name.
func samplePages(tb testing.TB, p *Pages, withError bool) map[string]*httptest.ResponseRecorder {
	tb.Helper()
	form := Form{Action: "/login", Hidden: []Field{{"client_id", "app"}, {CSRFField, "v1.2.x"}},
		FormTargets: []string{"https://app.example/cb"}}
	if withError {
		form.Error = BadCredentials
	}
	return map[string]*httptest.ResponseRecorder{
		fileLogin: render(tb, func(w *httptest.ResponseRecorder) error {
			return p.Login(w, 200, LoginData{Form: form, Client: "Example App"})
		}),
		fileConsent: render(tb, func(w *httptest.ResponseRecorder) error {
			return p.Consent(w, 200, ConsentData{Form: form, Client: "Example App", User: "alice", Scopes: []string{"openid", "profile"}})
		}),
		fileError: render(tb, func(w *httptest.ResponseRecorder) error {
			return p.Error(w, 400, ErrorData{Title: "Bad request", Message: "The redirect URI is not registered."})
		}),
		fileLogout: render(tb, func(w *httptest.ResponseRecorder) error {
			return p.LogoutConfirm(w, 200, LogoutData{Form: form, Client: "Example App", User: "alice"})
		}),
		fileLoggedOut: render(tb, func(w *httptest.ResponseRecorder) error {
			return p.LoggedOut(w, 200, LoggedOutData{Client: "Example App"})
		}),
	}
}
