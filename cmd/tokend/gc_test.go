package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// gcStore is the store that instances share, in memory: it counts
// DeleteExpired calls and holds leases on its own clock (the bubble's).
type gcStore struct {
	mu      sync.Mutex
	deletes []time.Time
	holder  string
	expires time.Time
}

func (f *gcStore) DeleteExpired(context.Context, time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, time.Now())
	return 0, nil
}

func (f *gcStore) Lease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != gcLease {
		panic(name)
	}
	if f.holder != holder && f.holder != "" && time.Now().Before(f.expires) {
		return false, nil
	}
	f.holder, f.expires = holder, time.Now().Add(ttl)
	return true, nil
}

func (f *gcStore) Release(_ context.Context, _, holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder == holder {
		f.holder = ""
	}
	return nil
}

func (f *gcStore) held() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holder
}

func (f *gcStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.deletes)
}

// Two instances sharing a store with leases delete once per interval
// between them; when the holder stops, it releases the lease and the
// other takes over at its next tick, without a missed interval.
func TestGCOncePerIntervalAcrossInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &gcStore{}
		log := slog.New(slog.DiscardHandler)
		start := time.Now()
		stops := map[string]context.CancelFunc{}
		for _, holder := range []string{"a", "b"} {
			ctx, cancel := context.WithCancel(t.Context())
			stops[holder] = cancel
			go runGC(ctx, log, time.Minute, st, st, holder)
		}
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		if n := st.count(); n != 10 {
			t.Fatalf("two instances over 10 intervals: %d deletes, want 10", n)
		}
		st.mu.Lock()
		deletes := st.deletes
		st.mu.Unlock()
		for i, at := range deletes {
			if want := start.Add(time.Duration(i+1) * time.Minute); !at.Equal(want) {
				t.Fatalf("delete %d at %v, want %v", i, at.Sub(start), want.Sub(start))
			}
		}
		// Stop the holder: the other one deletes from the next tick on.
		stops[st.held()]()
		synctest.Wait()
		if h := st.held(); h != "" {
			t.Fatalf("lease still held by %q after it stopped", h)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := st.count(); n != 15 {
			t.Fatalf("after the first instance stopped, 5 more intervals: %d deletes, want 15", n)
		}
		for _, stop := range stops {
			stop()
		}
		synctest.Wait()
		if h := st.held(); h != "" {
			t.Fatalf("lease still held by %q after every instance stopped", h)
		}
	})
}

// Without leases (memory, sqlite: one instance each), every instance
// deletes at every tick, as before.
func TestGCWithoutLeaser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &gcStore{}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		for range 2 {
			go runGC(ctx, slog.New(slog.DiscardHandler), time.Minute, st, nil, "")
		}
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if n := st.count(); n != 6 {
			t.Fatalf("two instances without leases over 3 intervals: %d deletes, want 6", n)
		}
	})
}
