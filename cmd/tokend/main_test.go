package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cases := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"version"}, 0, "tokend ", ""},
		{[]string{"help"}, 0, "Usage:\n  tokend <command>", ""},
		{nil, 2, "", "Usage:\n  tokend <command>"},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.errOut) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
}
