package loginpage

import (
	"net/http"
	"strconv"
	"time"
)

// ErrorKind names what went wrong with a form, for the page to say in a
// fixed, generic text (Message) that reveals nothing of the detail:
// never which of username and password was wrong, nor whether the user
// exists. The zero value is no error. Templates may compare it with the
// names below ({{if eq .Error "too_many_attempts"}}) to word their own
// text.
type ErrorKind string

// The error kinds of a form.
const (
	NoError ErrorKind = ""
	// BadCredentials: the username and password do not log anyone in.
	BadCredentials ErrorKind = "bad_credentials"
	// TooManyAttempts: the throttle refuses; RetryAfter says for how long.
	TooManyAttempts ErrorKind = "too_many_attempts"
	// Busy: the server cannot check a password now (the hashing gate).
	Busy ErrorKind = "busy"
	// FormExpired: the form's CSRF token is older than its life
	// (ErrFormExpired).
	FormExpired ErrorKind = "form_expired"
	// BadForm: the form's CSRF token was refused (ErrCSRF), or the form
	// was otherwise malformed. Any kind this package does not know is
	// rendered as BadForm.
	BadForm ErrorKind = "bad_form"
)

// message is the fixed text of an error kind, with retryAfter in the
// one that takes it.
func message(k ErrorKind, retryAfter time.Duration) string {
	switch k {
	case NoError:
		return ""
	case BadCredentials:
		return "The username or password is incorrect."
	case TooManyAttempts:
		s := retrySeconds(retryAfter)
		switch {
		case s <= 0:
			return "Too many attempts. Please try again later."
		case s == 1:
			return "Too many attempts. Please try again in 1 second."
		default:
			return "Too many attempts. Please try again in " + strconv.Itoa(s) + " seconds."
		}
	case Busy:
		return "The server is busy. Please try again in a moment."
	case FormExpired:
		return "This page has expired. Please try again."
	default:
		return "The form could not be verified. Please try again."
	}
}

// retrySeconds is d in whole seconds, rounded up.
func retrySeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Field is a hidden form field: a value the page carries back unchanged
// to the server, such as the pending authorization request's parameters
// and the CSRF token (CSRFField).
type Field struct {
	Name, Value string
}

// Form is what every page with a form has in common.
type Form struct {
	// Action is the form's URL, on this server ("/login"; POST).
	Action string
	// Hidden are the form's hidden fields, in order.
	Hidden []Field
	// Error is what went wrong with the last submission (NoError: none).
	Error ErrorKind
	// RetryAfter is how long until the user may try again, for
	// TooManyAttempts; rounded up to seconds in the message.
	RetryAfter time.Duration
	// FormTargets are the redirect URIs the answer to the form may
	// redirect to (the client's redirect URI), for the page's CSP
	// form-action (Headers).
	FormTargets []string
}

// formView is Form as the templates see it.
type formView struct {
	StyleURL   string
	Action     string
	Hidden     []Field
	Error      ErrorKind
	Message    string
	RetryAfter int
}

func (p *Pages) formView(f Form) formView {
	return formView{StyleURL: p.styleURL, Action: f.Action, Hidden: f.Hidden, Error: f.Error,
		Message: message(f.Error, f.RetryAfter), RetryAfter: retrySeconds(f.RetryAfter)}
}

// LoginData is the login page's. The form posts username, password and
// the hidden fields to Action.
type LoginData struct {
	Form
	// Username prefills the username field (the caller decides; after a
	// failed attempt, the username typed). The password is never
	// prefilled.
	Username string
	// Client is the display name of the client asking, "" if none.
	Client string
}

// ConsentData is the consent page's. The form posts the hidden fields
// and decision=allow or decision=deny to Action.
type ConsentData struct {
	Form
	// Client is the display name of the client asking.
	Client string
	// User is who is logged in, "" not to show.
	User string
	// Scopes are the scopes the client asks for, as shown.
	Scopes []string
}

// ErrorData is the error page's: a title and a message, and no link or
// redirect anywhere.
type ErrorData struct {
	Title, Message string
}

// LogoutData is the logout confirmation's. Its form posts the hidden
// fields to Action.
type LogoutData struct {
	Form
	// Client is the display name of the client asking, "" if none.
	Client string
	// User is who is logged in, "" not to show.
	User string
}

// LoggedOutData is the logged-out page's.
type LoggedOutData struct {
	// Client is the display name of the client that asked for the
	// logout, "" if none.
	Client string
}

type loginView struct {
	formView
	Username, Client string
}

type consentView struct {
	formView
	Client, User string
	Scopes       []string
}

type errorView struct {
	StyleURL, Title, Message string
}

type logoutView struct {
	formView
	Client, User string
}

type loggedOutView struct {
	StyleURL, Client string
}

// Login renders the login page with status (200 to show it; 401 after
// bad credentials, 429 too many attempts, 503 busy, 403 a refused form,
// as the caller sees fit). A render error writes nothing: the caller
// answers 500.
func (p *Pages) Login(w http.ResponseWriter, status int, d LoginData) error {
	return p.render(w, status, fileLogin, loginView{p.formView(d.Form), d.Username, d.Client}, d.FormTargets)
}

// Consent renders the consent page with status.
func (p *Pages) Consent(w http.ResponseWriter, status int, d ConsentData) error {
	return p.render(w, status, fileConsent, consentView{p.formView(d.Form), d.Client, d.User, d.Scopes}, d.FormTargets)
}

// Error renders the error page with status.
func (p *Pages) Error(w http.ResponseWriter, status int, d ErrorData) error {
	return p.render(w, status, fileError, errorView{p.styleURL, d.Title, d.Message}, nil)
}

// LogoutConfirm renders the logout confirmation with status.
func (p *Pages) LogoutConfirm(w http.ResponseWriter, status int, d LogoutData) error {
	return p.render(w, status, fileLogout, logoutView{p.formView(d.Form), d.Client, d.User}, d.FormTargets)
}

// LoggedOut renders the logged-out page with status.
func (p *Pages) LoggedOut(w http.ResponseWriter, status int, d LoggedOutData) error {
	return p.render(w, status, fileLoggedOut, loggedOutView{p.styleURL, d.Client}, nil)
}

// sampleData is the data New renders each template with, every field
// set, with or without an error.
func sampleData(name string, withError bool) any {
	f := formView{StyleURL: DefaultStylePath, Action: "/login",
		Hidden: []Field{{"client_id", "app"}, {CSRFField, "v1.1.x"}}}
	if withError {
		f.Error, f.Message, f.RetryAfter = TooManyAttempts, message(TooManyAttempts, time.Minute), 60
	}
	switch name {
	case fileLogin:
		return loginView{f, "alice", "Example App"}
	case fileConsent:
		return consentView{f, "Example App", "alice", []string{"openid", "profile"}}
	case fileLogout:
		return logoutView{f, "Example App", "alice"}
	case fileLoggedOut:
		return loggedOutView{f.StyleURL, "Example App"}
	default:
		return errorView{f.StyleURL, "Something went wrong", "The request was not valid."}
	}
}
