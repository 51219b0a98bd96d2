package bearer

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

var tokenCases = []struct {
	header string
	want   string
	err    error
}{
	{"Bearer abc", "abc", nil},
	{"bearer abc", "abc", nil},
	{"BEARER   mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM", nil},
	{"Bearer a+b/c~d==", "a+b/c~d==", nil},
	{"", "", ErrNoToken},
	{"Basic dXNlcjpwYXNz", "", ErrNoToken},
	{"Bearerabc", "", ErrNoToken},
	{"Bear", "", ErrNoToken},
	{"Bearer", "", ErrMalformed},
	{"Bearer ", "", ErrMalformed},
	{"Bearer\tabc", "", ErrMalformed}, // tabs are not SP: rejected
	{"Bearer \tabc", "", ErrMalformed},
	{"Bearer,abc", "", ErrMalformed},
	{"Bearer-x abc", "", ErrNoToken}, // scheme "Bearer-x"
	{"Bearer abc=", "abc=", nil},
	{"Bearer abc==x", "", ErrMalformed},
	{"Bearer ==", "", ErrMalformed},
	{"Bearer a\x00", "", ErrMalformed},
	{"Bearer é", "", ErrMalformed},
	{" Bearer abc", "", ErrNoToken}, // net/http trims OWS before we see it
	{"Bearer a b", "", ErrMalformed},
	{"Bearer a=b", "", ErrMalformed},
	{"Bearer =", "", ErrMalformed},
	{"Bearer abc ", "", ErrMalformed},
	{"Bearer ab\"c", "", ErrMalformed},
}

func TestToken(t *testing.T) {
	for _, tc := range tokenCases {
		got, err := Token(tc.header)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", tc.header, got, err, tc.want, tc.err)
		}
	}
}

func TestErrorsHideTheHeader(t *testing.T) {
	const secret = "s3cr3t-token-value"
	for _, h := range []string{
		"Bearer " + secret + " x", "Bearer " + secret + "\"", "Bearer\t" + secret,
		"Bearer  " + secret + "==x", "Basic " + secret, secret,
	} {
		if _, err := Token(h); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Token error %v reveals the header", err)
		}
	}
	for _, h := range []string{
		`Bearer error="` + secret, `Bearer ` + secret + ` x`, `Bearer x=` + secret + `;`,
		`Bearer x="` + secret + "\x01\"", secret + `;`,
	} {
		if _, err := ParseChallenges(h); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("ParseChallenges error %v reveals the header", err)
		}
	}
}

func TestTokenAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = Token("Bearer abcdef") }); n != 0 {
		t.Errorf("Token allocates %v times", n)
	}
}

var challengeCases = []struct {
	header string
	want   string // schemes and params, rendered by render
	bad    bool
}{
	{`Bearer`, `Bearer{}`, false},
	{`Bearer realm="api"`, `Bearer{realm=api}`, false},
	{`Bearer realm="api", error="invalid_token", error_description="The access token expired"`,
		`Bearer{error=invalid_token error_description=The access token expired realm=api}`, false},
	{`Basic realm="x", Bearer realm="api", error="insufficient_scope", scope="a b"`,
		`Basic{realm=x} Bearer{error=insufficient_scope realm=api scope=a b}`, false},
	{`Bearer error=invalid_token`, `Bearer{error=invalid_token}`, false},
	{`Bearer ERROR = "x"`, `Bearer{error=x}`, false},
	{`Bearer realm="a \"quoted\" \\ value, with comma"`, `Bearer{realm=a "quoted" \ value, with comma}`, false},
	{`Negotiate abc123==, Bearer`, `Negotiate{=abc123==} Bearer{}`, false},
	{`, Bearer realm="x",, ,Basic`, `Bearer{realm=x} Basic{}`, false},
	{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`,
		`Newauth{realm=apps title=Login to "apps" type=1} Basic{realm=simple}`, false},
	{``, ``, false},
	{`Bearer realm="unterminated`, ``, true},
	{`Bearer realm=`, `Bearer{=realm=}`, false}, // a token68 with padding
	{`Bearer realm`, `Bearer{=realm}`, false},
	{`Bearer a b`, ``, true},
	{`Bearer realm="x" error="y"`, ``, true},
	{`"quoted"`, ``, true},
	{`Bearer realm="ctl` + "\x01" + `"`, ``, true},
	{`Bearer=x`, ``, true},
	{`Bearer , Basic`, `Bearer{} Basic{}`, false},
	{`Bearer realm="x", Basic abc==`, `Bearer{realm=x} Basic{=abc==}`, false},
	{"Bearer\trealm=\"x\",\terror=\"y\"", `Bearer{error=y realm=x}`, false}, // tabs as whitespace
	{`Bearer realm=""`, `Bearer{realm=}`, false},
	{`Bearer realm="\\"`, `Bearer{realm=\}`, false},
	{`Bearer realm="x", realm="y"`, ``, true}, // repeated parameter
	{`Bearer realm="x", REALM="y"`, ``, true},
	{`Bearer realm="x\"`, ``, true},
	{`Bearer realm="x\`, ``, true},
	{"Bearer realm=\"x\\\x01\"", ``, true},
	{`Bearer realm="x";`, ``, true},
	{`Bearer realm="x" , error=`, ``, true},
	{`Bearer error=invalid"token"`, ``, true},
	{`Bearer realm=="x"`, ``, true},
	{`Bearer a=b=c`, ``, true},
	{`Negotiate abc, realm="x"`, ``, true}, // token68 ends its challenge
	{`Bearer abc=, realm=x`, ``, true},
}

func render(cs []Challenge) string {
	var parts []string
	for _, c := range cs {
		var ps []string
		for _, k := range slices.Sorted(maps.Keys(c.Params)) {
			ps = append(ps, k+"="+c.Params[k])
		}
		parts = append(parts, c.Scheme+"{"+strings.Join(ps, " ")+"}")
	}
	return strings.Join(parts, " ")
}

func TestParseChallenges(t *testing.T) {
	for _, tc := range challengeCases {
		cs, err := ParseChallenges(tc.header)
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseChallenges(%q) = %v, %v; want ErrMalformed", tc.header, render(cs), err)
			}
			continue
		}
		if err != nil || render(cs) != tc.want {
			t.Errorf("ParseChallenges(%q) = %q, %v; want %q", tc.header, render(cs), err, tc.want)
		}
	}
}

func TestParseChallengesLimits(t *testing.T) {
	if cs, err := ParseChallenges(strings.Repeat("Basic, ", 32)); err != nil || len(cs) != 32 {
		t.Errorf("32 challenges: %d, %v", len(cs), err)
	}
	if _, err := ParseChallenges(strings.Repeat("Basic, ", 33)); !errors.Is(err, ErrMalformed) {
		t.Errorf("33 challenges: %v", err)
	}
	var params []string
	for i := range 33 {
		params = append(params, fmt.Sprintf("p%d=v", i))
	}
	if cs, err := ParseChallenges("Bearer " + strings.Join(params[:32], ", ")); err != nil || len(cs[0].Params) != 32 {
		t.Errorf("32 params: %v", err)
	}
	if _, err := ParseChallenges("Bearer " + strings.Join(params, ", ")); !errors.Is(err, ErrMalformed) {
		t.Errorf("33 params: %v", err)
	}
}

func TestErrorCode(t *testing.T) {
	if got := (Challenge{Scheme: "Bearer"}).ErrorCode(); got != "" {
		t.Errorf("ErrorCode of a challenge without params = %q", got)
	}
	cs, err := ParseChallenges(`Bearer error="insufficient_scope", scope="read"`)
	if err != nil || cs[0].ErrorCode() != "insufficient_scope" {
		t.Errorf("ErrorCode = %v, %v", cs, err)
	}
}

func TestBearerError(t *testing.T) {
	cases := []struct {
		values []string
		want   string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{`Basic realm="x"`}, ""},
		{[]string{`Basic realm="x", Bearer realm="api", error="invalid_token", error_description="The access token expired"`}, "invalid_token"},
		{[]string{`Basic realm="x"`, `Bearer error="insufficient_scope"`}, "insufficient_scope"},
		{[]string{`Basic realm="x"`, `Negotiate abc==`, `BEARER Error="invalid_token"`}, "invalid_token"},
		{[]string{`"broken`, `bearer error=invalid_token`}, "invalid_token"},
		{[]string{`Bearer error="invalid_token`, `Bearer error="insufficient_scope"`}, "insufficient_scope"},
		{[]string{`Bearer realm="api"`, `Bearer error="invalid_token"`}, ""}, // the first Bearer challenge decides
		{[]string{`Bearer realm="api"`}, ""},
		{[]string{`Bearer abc==`}, ""},
	}
	for _, tc := range cases {
		if got := BearerError(tc.values); got != tc.want {
			t.Errorf("BearerError(%q) = %q, want %q", tc.values, got, tc.want)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, tc := range tokenCases {
		f.Add(tc.header)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := Token(h)
		if err != nil {
			if tok != "" || !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Token(%q) = %q, %v", h, tok, err)
			}
			return
		}
		if !strings.HasSuffix(h, tok) || !isB64Token(tok) ||
			!strings.EqualFold(h[:7], "bearer ") || strings.TrimLeft(h[7:], " ") != tok {
			t.Fatalf("Token(%q) = %q", h, tok)
		}
	})
}

func FuzzParseChallenges(f *testing.F) {
	for _, tc := range challengeCases {
		f.Add(tc.header)
	}
	f.Fuzz(func(t *testing.T, h string) {
		cs, err := ParseChallenges(h)
		if err != nil {
			if cs != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseChallenges(%q) = %v, %v", h, cs, err)
			}
			return
		}
		if len(cs) > maxChallenges {
			t.Fatalf("%d challenges", len(cs))
		}
		for _, c := range cs {
			if c.Scheme == "" || strings.IndexFunc(c.Scheme, func(r rune) bool { return r > 0x7f || !isTChar(byte(r)) }) >= 0 ||
				len(c.Params) > maxParams || c.Params != nil && len(c.Params) == 0 {
				t.Fatalf("bad challenge %+v", c)
			}
			for k, v := range c.Params {
				if k == "" && (len(c.Params) != 1 || !isB64Token(v)) || k != strings.ToLower(k) {
					t.Fatalf("bad params %q", c.Params)
				}
			}
			if !strings.Contains(h, c.Scheme) {
				t.Fatalf("scheme %q not in the header", c.Scheme)
			}
		}
		_ = BearerError([]string{h, h})
	})
}

func BenchmarkToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Token("Bearer mF_9.B5f-4.1JqM"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseChallenges(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChallenges(`Bearer realm="api", error="invalid_token", error_description="expired"`); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFromHeader(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   string
		err    error
	}{
		{"none", nil, "", ErrNoToken},
		{"one", []string{"Bearer abc"}, "abc", nil},
		{"another scheme", []string{"Basic eA=="}, "", ErrNoToken},
		{"two bearer", []string{"Bearer abc", "Bearer def"}, "", ErrMalformed},
		{"bearer and basic", []string{"Basic eA==", "Bearer abc"}, "", ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Authorization", v)
			}
			got, err := FromHeader(h)
			if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("FromHeader(%q) = %q, %v; want %q, %v", tc.values, got, err, tc.want, tc.err)
			}
		})
	}
}
