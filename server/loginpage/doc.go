// Package loginpage is the HTML of tokend's authorization server: the
// login, consent, logout-confirmation, logged-out and error pages, their
// stylesheet, their security headers and the CSRF tokens of their forms.
// It holds no flow logic: the authorization endpoint decides which page
// to show, with which data and status; this package renders and
// protects it.
//
//	pages, err := loginpage.New(loginpage.Options{Dir: templatesDir}) // "" for the defaults
//	csrf, err := loginpage.NewCSRF(secret, &loginpage.CSRFOptions{Insecure: issuerIsHTTP})
//	mux.Handle("GET /login/style.css", pages.StyleHandler())
//
//	// GET /oauth/authorize, no session:
//	tok := csrf.Token(w, r, "login")
//	err = pages.Login(w, http.StatusOK, loginpage.LoginData{
//		Form: loginpage.Form{
//			Action:      "/login",
//			Hidden:      append(requestFields, loginpage.Field{Name: loginpage.CSRFField, Value: tok}),
//			FormTargets: []string{redirectURI}, // the POST's answer redirects there
//		},
//		Client: client.Name,
//	})
//
//	// POST /login:
//	switch err := csrf.Check(r, "login", r.PostFormValue(loginpage.CSRFField)); {
//	case errors.Is(err, loginpage.ErrFormExpired): // render again with Error: FormExpired
//	case err != nil: // render again with Error: BadForm
//	}
//
// Every page is server-rendered from html/template, with no JavaScript
// and nothing from another origin: one stylesheet, served by tokend
// itself (StyleHandler, at Options.StylePath, linked with its content
// hash so that it may be cached for a year). Each render sets the same
// headers (Headers): a Content-Security-Policy of default-src 'none',
// frame-ancestors 'none' and a form-action of 'self' and the caller's
// redirect targets, X-Frame-Options DENY, Referrer-Policy no-referrer and
// Cache-Control no-store. The default templates label every input
// (<label for>), give the browser autocomplete hints (username,
// current-password), focus the first empty field, announce an error in a
// role="alert" paragraph before the form that the inputs refer to
// (aria-describedby), and use real submit buttons; the stylesheet keeps a
// visible focus outline and a contrast of at least 4.5:1.
//
// A form's error is a kind (ErrorKind), never a caller's text: the page
// says a fixed, generic sentence for it, which tells nothing of which
// part was wrong or whether the user exists. The username appears only
// as the caller's prefill (LoginData.Username); the password never.
//
// # Templates: the operators' contract
//
// New loads the embedded defaults, then, from Options.Dir
// (`tokend serve --templates DIR`), any of these files, each replacing
// the default of its name; other files there are ignored:
//
//	layout.html      the frame of every page (defines "layout", "alert", "hidden")
//	login.html       consent.html   error.html   logout.html   logged_out.html
//	style.css        served by StyleHandler
//
// Each page is parsed together with layout.html and executed by its file
// name; the defaults define "title" and "main" and then call
// {{template "layout" .}}, which calls them back, but a page may be
// whole HTML without the layout. New executes every page with sample
// data, with and without an error, so that a template that does not
// parse or execute stops the server at start with an error naming the
// file. Templates are html/template: what they print is escaped for its
// context. Each page receives these fields:
//
//	every page       .StyleURL    string  the stylesheet's URL (path?v=hash)
//
//	pages with a form (login, consent, logout):
//	                 .Action      string  the form's URL; the form must POST there
//	                 .Hidden      []Field hidden fields (.Name, .Value) to put in the
//	                                      form unchanged, the CSRF token among them
//	                 .Error       string  the error kind: "" (none), "bad_credentials",
//	                                      "too_many_attempts", "busy", "form_expired",
//	                                      "bad_form"
//	                 .Message     string  the fixed English text of .Error ("" if none)
//	                 .RetryAfter  int     seconds to wait, for "too_many_attempts" (0:
//	                                      unknown)
//
//	login.html       .Username    string  the username to prefill ("" for none)
//	                 .Client      string  the display name of the client ("" if none)
//	                 the form posts the fields username and password
//
//	consent.html     .Client      string  the display name of the client asking
//	                 .User        string  who is logged in ("" not to show)
//	                 .Scopes      []string the scopes asked for
//	                 the form posts decision=allow or decision=deny (the
//	                 submit buttons' name and value)
//
//	logout.html      .Client      string  the client asking to log out ("" if none)
//	                 .User        string  who is logged in ("" not to show)
//
//	logged_out.html  .Client      string  the client that asked ("" if none)
//
//	error.html       .Title       string  a short title
//	                 .Message     string  a sentence saying what went wrong
//
// A template must not add scripts, inline styles or resources from
// elsewhere: the Content-Security-Policy refuses them. Images and fonts
// may come from tokend's own origin (img-src 'self'), which this package
// does not serve.
//
// # CSRF
//
// CSRF ties each form to the browser that loaded it and to the form's
// purpose, with an expiry (DefaultFormLife): see CSRF. The token goes in
// the hidden field CSRFField; its cookie is __Host-tokend-csrf (Secure)
// for an https issuer, tokend-csrf for plain http on localhost.
package loginpage
