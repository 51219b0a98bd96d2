package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// A refresh storm over a fleet: many clients, each with a family of its
// own, refreshing round-robin over the instances.

// chain is one client's family: every refresh token it received, in order.
// Its goroutine owns it while the storm runs.
type chain struct {
	subject string
	tokens  []string
}

func (c *chain) last() string { return c.tokens[len(c.tokens)-1] }

// storm runs the clients of a fleet.
type storm struct {
	f      *fleet
	chains []*chain
	dead   []atomic.Bool // per instance: killed, not to be used
	total  atomic.Int64  // accepted rotations
	// retried counts requests retried on another instance after a
	// transport error, and unavailable the 503 answers.
	retried, unavailable atomic.Int64

	mu   sync.Mutex
	seen map[string]int // every refresh token received → its chain
}

// newStorm starts n families, one per client (subjects storm-0…), spread
// over the instances.
func newStorm(ctx context.Context, f *fleet, n int) *storm {
	f.t.Helper()
	s := &storm{f: f, chains: make([]*chain, n), dead: make([]atomic.Bool, len(f.nodes)), seen: map[string]int{}}
	for i := range n {
		sub := fmt.Sprintf("storm-%d", i)
		rt, err := f.mint(ctx, f.nodes[i%len(f.nodes)], sub)
		if err != nil {
			f.t.Fatal(err)
		}
		s.chains[i] = &chain{subject: sub, tokens: []string{rt}}
		s.seen[rt] = i
	}
	return s
}

// stormHooks are what a test adds to a storm; nil fields do nothing.
type stormHooks struct {
	// fail decides about an answer other than 200 to a refresh (other than
	// a transport error from a killed instance): it waits as it needs,
	// then returns true to retry the same token on the next instance, or
	// false to stop the client, which is an error. Nil: every such answer
	// is an error.
	fail func(ctx context.Context, a answer) bool
	// after is called after each accepted rotation with the total so far.
	after func(total int64)
	// done is called when a client has made all its rotations.
	done func()
}

// run makes every client refresh rounds times, round-robin over the live
// instances, starting each at another one.
func (s *storm) run(ctx context.Context, rounds int, h stormHooks) {
	var wg sync.WaitGroup
	for i, c := range s.chains {
		wg.Go(func() {
			if h.done != nil {
				defer h.done()
			}
			next := i
			for range rounds {
				for {
					nd := s.pick(&next)
					a := s.f.refresh(ctx, nd, c.last())
					if a.err == nil && a.status == http.StatusOK {
						if !s.received(i, c, a.str("refresh_token")) {
							return
						}
						if total := s.total.Add(1); h.after != nil {
							h.after(total)
						}
						break
					}
					if a.err != nil && s.dead[indexOf(s.f.nodes, nd)].Load() {
						// The instance died under the request: retry the
						// same token elsewhere.
						s.retried.Add(1)
						continue
					}
					if h.fail == nil || !h.fail(ctx, a) {
						s.f.t.Errorf("client %d, rotation %d on %s: %v", i, len(c.tokens), nd.name, a)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// pick returns the next live instance after *next, and advances it.
func (s *storm) pick(next *int) *node {
	for range len(s.f.nodes) {
		i := *next % len(s.f.nodes)
		*next++
		if !s.dead[i].Load() {
			return s.f.nodes[i]
		}
	}
	s.f.t.Error("every instance is dead")
	return s.f.nodes[0]
}

// received records the successor rt of chain i: it must be new (each
// rotation gives a token never seen before, by any client).
func (s *storm) received(i int, c *chain, rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt == "" {
		s.f.t.Errorf("client %d: a rotation without a refresh token", i)
		return false
	}
	if j, ok := s.seen[rt]; ok {
		s.f.t.Errorf("client %d: rotation %d gave a refresh token client %d already had", i, len(c.tokens), j)
		return false
	}
	s.seen[rt] = i
	c.tokens = append(c.tokens, rt)
	return true
}

// kill marks instance i dead, then kills it with SIGKILL.
func (s *storm) kill(i int) {
	s.dead[i].Store(true)
	s.f.nodes[i].kill()
}

// check asserts, after the storm, that every rotation happened exactly
// once and that every family lives on, on every live instance:
//   - the token before each client's last one, presented again (within
//     the grace window), gives exactly the last one: the rotation that
//     produced it was the only one;
//   - the last one rotates, and the family is the subject's only active
//     one.
func (s *storm) check(ctx context.Context, wantRotations int) {
	t := s.f.t
	t.Helper()
	if got := s.total.Load(); got != int64(wantRotations) {
		t.Errorf("%d rotations accepted, want %d", got, wantRotations)
	}
	var wg sync.WaitGroup
	for i, c := range s.chains {
		wg.Go(func() {
			if len(c.tokens) < 2 {
				t.Errorf("client %d: no rotation", i)
				return
			}
			next := i
			nd := s.pick(&next)
			if a := s.f.refresh(ctx, nd, c.tokens[len(c.tokens)-2]); a.status != http.StatusOK || a.str("refresh_token") != c.last() {
				t.Errorf("client %d: its previous token again on %s: %v; want 200 with its last token (one rotation)", i, nd.name, a)
				return
			}
			nd = s.pick(&next)
			a := s.f.refresh(ctx, nd, c.last())
			if a.status != http.StatusOK || a.str("refresh_token") == "" {
				t.Errorf("client %d: its last token on %s: %v; want a rotation", i, nd.name, a)
				return
			}
			if !s.received(i, c, a.str("refresh_token")) {
				return
			}
			for j := range s.f.nodes {
				if s.dead[j].Load() {
					continue
				}
				if n, err := s.f.families(ctx, s.f.nodes[j], c.subject); err != nil || n != 1 {
					t.Errorf("client %d: %d active sessions on %s (%v); want 1", i, n, s.f.nodes[j].name, err)
				}
			}
		})
	}
	wg.Wait()
}

func indexOf(nodes []*node, nd *node) int {
	for i, n := range nodes {
		if n == nd {
			return i
		}
	}
	return -1
}
