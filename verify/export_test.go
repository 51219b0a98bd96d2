package verify

import (
	"net/http"
	"time"
)

// WaitFetch waits until the key fetch under way, if any, has published its
// result: a test's way to let a background refresh finish.
func WaitFetch(v *Verifier) {
	v.mu.Lock()
	c := v.inflight
	v.mu.Unlock()
	if c != nil {
		<-c.done
	}
}

// Fetching reports whether a key fetch is under way.
func Fetching(v *Verifier) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.inflight != nil
}

// Lifetime is lifetime, for the tests.
func Lifetime(h http.Header, floor, ceil time.Duration) time.Duration {
	return lifetime(h, floor, ceil)
}
