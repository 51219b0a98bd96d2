package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// stalled is a store whose every call, of Store and of each optional
// interface, waits until its context ends and then fails with fail(ctx),
// as a backend on a database that holds its bytes does.
type stalled struct {
	fail func(ctx context.Context) error
}

func (s stalled) wait(ctx context.Context) error {
	<-ctx.Done()
	return s.fail(ctx)
}

func (s stalled) CreateClient(ctx context.Context, _ store.Client) error { return s.wait(ctx) }
func (s stalled) GetClient(ctx context.Context, _ string) (store.Client, error) {
	return store.Client{}, s.wait(ctx)
}
func (s stalled) ListClients(ctx context.Context) ([]store.Client, error) { return nil, s.wait(ctx) }
func (s stalled) DeleteClient(ctx context.Context, _ string, _ time.Time) (int, error) {
	return 0, s.wait(ctx)
}
func (s stalled) UpdateClient(ctx context.Context, _, _ store.Client) error { return s.wait(ctx) }
func (s stalled) CreateUser(ctx context.Context, _ store.User) error        { return s.wait(ctx) }
func (s stalled) GetUser(ctx context.Context, _ string) (store.User, error) {
	return store.User{}, s.wait(ctx)
}
func (s stalled) ListUsers(ctx context.Context) ([]store.User, error) { return nil, s.wait(ctx) }
func (s stalled) UpdatePasswordHash(ctx context.Context, _, _, _ string) error {
	return s.wait(ctx)
}
func (s stalled) DeleteUser(ctx context.Context, _ string, _ time.Time) (int, error) {
	return 0, s.wait(ctx)
}
func (s stalled) CreateKey(ctx context.Context, _ store.Key) error { return s.wait(ctx) }
func (s stalled) CreateKeyIfNone(ctx context.Context, _ store.Key) (store.Key, error) {
	return store.Key{}, s.wait(ctx)
}
func (s stalled) RotateKey(ctx context.Context, _ store.Key, _ string) error { return s.wait(ctx) }
func (s stalled) ListKeys(ctx context.Context) ([]store.Key, error)          { return nil, s.wait(ctx) }
func (s stalled) RetireKey(ctx context.Context, _ string, _ time.Time) error { return s.wait(ctx) }
func (s stalled) RevokeKey(ctx context.Context, _ string, _ time.Time) error { return s.wait(ctx) }
func (s stalled) CreateFamily(ctx context.Context, _ store.Family) error     { return s.wait(ctx) }
func (s stalled) GetFamily(ctx context.Context, _ string) (store.Family, error) {
	return store.Family{}, s.wait(ctx)
}
func (s stalled) ListFamilies(ctx context.Context, _ store.FamilyFilter) ([]store.Family, error) {
	return nil, s.wait(ctx)
}
func (s stalled) RevokeFamily(ctx context.Context, _ string, _ time.Time, _ string) error {
	return s.wait(ctx)
}
func (s stalled) RevokeFamilies(ctx context.Context, _ store.FamilyFilter, _ time.Time, _ string) (int, error) {
	return 0, s.wait(ctx)
}
func (s stalled) Rotate(ctx context.Context, _ store.RotateRequest) (store.RotateResult, error) {
	return store.RotateResult{}, s.wait(ctx)
}
func (s stalled) RevokeAccessToken(ctx context.Context, _ string, _ time.Time) error {
	return s.wait(ctx)
}
func (s stalled) AccessTokenRevoked(ctx context.Context, _ string) (bool, error) {
	return false, s.wait(ctx)
}
func (s stalled) DeleteExpired(ctx context.Context, _ time.Time) (int, error) { return 0, s.wait(ctx) }
func (s stalled) Secret(ctx context.Context, _ string, _ []byte) ([]byte, error) {
	return nil, s.wait(ctx)
}
func (s stalled) RewriteSecrets(ctx context.Context, _ func(kind, name string, value []byte) ([]byte, error)) error {
	return s.wait(ctx)
}
func (s stalled) CreateAuthorizationCode(ctx context.Context, _ store.AuthorizationCode) error {
	return s.wait(ctx)
}
func (s stalled) GetAuthorizationCode(ctx context.Context, _ []byte) (store.AuthorizationCode, error) {
	return store.AuthorizationCode{}, s.wait(ctx)
}
func (s stalled) RedeemAuthorizationCode(ctx context.Context, _ []byte, _ store.Family) (store.AuthorizationCode, error) {
	return store.AuthorizationCode{}, s.wait(ctx)
}
func (s stalled) CreateSession(ctx context.Context, _ store.Session) error { return s.wait(ctx) }
func (s stalled) GetSession(ctx context.Context, _ string) (store.Session, error) {
	return store.Session{}, s.wait(ctx)
}
func (s stalled) EndSession(ctx context.Context, _ string, _ time.Time) error { return s.wait(ctx) }
func (s stalled) PutConsent(ctx context.Context, _ store.Consent) error       { return s.wait(ctx) }
func (s stalled) GetConsent(ctx context.Context, _, _ string) (store.Consent, error) {
	return store.Consent{}, s.wait(ctx)
}
func (s stalled) Ping(ctx context.Context) error { return s.wait(ctx) }
func (s stalled) Close() error                   { return nil }
func (s stalled) CountFailures(ctx context.Context, _ []store.Failure) ([]int64, error) {
	return nil, s.wait(ctx)
}
func (s stalled) Lease(ctx context.Context, _, _ string, _ time.Duration) (bool, error) {
	return false, s.wait(ctx)
}
func (s stalled) Release(ctx context.Context, _, _ string) error { return s.wait(ctx) }
func (s stalled) LegacyToken(ctx context.Context, _ []byte) (string, int64, error) {
	return "", 0, s.wait(ctx)
}

// calls makes every call of st, each of the Store and of the optional
// interfaces st has.
func calls(st store.Store) map[string]func(ctx context.Context) error {
	at := time.Now()
	m := map[string]func(ctx context.Context) error{
		"CreateClient": func(ctx context.Context) error { return st.CreateClient(ctx, store.Client{ID: "c"}) },
		"GetClient":    func(ctx context.Context) error { _, err := st.GetClient(ctx, "c"); return err },
		"ListClients":  func(ctx context.Context) error { _, err := st.ListClients(ctx); return err },
		"DeleteClient": func(ctx context.Context) error { _, err := st.DeleteClient(ctx, "c", at); return err },
		"UpdateClient": func(ctx context.Context) error {
			return st.UpdateClient(ctx, store.Client{ID: "c"}, store.Client{ID: "c"})
		},
		"CreateUser": func(ctx context.Context) error { return st.CreateUser(ctx, store.User{Name: "u"}) },
		"GetUser":    func(ctx context.Context) error { _, err := st.GetUser(ctx, "u"); return err },
		"ListUsers":  func(ctx context.Context) error { _, err := st.ListUsers(ctx); return err },
		"UpdatePasswordHash": func(ctx context.Context) error {
			return st.UpdatePasswordHash(ctx, "u", "a", "b")
		},
		"DeleteUser":      func(ctx context.Context) error { _, err := st.DeleteUser(ctx, "u", at); return err },
		"CreateKey":       func(ctx context.Context) error { return st.CreateKey(ctx, store.Key{ID: "k"}) },
		"CreateKeyIfNone": func(ctx context.Context) error { _, err := st.CreateKeyIfNone(ctx, store.Key{ID: "k"}); return err },
		"RotateKey":       func(ctx context.Context) error { return st.RotateKey(ctx, store.Key{ID: "k2"}, "k") },
		"ListKeys":        func(ctx context.Context) error { _, err := st.ListKeys(ctx); return err },
		"RetireKey":       func(ctx context.Context) error { return st.RetireKey(ctx, "k", at) },
		"RevokeKey":       func(ctx context.Context) error { return st.RevokeKey(ctx, "k", at) },
		"CreateFamily":    func(ctx context.Context) error { return st.CreateFamily(ctx, store.Family{ID: "f"}) },
		"GetFamily":       func(ctx context.Context) error { _, err := st.GetFamily(ctx, "f"); return err },
		"ListFamilies": func(ctx context.Context) error {
			_, err := st.ListFamilies(ctx, store.FamilyFilter{})
			return err
		},
		"RevokeFamily": func(ctx context.Context) error { return st.RevokeFamily(ctx, "f", at, "logout") },
		"RevokeFamilies": func(ctx context.Context) error {
			_, err := st.RevokeFamilies(ctx, store.FamilyFilter{Subject: "u"}, at, "logout")
			return err
		},
		"Rotate": func(ctx context.Context) error {
			_, err := st.Rotate(ctx, store.RotateRequest{FamilyID: "f"})
			return err
		},
		"RevokeAccessToken":  func(ctx context.Context) error { return st.RevokeAccessToken(ctx, "j", at) },
		"AccessTokenRevoked": func(ctx context.Context) error { _, err := st.AccessTokenRevoked(ctx, "j"); return err },
		"DeleteExpired":      func(ctx context.Context) error { _, err := st.DeleteExpired(ctx, at); return err },
		"Secret":             func(ctx context.Context) error { _, err := st.Secret(ctx, "s", []byte("v")); return err },
		"RewriteSecrets": func(ctx context.Context) error {
			return st.RewriteSecrets(ctx, func(_, _ string, v []byte) ([]byte, error) { return v, nil })
		},
		"Ping": st.Ping,
		"CreateAuthorizationCode": func(ctx context.Context) error {
			return st.CreateAuthorizationCode(ctx, store.AuthorizationCode{Hash: []byte("h")})
		},
		"GetAuthorizationCode": func(ctx context.Context) error { _, err := st.GetAuthorizationCode(ctx, []byte("h")); return err },
		"RedeemAuthorizationCode": func(ctx context.Context) error {
			_, err := st.RedeemAuthorizationCode(ctx, []byte("h"), store.Family{ID: "f"})
			return err
		},
		"CreateSession": func(ctx context.Context) error { return st.CreateSession(ctx, store.Session{ID: "s"}) },
		"GetSession":    func(ctx context.Context) error { _, err := st.GetSession(ctx, "s"); return err },
		"EndSession":    func(ctx context.Context) error { return st.EndSession(ctx, "s", at) },
		"PutConsent":    func(ctx context.Context) error { return st.PutConsent(ctx, store.Consent{Subject: "u", ClientID: "c"}) },
		"GetConsent":    func(ctx context.Context) error { _, err := st.GetConsent(ctx, "u", "c"); return err },
	}
	if fc, ok := store.Capability[store.FailureCounter](st); ok {
		m["CountFailures"] = func(ctx context.Context) error {
			_, err := fc.CountFailures(ctx, []store.Failure{{Key: "k", Forget: time.Second}})
			return err
		}
	}
	if le, ok := store.Capability[store.Leaser](st); ok {
		m["Lease"] = func(ctx context.Context) error { _, err := le.Lease(ctx, "gc", "me", time.Second); return err }
		m["Release"] = func(ctx context.Context) error { return le.Release(ctx, "gc", "me") }
	}
	if lt, ok := store.Capability[store.LegacyTokens](st); ok {
		m["LegacyToken"] = func(ctx context.Context) error { _, _, err := lt.LegacyToken(ctx, []byte("h")); return err }
	}
	return m
}

// Every call of a stalled store, of the Store and of each optional
// interface, fails at its deadline exactly, with an error wrapping
// store.ErrUnavailable and context.DeadlineExceeded: whether the backend
// answers the ended context with its error or with one of its own that
// does not say so.
func TestWithTimeoutStalled(t *testing.T) {
	const d = 200 * time.Millisecond
	backends := []struct {
		name string
		fail func(ctx context.Context) error
	}{
		{"context error", func(ctx context.Context) error { return fmt.Errorf("db: %w", ctx.Err()) }},
		{"own error", func(context.Context) error { return errors.New("db: connection closed") }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := store.WithTimeout(stalled{fail: b.fail}, d)
				cs := calls(st)
				if want := reflect.TypeFor[store.Store]().NumMethod() - 1 + 4; len(cs) != want {
					t.Fatalf("%d calls; want %d: every method of Store but Close, and the 4 of the optional interfaces", len(cs), want)
				}
				for name, call := range cs {
					start := time.Now()
					err := call(t.Context())
					if took := time.Since(start); took != d {
						t.Errorf("%s took %v; want the deadline, %v", name, took, d)
					}
					if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s: %v; want store.ErrUnavailable and context.DeadlineExceeded", name, err)
					}
				}
			})
		})
	}
}

// The caller's own deadline, earlier than the store's, ends the call at
// it, as unavailable too; zero is DefaultTimeout; a negative timeout is
// none.
func TestWithTimeoutDeadlines(t *testing.T) {
	fail := func(ctx context.Context) error { return ctx.Err() }
	synctest.Test(t, func(t *testing.T) {
		st := store.WithTimeout(stalled{fail: fail}, time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := st.Ping(ctx)
		if took := time.Since(start); took != 300*time.Millisecond || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Ping under the caller's 300ms deadline: %v after %v; want store.ErrUnavailable after 300ms", err, took)
		}

		start = time.Now()
		err = store.WithTimeout(stalled{fail: fail}, 0).Ping(t.Context())
		if took := time.Since(start); took != store.DefaultTimeout || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Ping with timeout 0: %v after %v; want store.ErrUnavailable after DefaultTimeout (%v)", err, took, store.DefaultTimeout)
		}
	})
	raw := &stalled{fail: fail}
	if got := store.WithTimeout(raw, -1); got != store.Store(raw) {
		t.Errorf("WithTimeout(st, -1) = %T; want st itself", got)
	}
}

// The store's own answers come back as they are, even when the deadline
// passes as they come.
func TestWithTimeoutAnswers(t *testing.T) {
	for _, want := range []error{store.ErrNotFound, store.ErrExists, store.ErrRevoked, store.ErrExpired, store.ErrConflict,
		fmt.Errorf("db: %w: disk full", store.ErrUnavailable)} {
		synctest.Test(t, func(t *testing.T) {
			st := store.WithTimeout(stalled{fail: func(context.Context) error { return want }}, time.Second)
			if err := st.Ping(t.Context()); err != want {
				t.Errorf("Ping: %v; want %v unchanged", err, want)
			}
		})
	}
	st := store.WithTimeout(memory.New(), time.Second)
	if _, err := st.GetClient(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetClient of an unknown client: %v; want store.ErrNotFound only", err)
	}
}

// A caller that gives up gets an error wrapping context.Canceled, also
// when the backend calls the interrupted call unavailable (as a driver
// whose connection the cancellation broke does), and never at the
// deadline.
func TestWithTimeoutCallerGone(t *testing.T) {
	backends := []struct {
		name string
		fail func(ctx context.Context) error
	}{
		{"context error", func(ctx context.Context) error { return ctx.Err() }},
		{"unavailable", func(context.Context) error { return fmt.Errorf("db: %w: i/o timeout", store.ErrUnavailable) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := store.WithTimeout(stalled{fail: b.fail}, time.Second)
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(100*time.Millisecond, cancel)
				start := time.Now()
				err := st.Ping(ctx)
				if took := time.Since(start); took != 100*time.Millisecond || !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Ping whose caller gave up after 100ms: %v after %v; want context.Canceled then", err, took)
				}
			})
		})
	}
}

// The optional interfaces, as parts that make a store have them.
type (
	counts  struct{}
	leasing struct{}
	legacy  struct{}
)

func (counts) CountFailures(context.Context, []store.Failure) ([]int64, error) { return nil, nil }
func (leasing) Lease(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (leasing) Release(context.Context, string, string) error { return nil }
func (legacy) LegacyToken(context.Context, []byte) (string, int64, error) {
	return "", 0, store.ErrNotFound
}

func capabilities(st store.Store) string {
	_, fc := store.Capability[store.FailureCounter](st)
	_, le := store.Capability[store.Leaser](st)
	_, lt := store.Capability[store.LegacyTokens](st)
	return fmt.Sprintf("FailureCounter=%v Leaser=%v LegacyTokens=%v", fc, le, lt)
}

// A store with any of the optional interfaces, alone or with the others,
// keeps exactly those when wrapped, and Unwrap returns it; wrapping the
// wrapped store again wraps the store itself.
func TestWithTimeoutCapabilities(t *testing.T) {
	m := memory.New()
	for _, st := range []store.Store{
		m,
		struct {
			store.Store
			counts
		}{Store: m},
		struct {
			store.Store
			leasing
		}{Store: m},
		struct {
			store.Store
			legacy
		}{Store: m},
		struct { // postgres and redis
			store.Store
			counts
			leasing
		}{Store: m},
		struct {
			store.Store
			counts
			legacy
		}{Store: m},
		struct { // sqlite
			store.Store
			leasing
			legacy
		}{Store: m},
		struct {
			store.Store
			counts
			leasing
			legacy
		}{Store: m},
	} {
		got := store.WithTimeout(st, time.Second)
		if capabilities(got) != capabilities(st) {
			t.Errorf("%s wrapped: %s", capabilities(st), capabilities(got))
		}
		if u := store.Unwrap(got); u != st {
			t.Errorf("%s wrapped: Unwrap = %T; want the store itself", capabilities(st), u)
		}
		again := store.WithTimeout(got, 2*time.Second)
		if u := store.Unwrap(again); u != st || capabilities(again) != capabilities(st) {
			t.Errorf("%s wrapped twice: Unwrap = %T, %s; want the store itself, as it is (deadlines do not nest)", capabilities(st), u, capabilities(again))
		}
	}
	if store.Unwrap(m) != nil {
		t.Error("Unwrap of a store that wraps nothing is not nil")
	}
}
