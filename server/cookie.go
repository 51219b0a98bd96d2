package server

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tokend/tokend/store"
)

// Cookie mode (store.Client.Cookie), for browser apps: the client's
// refresh token never reaches the page. Every token answer to the client
// sets it as the cookie refreshCookie instead of the JSON body's
// refresh_token:
//
//	Set-Cookie: __Host-tokend-rt=<token>; Path=/; Max-Age=<s>; HttpOnly; Secure; SameSite=Strict
//
// Max-Age is the life left to that refresh token, in whole seconds
// rounded down (lifetime.go): until the family ends if the token goes
// unused, at its idle expiry or its absolute one if sooner. A token with
// less than a second left is not set; the cookie is cleared instead. The
// __Host- prefix binds the cookie to this host and path "/"; browsers
// accept Secure cookies from http://localhost too (a secure context).
//
// A refresh_token grant of the client without a refresh_token parameter
// presents the cookie's token; a revocation without a token parameter
// revokes the cookie's family and clears the cookie, as does a refresh by
// cookie answered invalid_grant (the family has ended). Such a request must
// come from a page of the client (an Origin header among its Origins,
// checked as for any request of it) and carry "X-Tokend: 1": a header no
// form or simple request can send, so a cross-site page cannot make the
// browser spend the cookie without a preflight, which only the client's
// origins pass. A request that names its refresh token (the first
// exchange of a token the app's backend minted and handed to the page)
// is served as usual and its answer sets the cookie. A mint (POST
// /v1/tokens) is a backend's call: its answer keeps the refresh token in
// its body even for a cookie-mode client.
//
// The cookie is one per tokend host (the __Host- prefix forbids a Domain
// and any Path but "/"): give each cookie-mode app its own tokend host
// name. SameSite=Strict keeps it to pages of the same site as tokend.

// refreshCookie is the name of the cookie of cookie mode.
const refreshCookie = "__Host-tokend-rt"

// setRefreshCookie sets the cookie to token, which ends at expires, for
// an answer written at now; a token with less than a second left clears
// the cookie instead.
func setRefreshCookie(w http.ResponseWriter, token string, expires, now time.Time) {
	age := secondsLeft(expires, now)
	if age < 1 {
		clearRefreshCookie(w)
		return
	}
	w.Header().Add("Set-Cookie", refreshCookie+"="+token+"; Path=/; Max-Age="+strconv.FormatInt(age, 10)+"; HttpOnly; Secure; SameSite=Strict")
}

// clearRefreshCookie tells the browser to drop the cookie.
func clearRefreshCookie(w http.ResponseWriter) {
	w.Header().Add("Set-Cookie", refreshCookie+"=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

// cookieRequest checks the headers a request that spends the cookie must
// carry (what: "refresh" or "revocation", for the message); the Origin
// was checked against the client's by checkClientOrigin.
func cookieRequest(r *http.Request, what string) error {
	if r.Header.Get("Origin") == "" {
		return errInvalidRequest("cookie " + what + " needs the Origin header of the client's page")
	}
	if v := r.Header.Values("X-Tokend"); len(v) != 1 || v[0] != "1" {
		return errInvalidRequest("cookie " + what + " needs the X-Tokend header")
	}
	return nil
}

// cookieToken returns the refresh token in the request's cookie, or "".
func cookieToken(r *http.Request) string {
	if ck, err := r.Cookie(refreshCookie); err == nil {
		return ck.Value
	}
	return ""
}

// presentedRefreshToken returns the token a refresh_token grant presents:
// its refresh_token parameter or, for a cookie-mode client without one,
// its cookie (fromCookie).
func presentedRefreshToken(r *http.Request, c store.Client, form url.Values) (token string, fromCookie bool, err error) {
	if rt := form.Get("refresh_token"); rt != "" || !c.Cookie {
		if rt == "" {
			return "", false, errInvalidRequest("missing refresh_token")
		}
		return rt, false, nil
	}
	if err := cookieRequest(r, "refresh"); err != nil {
		return "", false, err
	}
	rt := cookieToken(r)
	if rt == "" {
		// The cookie expired with its family, or was cleared at logout:
		// the user logs in again.
		return "", false, errInvalidGrant("no refresh token cookie")
	}
	return rt, true, nil
}
