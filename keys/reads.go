package keys

import (
	"context"
	"sync"
)

// reads runs reads of the store one at a time, and lets concurrent
// callers share them: do returns once a read that began after it was
// called has ended, and that read's error. Under load a caller waits for
// at most the read in flight and the next one, and the store sees about
// one read per round trip however many callers ask.
type reads struct {
	mu      sync.Mutex
	started uint64        // reads begun so far; the read in flight is number started
	done    uint64        // the last read that ended and answers its waiters
	err     error         // that read's error
	running chan struct{} // closed when the read in flight ends; nil when none is
}

// do returns the error of the first read, begun after the call, that ends
// with its caller's context still live: read runs with the context of
// the caller that starts it, so a read cut short by its caller going away
// answers no one else, who wait for the next. ctx ending returns
// ctx.Err().
func (r *reads) do(ctx context.Context, read func(context.Context) error) error {
	r.mu.Lock()
	want := r.started + 1 // any read numbered from want on began after this call
	for {
		if r.done >= want {
			err := r.err
			r.mu.Unlock()
			return err
		}
		if r.running == nil {
			r.started++
			n, ch := r.started, make(chan struct{})
			r.running = ch
			r.mu.Unlock()
			err := read(ctx)
			r.mu.Lock()
			if ctx.Err() == nil {
				r.done, r.err = n, err
			}
			r.running = nil
			close(ch)
			r.mu.Unlock()
			return err
		}
		ch := r.running
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
}
