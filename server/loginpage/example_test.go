package loginpage_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokend/tokend/server/loginpage"
)

// A login form: a GET renders it with a CSRF token and the pending
// request's parameters; its POST is checked before anything else.
func Example() {
	pages, err := loginpage.New(loginpage.Options{})
	if err != nil {
		panic(err)
	}
	csrf, err := loginpage.NewCSRF(bytes.Repeat([]byte("s"), 32), &loginpage.CSRFOptions{Insecure: true})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+loginpage.DefaultStylePath, pages.StyleHandler())
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		_ = pages.Login(w, http.StatusOK, loginpage.LoginData{Form: loginpage.Form{
			Action:      "/login",
			Hidden:      []loginpage.Field{{Name: "client_id", Value: "app"}, {Name: loginpage.CSRFField, Value: csrf.Token(w, r, "login")}},
			FormTargets: []string{"https://app.example/callback"},
		}})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		err := csrf.Check(r, "login", r.PostFormValue(loginpage.CSRFField))
		switch {
		case errors.Is(err, loginpage.ErrFormExpired):
			fmt.Println("form expired")
		case err != nil:
			fmt.Println("refused:", err)
		default:
			fmt.Println("check the password of", r.PostFormValue("username"))
		}
	})

	get := httptest.NewRecorder()
	mux.ServeHTTP(get, httptest.NewRequest("GET", "/login", nil))
	fmt.Println(get.Code, get.Header().Get("Content-Security-Policy"))
	body := get.Body.String()
	i := strings.Index(body, `name="csrf_token" value="`) + len(`name="csrf_token" value="`)
	token := body[i : i+strings.IndexByte(body[i:], '"')]

	post := httptest.NewRequest("POST", "/login", strings.NewReader("username=alice&password=pw&csrf_token="+token))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range get.Result().Cookies() {
		post.AddCookie(c)
	}
	mux.ServeHTTP(httptest.NewRecorder(), post)
	// A cross-site POST does not carry the SameSite=Lax cookie.
	post = httptest.NewRequest("POST", "/login", strings.NewReader("username=alice&password=pw&csrf_token="+token))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	mux.ServeHTTP(httptest.NewRecorder(), post)
	// Output:
	// 200 default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' https://app.example; frame-ancestors 'none'; base-uri 'none'
	// check the password of alice
	// refused: loginpage: CSRF token refused
}
