package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

// familiar makes a store a FamiliarSources that answers at once: a
// capability WithTimeout does not intercept.
type familiar struct{}

func (familiar) MarkFamiliar(context.Context, string, string, time.Duration) error { return nil }
func (familiar) Familiar(context.Context, string, string) (bool, error)            { return true, nil }

// stalledAll is a stalled store that has every capability WithTimeout
// intercepts, and FamiliarSources besides.
type stalledAll struct {
	stalled
	familiar
}

// wrapper is a wrapper of the plainest kind: it passes every call
// through and intercepts no capability.
type wrapper struct{ store.Store }

func (w wrapper) Unwrap() store.Store { return w.Store }

// chains are the backend st under two or more wrappers, of each kind.
func chains(st store.Store, d time.Duration) map[string]store.Store {
	return map[string]store.Store{
		"sealed over WithTimeout":          sealed.Wrap(store.WithTimeout(st, d), sealed.Keyring{}),
		"WithTimeout over sealed":          store.WithTimeout(sealed.Wrap(st, sealed.Keyring{}), d),
		"wrapper over WithTimeout/wrapper": wrapper{store.WithTimeout(wrapper{st}, d)},
	}
}

// A capability of the backend is found through every wrapper over it:
// those WithTimeout intercepts with its deadline, which ends each of
// their calls at it exactly, wherever WithTimeout is in the chain; the
// others, and the backend's own type, as the backend has them.
func TestCapabilityThroughWrappers(t *testing.T) {
	const d = 200 * time.Millisecond
	backend := &stalledAll{stalled: stalled{fail: func(ctx context.Context) error { return ctx.Err() }}}
	for name, st := range chains(backend, d) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cs := calls(st)
				for _, c := range []string{"CountFailures", "Lease", "Release", "LegacyToken"} {
					call, ok := cs[c]
					if !ok {
						t.Errorf("%s not found", c)
						continue
					}
					start := time.Now()
					err := call(t.Context())
					if took := time.Since(start); took != d || !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s: %v after %v; want store.ErrUnavailable and context.DeadlineExceeded after the deadline, %v", c, err, took, d)
					}
				}
			})
			if fs, ok := store.Capability[store.FamiliarSources](st); !ok || fs != store.FamiliarSources(backend) {
				t.Errorf("FamiliarSources: %T, %v; want the backend's own", fs, ok)
			}
			if b, ok := store.Capability[*stalledAll](st); !ok || b != backend {
				t.Errorf("*stalledAll: %p, %v; want the backend, %p", b, ok, backend)
			}
		})
	}
}

// no lists which capabilities a store claims by its own methods, and
// which Capability finds through it.
func no(st store.Store) string {
	_, fc := st.(store.FailureCounter)
	_, le := st.(store.Leaser)
	_, lt := st.(store.LegacyTokens)
	_, fs := st.(store.FamiliarSources)
	_, sc := st.(store.Scrubber)
	_, cfc := store.Capability[store.FailureCounter](st)
	_, cle := store.Capability[store.Leaser](st)
	_, clt := store.Capability[store.LegacyTokens](st)
	_, cfs := store.Capability[store.FamiliarSources](st)
	_, csc := store.Capability[store.Scrubber](st)
	return fmt.Sprint(fc, le, lt, fs, sc, cfc, cle, clt, cfs, csc)
}

// No wrapper claims a capability its backend lacks, by a method of its
// own or through Capability; and no wrapper claims one by a method of its
// own even when the backend has it: Capability is how it is found.
func TestCapabilityNotClaimed(t *testing.T) {
	const none = "false false false false false false false false false false"
	for name, st := range chains(memory.New(), time.Second) {
		for w := st; w != nil; w = store.Unwrap(w) {
			if got := no(w); got != none {
				t.Errorf("%s: %T claims or finds (FailureCounter, Leaser, LegacyTokens, FamiliarSources, Scrubber; by method, then by Capability) %s; want none", name, w, got)
			}
		}
	}
	for name, st := range chains(&stalledAll{}, time.Second) {
		for w := st; store.Unwrap(w) != nil; w = store.Unwrap(w) {
			if got := no(w); got != "false false false false false true true true true false" {
				t.Errorf("%s: %T claims or finds %s; want no method of its own, and all but Scrubber found", name, w, got)
			}
		}
	}
}
