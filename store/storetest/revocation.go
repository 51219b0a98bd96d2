package storetest

import (
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// wantRevoked checks that family id was revoked at at for reason.
func wantRevoked(t *testing.T, s store.Store, id string, at time.Time, reason string) {
	t.Helper()
	f, err := s.GetFamily(t.Context(), id)
	must(t, err)
	if !f.RevokedAt.Equal(at) || f.RevokeReason != reason {
		t.Fatalf("family %s: revoked at %v for %q, want at %v for %q", id, f.RevokedAt, f.RevokeReason, at, reason)
	}
}

// wantActive checks that family id is not revoked.
func wantActive(t *testing.T, s store.Store, id string) {
	t.Helper()
	f, err := s.GetFamily(t.Context(), id)
	must(t, err)
	if !f.RevokedAt.IsZero() || f.RevokeReason != "" {
		t.Fatalf("family %s revoked at %v for %q; it should be untouched", id, f.RevokedAt, f.RevokeReason)
	}
}

// DeleteClient revokes the client's unrevoked families in the same step,
// with ReasonClientDeleted, and counts them. A family revoked before keeps
// its revocation; other clients' families are untouched, even one whose
// subject is the client's ID; a client created again under the same ID
// gets none of the old families back, and deleting it counts only its own.
func testDeleteClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, store.Client{ID: "app", CreatedAt: t0}))
	must(t, s.CreateClient(ctx, store.Client{ID: "other", CreatedAt: t0}))
	_, a1 := newFamily(t, s, "a1", "app", "alice")
	newFamily(t, s, "a2", "app", "bob")
	newFamily(t, s, "a3", "app", "alice")
	must(t, s.RevokeFamily(ctx, "a3", t0.Add(time.Minute), "logout"))
	newFamily(t, s, "o1", "other", "alice")
	newFamily(t, s, "o2", "other", "app")

	at := t0.Add(10 * time.Minute)
	n, err := s.DeleteClient(ctx, "app", at)
	must(t, err)
	if n != 2 {
		t.Fatalf("DeleteClient revoked %d families, want 2 (a3 was revoked already)", n)
	}
	wantRevoked(t, s, "a1", at, store.ReasonClientDeleted)
	wantRevoked(t, s, "a2", at, store.ReasonClientDeleted)
	wantRevoked(t, s, "a3", t0.Add(time.Minute), "logout")
	wantActive(t, s, "o1")
	wantActive(t, s, "o2")
	_, err = s.GetClient(ctx, "app")
	wantErr(t, err, store.ErrNotFound)
	_, err = rotate(t, s, a1, hash(), at.Add(time.Second))
	wantErr(t, err, store.ErrRevoked)

	afterOwnerDeleted(t, s, ownerDeletion{
		kind: "client", method: "DeleteClient", reason: store.ReasonClientDeleted,
		recreate: func() error { return s.CreateClient(ctx, store.Client{ID: "app", CreatedAt: at}) },
		remove:   func(name string, at time.Time) (int, error) { return s.DeleteClient(ctx, name, at) },
		name:     "app", deletedAt: at, old: a1, again: "b1", kept: "a1",
		// An unknown client: ErrNotFound, and no family revoked, even one
		// that names it.
		ghostClient: "ghost", ghostSubject: "alice",
	})
}

// DeleteUser revokes the families whose subject is the user, of every
// client, in the same step, with ReasonUserDeleted, and counts them; other
// subjects' families are untouched, even one of a client whose ID is the
// user's name; a user created again gets none of the old families back.
func testDeleteUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$h", CreatedAt: t0}))
	must(t, s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "$h", CreatedAt: t0}))
	_, a1 := newFamily(t, s, "a1", "app", "alice")
	newFamily(t, s, "a2", "other", "alice")
	newFamily(t, s, "a3", "app", "alice")
	must(t, s.RevokeFamily(ctx, "a3", t0.Add(time.Minute), "logout"))
	newFamily(t, s, "b1", "app", "bob")
	newFamily(t, s, "b2", "alice", "bob")

	at := t0.Add(10 * time.Minute)
	n, err := s.DeleteUser(ctx, "alice", at)
	must(t, err)
	if n != 2 {
		t.Fatalf("DeleteUser revoked %d families, want 2 (a3 was revoked already)", n)
	}
	wantRevoked(t, s, "a1", at, store.ReasonUserDeleted)
	wantRevoked(t, s, "a2", at, store.ReasonUserDeleted)
	wantRevoked(t, s, "a3", t0.Add(time.Minute), "logout")
	wantActive(t, s, "b1")
	wantActive(t, s, "b2")
	_, err = s.GetUser(ctx, "alice")
	wantErr(t, err, store.ErrNotFound)

	afterOwnerDeleted(t, s, ownerDeletion{
		kind: "user", method: "DeleteUser", reason: store.ReasonUserDeleted,
		recreate: func() error { return s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$new", CreatedAt: at}) },
		remove:   func(name string, at time.Time) (int, error) { return s.DeleteUser(ctx, name, at) },
		name:     "alice", deletedAt: at, old: a1, again: "c1", kept: "a2",
		ghostClient: "app", ghostSubject: "ghost",
	})
}

// ownerDeletion is what afterOwnerDeleted needs to know of a deleted owner
// of families: a client (families' ClientID) or a user (their Subject).
type ownerDeletion struct {
	kind, method, reason string // "client", "DeleteClient", its revoke reason
	recreate             func() error
	remove               func(name string, at time.Time) (int, error)
	name                 string    // the owner, deleted at deletedAt
	deletedAt            time.Time // when it was deleted
	old                  token     // a family of it revoked then (a1)
	again                string    // the ID of a family of the owner created again
	kept                 string    // a family revoked at deletedAt, checked again at the end
	// ghostClient and ghostSubject make a family of an unknown owner.
	ghostClient, ghostSubject string
}

// afterOwnerDeleted checks what follows the deletion of o's owner: created
// again, it gets none of the old families back (they stay revoked and
// refused) while a new family of it rotates; deleting it again counts only
// that new family; an unknown owner's deletion is ErrNotFound and revokes
// nothing, even a family that names it.
func afterOwnerDeleted(t *testing.T, s store.Store, o ownerDeletion) {
	t.Helper()
	at := o.deletedAt
	must(t, o.recreate())
	_, fresh := newFamily(t, s, o.again, "app", "alice")
	wantRevoked(t, s, "a1", at, o.reason)
	_, err := rotate(t, s, o.old, hash(), at.Add(time.Second))
	wantErr(t, err, store.ErrRevoked)
	if res, err := rotate(t, s, fresh, hash(), at.Add(time.Second)); err != nil || res.Outcome != store.Rotated {
		t.Fatalf("the new %s's family: %v %v", o.kind, res.Outcome, err)
	}
	later := at.Add(time.Minute)
	n, err := o.remove(o.name, later)
	must(t, err)
	if n != 1 {
		t.Fatalf("deleting the %s again revoked %d families, want 1 (%s)", o.kind, n, o.again)
	}
	wantRevoked(t, s, o.again, later, o.reason)
	wantRevoked(t, s, o.kept, at, o.reason)

	newFamily(t, s, "g1", o.ghostClient, o.ghostSubject)
	n, err = o.remove("ghost", later)
	wantErr(t, err, store.ErrNotFound)
	if n != 0 {
		t.Fatalf("%s of an unknown %s returned %d", o.method, o.kind, n)
	}
	wantActive(t, s, "g1")
}

// RevokeKey sets RevokedAt and, if zero, RetiredAt; a second revocation,
// or a later retirement, keeps the first times. Other keys are untouched.
func testRevokeKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, id := range []string{"k1", "k2", "k3"} {
		must(t, s.CreateKey(ctx, store.Key{ID: id, Algorithm: "EdDSA", Private: []byte(id), CreatedAt: t0.Add(time.Duration(i) * time.Second)}))
	}
	retired := t0.Add(time.Hour)
	must(t, s.RetireKey(ctx, "k2", retired))
	first, second := t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	must(t, s.RevokeKey(ctx, "k1", first))
	must(t, s.RevokeKey(ctx, "k2", first))
	must(t, s.RevokeKey(ctx, "k1", second))
	must(t, s.RetireKey(ctx, "k1", second))
	wantErr(t, s.RevokeKey(ctx, "nope", first), store.ErrNotFound)
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 3 || ks[0].ID != "k1" || ks[1].ID != "k2" || ks[2].ID != "k3" {
		t.Fatalf("ListKeys after revocations: %+v", ks)
	}
	for _, c := range []struct {
		k                store.Key
		retired, revoked time.Time
	}{
		{ks[0], first, first},   // revoked twice, retired after: the first time stays
		{ks[1], retired, first}, // retired before: its RetiredAt stays
		{ks[2], time.Time{}, time.Time{}},
	} {
		if !c.k.RetiredAt.Equal(c.retired) || !c.k.RevokedAt.Equal(c.revoked) || string(c.k.Private) != c.k.ID {
			t.Fatalf("key %s: retired %v revoked %v, want retired %v revoked %v", c.k.ID, c.k.RetiredAt, c.k.RevokedAt, c.retired, c.revoked)
		}
	}
}

// The deny-list: an entry is kept until it expires, a second revocation
// keeps the later expiry, and DeleteExpired(before) removes the entries
// that expired strictly before before (and counts families only).
func testDenyList(t *testing.T, s store.Store) {
	ctx := t.Context()
	revoked := func(jti string) bool {
		t.Helper()
		ok, err := s.AccessTokenRevoked(ctx, jti)
		must(t, err)
		return ok
	}
	if revoked("j1") {
		t.Fatal("an unknown jti is revoked")
	}
	exp1, exp2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	must(t, s.RevokeAccessToken(ctx, "j1", exp1))
	must(t, s.RevokeAccessToken(ctx, "j1", t0.Add(30*time.Minute))) // earlier: j1 keeps exp1
	must(t, s.RevokeAccessToken(ctx, "j2", t0.Add(30*time.Minute)))
	must(t, s.RevokeAccessToken(ctx, "j2", exp2)) // later: j2 moves to exp2
	if !revoked("j1") || !revoked("j2") || revoked("j3") {
		t.Fatalf("revoked j1 %v j2 %v j3 %v; want true true false", revoked("j1"), revoked("j2"), revoked("j3"))
	}
	for _, step := range []struct {
		before time.Time
		j1, j2 bool
	}{
		{t0.Add(30*time.Minute + time.Microsecond), true, true}, // neither shortened to 30 minutes
		{exp1, true, true}, // expiring at before is not before it
		{exp1.Add(time.Microsecond), false, true},
		{exp2, false, true},
		{exp2.Add(time.Microsecond), false, false},
	} {
		n, err := s.DeleteExpired(ctx, step.before)
		must(t, err)
		if n != 0 {
			t.Fatalf("DeleteExpired counted %d families with none stored", n)
		}
		if revoked("j1") != step.j1 || revoked("j2") != step.j2 {
			t.Fatalf("after DeleteExpired(t0+%v): j1 %v j2 %v, want %v %v", step.before.Sub(t0), revoked("j1"), revoked("j2"), step.j1, step.j2)
		}
	}
}
