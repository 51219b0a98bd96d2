package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// bench --grant authorization_code against the in-process server: its
// client has the redirect URI and its user logs in on the real login
// page; every level reports exchanges and rotations, without errors.
func TestBenchCodes(t *testing.T) {
	for _, scope := range []string{"", "openid"} {
		var out, errOut strings.Builder
		args := []string{"bench", "--grant", "authorization_code", "--clients", "2", "--duration", "100ms"}
		if scope != "" {
			args = append(args, "--scope", scope)
		}
		if code := run(t.Context(), args, nil, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("output:\n%s", out.String())
		}
		// clients exchanges exchanges/s p50 p99 max authorize-p50 authorize-p99 errors rotations/s p50 p99 errors ratio
		f := regexp.MustCompile(`\S+`).FindAllString(lines[2], -1)
		if len(f) != 14 || f[0] != "2" || f[8] != "0" || f[12] != "0" {
			t.Fatalf("row %q", lines[2])
		}
		if n, err := strconv.Atoi(f[1]); err != nil || n < 2 {
			t.Fatalf("%s exchanges in row %q, want at least one per client", f[1], lines[2])
		}
	}
}

// --scope is for the code flow, which runs on one instance.
func TestBenchCodesFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--scope", "openid"},
		{"bench", "--grant", "authorization_code", "--instances", "2"},
		{"bench", "--grant", "authorization_code", "--throttle", "off,on"},
		{"bench", "--grant", "implicit"},
	} {
		var out, errOut strings.Builder
		if code := run(t.Context(), args, nil, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errOut.String())
		}
	}
}
