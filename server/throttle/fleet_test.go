package throttle

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// fakeCounter is a store.FailureCounter and store.FamiliarSources in
// memory, on a clock of its own (the store's), counting like the real
// ones (GCRA) and its calls.
type fakeCounter struct {
	mu    sync.Mutex
	now   time.Time
	tat   map[string]time.Time
	calls int // of CountFailures
	keys  []string
	err   error
	// familiar sources: the end of each (account, source)'s mark, and the
	// calls of MarkFamiliar and Familiar.
	marks     map[[2]string]time.Time
	markCalls int
	askCalls  int
}

func (f *fakeCounter) MarkFamiliar(_ context.Context, account, source string, keep time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markCalls++
	if f.err != nil {
		return f.err
	}
	if f.marks == nil {
		f.marks = map[[2]string]time.Time{}
	}
	f.marks[[2]string{account, source}] = f.now.Add(keep)
	return nil
}

func (f *fakeCounter) Familiar(_ context.Context, account, source string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.askCalls++
	if f.err != nil {
		return false, f.err
	}
	return f.marks[[2]string{account, source}].After(f.now), nil
}

func (f *fakeCounter) CountFailures(_ context.Context, fs []store.Failure) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := make([]int64, len(fs))
	for i, x := range fs {
		f.keys = append(f.keys, x.Key)
		tat := f.tat[x.Key]
		if tat.Before(f.now) {
			tat = f.now
		}
		tat = tat.Add(x.Forget)
		f.tat[x.Key] = tat
		out[i] = int64((tat.Sub(f.now) + x.Forget - 1) / x.Forget)
	}
	return out, nil
}

// ringKeys are the fleet keys of a ring of server secrets, the current
// one's first (the server derives them from its secrets; here they are
// the secrets themselves).
type ringKeys [][]byte

func (k ringKeys) FleetKey() []byte    { return k[0] }
func (k ringKeys) FleetKeys() [][]byte { return k }

func fleetThrottler(t *testing.T, c Config, fc store.FailureCounter, secret string, log *slog.Logger) *Throttler {
	t.Helper()
	thr, err := New(c, NewFleet(fc, fc.(store.FamiliarSources), ringKeys{[]byte(secret)}, log), log)
	if err != nil {
		t.Fatal(err)
	}
	return thr
}

// Two instances sharing a counter: failures spread over both lock the
// pair on both after the limit plus one (N-1), with the lock of the
// fleet's count; each instance alone would have allowed 3 each.
func TestFleetPasswordFailuresSpread(t *testing.T) {
	fc := &fakeCounter{now: t0, tat: map[string]time.Time{}}
	c := Config{PerPair: 3, PerAccount: 100, PerSource: 100, Delay: time.Second, MaxDelay: time.Hour}
	a := fleetThrottler(t, c, fc, "shared secret", slog.New(slog.DiscardHandler))
	b := fleetThrottler(t, c, fc, "shared secret", slog.New(slog.DiscardHandler))
	src := netip.MustParseAddr("203.0.113.9")
	try := func(thr *Throttler) time.Duration {
		att, wait := thr.Begin(t.Context(), Password, src, "Alice", t0)
		if wait == 0 {
			att.End(t.Context(), Failed, t0)
		}
		return wait
	}
	for i, thr := range []*Throttler{a, b, a} {
		if w := try(thr); w != 0 {
			t.Fatalf("failure %d: wait %v", i+1, w)
		}
	}
	if w := try(a); w != time.Second { // a counted the fleet's third
		t.Fatalf("a after 3 failures: wait %v, want 1s", w)
	}
	if w := try(b); w != 0 { // b learns at its own next failure
		t.Fatalf("b's second failure (the fleet's 4th): wait %v", w)
	}
	if w := try(b); w != 2*time.Second {
		t.Fatalf("b after the fleet's 4th failure: wait %v, want 2s", w)
	}
	if w := try(a); w != time.Second {
		t.Fatalf("a: wait %v, want 1s", w)
	}
	if fc.calls != 4 {
		t.Fatalf("%d store calls for 4 failures", fc.calls)
	}
	// The locks pass; the next failure anywhere counts the fleet's 5th
	// (both instances hold 4 now) and locks for 4s.
	later := t0.Add(2 * time.Second)
	fc.now = later
	att, w := a.Begin(t.Context(), Password, src, "alice", later)
	if w != 0 {
		t.Fatalf("after the locks: wait %v", w)
	}
	att.End(t.Context(), Failed, later)
	if _, w := a.Begin(t.Context(), Password, src, "alice", later); w != 4*time.Second {
		t.Fatalf("after the fleet's 5th: wait %v, want 4s", w)
	}
	if _, w := b.Begin(t.Context(), Password, src, "alice", later); w != 0 {
		t.Fatalf("b, not told yet: wait %v", w)
	}
}

// Successes and locked attempts never call the store; failures call it
// once each, with every key of the attempt.
func TestFleetStoreOnFailuresOnly(t *testing.T) {
	fc := &fakeCounter{now: t0, tat: map[string]time.Time{}}
	thr := fleetThrottler(t, Config{PerPair: 1, PerSource: 2}, fc, "shared secret", slog.New(slog.DiscardHandler))
	src := netip.MustParseAddr("192.0.2.1")
	for range 100 {
		a, _ := thr.Begin(t.Context(), ClientSecret, src, "app", t0)
		a.End(t.Context(), OK, t0)
		a, _ = thr.Begin(t.Context(), Password, src, "alice", t0)
		a.End(t.Context(), OK, t0)
	}
	if fc.calls != 0 || fc.askCalls != 0 {
		t.Fatalf("successes counted %d times and asked %d", fc.calls, fc.askCalls)
	}
	// A password's success marks its source once an hour; a client's never.
	if fc.markCalls != 1 {
		t.Fatalf("100 logins of alice from one source marked it %d times, want 1", fc.markCalls)
	}
	a, _ := thr.Begin(t.Context(), Password, src, "alice", t0.Add(time.Hour))
	a.End(t.Context(), OK, t0.Add(time.Hour))
	if fc.markCalls != 2 {
		t.Fatalf("a login an hour later: %d marks, want 2", fc.markCalls)
	}
	a, _ = thr.Begin(t.Context(), Password, src, "bob", t0)
	a.End(t.Context(), Failed, t0)
	if _, w := thr.Begin(t.Context(), Password, src, "bob", t0); w == 0 {
		t.Fatal("not locked")
	}
	if fc.calls != 1 || len(fc.keys) != 3 {
		t.Fatalf("one failure: %d calls, %d keys; want 1, 3", fc.calls, len(fc.keys))
	}
	other := netip.MustParseAddr("192.0.2.2")
	a, _ = thr.Begin(t.Context(), ClientSecret, other, "app", t0)
	a.End(t.Context(), Failed, t0)
	if fc.calls != 2 || len(fc.keys) != 3+2 {
		t.Fatalf("a client secret's failure: %d calls, %d keys; want 2, 5 (no account key)", fc.calls, len(fc.keys))
	}
}

// The store's keys are 16 opaque bytes: the same on every instance with
// one secret, another under another secret, never the username or the
// address in clear; and the layers of one attempt differ.
func TestFleetKeysOpaque(t *testing.T) {
	src := netip.MustParseAddr("2001:db8::1")
	keysOf := func(secret string, addr netip.Addr) []string {
		fc := &fakeCounter{now: t0, tat: map[string]time.Time{}}
		thr := fleetThrottler(t, Config{}, fc, secret, slog.New(slog.DiscardHandler))
		a, _ := thr.Begin(t.Context(), Password, addr, "alice@example.com", t0)
		a.End(t.Context(), Failed, t0)
		return fc.keys
	}
	k1, k2 := keysOf("secret one", src), keysOf("secret one", netip.MustParseAddr("2001:db8::2")) // same /64
	other := keysOf("secret two", src)
	seen := map[string]bool{}
	for i, k := range k1 {
		if len(k) != 16 || strings.Contains(k, "alice") || bytes.Contains([]byte(k), src.AsSlice()[:8]) {
			t.Errorf("key %d: %x", i, k)
		}
		if k != k2[i] || k == other[i] || seen[k] {
			t.Errorf("key %d: %x, same /64 %x, other secret %x", i, k, k2[i], other[i])
		}
		seen[k] = true
	}
}

// A store that fails while counting changes nothing for the request:
// the instance counts alone, and says so at most once a minute.
func TestFleetStoreDown(t *testing.T) {
	fc := &fakeCounter{now: t0, tat: map[string]time.Time{}, err: store.ErrUnavailable}
	var logs bytes.Buffer
	thr := fleetThrottler(t, Config{PerPair: 2}, fc, "s", slog.New(slog.NewTextHandler(&logs, nil)))
	src := netip.MustParseAddr("192.0.2.1")
	fail := func(now time.Time) {
		a, w := thr.Begin(t.Context(), Password, src, "alice", now)
		if w != 0 {
			t.Fatalf("locked at %v", now)
		}
		a.End(t.Context(), Failed, now)
	}
	fail(t0)
	fail(t0.Add(30 * time.Second))
	if _, w := thr.Begin(t.Context(), Password, src, "alice", t0.Add(30*time.Second)); w != time.Second {
		t.Fatalf("local lock: %v, want 1s", w)
	}
	if n := strings.Count(logs.String(), "cannot count a failure in the store"); n != 1 {
		t.Fatalf("%d log lines within a minute, want 1:\n%s", n, logs.String())
	}
	fail(t0.Add(time.Minute + 2*time.Second)) // after the 2s lock
	if n := strings.Count(logs.String(), "cannot count a failure in the store"); n != 2 {
		t.Fatalf("%d log lines after a minute, want 2", n)
	}
	if !errors.Is(fc.err, store.ErrUnavailable) || fc.calls != 3 {
		t.Fatalf("calls %d", fc.calls)
	}
}

// A fleet count below the local one changes nothing; one above it locks
// as the count-th failure would.
func TestFailureTableRaise(t *testing.T) {
	thr := testThrottler(t, Config{PerPair: 3, Delay: time.Second, MaxDelay: time.Minute})
	ft := &thr.failures
	now := t0.UnixNano()
	ft.fail(1, layerPair, now)
	ft.fail(1, layerPair, now)
	if ft.raise(1, layerPair, 1, now) || ft.lockedFor(1, now) != 0 {
		t.Fatal("a lower count locked")
	}
	if !ft.raise(1, layerPair, 5, now) || time.Duration(ft.lockedFor(1, now)) != 4*time.Second {
		t.Fatalf("count 5 of limit 3: %v, want 4s", time.Duration(ft.lockedFor(1, now)))
	}
	if ft.raise(1, layerPair, 5, now) {
		t.Fatal("a locked key locked again")
	}
	if !ft.raise(2, layerPair, 3, now) || time.Duration(ft.lockedFor(2, now)) != time.Second {
		t.Fatal("an unknown key raised to its limit is not locked")
	}
}

// A user's familiar source holds across instances and restarts: alice
// logs in from home through a; a guesser spread over many addresses and
// both instances locks her account on both; alice from home gets through
// b (which asks the store, once) and through c, an instance started after
// the lock (which learns the lock from the fleet's count at its first
// failure); a new source of alice waits.
func TestFleetFamiliarAcrossInstances(t *testing.T) {
	fc := &fakeCounter{now: t0, tat: map[string]time.Time{}}
	c := Config{PerAccount: 20, Delay: time.Second, MaxDelay: time.Hour}
	log := slog.New(slog.DiscardHandler)
	a, b := fleetThrottler(t, c, fc, "shared", log), fleetThrottler(t, c, fc, "shared", log)
	home := netip.MustParseAddr("10.1.1.2")
	login := func(thr *Throttler, src netip.Addr, r Outcome) time.Duration {
		t.Helper()
		att, w := thr.Begin(t.Context(), Password, src, "alice", t0)
		if w == 0 {
			att.End(t.Context(), r, t0)
		}
		return w
	}
	if w := login(a, home, OK); w != 0 {
		t.Fatal(w)
	}
	for i := range 24 {
		login([]*Throttler{a, b}[i%2], netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Failed)
	}
	stranger := netip.MustParseAddr("203.0.113.50")
	for _, thr := range []*Throttler{a, b} {
		if w := login(thr, stranger, Failed); w == 0 {
			t.Fatal("the account is not locked")
		}
	}
	asked := fc.askCalls
	for i, thr := range []*Throttler{a, b, b} {
		if w := login(thr, home, OK); w != 0 {
			t.Fatalf("login %d from home: wait %v", i+1, w)
		}
	}
	if fc.askCalls-asked != 1 {
		t.Fatalf("b asked the store %d times, want once (then it remembers)", fc.askCalls-asked)
	}
	// A new instance (a restart) knows nothing; one guess tells it of
	// the fleet's lock, and alice's home is still familiar.
	restarted := fleetThrottler(t, c, fc, "shared", log)
	if w := login(restarted, stranger, Failed); w != 0 {
		t.Fatal("a new instance locked before any failure")
	}
	if w := login(restarted, netip.MustParseAddr("203.0.113.51"), Failed); w == 0 {
		t.Fatal("the restarted instance did not learn the fleet's lock")
	}
	if w := login(restarted, home, OK); w != 0 {
		t.Fatalf("alice from home through the restarted instance: wait %v", w)
	}
	if w := login(restarted, netip.MustParseAddr("10.1.1.3"), OK); w == 0 {
		t.Fatal("a source new to alice went through a locked account")
	}
	// A store that cannot answer leaves the lock on.
	fc.err = store.ErrUnavailable
	fresh := fleetThrottler(t, c, fc, "shared", log)
	fc.err = nil
	login(fresh, stranger, Failed) // learns the lock
	fc.err = store.ErrUnavailable
	if w := login(fresh, home, OK); w == 0 {
		t.Fatal("a store that cannot answer let a locked account through")
	}
}

// A source marked familiar under the server secret before a rotation is
// still found after the new secret takes over, until the old one is
// retired: alice's home stays familiar across `tokend secrets rotate`.
func TestFleetFamiliarAcrossSecretRotation(t *testing.T) {
	fc := &fakeCounter{now: t0, tat: map[string]time.Time{}}
	c := Config{PerAccount: 3, Delay: time.Second, MaxDelay: time.Hour}
	log := slog.New(slog.DiscardHandler)
	old := bytes.Repeat([]byte{1}, 32)
	a := fleetThrottler(t, c, fc, string(old), log)
	home := netip.MustParseAddr("10.1.1.2")
	att, _ := a.Begin(t.Context(), Password, home, "alice", t0)
	att.End(t.Context(), OK, t0)

	rotated := ringKeys{bytes.Repeat([]byte{2}, 32), old} // the new secret took over
	b := fleetThrottler(t, c, fc, string(old), log)
	b.fleet.keys = rotated
	for i := range 4 {
		att, _ := b.Begin(t.Context(), Password, netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), "alice", t0)
		att.End(t.Context(), Failed, t0)
	}
	if _, w := b.Begin(t.Context(), Password, netip.MustParseAddr("198.51.100.1"), "alice", t0); w == 0 {
		t.Fatal("the account is not locked")
	}
	if _, w := b.Begin(t.Context(), Password, home, "alice", t0); w != 0 {
		t.Fatalf("alice's home, marked under the old secret: wait %v", w)
	}
	// Once the old secret is retired, marks under it are gone.
	cNew := fleetThrottler(t, c, fc, string(old), log)
	cNew.fleet.keys = rotated[:1]
	att, _ = cNew.Begin(t.Context(), Password, netip.MustParseAddr("203.0.113.99"), "alice", t0)
	att.End(t.Context(), Failed, t0)
	if _, w := cNew.Begin(t.Context(), Password, home, "alice", t0); w == 0 {
		t.Fatal("a mark under a retired secret still found")
	}
}
