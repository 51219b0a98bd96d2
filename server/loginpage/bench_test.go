package loginpage

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// nopWriter is a ResponseWriter that keeps nothing, to measure the
// render alone.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkLoginPage renders the login page with an error, hidden
// fields and a redirect target; it reports the page's and the
// stylesheet's sizes in bytes (uncompressed).
func BenchmarkLoginPage(b *testing.B) {
	p := mustNew(b, Options{})
	d := LoginData{Form: Form{Action: "/login", Error: BadCredentials,
		Hidden: []Field{{"client_id", "app"}, {"redirect_uri", "https://app.example/cb"}, {"state", "af0ifjsldkj"},
			{"code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, {"code_challenge_method", "S256"},
			{"scope", "openid profile"}, {CSRFField, "v1.1800001800.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		FormTargets: []string{"https://app.example/cb"}}, Username: "alice", Client: "Example App"}
	w := &nopWriter{h: http.Header{}}
	html := render(b, func(w *httptest.ResponseRecorder) error { return p.Login(w, http.StatusUnauthorized, d) }).Body.Len()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Login(w, http.StatusUnauthorized, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(html), "html-bytes")
	b.ReportMetric(float64(len(p.style)), "css-bytes")
}
