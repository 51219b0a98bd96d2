package hashgate

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// acquireAsync calls g.Acquire(ctx, n) in a goroutine; its outcome arrives
// on the channel.
func acquireAsync(ctx context.Context, g *Gate, n int64) <-chan error {
	ch := make(chan error, 1)
	go func() {
		release, err := g.Acquire(ctx, n)
		if err == nil {
			// Hold until the test's context ends, then give back.
			<-ctx.Done()
			release()
			release() // a second call changes nothing
		}
		ch <- err
	}()
	return ch
}

func done(ch <-chan error) (error, bool) {
	select {
	case err := <-ch:
		return err, true
	default:
		return nil, false
	}
}

// Grants follow the queue's order: a small request that would fit does
// not overtake a larger one waiting before it, and a release grants as
// many waiters as fit.
func TestHashGateFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(4, 10, time.Minute)
		hold, free := context.WithCancel(t.Context())
		defer free()
		a := acquireAsync(hold, g, 3)
		synctest.Wait()
		bCtx, freeB := context.WithCancel(t.Context())
		defer freeB()
		b := acquireAsync(bCtx, g, 2)
		synctest.Wait()
		c := acquireAsync(t.Context(), g, 1)
		synctest.Wait()
		if used, waiting := g.state(); used != 3 || waiting != 2 {
			t.Fatalf("used %d, waiting %d; want 3, 2 (the 1 must not overtake the 2)", used, waiting)
		}
		free() // a gives back 3: b (2) and c (1) both fit
		synctest.Wait()
		if err, ok := done(a); !ok || err != nil {
			t.Fatalf("a: %v, %v", ok, err)
		}
		if used, waiting := g.state(); used != 3 || waiting != 0 {
			t.Fatalf("after the release: used %d, waiting %d; want 3, 0", used, waiting)
		}
		freeB()
		synctest.Wait()
		if used, _ := g.state(); used != 1 {
			t.Fatalf("after b: used %d, want 1", used)
		}
		_, _ = done(b)
		_, _ = done(c)
	})
}

// A waiter at the head of the queue that gives up lets the ones behind it
// that fit go at once; a request bigger than the budget is refused
// outright; a full queue refuses with 503.
func TestHashGateLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(4, 2, time.Minute)
		hold, free := context.WithCancel(t.Context())
		defer free()
		acquireAsync(hold, g, 2)
		synctest.Wait()
		bigCtx, leave := context.WithCancel(t.Context())
		big := acquireAsync(bigCtx, g, 4)
		synctest.Wait()
		small := acquireAsync(hold, g, 1)
		synctest.Wait()
		beyond := acquireAsync(hold, g, 1)
		synctest.Wait()
		if err, ok := done(beyond); !ok {
			t.Fatal("a request beyond the queue waits")
		} else if !errors.Is(err, ErrBusy) {
			t.Fatalf("beyond the queue: %v", err)
		}
		leave()
		synctest.Wait()
		if err, ok := done(big); !ok || !errors.Is(err, context.Canceled) {
			t.Fatalf("the big waiter: %v, %v", ok, err)
		}
		if used, waiting := g.state(); used != 3 || waiting != 0 {
			t.Fatalf("used %d, waiting %d; want 3, 0: the small one goes once the big one left", used, waiting)
		}
		if _, ok := done(small); ok {
			t.Fatal("small returned early")
		}
		if _, err := g.Acquire(t.Context(), 5); !errors.Is(err, errTooCostly) {
			t.Fatalf("more than the budget: %v", err)
		}
	})
}

// A waiter granted memory just as its context ends gives it back: either
// way, nothing stays taken.
func TestHashGateGrantedAndCancelled(t *testing.T) {
	for range 20 { // the select between the two picks at random
		synctest.Test(t, func(t *testing.T) {
			g := New(1, 1, time.Minute)
			hold, free := context.WithCancel(t.Context())
			acquireAsync(hold, g, 1)
			synctest.Wait()
			ctx, cancel := context.WithCancel(t.Context())
			w := acquireAsync(ctx, g, 1)
			synctest.Wait()
			free()
			cancel()
			synctest.Wait()
			if _, ok := done(w); !ok {
				t.Fatal("waiter still waiting")
			}
			if used, waiting := g.state(); used != 0 || waiting != 0 {
				t.Fatalf("used %d, waiting %d; want 0, 0", used, waiting)
			}
		})
	}
}
