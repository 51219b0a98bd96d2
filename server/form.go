package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tokend/tokend/internal/oauth"
)

// maxFormBytes bounds request bodies (ServeHTTP bounds every body with it).
const maxFormBytes = 16 << 10

// readForm reads an application/x-www-form-urlencoded POST body strictly: the
// content type must match, the body must fit maxFormBytes, it must parse, and
// no parameter may repeat (RFC 6749 §3.1, §3.2). Query parameters are
// ignored: credentials never travel in URLs. It writes nothing: another
// method than POST is a 405 whose Error says Allow: POST.
func readForm(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Status: http.StatusMethodNotAllowed, Code: oauth.InvalidRequest, Description: "method must be POST", Allow: http.MethodPost}
	}
	ct, err := singleHeader(r, "Content-Type")
	if err != nil {
		return nil, err
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: oauth.InvalidRequest, Description: "request body too large"}
		}
		return nil, errInvalidRequest("cannot read request body")
	}
	return parseForm(string(body))
}

// parseForm parses a urlencoded body and rejects repeated parameters,
// but for resource, which RFC 8707 §2 lets repeat.
func parseForm(body string) (url.Values, error) {
	v, err := url.ParseQuery(body)
	if err != nil {
		return nil, errInvalidRequest("malformed form body")
	}
	for k, vs := range v {
		if len(vs) > 1 && k != "resource" {
			return nil, errInvalidRequest("parameter " + quoteParam(k) + " repeated")
		}
	}
	return v, nil
}

// quoteParam names a parameter in an error description, safely: a name is
// never a secret, but it may be junk, so only a short printable prefix is
// shown: its first 32 bytes, in ASCII, a letter beyond ASCII as a JSON
// escape ("\u017fub" for "ſub": names that fold onto others must be
// told apart), and a control character, a quote, a backslash or a byte
// that is not UTF-8 as "?".
func quoteParam(k string) string {
	const max = 32
	out := make([]byte, 0, len(k)+2)
	out = append(out, '"')
	for i := 0; i < len(k) && i < max; {
		r, n := utf8.DecodeRuneInString(k[i:])
		switch {
		case r >= 0x20 && r <= 0x7e && r != '"' && r != '\\':
			out = append(out, byte(r))
		case r > 0x7e && r != utf8.RuneError && unicode.IsGraphic(r):
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		default:
			out = append(out, '?')
		}
		i += n
	}
	return string(append(out, '"'))
}

// singleHeader returns the value of a header that must appear at most
// once. Repeated, its meaning is ambiguous (which Authorization, which
// Content-Type?), and proxies and servers may pick different ones: the
// request is refused with 400 invalid_request (RFC 6749 §5.2).
func singleHeader(r *http.Request, name string) (string, error) {
	switch v := r.Header.Values(name); len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", errInvalidRequest("more than one " + name + " header")
}
