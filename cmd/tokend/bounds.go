package main

import (
	"fmt"
	"math"
	"time"

	"github.com/tokend/tokend/server"
)

// Ranges of the settings that become durations and counts, checked after
// parsing and before any arithmetic (settings.checkBounds, and `tokend
// keys rotate` for its two durations). Beyond being positive
// (checkIssuer):
//   - every lifetime and wait is at least a second: tokens, Retry-After
//     and max-age count whole seconds; the intervals (gc-interval,
//     key-reload) are at least 10ms, as a ticker of nanoseconds would
//     keep a core and the store busy for nothing;
//   - access-ttl is at most server.MaxAccessTTL, like a mint's ttl;
//   - key-reload and jwks-max-age are at most 24h each, so that their
//     sum, how far ahead `tokend keys rotate` sets a new key's NotBefore,
//     cannot overflow (two durations of 292 years would make it negative
//     and the key sign at once);
//   - throttle-window and throttle-max-delay are at most 24h;
//   - hash-memory (MiB) is at most 1 TiB, so that it fits a byte count;
//     hash-queue is at most 100,000 logins; the throttle's limits are at
//     most 1,000,000 failures (server.Throttle's bound).
var durationRanges = map[string][2]time.Duration{
	"access-ttl":         {time.Second, server.MaxAccessTTL},
	"refresh-idle":       {time.Second, 0},
	"refresh-absolute":   {time.Second, 0},
	"gc-interval":        {10 * time.Millisecond, 0},
	"key-reload":         {10 * time.Millisecond, 24 * time.Hour},
	"jwks-max-age":       {time.Second, 24 * time.Hour},
	"throttle-window":    {time.Second, 24 * time.Hour},
	"throttle-max-delay": {time.Second, 24 * time.Hour},
	"clock-skew":         {time.Nanosecond, 24 * time.Hour},
	"store-timeout":      {time.Millisecond, 0},
}

// countRanges are the ranges of the settings that are counts.
var countRanges = map[string][2]int{
	"hash-memory":      {1, 1 << 20},
	"hash-queue":       {math.MinInt, 100_000}, // negative: no queue
	"throttle-source":  {1, 1_000_000},
	"throttle-pair":    {1, 1_000_000},
	"throttle-account": {1, 1_000_000},
}

// checkDuration checks the duration setting name against its range
// (durationRanges); the message shows the range and a valid value.
func checkDuration(name string, d, example time.Duration) error {
	r := durationRanges[name]
	switch {
	case r[1] > 0 && (d < r[0] || d > r[1]):
		return fmt.Errorf("%s must be from %s to %s, such as %s, not %s", name, fmtDuration(r[0]), fmtDuration(r[1]), fmtDuration(example), fmtDuration(d))
	case d < r[0]:
		return fmt.Errorf("%s must be at least %s, such as %s, not %s", name, fmtDuration(r[0]), fmtDuration(example), fmtDuration(d))
	}
	return nil
}

// durationSetting is a setting that is a duration, with its default as
// an example for messages.
type durationSetting struct {
	name      string
	got, want time.Duration
}

// durations lists the settings that are durations, for checkIssuer
// (positive) and checkBounds (durationRanges).
func (s *settings) durations() []durationSetting {
	def := defaultSettings()
	return []durationSetting{
		{"access-ttl", s.AccessTTL, def.AccessTTL}, {"refresh-idle", s.RefreshIdle, def.RefreshIdle},
		{"refresh-absolute", s.RefreshAbsolute, def.RefreshAbsolute}, {"gc-interval", s.GCInterval, def.GCInterval},
		{"key-reload", s.KeyReload, def.KeyReload}, {"jwks-max-age", s.JWKSMaxAge, def.JWKSMaxAge},
		{"store-timeout", s.StoreTimeout, def.StoreTimeout},
		{"throttle-window", s.ThrottleWindow, def.ThrottleWindow}, {"throttle-max-delay", s.ThrottleMaxDelay, def.ThrottleMaxDelay},
	}
}

// checkBounds checks the settings against durationRanges and
// countRanges.
func (s *settings) checkBounds() error {
	for _, d := range s.durations() {
		if err := checkDuration(d.name, d.got, d.want); err != nil {
			return err
		}
	}
	def := defaultSettings()
	for _, n := range []struct {
		name      string
		got, want int
	}{
		{"hash-memory", s.HashMemory, def.HashMemory}, {"hash-queue", s.HashQueue, def.HashQueue},
		{"throttle-source", s.ThrottleSource, def.ThrottleSource}, {"throttle-pair", s.ThrottlePair, def.ThrottlePair},
		{"throttle-account", s.ThrottleAccount, def.ThrottleAccount},
	} {
		if r := countRanges[n.name]; n.got < r[0] || n.got > r[1] {
			lo := fmt.Sprint(r[0])
			if n.name == "hash-queue" {
				lo = "any negative (no queue)"
			}
			return fmt.Errorf("%s must be from %s to %d, such as %d, not %d", n.name, lo, r[1], n.want, n.got)
		}
	}
	return nil
}
