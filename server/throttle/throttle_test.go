package throttle

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testThrottler(tb testing.TB, c Config) *Throttler {
	tb.Helper()
	t, err := New(c, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// A key locks at its limit for Delay, twice as long with each further
// failure up to MaxDelay, and forgets one failure per Window/limit.
func TestFailureTableLocksAndLeaks(t *testing.T) {
	thr := testThrottler(t, Config{PerPair: 3, Window: 30 * time.Minute, Delay: time.Second, MaxDelay: 8 * time.Second})
	ft := &thr.failures
	const key = 42
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	for i := range 2 {
		if before, locked := ft.fail(key, layerPair, at(0)); before != 0 || locked {
			t.Fatalf("failure %d: locked", i+1)
		}
	}
	if before, locked := ft.fail(key, layerPair, at(0)); before != 0 || !locked {
		t.Fatal("the third failure did not lock")
	}
	wantLock := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, want := range wantLock {
		if got := time.Duration(ft.lockedFor(key, at(0))); got != want {
			t.Fatalf("lock %d: %v, want %v", i, got, want)
		}
		// A failure counted while locked says so.
		if before, locked := ft.fail(key, layerPair, at(0)); time.Duration(before) != want || locked {
			t.Fatalf("failure while locked: before %v, locked %v", before, locked)
		}
	}
	// 8 failures; one is forgotten every 10 minutes.
	if got := ft.lockedFor(key, at(10*time.Minute)); got != 0 {
		t.Fatalf("still locked after 10 minutes: %v", time.Duration(got))
	}
	if _, _ = ft.fail(key, layerPair, at(10*time.Minute)); time.Duration(ft.lockedFor(key, at(10*time.Minute))) != 8*time.Second {
		t.Fatal("8 failures (one forgotten, one new) should lock for the maximum")
	}
	if ft.lockedFor(key, at(90*time.Minute)); ft.len() != 0 {
		t.Fatalf("a key with every failure forgotten is kept: %d records", ft.len())
	}
	if _, locked := ft.fail(key, layerPair, at(90*time.Minute)); locked {
		t.Fatal("a forgotten key locked at its first failure")
	}
}

// An account's familiar sources: seen within the window, at most
// familiarSlots of them, the oldest replaced first; a fresh mark is not
// written again; other accounts never push them out.
func TestFamiliarTable(t *testing.T) {
	thr := testThrottler(t, Config{MaxEntries: 16}) // one account per shard
	ft := &thr.familiar
	ns := t0.UnixNano()
	hour := int64(time.Hour)
	if !ft.mark(1, 100, ns) || ft.mark(1, 100, ns+hour-1) || !ft.mark(1, 100, ns+hour) {
		t.Fatal("a mark is written again only after familiarRefresh")
	}
	if !ft.seen(1, 100, ns+int64(familiarFor)+hour-1) || ft.seen(1, 100, ns+int64(familiarFor)+hour) {
		t.Fatal("a source is familiar for familiarFor after its last mark")
	}
	for i := range uint64(familiarSlots) { // 100 is the oldest
		ft.mark(1, 200+i, ns+2*hour+int64(i))
	}
	if ft.seen(1, 100, ns+3*hour) || !ft.seen(1, 200, ns+3*hour) || !ft.seen(1, 200+familiarSlots-1, ns+3*hour) {
		t.Fatal("the oldest source was not the one replaced")
	}
	if ft.seen(2, 200, ns+3*hour) {
		t.Fatal("a source of one account familiar to another")
	}
	// Account 1 + 16 (same shard) pushes out account 1, the only one
	// there; but no number of marks of account 17 pushes out its own
	// newest sources beyond familiarSlots.
	for i := range uint64(1000) {
		ft.mark(17, i, ns+4*hour+int64(i))
	}
	if ft.len() != 1 || !ft.seen(17, 999, ns+5*hour) || ft.seen(17, 999-familiarSlots, ns+5*hour) {
		t.Fatalf("%d accounts; want account 17 with its last %d sources", ft.len(), familiarSlots)
	}
}

func TestThrottleKeys(t *testing.T) {
	seed := maphash.MakeSeed()
	a1, a2 := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	b := netip.MustParseAddr("2001:db8:1:3::1")
	k := func(kd Kind, l layer, src netip.Addr, acct string) uint64 { return throttleKey(seed, kd, l, src, acct) }
	switch {
	case k(Password, layerSource, a1, "") != k(Password, layerSource, a2, ""):
		t.Error("one /64, two sources")
	case k(Password, layerSource, a1, "") == k(Password, layerSource, b, ""):
		t.Error("two /64s, one source")
	case k(Password, layerSource, a1, "") == k(ClientSecret, layerSource, a1, ""):
		t.Error("passwords and secrets share a source key")
	case k(Password, layerAccount, a1, "alice") != k(Password, layerAccount, b, "alice"):
		t.Error("the account key depends on the source")
	case k(Password, layerPair, a1, "alice") == k(Password, layerPair, b, "alice"):
		t.Error("the pair key ignores the source")
	case k(Password, layerSource, a1, "x") != k(Password, layerSource, a1, "y"):
		t.Error("the source key depends on the account")
	case k(ClientSecret, layerSource, netip.MustParseAddr("192.0.2.1"), "") == k(ClientSecret, layerSource, netip.MustParseAddr("192.0.2.2"), ""):
		t.Error("two IPv4 addresses, one source")
	}
}

// The tables never hold more than MaxEntries, however many sources and
// usernames an attacker sprays, and an established lock survives the
// spray: the sprayed one-failure records are forgotten first.
func TestThrottleMemoryBound(t *testing.T) {
	const maxEntries = 1024
	thr := testThrottler(t, Config{MaxEntries: maxEntries})
	rng := rand.New(rand.NewPCG(1, 2))
	randomAddr := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
	}
	now := t0
	// A distributed guesser locks alice, and one source locks itself.
	for range 25 {
		a, _ := thr.Begin(t.Context(), Password, randomAddr(), "alice", now)
		a.End(t.Context(), Failed, now)
	}
	greedy := netip.MustParseAddr("198.51.100.1")
	for i := range 5 {
		a, wait := thr.Begin(t.Context(), ClientSecret, greedy, fmt.Sprint("client", i), now)
		if wait > 0 {
			t.Fatal("locked too early")
		}
		a.End(t.Context(), Failed, now)
	}
	for i := range 100_000 {
		a, _ := thr.Begin(t.Context(), Password, randomAddr(), fmt.Sprint("user", i), now)
		a.End(t.Context(), Failed, now)
		s, _ := thr.Begin(t.Context(), Password, randomAddr(), fmt.Sprint("other", i), now)
		s.End(t.Context(), OK, now) // a familiar source each
	}
	if n := thr.failures.len(); n > maxEntries {
		t.Fatalf("%d failure records, bound %d", n, maxEntries)
	}
	if n := thr.familiar.len(); n > maxEntries {
		t.Fatalf("%d accounts' familiar sources, bound %d", n, maxEntries)
	}
	if _, wait := thr.Begin(t.Context(), Password, randomAddr(), "alice", now); wait == 0 {
		t.Fatal("alice's lock was flushed out by the spray")
	}
	for i := range 45 { // 50 in all: the source's limit
		a, wait := thr.Begin(t.Context(), ClientSecret, greedy, fmt.Sprint("other", i), now)
		if wait > 0 {
			t.Fatalf("failure %d locked", 5+i)
		}
		a.End(t.Context(), Failed, now)
	}
	if _, wait := thr.Begin(t.Context(), ClientSecret, greedy, "y", now); wait == 0 {
		t.Fatal("the greedy source is not locked")
	}
}

// The figure behind Throttle.MaxEntries' "under 250 bytes for one of each".
func TestThrottleEntrySize(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a full table")
	}
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	thr := testThrottler(t, Config{MaxEntries: n})
	ns := t0.UnixNano()
	for i := range uint64(n) {
		thr.failures.fail(i*0x9E3779B97F4A7C15, layerPair, ns)
		for j := range uint64(familiarSlots) {
			thr.familiar.mark(i*0x9E3779B97F4A7C15, j, ns)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per failure record and full account of familiar sources together (%d and %d)", per, thr.failures.len(), thr.familiar.len())
	if per > 250 {
		t.Errorf("%.0f bytes per entry pair", per)
	}
	runtime.KeepAlive(thr)
}

// The cost on every authentication of a confidential client: the checks
// and the success, with the tables empty and full of an attacker's
// failures (which lock the app's account for passwords, not for
// secrets: no account layer).
func BenchmarkThrottleClientSecret(b *testing.B) {
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("table full=%v", full), func(b *testing.B) {
			thr := testThrottler(b, Config{})
			now := t0
			src := netip.MustParseAddr("192.0.2.7")
			rng := rand.New(rand.NewPCG(1, 2))
			randomAddr := func() netip.Addr {
				return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
			}
			a, _ := thr.Begin(b.Context(), ClientSecret, src, "app", now) // the app's usual source
			a.End(b.Context(), OK, now)
			if full { // an attacker's guesses from everywhere fill the failure table
				for range defaultMaxEntries {
					a, _ := thr.Begin(b.Context(), ClientSecret, randomAddr(), "app", now)
					a.End(b.Context(), Failed, now)
				}
			}
			if _, wait := thr.Begin(b.Context(), ClientSecret, src, "app", now); wait > 0 {
				b.Fatal("the app's own source must wait")
			}
			b.ReportAllocs()
			for b.Loop() {
				a, _ := thr.Begin(b.Context(), ClientSecret, src, "app", now)
				a.End(b.Context(), OK, now)
			}
		})
	}
}

// No flood of successes elsewhere makes a user's usual source unfamiliar
// (one instance, the default table size): 300,000 clients' successes and
// 300,000 of another user's, each from an IPv6 /64 of its own, then a
// guesser locks alice's account; alice from home still gets in.
func TestFamiliarSurvivesFloods(t *testing.T) {
	thr := testThrottler(t, Config{})
	now := t0
	home := netip.MustParseAddr("2001:db8:aaaa:1::7")
	ok := func(k Kind, src netip.Addr, account string) {
		t.Helper()
		a, wait := thr.Begin(t.Context(), k, src, account, now)
		if wait > 0 {
			t.Fatalf("%s from %s: wait %v", account, src, wait)
		}
		a.End(t.Context(), OK, now)
	}
	ok(Password, home, "alice")
	for i := range 300_000 {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i), 1, 15: 1})
		ok(ClientSecret, src, "cc")
		ok(Password, src, "mallory")
	}
	for i := range 25 {
		a, _ := thr.Begin(t.Context(), Password, netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), "alice", now)
		a.End(t.Context(), Failed, now)
	}
	if _, wait := thr.Begin(t.Context(), Password, netip.MustParseAddr("198.51.100.1"), "alice", now); wait == 0 {
		t.Fatal("alice's account is not locked")
	}
	ok(Password, home, "alice")
}
