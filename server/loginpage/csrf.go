package loginpage

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CSRFField is the name of the hidden form field that carries the token
// Token returns; the default templates hold it among the hidden fields
// the caller passes (Field{CSRFField, token}).
const CSRFField = "csrf_token"

// DefaultFormLife is how long a form's CSRF token stays valid when
// CSRFOptions.FormLife is zero.
const DefaultFormLife = 30 * time.Minute

// MinSecretLen is the shortest server secret NewCSRF accepts, in bytes.
const MinSecretLen = 32

// ErrCSRF reports a form whose CSRF token does not match its browser's
// cookie and purpose: missing, malformed, tampered, of another browser or
// of another form. The page should say only that the form could not be
// verified (BadForm).
var ErrCSRF = errors.New("loginpage: CSRF token refused")

// ErrFormExpired reports a form whose token was genuine but is older than
// the form's life (FormExpired). errors.Is(err, ErrCSRF) holds for it
// too.
var ErrFormExpired = fmt.Errorf("%w: form expired", ErrCSRF)

// errShortSecret refuses a server secret shorter than MinSecretLen.
var errShortSecret = fmt.Errorf("loginpage: CSRF secret shorter than %d bytes", MinSecretLen)

// Cookie names: the __Host- prefix (RFC 6265bis §4.1.3.2) binds the
// cookie to this host and path "/" and needs Secure, so plain HTTP (for
// development on localhost) uses a name without it.
const (
	cookieSecure = "__Host-tokend-csrf"
	cookiePlain  = "tokend-csrf"
)

const (
	tokenVersion = "v1"
	browserLen   = 32                                        // random bytes of the cookie
	browserChars = (browserLen*8 + 5) / 6                    // its unpadded base64url length: 43
	macChars     = (sha256.Size*8 + 5) / 6                   // 43
	maxTokenLen  = len(tokenVersion) + 1 + 20 + 1 + macChars // version.expiry.mac
)

// CSRFOptions configure a CSRF. The zero value is for an https issuer,
// the wall clock and DefaultFormLife.
type CSRFOptions struct {
	// Insecure is for an issuer on plain http, which is only for
	// development on localhost: the cookie is then named tokend-csrf and
	// has no Secure attribute. Otherwise it is __Host-tokend-csrf,
	// Secure.
	Insecure bool
	// FormLife is how long a token stays valid after Token made it
	// (0: DefaultFormLife).
	FormLife time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// CSRF makes and checks the tokens that tie a form to the browser that
// loaded it (OWASP's signed double-submit cookie): each browser gets a
// random cookie (HttpOnly, SameSite=Lax, Path=/), and a form's token is
// an HMAC-SHA256, under a key derived from the server secret, of that
// cookie, the form's purpose and the token's expiry, which the token
// carries in clear:
//
//	v1.<expiry, Unix seconds>.<base64url HMAC>
//
// A token passes only with the cookie of the browser it was made for,
// for the purpose it was made for ("login" does not pass for "consent"),
// and until its expiry. Any instance holding the same secret checks the
// tokens of any other. A CSRF is safe for concurrent use.
type CSRF struct {
	key      []byte
	insecure bool
	life     time.Duration
	now      func() time.Time
}

// NewCSRF returns a CSRF keyed by secret (at least MinSecretLen bytes of
// the server's secret; the key is derived from it, so the secret may
// serve other uses too). opts may be nil.
func NewCSRF(secret []byte, opts *CSRFOptions) (*CSRF, error) {
	if len(secret) < MinSecretLen {
		return nil, errShortSecret
	}
	var o CSRFOptions
	if opts != nil {
		o = *opts
	}
	if o.FormLife <= 0 {
		o.FormLife = DefaultFormLife
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tokend loginpage CSRF key v1"))
	return &CSRF{key: m.Sum(nil), insecure: o.Insecure, life: o.FormLife, now: o.Now}, nil
}

// CookieName is the name of the browser's CSRF cookie.
func (c *CSRF) CookieName() string {
	if c.insecure {
		return cookiePlain
	}
	return cookieSecure
}

// Token returns the value of the hidden field (CSRFField) of a form for
// purpose, made for the browser of r. If r has no valid CSRF cookie,
// Token makes one and sets it on w (once per response: a second call on
// the same w reuses it), so call it before writing the header.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request, purpose string) string {
	browser := c.browser(r)
	if browser == "" {
		browser = c.setCookie(w)
	}
	exp := c.now().Add(c.life).Unix()
	return tokenVersion + "." + strconv.FormatInt(exp, 10) + "." + c.mac(browser, purpose, exp)
}

// Check verifies value, a form's CSRFField, for purpose against the
// cookie of r, comparing in constant time. It returns nil, ErrFormExpired
// for a genuine token past its expiry, or ErrCSRF.
func (c *CSRF) Check(r *http.Request, purpose, value string) error {
	exp, mac, ok := parseToken(value)
	if !ok {
		return ErrCSRF
	}
	browser := c.browser(r)
	if browser == "" {
		return ErrCSRF
	}
	if !hmac.Equal([]byte(mac), []byte(c.mac(browser, purpose, exp))) {
		return ErrCSRF
	}
	if !c.now().Before(time.Unix(exp, 0)) {
		return ErrFormExpired
	}
	return nil
}

// browser returns r's cookie value if it has the shape Token gives it,
// else "".
func (c *CSRF) browser(r *http.Request) string {
	ck, err := r.Cookie(c.CookieName())
	if err != nil || len(ck.Value) != browserChars {
		return ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(ck.Value); err != nil {
		return ""
	}
	return ck.Value
}

// setCookie sets a new browser cookie on w, unless w already sets one,
// and returns its value.
func (c *CSRF) setCookie(w http.ResponseWriter) string {
	name := c.CookieName()
	for _, line := range w.Header().Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(line); err == nil && ck.Name == name && len(ck.Value) == browserChars {
			return ck.Value
		}
	}
	b := make([]byte, browserLen)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	v := base64.RawURLEncoding.EncodeToString(b)
	ck := &http.Cookie{Name: name, Value: v, Path: "/", HttpOnly: true,
		Secure: !c.insecure, SameSite: http.SameSiteLaxMode}
	w.Header().Add("Set-Cookie", ck.String())
	return v
}

// mac is the unpadded base64url HMAC of a token. Its fields cannot run
// into each other: the browser value is base64url of fixed length and
// the expiry decimal, both before the purpose.
func (c *CSRF) mac(browser, purpose string, exp int64) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(tokenVersion + "|" + strconv.FormatInt(exp, 10) + "|" + browser + "|" + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// parseToken splits a token into its expiry and MAC, checking their
// shape: "v1", a decimal Unix time without sign or leading zero, and 43
// base64url characters.
func parseToken(v string) (exp int64, mac string, ok bool) {
	if len(v) > maxTokenLen {
		return 0, "", false
	}
	ver, rest, ok1 := strings.Cut(v, ".")
	e, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || ver != tokenVersion || len(mac) != macChars {
		return 0, "", false
	}
	if e == "" || e[0] == '0' || len(e) > 19 {
		return 0, "", false
	}
	for i := 0; i < len(e); i++ {
		if !isDigit(e[i]) {
			return 0, "", false
		}
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return 0, "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(mac); err != nil {
		return 0, "", false
	}
	return exp, mac, true
}
