package main

import (
	"io"
	"net/netip"
	"slices"
	"testing"

	"time"

	"github.com/spf13/pflag"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := parseTrustedProxies(" 10.0.0.0/8, 192.0.2.7,,2001:db8::/32 , ::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := parseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "fe80::1%eth0", "10.0.0.1/8/8"} {
		if _, err := parseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestThrottleSettings(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := map[string]string{"TOKEND_TRUSTED_PROXIES": "10.0.0.0/8", "TOKEND_THROTTLE_PAIR": "3"}
	s, err := loadSettings(fs, []string{"--throttle-account", "40", "--throttle-max-delay", "1h"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.TrustedProxies != "10.0.0.0/8" || s.ThrottlePair != 3 || s.ThrottleAccount != 40 || s.ThrottleMaxDelay != time.Hour ||
		s.ThrottleSource != 50 || s.ThrottleWindow != time.Hour { // server.Throttle's defaults
		t.Fatalf("settings %+v", s)
	}
}

// A bad --trusted-proxies is a usage error, found before anything starts.
func TestServeBadTrustedProxies(t *testing.T) {
	var out, errOut stringsBuilder
	if code := run(t.Context(), []string{"serve", "--store", "memory:", "--addr", "127.0.0.1:0", "--trusted-proxies", "proxy.internal"}, newReader(""), &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, errOut.String())
	}
	if !contains(errOut.String(), "trusted-proxies") {
		t.Fatalf("stderr %q does not name the setting", errOut.String())
	}
}
