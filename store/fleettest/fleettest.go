// Package fleettest is the conformance suite of the state that the
// instances of a fleet share through a store: store.FailureCounter and
// store.Leaser. Each test gets two handles on one store (two Opens of one
// schema or prefix, as two processes would have) and a function that
// ages the shared state, so that expiry is tested exactly, without
// waiting for the database's clock.
package fleettest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// Handles is what a backend gives each test.
type Handles[T any] struct {
	A, B T
	// Age moves every time of the shared state (failure counts' tats,
	// leases' ends) d into the past, as if the store's clock had moved d
	// forward.
	Age func(t *testing.T, d time.Duration)
}

// RunFailureCounter tests a FailureCounter; open returns fresh handles.
func RunFailureCounter(t *testing.T, open func(t *testing.T) Handles[store.FailureCounter]) {
	t.Run("AcrossHandles", func(t *testing.T) { testCountsAcrossHandles(t, open(t)) })
	t.Run("Forgets", func(t *testing.T) { testCountsForget(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testCountsConcurrent(t, open(t)) })
	t.Run("Invalid", func(t *testing.T) { testCountsInvalid(t, open(t)) })
}

// forgetEach is the Forget of the failures the FailureCounter tests count.
const forgetEach = 10 * time.Minute

// failureKeys returns the two failures the FailureCounter tests count; k1's
// key holds bytes outside UTF-8.
func failureKeys() (k1, k2 store.Failure) {
	return store.Failure{Key: "\x00k1\xff", Forget: forgetEach}, store.Failure{Key: "k2", Forget: forgetEach}
}

// countFailures counts fs on c, failing t on an error, and returns the
// counts.
func countFailures(t *testing.T, c store.FailureCounter, fs ...store.Failure) []int64 {
	t.Helper()
	got, err := c.CountFailures(t.Context(), fs)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// testCountsAcrossHandles checks that counts made through either handle
// add up to one count per key.
func testCountsAcrossHandles(t *testing.T, h Handles[store.FailureCounter]) {
	k1, k2 := failureKeys()
	for i, step := range []struct {
		c    store.FailureCounter
		fs   []store.Failure
		want []int64
	}{
		{h.A, []store.Failure{k1}, []int64{1}},
		{h.B, []store.Failure{k1, k2}, []int64{2, 1}},
		{h.A, []store.Failure{k2, k1}, []int64{2, 3}},
		{h.B, []store.Failure{k1}, []int64{4}},
	} {
		if got := countFailures(t, step.c, step.fs...); !slices.Equal(got, step.want) {
			t.Fatalf("step %d: counts %v, want %v", i, got, step.want)
		}
	}
}

// testCountsForget checks that a count forgets one failure per Forget,
// rounding what is left up.
func testCountsForget(t *testing.T, h Handles[store.FailureCounter]) {
	k1, k2 := failureKeys()
	for want := range int64(3) {
		if got := countFailures(t, h.A, k1)[0]; got != want+1 {
			t.Fatalf("failure %d: count %d", want+1, got)
		}
	}
	// 3 failures, 2.5 of them forgotten: 1 left (ceil), plus this one.
	h.Age(t, 25*time.Minute)
	if got := countFailures(t, h.B, k1)[0]; got != 2 {
		t.Fatalf("after 25m: count %d, want 2", got)
	}
	h.Age(t, 2*time.Hour) // all forgotten
	if got := countFailures(t, h.A, k1, k2); !slices.Equal(got, []int64{1, 1}) {
		t.Fatalf("after 2h: counts %v, want [1 1]", got)
	}
}

// testCountsConcurrent checks that no count is lost when both handles
// count the same keys at once.
func testCountsConcurrent(t *testing.T, h Handles[store.FailureCounter]) {
	k1, k2 := failureKeys()
	const n = 20
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		c := h.A
		if i%2 == 1 {
			c = h.B
		}
		go func() {
			_, err := c.CountFailures(context.WithoutCancel(t.Context()), []store.Failure{k2, k1})
			errs <- err
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := countFailures(t, h.A, k1, k2); !slices.Equal(got, []int64{2*n + 1, 2*n + 1}) {
		t.Fatalf("after %d concurrent counts: %v", 2*n, got)
	}
}

// testCountsInvalid checks that a count of a repeated key, an empty or
// too long key, or a zero Forget fails.
func testCountsInvalid(t *testing.T, h Handles[store.FailureCounter]) {
	k1, _ := failureKeys()
	for _, fs := range [][]store.Failure{
		{k1, k1},
		{{Key: "", Forget: forgetEach}},
		{{Key: "k", Forget: 0}},
		{{Key: string(make([]byte, 65)), Forget: forgetEach}},
	} {
		if _, err := h.A.CountFailures(t.Context(), fs); err == nil {
			t.Errorf("CountFailures(%q): no error", fs)
		}
	}
}

// RunLeaser tests a Leaser; open returns fresh handles.
func RunLeaser(t *testing.T, open func(t *testing.T) Handles[store.Leaser]) {
	lease := func(t *testing.T, l store.Leaser, name, holder string, want bool) {
		t.Helper()
		held, err := l.Lease(t.Context(), name, holder, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if held != want {
			t.Fatalf("Lease(%s, %s): held %v, want %v", name, holder, held, want)
		}
	}
	t.Run("HolderRenewsOthersWait", func(t *testing.T) {
		h := open(t)
		lease(t, h.A, "gc", "a", true)
		lease(t, h.B, "gc", "b", false)
		lease(t, h.A, "gc", "a", true) // renewed, from either handle
		lease(t, h.B, "gc", "a", true)
		lease(t, h.B, "other", "b", true) // names are apart
		// Ages leave 10 s of the minute to the real time the steps take
		// on a loaded machine.
		h.Age(t, 50*time.Second)
		lease(t, h.B, "gc", "b", false)
		lease(t, h.A, "gc", "a", true) // renewed for a minute from now
		h.Age(t, 50*time.Second)
		lease(t, h.B, "gc", "b", false)
		h.Age(t, 11*time.Second) // expired
		lease(t, h.B, "gc", "b", true)
		lease(t, h.A, "gc", "a", false)
	})
	t.Run("Release", func(t *testing.T) {
		h := open(t)
		lease(t, h.A, "gc", "a", true)
		if err := h.B.Release(t.Context(), "gc", "b"); err != nil { // not b's: nothing
			t.Fatal(err)
		}
		lease(t, h.B, "gc", "b", false)
		if err := h.A.Release(t.Context(), "gc", "a"); err != nil {
			t.Fatal(err)
		}
		lease(t, h.B, "gc", "b", true)
		lease(t, h.A, "gc", "a", false)
		if err := h.A.Release(t.Context(), "none", "a"); err != nil {
			t.Fatal(err)
		}
	})
	// The one test that waits for the store's own clock: a short lease
	// ends by itself.
	t.Run("ExpiresOnStoreClock", func(t *testing.T) {
		h := open(t)
		held, err := h.A.Lease(t.Context(), "gc", "a", 300*time.Millisecond)
		if err != nil || !held {
			t.Fatalf("Lease: %v, %v", held, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		poll := time.NewTicker(20 * time.Millisecond)
		defer poll.Stop()
		for {
			held, err := h.B.Lease(t.Context(), "gc", "b", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if held {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a lease of 300ms still held after 10s")
			}
			<-poll.C
		}
		lease(t, h.A, "gc", "a", false)
	})
	t.Run("Invalid", func(t *testing.T) {
		h := open(t)
		if _, err := h.A.Lease(t.Context(), "gc", "a", 0); err == nil {
			t.Error("Lease with ttl 0: no error")
		}
	})
}

// RunFamiliarSources tests a FamiliarSources; open returns fresh handles.
// Age must move the ends of marks too.
func RunFamiliarSources(t *testing.T, open func(t *testing.T) Handles[store.FamiliarSources]) {
	const keep = 30 * 24 * time.Hour
	mark := func(t *testing.T, f store.FamiliarSources, account, source string) {
		t.Helper()
		if err := f.MarkFamiliar(t.Context(), account, source, keep); err != nil {
			t.Fatal(err)
		}
	}
	familiar := func(t *testing.T, f store.FamiliarSources, account, source string, want bool) {
		t.Helper()
		got, err := f.Familiar(t.Context(), account, source)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Familiar(%q, %q) = %v, want %v", account, source, got, want)
		}
	}
	t.Run("AcrossHandles", func(t *testing.T) {
		h := open(t)
		mark(t, h.A, "alice", "\x00home\xff")
		familiar(t, h.B, "alice", "\x00home\xff", true)
		familiar(t, h.B, "alice", "elsewhere", false)
		familiar(t, h.A, "bob", "\x00home\xff", false)
	})
	t.Run("LastsKeep", func(t *testing.T) {
		h := open(t)
		mark(t, h.A, "alice", "home")
		h.Age(t, keep-time.Minute)
		familiar(t, h.B, "alice", "home", true)
		mark(t, h.B, "alice", "home") // a new mark lasts keep from now
		h.Age(t, keep-time.Minute)
		familiar(t, h.A, "alice", "home", true)
		h.Age(t, 2*time.Minute)
		familiar(t, h.A, "alice", "home", false)
	})
	t.Run("PerAccountNewestKept", func(t *testing.T) {
		h := open(t)
		src := func(i int) string { return "src" + string(rune('a'+i)) }
		for i := range store.FamiliarPerAccount + 2 {
			mark(t, []store.FamiliarSources{h.A, h.B}[i%2], "alice", src(i))
			h.Age(t, time.Second) // an order the store's clock cannot blur
		}
		for i := range store.FamiliarPerAccount + 2 {
			familiar(t, h.A, "alice", src(i), i >= 2)
		}
		// Marks of other accounts never push out alice's.
		for i := range 4 * store.FamiliarPerAccount {
			mark(t, h.B, "mallory"+string(rune('a'+i%26))+string(rune('a'+i/26)), "flood")
			mark(t, h.B, "mallory", src(i%26)+string(rune('a'+i/26)))
		}
		for i := 2; i < store.FamiliarPerAccount+2; i++ {
			familiar(t, h.A, "alice", src(i), true)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		h := open(t)
		for _, k := range [][2]string{{"", "s"}, {"a", ""}, {string(make([]byte, 65)), "s"}, {"a", string(make([]byte, 65))}} {
			if err := h.A.MarkFamiliar(t.Context(), k[0], k[1], keep); err == nil {
				t.Errorf("MarkFamiliar(%q, %q): no error", k[0], k[1])
			}
			if _, err := h.A.Familiar(t.Context(), k[0], k[1]); err == nil {
				t.Errorf("Familiar(%q, %q): no error", k[0], k[1])
			}
		}
		if err := h.A.MarkFamiliar(t.Context(), "a", "s", 0); err == nil {
			t.Error("MarkFamiliar with keep 0: no error")
		}
	})
}
