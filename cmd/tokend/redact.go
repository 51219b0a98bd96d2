package main

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// mask stands for a secret in a printed store URL.
const mask = "xxxxx"

// redacted is the store URL raw as it may be printed, logged or put in an
// error: with every secret in it replaced by xxxxx. The secrets are the
// userinfo's password; in a redis:// URL, a userinfo without a password
// (older clients put the password there); the value of every query
// parameter whose name says it is one (password, sslpassword, sslkey, an
// inline key with sslinline: a name containing pass, pwd, secret, token,
// key or auth); a fragment; and, in a string that is no URL (a key=value
// connection string, or a URL that does not parse), each key=value whose
// key says so and the whole userinfo. It never fails: it is the one way a
// store URL is shown.
func redacted(raw string) string {
	s, _ := redact(raw)
	return s
}

// secretParam reports a parameter or key name that names a secret.
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"pass", "pwd", "secret", "token", "key", "auth"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// redact returns raw redacted and the secrets it replaced, each as written
// in raw and decoded.
func redact(raw string) (string, []string) {
	var secrets []string
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" && v != mask && !slices.Contains(secrets, v) {
				secrets = append(secrets, v)
			}
		}
	}
	raw = maskCutPassword(raw, add)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return redactText(raw, add), secrets
	}
	if u.User != nil {
		rawUser := rawUserinfo(raw)
		name := u.User.Username()
		if pw, ok := u.User.Password(); ok {
			_, rawPW, _ := strings.Cut(rawUser, ":")
			add(pw, rawPW)
			u.User = url.UserPassword(name, mask)
		} else if name != "" && (u.Scheme == "redis" || u.Scheme == "rediss") {
			add(name, rawUser)
			u.User = url.User(mask)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			k, v, _ := strings.Cut(part, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if secretParam(name) && v != "" {
				dv, _ := url.QueryUnescape(v)
				add(v, dv)
				parts[i] = k + "=" + mask
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" {
		_, written, _ := strings.Cut(raw, "#")
		add(u.Fragment, u.EscapedFragment(), written)
		u.Fragment, u.RawFragment = mask, ""
	}
	// A secret pair inside another value (?a=b?password=…) too.
	return redactPairs(u.String(), urlEnds, add), secrets
}

// maskCutPassword masks, in a URL's text, a password written with a
// character that ends a userinfo for url.Parse ('#', '?' or '/', not
// percent-encoded, as in postgres://u:Secret#1@h/d): there the parser
// would take part of the password for a port, a path or a fragment, and
// show the rest. The userinfo is what comes before the last '@' after
// "://"; its password is what follows its first ':'. A text with no such
// password is returned as it is.
func maskCutPassword(raw string, add func(...string)) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	name, pw, ok := strings.Cut(rest[:at], ":")
	if !ok || strings.ContainsAny(name, "/?#") || !strings.ContainsAny(pw, "/?#") {
		return raw
	}
	dpw, _ := url.PathUnescape(pw)
	add(pw, dpw)
	return raw[:i+3] + name + ":" + mask + rest[at:]
}

// rawUserinfo is the userinfo of raw as written (escaped), or "".
func rawUserinfo(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		return rest[:i]
	}
	return ""
}

var (
	// urlText is the start of something like a URL.
	urlText = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// userinfoText is the userinfo of something like a URL.
	userinfoText = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@`)
	// keyText is the key= of a key=value pair, of a connection string or
	// a query.
	keyText = regexp.MustCompile(`([A-Za-z0-9_.-]+)\s*=\s*`)
)

// redactText is redact for a string that is no URL: in one that looks
// like one (scheme://…), the whole userinfo and the fragment; and the
// value of each key=value whose key names a secret.
func redactText(raw string, add func(...string)) string {
	s := raw
	if !urlText.MatchString(s) {
		return redactPairs(s, textEnds, add)
	}
	if m := userinfoText.FindStringSubmatchIndex(s); m != nil && m[5] > m[4] {
		user := s[m[4]:m[5]]
		_, pw, _ := strings.Cut(user, ":")
		dpw, _ := url.PathUnescape(pw)
		add(user, pw, dpw)
		s = s[:m[4]] + mask + s[m[5]:]
	}
	if i := strings.IndexByte(s, '#'); i >= 0 && s[i+1:] != "" {
		frag := s[i+1:]
		dfrag, _ := url.PathUnescape(frag)
		add(frag, dfrag)
		s = s[:i+1] + mask
	}
	return redactPairs(s, urlEnds, add)
}

// The characters that end a value that is not quoted: in a URL's query,
// and in a key=value connection string.
const (
	urlEnds  = " \t\n\v\f\r&;#"
	textEnds = " \t\n\v\f\r"
)

// redactPairs replaces the value of each key=value in s whose key names a
// secret: quoted ('…', with \' inside, to its closing quote or the end),
// or up to one of the characters ends. Every key= is looked at, those
// inside another value too (a=b?password=…), whatever quotes are around
// it; values that overlap are replaced together.
func redactPairs(s, ends string, add func(...string)) string {
	var b strings.Builder
	done := 0 // s[:done] is written, or masked
	open := -1
	flush := func() {
		if open >= 0 {
			v := s[open:done]
			add(v, strings.Trim(v, "'"))
			if dv, err := url.QueryUnescape(v); err == nil {
				add(dv)
			}
			b.WriteString(mask)
			open = -1
		}
	}
	for _, m := range keyText.FindAllStringSubmatchIndex(s, -1) {
		if !secretParam(s[m[2]:m[3]]) {
			continue
		}
		start, end := m[1], m[1]
		if end < len(s) && s[end] == '\'' {
			for end++; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			end = min(end+1, len(s))
		} else {
			for end < len(s) && !strings.ContainsRune(ends, rune(s[end])) {
				if s[end] == '\\' { // an escaped character (libpq: a\ b) is part of the value
					end++
				}
				end++
			}
			end = min(end, len(s))
		}
		if v := s[start:end]; v == "" || v == mask {
			continue
		}
		if open >= 0 && start <= done { // overlaps the value being masked
			done = max(done, end)
			continue
		}
		flush()
		b.WriteString(s[done:start])
		open, done = start, end
	}
	flush()
	b.WriteString(s[done:])
	return b.String()
}

// redactError is an error whose message has a store URL's secrets
// replaced; errors.Is and errors.As still see the error it stands for.
type redactError struct {
	msg string
	err error
}

func (e *redactError) Error() string { return e.msg }
func (e *redactError) Unwrap() error { return e.err }

// redactErr returns err with every secret of the store URL raw taken out
// of its message: the URL itself shown redacted, and any of its secrets
// found elsewhere (a driver's message that quotes one) replaced by
// xxxxx. nil stays nil.
//
// A URL that does not parse is said so in a message of redactErr's own:
// the parser's would quote the URL, or the bad escape in it, which may be
// a piece of the password.
func redactErr(err error, raw string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return &redactError{msg: fmt.Sprintf("store URL %q does not parse: a %% must start an escape of two hex digits (%%25 for %% itself)", redacted(raw)), err: err}
	}
	if errors.As(err, &ue) {
		return &redactError{msg: fmt.Sprintf("store URL %q does not parse: %s", redacted(raw), redactIn(ue.Err.Error(), raw)), err: err}
	}
	msg := redactIn(err.Error(), raw)
	if msg == err.Error() {
		return err
	}
	return &redactError{msg: msg, err: err}
}

// redactIn returns text with the store URL raw redacted in it, and every
// secret of raw replaced by xxxxx, the longest first.
func redactIn(text, raw string) string {
	shown, secrets := redact(raw)
	if raw != "" {
		text = strings.ReplaceAll(text, raw, shown)
	}
	// Each also as a quoted string (%q) shows it, as a parser's error
	// quotes the URL.
	for _, s := range secrets {
		if q := strconv.Quote(s); q[1:len(q)-1] != s {
			secrets = append(secrets, q[1:len(q)-1])
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, mask)
	}
	return text
}

// redactPanic re-panics, with the store URL raw's secrets taken out of
// its value, a panic met while opening the store raw names. Deferred.
func redactPanic(raw string) {
	if r := recover(); r != nil {
		panic(redactIn(fmt.Sprint(r), raw))
	}
}
